package broker

import (
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
)

func TestReporterKeepsReportsWithinBounds(t *testing.T) {
	var r reporter
	for seq := uint64(1); seq <= 5; seq++ {
		r.queue(seq, []byte(strings.Repeat("x", 10)), 3, 1000)
	}
	if len(r.pending) != 3 || r.pending[0].seq != 3 || r.dropped != 2 || r.bytes != 30 {
		t.Fatalf("count bound: pending %d (first %d), dropped %d, bytes %d; want 3 from seq 3, 2 dropped, 30 bytes",
			len(r.pending), r.pending[0].seq, r.dropped, r.bytes)
	}
	r.queue(6, []byte(strings.Repeat("y", 25)), 10, 40)
	if len(r.pending) != 2 || r.pending[0].seq != 5 || r.bytes != 35 {
		t.Fatalf("byte bound: pending %d (first %d), bytes %d; want seqs 5 and 6, 35 bytes", len(r.pending), r.pending[0].seq, r.bytes)
	}
	// A report larger than the bound on its own is still kept: the newest
	// report always waits for its aggregator.
	r.queue(7, []byte(strings.Repeat("z", 100)), 10, 40)
	if len(r.pending) != 1 || r.pending[0].seq != 7 {
		t.Fatalf("oversized report: pending %+v", r.pending)
	}

	now := time.Now()
	if d := r.due(now, time.Second); len(d) != 1 || d[0].seq != 7 {
		t.Fatalf("first due: %+v", d)
	}
	if d := r.due(now.Add(500*time.Millisecond), time.Second); len(d) != 0 {
		t.Fatalf("resent before the timeout: %+v", d)
	}
	if d := r.due(now.Add(time.Second), time.Second); len(d) != 0 {
		t.Fatalf("resent while no one acknowledges reports: %+v", d)
	}
	// An acknowledgement of a later report shows someone stores them:
	// the overdue report goes again.
	r.queue(8, []byte("w"), 10, 1000)
	r.due(now.Add(time.Second), time.Second)
	r.ack(8, now.Add(1500*time.Millisecond))
	if d := r.due(now.Add(2*time.Second), time.Second); len(d) != 1 || d[0].seq != 7 {
		t.Fatalf("not resent after the timeout: %+v", d)
	}
	r.ack(99, now) // unknown: ignored
	r.ack(7, now)
	if len(r.pending) != 0 || r.bytes != 0 || r.acked != 2 {
		t.Fatalf("after ack: pending %d, bytes %d, acked %d", len(r.pending), r.bytes, r.acked)
	}
}

// A broker's report must be one its aggregator accepts at every stage of
// a link's life: before any sample, while measured, and once the link is
// down.
func TestReportIsValidThroughALinksLife(t *testing.T) {
	for _, tr := range []string{"tcp", "udp"} {
		t.Run(tr, func(t *testing.T) {
			n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks(tr)[:1], tweak: fastProbes})
			a := n.brokers["na.c1.a"]
			check := func(stage string) schema.Report {
				t.Helper()
				rep := a.Report(time.Now())
				rep.Seq = 1
				if err := rep.Validate(); err != nil {
					t.Fatalf("%s: report invalid: %v", stage, err)
				}
				back, err := schema.DecodeReport(rep.AppendXML(nil), schema.Limits{})
				if err != nil {
					t.Fatalf("%s: report does not decode: %v", stage, err)
				}
				if !reflect.DeepEqual(back, rep) {
					t.Fatalf("%s: round trip changed the report:\n got %+v\nwant %+v", stage, back, rep)
				}
				if len(rep.Links) != 1 {
					t.Fatalf("%s: %d links in the report, want 1", stage, len(rep.Links))
				}
				return rep
			}
			check("at start")
			waitFor(t, "samples", 10*time.Second, func() bool { return linkOf(t, a, "na.c1.b").Metrics.ProbesRecvd >= 5 })
			rep := check("measured")
			if l := rep.Links[0]; l.Samples.Received < 5 || l.RTT <= 0 || l.B != "na.c1.b" || l.Transport != tr {
				t.Fatalf("measured link: %+v", l)
			}
			n.brokers["na.c1.b"].Close()
			waitFor(t, "link down", 10*time.Second, func() bool { return linkOf(t, a, "na.c1.b").State != "up" })
			check("down")
		})
	}
}

// TestPlainSubscriberGetsEachReportOnce: a client that subscribes to
// $WL.> (as anyone may) sees each report once; nobody acknowledges them,
// so nothing is sent again. Once a client that acknowledges reports
// appears, the reports it missed are sent again and acknowledged.
func TestPlainSubscriberGetsEachReportOnce(t *testing.T) {
	const every = 50 * time.Millisecond
	n := newTestNet(t, netSpec{brokers: chain[:1], tweak: func(c *Config) {
		c.Report.Interval, c.AdminToken = every, "report-token"
	}})
	b := n.brokers["na.c1.a"]
	seen := map[uint64]int{}
	var mu sync.Mutex
	watcher := n.connect("na.c1.a")
	watcher.Subscribe("$WL.>", func(m *nats.Msg) {
		if m.Subject != netapi.PerfSubject("na") {
			return
		}
		rep, err := schema.DecodeReport(m.Data, schema.Limits{})
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		seen[rep.Seq]++
		mu.Unlock()
	})
	watcher.Flush()
	time.Sleep(40 * every)
	mu.Lock()
	for seq, k := range seen {
		if k != 1 {
			t.Errorf("report %d sent %d times", seq, k)
		}
	}
	saw := len(seen)
	mu.Unlock()
	if saw < 20 {
		t.Fatalf("the watcher saw %d reports", saw)
	}
	agg := n.connect("na.c1.a", nats.UserInfo(netapi.AdminUser, "report-token"))
	agg.Subscribe(netapi.PerfSubject("na"), func(m *nats.Msg) {
		if rep, err := schema.DecodeReport(m.Data, schema.Limits{}); err == nil {
			m.Respond([]byte(strconv.FormatUint(rep.Seq, 10)))
		}
	})
	agg.Flush()
	waitFor(t, "the missed reports to be sent again and acknowledged", 10*time.Second, func() bool {
		return b.Status().Reports.Queued <= 2
	})
}
