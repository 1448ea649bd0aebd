-- measurement_blocks: measurements packed by link, reporting broker and
-- window of time; see the mysql migration of the same number.
CREATE TABLE IF NOT EXISTS measurement_blocks (
  link_id   INTEGER NOT NULL,
  broker_id INTEGER NOT NULL,
  t0        INTEGER NOT NULL,
  t1        INTEGER NOT NULL,
  n         INTEGER NOT NULL,
  figs      BLOB NOT NULL,
  detail    BLOB NOT NULL,
  PRIMARY KEY (link_id, t0, broker_id)
) WITHOUT ROWID;
