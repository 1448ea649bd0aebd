-- measurement_blocks: measurements packed by link, reporting broker and
-- window of time (five minutes), which the aggregator's compactor makes
-- of measurements rows once their window has passed. A query over an hour
-- of a thousand links then reads twelve thousand rows rather than
-- three quarters of a million: most of such a query's time went in
-- reading and converting rows one at a time.
--
-- t0 is the window's start (a multiple of its length), t1 the time of its
-- last measurement; n counts them. A block's measurements are in three
-- parts, so that a query reads only what it needs:
--   figs: each measurement's time and the figures of the measurements
--         table's columns (state, monitor, rtt, lat_mean, jitter, loss);
--   summ: each one's detail up to its delay histogram (the latency
--         summary, the sample counters and the costs);
--   hist: each one's delay histogram.
-- aggregator/store/blocks.go describes the encoding. A measurement is in
-- a block or a row of measurements; one that arrives after its window was
-- packed waits in measurements until the next compaction packs it into
-- its block again.
CREATE TABLE IF NOT EXISTS measurement_blocks (
  link_id   INT NOT NULL,
  broker_id INT NOT NULL,
  t0        BIGINT NOT NULL,
  t1        BIGINT NOT NULL,
  n         INT NOT NULL,
  figs      MEDIUMBLOB NOT NULL,
  summ      MEDIUMBLOB NOT NULL,
  hist      MEDIUMBLOB NOT NULL,
  PRIMARY KEY (link_id, t0, broker_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
