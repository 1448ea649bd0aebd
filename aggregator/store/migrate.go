package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wayline/wayline/schema"
)

// execer is a connection or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// migrate applies the dialect's migrations that the database lacks, in
// order, each recorded in schema_migrations with the time it was applied.
// Aggregators starting together take turns: SQLite through its write lock,
// MySQL through a named lock. It fails if the database holds a migration
// this program does not know (it was migrated by a newer one) or a
// migration fails; on SQLite a failed migration leaves no trace.
func (s *sqlStore) migrate(ctx context.Context) error {
	ms, err := schema.Migrations(s.d.name)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if !s.d.transactionalDDL {
		var got sql.NullInt64
		err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('wayline.migrate', 60)").Scan(&got)
		if err == nil && got.Int64 != 1 {
			err = fmt.Errorf("another process held the lock for 60 s")
		}
		if err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK('wayline.migrate')")
	}
	if _, err := conn.ExecContext(ctx, s.d.createMigrations); err != nil {
		return fmt.Errorf("migrate: schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := s.apply(ctx, conn, m, ms[len(ms)-1].Version); err != nil {
			return fmt.Errorf("migrate: %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return checkTables(ctx, conn)
}

// tableColumns are the columns this program reads and writes, by table.
var tableColumns = [][2]string{
	{"brokers", "id, address, domain, first_seen, last_seen, last_seq"},
	{"links", "id, uuid, a_broker, b_broker, transport, last_seen"},
	{"measurements", "link_id, broker_id, t, state, monitor, rtt, lat_mean, jitter, loss, detail"},
	{"reports", "id, broker_id, seq, t, received_at, links, gap, bytes"},
	{"actions", "id, t, rule, broker, link, action, undoes, ok, error, request"},
	{"measurement_blocks", "link_id, broker_id, t0, t1, n, figs, detail"},
}

// checkTables fails, saying what to do, when the database's tables lack a
// column this program uses: a database made by a development version of
// Wayline from before its schema settled, whose migrations carried the
// same number.
func checkTables(ctx context.Context, ex execer) error {
	for _, tc := range tableColumns {
		rows, err := ex.QueryContext(ctx, "SELECT "+tc[1]+" FROM "+tc[0]+" WHERE 1 = 0")
		if err == nil {
			err = rows.Close()
		}
		if err != nil {
			return fmt.Errorf("migrate: table %s is not the one this version of Wayline makes (the database was made by an earlier development version); move the file away or drop the database, and start again: %w", tc[0], err)
		}
	}
	return nil
}

// apply runs one migration unless the database has it; newest is the
// latest version this program knows.
func (s *sqlStore) apply(ctx context.Context, conn *sql.Conn, m schema.Migration, newest int) (err error) {
	var ex execer = conn
	if s.d.transactionalDDL {
		var tx *sql.Tx
		if tx, err = conn.BeginTx(ctx, nil); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				tx.Rollback()
			}
		}()
		ex = tx
	}
	var done, beyond int
	rows, err := ex.QueryContext(ctx, "SELECT COUNT(CASE WHEN version = ? THEN 1 END), COUNT(CASE WHEN version > ? THEN 1 END) FROM schema_migrations", m.Version, newest)
	if err != nil {
		return err
	}
	for rows.Next() {
		err = rows.Scan(&done, &beyond)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return err
	case beyond > 0:
		return fmt.Errorf("the database has migrations beyond %d: it was migrated by a newer Wayline", newest)
	case done > 0:
		if tx, ok := ex.(*sql.Tx); ok {
			return tx.Commit()
		}
		return nil
	}
	start := time.Now()
	for _, stmt := range statements(m.SQL) {
		if _, err := ex.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", firstLine(stmt), err)
		}
	}
	if _, err := ex.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, dbTime(time.Now())); err != nil {
		return err
	}
	if tx, ok := ex.(*sql.Tx); ok {
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	s.log.Info("applied migration", slog.String("db", s.d.name), slog.Int("version", m.Version), slog.String("name", m.Name), slog.Duration("took", time.Since(start)))
	return nil
}

// statements splits a migration into its statements: at semicolons that
// are outside quotes and comments. Comments are dropped, as are empty
// statements.
func statements(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				i = len(text)
			} else {
				i += end - 1 // the newline itself is kept
			}
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				i = len(text)
			} else {
				i += 2 + end + 1
			}
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(text) && text[j] != c {
				if text[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			end := min(j+1, len(text))
			cur.WriteString(text[i:end])
			i = end - 1
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// firstLine names a statement in an error.
func firstLine(stmt string) string {
	line, _, _ := strings.Cut(stmt, "\n")
	return strings.TrimSpace(line)
}
