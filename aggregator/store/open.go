package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DefaultDSN is the database used when none is named: a SQLite file in the
// working directory.
const DefaultDSN = "sqlite:wayline.db"

// Options tunes a store.
type Options struct {
	// Logger receives migrations applied and transactions retried. Nil
	// discards them.
	Logger *slog.Logger
}

// sqlStore is the Store of both dialects.
type sqlStore struct {
	db  *sql.DB
	d   *dialect
	log *slog.Logger

	// writeMu makes writers take turns when the dialect wants it.
	writeMu sync.Mutex
	// chunk is how many measurements one INSERT carries, and insertChunk
	// that INSERT.
	chunk       int
	insertChunk string
	// stmts are the statements prepared for Save, by their text.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	// pruneChunk is how many rows one DELETE of Prune removes.
	pruneChunk int

	// ids and linkIDs cache the row ids of broker addresses and link
	// UUIDs, which never change once committed, and transports the
	// transport of each link row written.
	cacheMu    sync.RWMutex
	ids        map[string]int64
	linkIDs    map[string]int64
	transports map[string]string
}

var _ Store = (*sqlStore)(nil)

// Open connects to the database that dsn names, creating it if it is a
// MySQL database that does not exist yet, and brings its schema up to date.
//
//	mysql://user:password@tcp(host:port)/database?param=value
//	    MySQL or MariaDB; what follows "mysql://" is a go-sql-driver DSN.
//	sqlite:PATH
//	    a SQLite file, created if missing.
//	""  DefaultDSN.
//
// It fails when the DSN is malformed, the server does not answer, the
// database cannot be created, or a migration fails; errors never include
// the password.
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	if dsn == "" {
		dsn = DefaultDSN
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		db  *sql.DB
		d   *dialect
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "mysql://"):
		d = mysqlDialect
		db, err = openMySQL(ctx, strings.TrimPrefix(dsn, "mysql://"), log)
	case strings.HasPrefix(dsn, "sqlite:"):
		d = sqliteDialect
		db, err = openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	default:
		scheme, _, _ := strings.Cut(dsn, ":")
		err = fmt.Errorf("unknown kind of database %q: want mysql://… or sqlite:PATH", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s := &sqlStore{db: db, d: d, log: log, ids: map[string]int64{}, linkIDs: map[string]int64{}, transports: map[string]string{}, stmts: map[string]*sql.Stmt{}, pruneChunk: pruneChunk}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	// A batch of the aggregator's (200 reports of 20 links) is one
	// INSERT: fewer statements store about a tenth more a second than
	// chunks of 1,000.
	s.chunk = min(4000, d.maxVars/len(measurementCols))
	s.insertChunk = s.d.insertNew("measurements", measurementCols, s.chunk)
	return s, nil
}

// openMySQL connects to a MySQL database, creating it when the server
// says it does not exist.
func openMySQL(ctx context.Context, dsn string, log *slog.Logger) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql DSN: %w", err)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("mysql DSN names no database (…/DATABASE)")
	}
	where := fmt.Sprintf("mysql %s/%s", cfg.Addr, cfg.DBName)
	db, err := mysqlDB(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	err = db.PingContext(ctx)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1049 { // unknown database
		if err = createMySQLDatabase(ctx, cfg); err == nil {
			log.Info("created database", slog.String("database", cfg.DBName), slog.String("addr", cfg.Addr))
			err = db.PingContext(ctx)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return db, nil
}

// mysqlDB is a pool for cfg. Connections stay open between batches so that
// statements prepared on them are not prepared again.
func mysqlDB(cfg *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// createMySQLDatabase creates cfg's database, connecting without one.
func createMySQLDatabase(ctx context.Context, cfg *mysql.Config) error {
	server := cfg.Clone()
	server.DBName = ""
	db, err := mysqlDB(server)
	if err != nil {
		return err
	}
	defer db.Close()
	// A database name cannot be a parameter; quoting it as an identifier
	// (backticks, doubled inside) keeps any name inert.
	q := "CREATE DATABASE IF NOT EXISTS " + quoteMySQLName(cfg.DBName) + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	return nil
}

// quoteMySQLName quotes an identifier for MySQL.
func quoteMySQLName(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// openSQLite opens a SQLite file in WAL mode, so that readers do not wait
// for the writer, with synchronous=NORMAL (a power cut may lose the last
// transactions, never corrupt the file), a page cache of 64 MiB per
// connection rather than 2 (ingest touches a page per link, and each miss
// is a system call), and transactions that take the write lock when they
// begin rather than fail when they first write.
func openSQLite(path string) (*sql.DB, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite: no file named (sqlite:PATH)")
	}
	if strings.HasPrefix(path, ":memory:") || strings.Contains(path, "mode=memory") {
		return nil, fmt.Errorf("sqlite: in-memory databases are not supported: each connection would get its own")
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	dsn := path + sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=cache_size(-65536)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.SetMaxIdleConns(4)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return db, nil
}

// Ping reports whether the database answers.
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close releases the prepared statements and the connections. Calls that
// are still running fail.
func (s *sqlStore) Close() error {
	s.stmtMu.Lock()
	for q, st := range s.stmts {
		st.Close()
		delete(s.stmts, q)
	}
	s.stmtMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
