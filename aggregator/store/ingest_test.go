package store

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

// The ingest and query benchmarks run only when asked, against every
// backend available (see backends):
//
//	WAYLINE_BENCH_INGEST=60s   save batches of 2,000 measurements for 60 s
//	                           and report measurements per second
//	WAYLINE_BENCH_QUERY=1      store 24 hours of 1,000 links (5 s reports),
//	                           then time reading one hour of them
//
// e.g. (scripts/mariadb.sh start prints the DSN):
//
//	WAYLINE_TEST_MYSQL='mysql://root@tcp(127.0.0.1:PORT)/' WAYLINE_BENCH_INGEST=60s \
//	  go test -run TestIngestRate -v -timeout 30m ./aggregator/store

// network is a synthetic network of brokers with linksPer links each,
// every broker reporting every 5 s, as brokers do by default.
type network struct {
	reports []Received // one round: every broker's report once
	round   int
}

const (
	benchBrokers  = 50
	benchLinksPer = 20 // 1,000 links in all
	benchInterval = 5 * time.Second
)

func newNetwork() *network {
	n := &network{}
	for b := range benchBrokers {
		addr := fmt.Sprintf("na.cgl.c%d.b%d", b/10, b%10)
		var links []schema.Link
		for l := range benchLinksPer {
			peer := fmt.Sprintf("na.cgl.c%d.b%d", (b+l+1)%benchBrokers/10, (b+l+1)%10)
			lk := link(fmt.Sprintf("3f2a0c1e-%04d-4000-8000-%012d", b, l), addr, peer, l)
			lk.Histogram.Buckets = nil
			for k := range 12 {
				lk.Histogram.Buckets = append(lk.Histogram.Buckets, schema.Bucket{LE: 40 + 0.67*float64(k), Count: float64(3 * k)})
			}
			lk.Histogram.Buckets = append(lk.Histogram.Buckets, schema.Bucket{LE: math.Inf(1), Count: 1})
			links = append(links, lk)
		}
		n.reports = append(n.reports, rep(addr, 0, time.Time{}, links...))
	}
	return n
}

// batch is the next rounds' reports, stamped with their time.
func (n *network) batch(rounds int) []Received {
	var out []Received
	for range rounds {
		t := base.Add(time.Duration(n.round) * benchInterval)
		for _, r := range n.reports {
			r.Report.Seq = uint64(n.round + 1)
			r.Report.Time, r.Received = t, t.Add(20*time.Millisecond)
			out = append(out, r)
		}
		n.round++
	}
	return out
}

func TestIngestRate(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("WAYLINE_BENCH_INGEST"))
	if err != nil {
		t.Skip("WAYLINE_BENCH_INGEST is not a duration (e.g. 60s): not benchmarking ingest")
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.dsn(t))
			net := newNetwork()
			ctx := context.Background()
			var total, window int
			var busy, windowBusy time.Duration
			start := time.Now()
			for time.Since(start) < d {
				batch := net.batch(2) // 100 reports, 2,000 measurements
				t0 := time.Now()
				if err := s.Save(ctx, batch); err != nil {
					t.Fatal(err)
				}
				spent := time.Since(t0)
				busy += spent
				windowBusy += spent
				total += 2 * benchBrokers * benchLinksPer
				window += 2 * benchBrokers * benchLinksPer
				if windowBusy >= 10*time.Second {
					t.Logf("%6.0f measurements/s over the last %d", float64(window)/windowBusy.Seconds(), window)
					window, windowBusy = 0, 0
				}
			}
			t.Logf("%s: %d measurements in %.1f s of Save: %.0f measurements/s (%.1f ms per batch of 2,000)",
				b.name, total, busy.Seconds(), float64(total)/busy.Seconds(), busy.Seconds()*1000/float64(total/2000))
			hour(t, s, base.Add(time.Duration(net.round)*benchInterval))
		})
	}
}

func TestQueryHour(t *testing.T) {
	if os.Getenv("WAYLINE_BENCH_QUERY") == "" {
		t.Skip("WAYLINE_BENCH_QUERY is not set: not benchmarking a query over 24 hours of data")
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.dsn(t))
			net := newNetwork()
			rounds := int(24 * time.Hour / benchInterval)
			start := time.Now()
			for net.round < rounds {
				if err := s.Save(context.Background(), net.batch(2)); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("stored 24 h of %d links (%d measurements) in %v", benchBrokers*benchLinksPer,
				rounds*benchBrokers*benchLinksPer, time.Since(start).Round(time.Second))
			hour(t, s, base.Add(13*time.Hour))
		})
	}
}

// hour times reading the hour before end, of every link and of ten.
func hour(t *testing.T, s Store, end time.Time) {
	for _, q := range []MeasurementQuery{
		{From: end.Add(-time.Hour), To: end},
		{From: end.Add(-time.Hour), To: end, Links: []string{
			"3f2a0c1e-0000-4000-8000-000000000000", "3f2a0c1e-0001-4000-8000-000000000001",
			"3f2a0c1e-0002-4000-8000-000000000002", "3f2a0c1e-0003-4000-8000-000000000003",
			"3f2a0c1e-0004-4000-8000-000000000004", "3f2a0c1e-0005-4000-8000-000000000005",
			"3f2a0c1e-0006-4000-8000-000000000006", "3f2a0c1e-0007-4000-8000-000000000007",
			"3f2a0c1e-0008-4000-8000-000000000008", "3f2a0c1e-0009-4000-8000-000000000009"}},
	} {
		n := 0
		t0 := time.Now()
		err := s.Measurements(context.Background(), q, func(Measurement) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		which := "all links"
		if len(q.Links) > 0 {
			which = fmt.Sprintf("%d links", len(q.Links))
		}
		t.Logf("one hour of %s: %d measurements in %v (%.0f/s)", which, n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	}
}
