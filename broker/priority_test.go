package broker

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/topology"
	"github.com/wayline/wayline/transports"
)

func TestPriorityConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   []topology.SubjectClass
		want string
	}{
		{"valid", []topology.SubjectClass{{Subject: "alerts.>", Class: sendq.High}, {Subject: "metrics.*", Class: sendq.Low}}, ""},
		{"empty subject", []topology.SubjectClass{{Subject: "", Class: sendq.High}}, `priorities[0]: invalid subject ""`},
		{"bad wildcard", []topology.SubjectClass{{Subject: "a.>.b", Class: sendq.Low}}, `priorities[0]: invalid subject "a.>.b"`},
		{"unknown class", []topology.SubjectClass{{Subject: "a", Class: 7}}, "priorities[0] (a): unknown class 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validatePriorities(tc.ps)
			if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
	b := &Broker{cfg: Config{Routing: Routing{Priorities: []topology.SubjectClass{
		{Subject: "alerts.>", Class: sendq.High}, {Subject: "metrics.keep", Class: sendq.Normal}, {Subject: "metrics.>", Class: sendq.Low},
	}}}}
	for subject, want := range map[string]sendq.Class{
		"alerts.disk.full": sendq.High, "metrics.cpu": sendq.Low, "metrics.keep": sendq.Normal, "orders.1": sendq.Normal, "alerts": sendq.Normal,
	} {
		if got := b.classFor(subject); got != want {
			t.Errorf("%s: class %s, want %s", subject, got, want)
		}
	}
}

// priorityLoad is what a congestion test offers: msgs messages of size
// bytes per second on each subject.
type priorityLoad struct {
	subject string
	rate    int // messages per second
	sent    int
	got     []time.Duration // one-way latency of each delivered message
	seen    map[uint64]bool
}

// TestPriorityUnderCongestion: a chain a-b-c whose link b-c is capped at
// 1 Mbit/s, offered 2 Mbit/s: a quarter on a high-class subject, the rest
// on a low-class one. Only a knows the priorities: b queues by the class
// the messages carry. The high class loses nothing and its latency stays
// within a few takes of the link; the low class absorbs the drops, and
// every message it lost is counted, by class, at b.
func TestPriorityUnderCongestion(t *testing.T) {
	const size = 500 // payload bytes; with headers about 4,500 bits a message
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.c"},
		links:   []string{"x.a-x.b:tcp", "x.b-x.c:tcp"},
		tweak: func(c *Config) {
			c.DeadAfter = 3 * time.Second
			c.LinkQueueBytes = 64 << 10
			if c.Address == "x.a" {
				c.Routing.Priorities = []topology.SubjectClass{{Subject: "alerts.>", Class: sendq.High}, {Subject: "metrics.>", Class: sendq.Low}}
			}
			linkEmulation(map[string]transports.Emulation{"x.b-x.c": {Bandwidth: 1_000_000, QueueLimit: 8 << 10}})(c)
		},
	})
	n.waitRoutes()
	loads := []*priorityLoad{{subject: "alerts.x", rate: 125}, {subject: "metrics.x", rate: 375}}
	var mu sync.Mutex
	sub := n.connect("x.c")
	for i, l := range loads {
		l.seen = map[uint64]bool{}
		if _, err := sub.Subscribe(l.subject, func(m *nats.Msg) {
			at := time.Now()
			mu.Lock()
			defer mu.Unlock()
			seq := binary.BigEndian.Uint64(m.Data[8:])
			if loads[i].seen[seq] {
				t.Errorf("%s %d delivered twice", m.Subject, seq)
			}
			loads[i].seen[seq] = true
			loads[i].got = append(loads[i].got, at.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(m.Data)))))
		}); err != nil {
			t.Fatal(err)
		}
	}
	sub.Flush()
	for _, l := range loads {
		n.waitInterest("x.a", l.subject, "x.c")
	}
	pub := n.connect("x.a")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, size)
	for ctx.Err() == nil {
		<-tick.C
		elapsed := time.Since(start)
		for _, l := range loads {
			for l.sent < int(elapsed.Seconds()*float64(l.rate)) {
				l.sent++
				binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
				binary.BigEndian.PutUint64(payload[8:], uint64(l.sent))
				if err := pub.Publish(l.subject, payload); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	pub.Flush()
	b := n.brokers["x.b"]
	delivered := func(l *priorityLoad) int {
		mu.Lock()
		defer mu.Unlock()
		return len(l.got)
	}
	lowDrops := func() uint64 { return linkOf(t, b, "x.c").DropsByClass["low"]["send_queue_full"] }
	testutil.WaitFor(t, "every message delivered or counted dropped", 20*time.Second, func() bool {
		return delivered(loads[0]) == loads[0].sent && delivered(loads[1])+int(lowDrops()) == loads[1].sent
	})
	link := linkOf(t, b, "x.c")
	high, low := loads[0], loads[1]
	mu.Lock()
	defer mu.Unlock()
	p99 := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)*99/100]
	}
	t.Logf("high: %d/%d delivered, p99 %v; low: %d/%d delivered, p99 %v, %d dropped; drops by class at b: %v",
		len(high.got), high.sent, p99(high.got), len(low.got), low.sent, p99(low.got), lowDrops(), link.DropsByClass)
	if link.DropsByClass["high"]["send_queue_full"] != 0 || lowDrops() == 0 || len(low.got) > low.sent*3/4 {
		t.Fatalf("drops by class %v; low delivered %d of %d: the low class did not absorb the drops", link.DropsByClass, len(low.got), low.sent)
	}
	// A take is 131 ms at 1 Mbit/s; the emulated queue holds 65 ms more.
	// The bound is generous for a busy machine.
	if p := p99(high.got); p > time.Second {
		t.Fatalf("high class p99 latency %v", p)
	}
	if st := b.Status(); st.LinkDropsByClass["low"]["send_queue_full"] != lowDrops() {
		t.Fatalf("status drops by class %v", st.LinkDropsByClass)
	}
	if m := metricsText(t, b); !regexp.MustCompile(`wayline_link_class_dropped_total\{class="low",[^}]*peer="x.c",reason="send_queue_full"[^}]*\} [1-9]`).MatchString(m) {
		t.Fatalf("no low-class drops in /metrics:\n%s", m)
	}
}

func metricsText(t *testing.T, b *Broker) string {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
