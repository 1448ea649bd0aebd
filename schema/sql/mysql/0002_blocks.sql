-- measurement_blocks: measurements packed by link, reporting broker and
-- window of time (five minutes), which the aggregator's compactor makes
-- of measurements rows once their window has passed. A query over an hour
-- of a thousand links then reads twelve thousand rows rather than
-- three quarters of a million: most of such a query's time went in
-- reading and converting rows one at a time.
--
-- t0 is the time of the block's first measurement and t1 of its last; n
-- counts them. A block's measurements are in two parts, so that a query of
-- the figures alone reads a fifth of the bytes:
--   figs:   each measurement's time and the figures of the measurements
--           table's columns (state, monitor, rtt, lat_mean, jitter, loss);
--   detail: each one's detail, its histogram's bucket bounds listed once
--           for the block.
-- aggregator/store/blocks.go describes the encoding. A measurement is in
-- a block or a row of measurements; one that arrives after its window was
-- packed waits in measurements until the next compaction packs it into
-- its window's blocks again.
CREATE TABLE IF NOT EXISTS measurement_blocks (
  link_id   INT NOT NULL,
  broker_id INT NOT NULL,
  t0        BIGINT NOT NULL,
  t1        BIGINT NOT NULL,
  n         INT NOT NULL,
  figs      MEDIUMBLOB NOT NULL,
  detail    MEDIUMBLOB NOT NULL,
  PRIMARY KEY (link_id, t0, broker_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
