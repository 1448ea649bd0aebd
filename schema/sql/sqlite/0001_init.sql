-- Wayline aggregator schema, SQLite dialect: the tables of the MySQL
-- dialect (sql/mysql/0001_init.sql explains the choices), in SQLite's types.
--
-- Times are INTEGER nanoseconds since the Unix epoch, UTC; zero means
-- "never". Text compares byte-wise (SQLite's default BINARY collation).
-- Counters are INTEGER holding the 64 bits of Go's uint64. NaN figures are
-- NULL and infinite ones the largest double of their sign.
--
-- measurements is a WITHOUT ROWID table: like InnoDB's, its rows are kept
-- in the order of their primary key, so that a range read of a link is a
-- walk along consecutive rows rather than a lookup per row. The runner applies each
-- migration in one transaction.

CREATE TABLE IF NOT EXISTS brokers (
  id         INTEGER PRIMARY KEY,
  address    TEXT NOT NULL UNIQUE,
  domain     TEXT NOT NULL DEFAULT '',
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL DEFAULT 0,
  last_seq   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS links (
  id        INTEGER PRIMARY KEY,
  uuid      TEXT NOT NULL UNIQUE,
  a_broker  INTEGER NOT NULL,
  b_broker  INTEGER NOT NULL,
  transport TEXT NOT NULL DEFAULT '',
  last_seen INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS measurements (
  link_id    INTEGER NOT NULL,
  broker_id  INTEGER NOT NULL,
  t          INTEGER NOT NULL,
  state      TEXT NOT NULL,
  monitor    TEXT NOT NULL,
  rtt        REAL,
  lat_mean   REAL,
  jitter     REAL,
  loss       REAL,
  detail     BLOB NOT NULL,
  PRIMARY KEY (link_id, t, broker_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS reports (
  id          INTEGER PRIMARY KEY,
  broker_id   INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  t           INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  links       INTEGER NOT NULL,
  gap         INTEGER NOT NULL,
  bytes       INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS reports_broker_seq ON reports (broker_id, seq, t);
CREATE INDEX IF NOT EXISTS reports_received_at ON reports (received_at);

CREATE TABLE IF NOT EXISTS actions (
  id      INTEGER PRIMARY KEY,
  t       INTEGER NOT NULL,
  rule    TEXT NOT NULL,
  broker  TEXT NOT NULL,
  link    TEXT NOT NULL,
  action  TEXT NOT NULL,
  undoes  INTEGER NOT NULL,
  ok      INTEGER NOT NULL,
  error   TEXT NOT NULL,
  request TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_t ON actions (t);
