-- Wayline aggregator schema, MySQL/MariaDB dialect.
--
-- Times are BIGINT nanoseconds since the Unix epoch, UTC. Not DATETIME(6)
-- or TIMESTAMP: the same number in both dialects (SQLite has no time type),
-- no session time zone to convert through (TIMESTAMP also ends in 2038),
-- exact round trips of Go's time.Time, and 8-byte keys that compare as
-- integers. Zero means "never". FROM_UNIXTIME(t DIV 1000000000) reads one.
--
-- Strings compare byte-wise (utf8mb4_bin), as in Go and SQLite, so both
-- dialects order link ids and addresses alike.
--
-- Counters (uint64 in Go) are BIGINT holding the same 64 bits. Figures that
-- are NaN are NULL, and an infinite one is stored as the largest double of
-- its sign: DOUBLE holds neither.
--
-- References between tables (broker_id, link_id, a_broker, b_broker) are
-- not declared as foreign keys: checking them would slow ingest, the store
-- writes the referenced rows first in the same transaction, and nothing
-- deletes brokers or links.
--
-- Migrations run once each, in order; the runner records them in
-- schema_migrations. MySQL commits every DDL statement by itself, so
-- statements here are written to be run again (IF NOT EXISTS).

-- brokers: every broker heard of, by reporting or as a link's peer.
-- last_seen and last_seq are those of its latest report (0: none yet).
CREATE TABLE IF NOT EXISTS brokers (
  id         INT NOT NULL AUTO_INCREMENT,
  address    VARCHAR(255) NOT NULL,
  domain     VARCHAR(255) NOT NULL DEFAULT '',
  first_seen BIGINT NOT NULL,
  last_seen  BIGINT NOT NULL DEFAULT 0,
  last_seq   BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY brokers_address (address)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- links: every link heard of, by its UUID; a_broker reported it first.
-- Measurements name a link by its row id, a 4-byte number, rather than by
-- its 36-character UUID: the measurements' key is then short and compares
-- as an integer, which makes storing them about a quarter faster.
CREATE TABLE IF NOT EXISTS links (
  id        INT NOT NULL AUTO_INCREMENT,
  uuid      VARCHAR(64) NOT NULL,
  a_broker  INT NOT NULL,
  b_broker  INT NOT NULL,
  transport VARCHAR(32) NOT NULL DEFAULT '',
  last_seen BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY links_uuid (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- measurements: one row per link per report, by far the largest table.
-- The primary key clusters rows by link then time, which is how they are
-- read (a time range of some or all links) and pruned (per link, oldest
-- first): a range read touches consecutive pages and needs no second
-- lookup. The reporting broker completes it (both ends report a link,
-- often at the same instant), so a report stored twice (a batch retried
-- after its commit went through unheard) is one row: the store inserts
-- with IGNORE. There is no AUTO_INCREMENT column: it would need an index
-- of its own, and its table lock would keep two writers from loading rows
-- at once. Its strings are bytes (VARBINARY, BLOB): the server checks no
-- character set on them, and they hold what the store wrote.
--
-- The figures that queries select on are columns; detail holds the rest
-- of the measurement (the other latency percentiles, the sample counters,
-- the costs and the delay histogram) in a compact binary form that the
-- store reads (aggregator/store/codec.go describes it). A row is then ten
-- values rather than twenty-three, which is most of what storing it costs
-- the server: it stores about half as many again a second.
CREATE TABLE IF NOT EXISTS measurements (
  link_id    INT NOT NULL,
  broker_id  INT NOT NULL,
  t          BIGINT NOT NULL,
  state      VARBINARY(16) NOT NULL,
  monitor    VARBINARY(16) NOT NULL,
  rtt        DOUBLE NULL,
  lat_mean   DOUBLE NULL,
  jitter     DOUBLE NULL,
  loss       DOUBLE NULL,
  detail     BLOB NOT NULL,
  PRIMARY KEY (link_id, t, broker_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- reports: every report received, with the gap before it (reports of that
-- broker missed, by sequence number). Listed and pruned by received_at.
-- A report is one row however often it is stored (see measurements):
-- a broker's sequence number and time name it.
CREATE TABLE IF NOT EXISTS reports (
  id          BIGINT NOT NULL AUTO_INCREMENT,
  broker_id   INT NOT NULL,
  seq         BIGINT NOT NULL,
  t           BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  links       INT NOT NULL,
  gap         BIGINT NOT NULL,
  bytes       INT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY reports_broker_seq (broker_id, seq, t),
  KEY reports_received_at (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- actions: the control actions the aggregator took. An audit log, so it
-- keeps the broker's address and the link id as they were sent rather than
-- references; it is small and Prune leaves it alone.
CREATE TABLE IF NOT EXISTS actions (
  id      BIGINT NOT NULL AUTO_INCREMENT,
  t       BIGINT NOT NULL,
  rule    TEXT NOT NULL,
  broker  VARCHAR(255) NOT NULL,
  link    VARCHAR(64) NOT NULL,
  action  VARCHAR(255) NOT NULL,
  undoes  BOOLEAN NOT NULL,
  ok      BOOLEAN NOT NULL,
  error   TEXT NOT NULL,
  request TEXT NOT NULL,
  PRIMARY KEY (id),
  KEY actions_t (t)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
