package store

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
)

// dialect is everything that differs between MySQL/MariaDB and SQLite; the
// rest of the store is shared.
type dialect struct {
	name string // "mysql" or "sqlite": the driver and the migrations' folder
	// maxVars is how many bind variables one statement may carry: MySQL's
	// prepared statements take 65,535, SQLite 32,766.
	maxVars int
	// serialWrites makes writers take turns in the store: SQLite locks the
	// whole file for a write, and waiting in Go is cheaper than its
	// busy-retry loop.
	serialWrites bool
	// transactionalDDL: SQLite can roll a migration back; MySQL commits
	// each DDL statement by itself.
	transactionalDDL bool
	// keepStored ends an INSERT whose rows are skipped where their key is
	// stored already, given a column of the key. Not INSERT IGNORE, which
	// on MySQL also turns a value too long into a warning and a truncated
	// value.
	keepStored func(keyCol string) string
	// createMigrations makes the migrations' own table.
	createMigrations string
	// onConflict starts the update clause of an upsert on a key column.
	onConflict func(key string) string
	// excluded names the value an upsert tried to insert into col.
	excluded func(col string) string
	// greatest and least are the two-argument max and min.
	greatest, least string
	// deleteSome deletes at most n (the last parameter) rows of table
	// that match where, so a prune is a series of short transactions; key
	// is the table's primary key.
	deleteSome func(table, key, where string) string
	// forUpdate ends a SELECT whose rows, and the gaps between them, the
	// transaction is about to change: MySQL then keeps other writers out
	// of them. SQLite's writers take turns anyway.
	forUpdate string
	// beginRead starts a transaction that reads one snapshot of the
	// database throughout, taking no write lock.
	beginRead string
	// retryable reports whether a failed transaction may succeed if run
	// again (a deadlock, a lock wait that timed out, a busy file).
	retryable func(error) bool
}

var mysqlDialect = &dialect{
	name:             "mysql",
	maxVars:          65535,
	transactionalDDL: false,
	keepStored:       func(col string) string { return " ON DUPLICATE KEY UPDATE " + col + " = " + col },
	createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INT NOT NULL PRIMARY KEY,
  name       VARCHAR(255) NOT NULL,
  applied_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	onConflict: func(string) string { return " ON DUPLICATE KEY UPDATE " },
	excluded:   func(col string) string { return "VALUES(" + col + ")" },
	greatest:   "GREATEST",
	least:      "LEAST",
	forUpdate:  " FOR UPDATE",
	beginRead:  "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
	deleteSome: func(table, _, where string) string {
		return "DELETE FROM " + table + " WHERE " + where + " LIMIT ?"
	},
	retryable: func(err error) bool {
		var me *mysql.MySQLError
		// 1213: deadlock found; 1205: lock wait timeout exceeded.
		return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
	},
}

var sqliteDialect = &dialect{
	name:             "sqlite",
	maxVars:          32766,
	serialWrites:     true,
	transactionalDDL: true,
	keepStored:       func(string) string { return " ON CONFLICT DO NOTHING" },
	createMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER NOT NULL PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at INTEGER NOT NULL
)`,
	onConflict: func(key string) string { return " ON CONFLICT(" + key + ") DO UPDATE SET " },
	excluded:   func(col string) string { return "excluded." + col },
	greatest:   "MAX",
	least:      "MIN",
	beginRead:  "BEGIN DEFERRED",
	deleteSome: func(table, key, where string) string {
		return "DELETE FROM " + table + " WHERE (" + key + ") IN (SELECT " + key + " FROM " + table + " WHERE " + where + " LIMIT ?)"
	},
	retryable: func(err error) bool {
		var se *sqlite.Error
		// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code.
		return errors.As(err, &se) && (se.Code()&0xff == 5 || se.Code()&0xff == 6)
	},
}

// insertNew is an INSERT of n rows of cols that skips those whose key
// is stored already; cols[0] is part of the key.
func (d *dialect) insertNew(table string, cols []string, n int) string {
	return insertRows(table, cols, n, d.keepStored(cols[0]))
}

// insertRows is an INSERT of n rows of cols, then tail (an upsert clause or
// nothing).
func insertRows(table string, cols []string, n int, tail string) string {
	var b strings.Builder
	row := "(" + strings.Repeat("?,", len(cols)-1) + "?)"
	b.Grow(len(table) + 40 + 10*len(cols) + n*(len(row)+1) + len(tail))
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(tail)
	return b.String()
}

// bindVars is the bind variables of an IN list of n values: "?,?,…,?".
func bindVars(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// brokerUpsert is the update clause of the brokers upsert. A row comes
// from a report (last_seen > 0) or from a link's peer (last_seen 0), and
// only a report at least as recent as the one stored moves domain and
// last_seq. MySQL applies the assignments in order, each seeing the ones
// before, so last_seen comes last.
func (d *dialect) brokerUpsert() string {
	x := d.excluded
	newer := x("last_seen") + " >= last_seen AND " + x("last_seen") + " > 0"
	return d.onConflict("address") +
		"domain = CASE WHEN " + newer + " AND " + x("domain") + " <> '' THEN " + x("domain") + " ELSE domain END, " +
		"last_seq = CASE WHEN " + newer + " THEN " + x("last_seq") + " ELSE last_seq END, " +
		"first_seen = " + d.least + "(first_seen, " + x("first_seen") + "), " +
		"last_seen = " + d.greatest + "(last_seen, " + x("last_seen") + ")"
}

// linkUpsert is the update clause of the links upsert: the ends stay those
// of the first report, the transport follows the latest one.
func (d *dialect) linkUpsert() string {
	x := d.excluded
	return d.onConflict("uuid") +
		"transport = CASE WHEN " + x("last_seen") + " >= last_seen AND " + x("transport") + " <> '' THEN " + x("transport") + " ELSE transport END, " +
		"last_seen = " + d.greatest + "(last_seen, " + x("last_seen") + ")"
}
