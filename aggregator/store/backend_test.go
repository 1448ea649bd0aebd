package store

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/schema"
)

// backend makes fresh, empty databases of one kind for tests.
type backend struct {
	name string
	// dsn names a new database of its own for t, removed when t ends. It
	// skips t (or fails it) when the backend is not available.
	dsn func(t testing.TB) string
}

// backends are the databases the suite runs against: SQLite always, and
// MySQL/MariaDB when WAYLINE_TEST_MYSQL names a server, as
// "mysql://root@tcp(127.0.0.1:PORT)/" (scripts/mariadb.sh start prints
// one). Without it the MySQL tests are skipped, or fail when
// WAYLINE_REQUIRE_MYSQL is set, as `make test` does.
func backends() []backend {
	return []backend{
		{name: "sqlite", dsn: func(t testing.TB) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "wayline.db")
		}},
		{name: "mysql", dsn: func(t testing.TB) string {
			return testutil.MySQLTestDB(t)
		}},
	}
}

// open opens a store on dsn for t and closes it when t ends.
func open(t testing.TB, dsn string) *sqlStore {
	t.Helper()
	st, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*sqlStore)
}

// count is the number of rows of a table.
func count(t testing.TB, s *sqlStore, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// base is the time the fixtures start at.
var base = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// at is base plus i seconds.
func at(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

// rep is a report received a millisecond after it was written.
func rep(broker string, seq uint64, t time.Time, links ...schema.Link) Received {
	return Received{
		Report:   schema.Report{Broker: broker, Domain: "na", Seq: seq, Time: t, Interval: 5 * time.Second, Links: links},
		Received: t.Add(time.Millisecond),
		Bytes:    100 + 300*len(links),
	}
}

// link is a link from a to b whose every figure derives from n.
func link(id, a, b string, n int) schema.Link {
	f := float64(n)
	return schema.Link{
		ID: id, A: a, B: b, Transport: "udp", State: "up", Monitor: "up",
		RTT:     90 + f,
		Latency: schema.Summary{Min: 44 + f, Mean: 45 + f, P50: 45.5 + f, P90: 46 + f, P99: 47 + f, Max: 48 + f},
		Jitter:  2 + f/10, Loss: 0.01 * f,
		Samples: schema.Samples{Sent: uint64(500 + n), Received: uint64(490 + n), Lost: 10, Window: 256, Reordered: 1, Duplicated: 2},
		Dropped: uint64(n),
		Costs:   []schema.Cost{{Profile: "default", Value: 57.4 + f}, {Profile: "media", Value: 12.25}},
		Histogram: schema.Histogram{Missing: 3, Buckets: []schema.Bucket{
			{LE: 44.67, Count: 12 + f}, {LE: 50, Count: 100}, {LE: math.Inf(1), Count: 1}}},
	}
}

// walkAll is every measurement q selects.
func walkAll(t testing.TB, s Store, q MeasurementQuery) []Measurement {
	t.Helper()
	var out []Measurement
	err := s.Measurements(context.Background(), q, func(m Measurement) error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		t.Fatalf("Measurements: %v", err)
	}
	return out
}
