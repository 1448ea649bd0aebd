package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/topology"
	"github.com/wayline/wayline/transports"
)

// TestWeightedQueueSplit: a publisher's broker in na with no member of
// its own, members of group workers on two brokers of na (in different
// clusters) and one of eu, weights {na: 90, eu: 10}. Of 10,000 messages
// each reaches exactly one member, and na gets 90% of them within 4
// points (the figure in BENCHMARKS.md comes from the log of this test);
// the publisher's broker counts them by unit. Once eu's member leaves, na
// gets every message.
func TestWeightedQueueSplit(t *testing.T) {
	p, a, b, c := "na.c1.p", "na.c1.a", "na.c2.b", "eu.c1.c"
	queues := []router.QueueGroup{{Group: "workers", Weights: map[string]float64{"na": 90, "eu": 10}}}
	n := newTestNet(t, netSpec{
		brokers: []string{p, a, b, c},
		links:   []string{a + "-" + p, b + "-" + p, c + "-" + p},
		tweak:   func(cfg *Config) { cfg.Routing.Queues = queues },
	})
	n.waitRoutes()
	members := []string{a, b, c}
	chans := map[string]chan *nats.Msg{}
	conns := map[string]*nats.Conn{}
	for _, m := range members {
		conns[m] = n.connect(m)
		chans[m] = collect(t, conns[m], "jobs", "workers")
	}
	cConn := conns[c]
	for _, m := range members {
		n.waitInterest(p, "jobs", m)
	}
	const total = 10000
	pub := n.connect(p)
	for i := range total {
		data := binary.BigEndian.AppendUint32(nil, uint32(i))
		if err := pub.Publish("jobs", data); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	seen := make([]int, total)
	got := map[string]int{}
	deadline := time.After(30 * time.Second)
	for received := 0; received < total; {
		select {
		case m := <-chans[a]:
			seen[binary.BigEndian.Uint32(m.Data)]++
			got[a]++
		case m := <-chans[b]:
			seen[binary.BigEndian.Uint32(m.Data)]++
			got[b]++
		case m := <-chans[c]:
			seen[binary.BigEndian.Uint32(m.Data)]++
			got[c]++
		case <-deadline:
			t.Fatalf("received %d of %d: %v; status of %s: %+v", received, total, got, p, n.brokers[p].Status())
		}
		received++
	}
	for _, m := range members {
		expectNone(t, chans[m], 300*time.Millisecond)
	}
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("message %d delivered %d times", i, k)
		}
	}
	na := float64(got[a]+got[b]) / total * 100
	t.Logf("split of %d messages: na %.2f%% (%s %d, %s %d), eu %.2f%% (%s %d)", total, na, a, got[a], b, got[b], 100-na, c, got[c])
	if math.Abs(na-90) > 4 {
		t.Errorf("na got %.2f%% of the messages, want 90%% within 4 points", na)
	}
	if got[a] < total/4 || got[b] < total/4 {
		t.Errorf("the na members unevenly served: %v", got)
	}
	counts := n.brokers[p].Status().QueueGroups["workers"]
	if want := (map[string]uint64{"na": uint64(got[a] + got[b]), "eu": uint64(got[c])}); fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("%s counted %v, want %v", p, counts, want)
	}
	resp, err := http.Get("http://" + n.brokers[p].HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`wayline_queue_group_messages_total{group="workers",to="eu"} %d`, got[c]); !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics of %s lacks %s", p, want)
	}

	// With eu's member gone, na takes eu's share.
	cConn.Close()
	waitFor(t, p+" to forget eu's member", 10*time.Second, func() bool {
		return slices.Index(interestHolders(n.brokers[p], "jobs"), c) < 0
	})
	const more = 500
	for range more {
		pub.Publish("jobs", []byte{0, 0, 0, 0})
	}
	pub.Flush()
	waitFor(t, "na to take every message", 10*time.Second, func() bool { return len(chans[a])+len(chans[b]) == more })
	time.Sleep(300 * time.Millisecond)
	if got := len(chans[a]) + len(chans[b]); got != more {
		t.Errorf("%d deliveries of %d messages", got, more)
	}
	if n := n.brokers[p].Status().NoMember; n != 0 {
		t.Errorf("%d messages found no member", n)
	}
}

// TestNearestQueueMember: group billing has the nearest policy; its
// messages published at na.c1.p go to the member broker whose measured
// route costs least (1 ms away, not 25 ms), and to the farther one once
// the near member leaves.
func TestNearestQueueMember(t *testing.T) {
	p, near, far := "na.c1.p", "na.c1.near", "eu.c1.far"
	emu := map[string]transports.Emulation{p + "-" + near: {Delay: ms(1)}, p + "-" + far: {Delay: ms(25)}}
	n := newTestNet(t, netSpec{
		brokers: []string{p, near, far},
		links:   []string{near + "-" + p, far + "-" + p},
		tweak: func(cfg *Config) {
			linkEmulation(emu)(cfg)
			cfg.Routing.Queues = []router.QueueGroup{{Group: "billing", Policy: router.QueueNearest}}
		},
	})
	waitFor(t, "measured routes", 30*time.Second, func() bool {
		routes, _ := n.brokers[p].RoutesFor(router.DefaultProfileName)
		for _, r := range routes {
			if r.Cost >= unmeasuredLatencyMs {
				return false
			}
		}
		return len(routes) == 2
	})
	nearConn := n.connect(near)
	nearCh := collect(t, nearConn, "bill", "billing")
	farCh := collect(t, n.connect(far), "bill", "billing")
	n.waitInterest(p, "bill", near)
	n.waitInterest(p, "bill", far)
	pub := n.connect(p)
	const per = 200
	for range per {
		pub.Publish("bill", []byte("x"))
	}
	pub.Flush()
	waitFor(t, "the near member's messages", 10*time.Second, func() bool { return len(nearCh) == per })
	expectNone(t, farCh, 300*time.Millisecond)
	if got := n.brokers[p].QueueCounts()["billing"][near]; got != per {
		t.Errorf("%s counted %d messages to %s, want %d", p, got, near, per)
	}

	nearConn.Close()
	waitFor(t, p+" to forget the near member", 10*time.Second, func() bool {
		return slices.Index(interestHolders(n.brokers[p], "bill"), near) < 0
	})
	for range per {
		pub.Publish("bill", []byte("y"))
	}
	pub.Flush()
	waitFor(t, "the far member's messages", 10*time.Second, func() bool { return len(farCh) == per })
}

// TestQueuesFromTopology: routing.queues of a topology file reach the
// broker's configuration.
func TestQueuesFromTopology(t *testing.T) {
	f, err := topology.Parse([]byte(`brokers: [{address: na.c1.a, client: 127.0.0.1:4222, http: 127.0.0.1:8222}]
routing: {queues: [{group: workers, weights: {na: 90, eu: 10}}, {group: billing, policy: nearest}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := FromTopology(f, "na.c1.a")
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.Routing.Queues
	if len(q) != 2 || q[0].Weights["eu"] != 10 || q[1].Policy != router.QueueNearest {
		t.Fatalf("queues %+v", q)
	}
}

// TestLoadQueuePolicy: group render has the load policy, with one member
// on na.c1.a and one on na.c1.b. A client at a publishes 300 messages a
// second that a's own member takes (its server hands them over itself);
// na.c1.p publishes 600 a second, which the policy shares. Rates per
// member meet when p sends a quarter of its messages to a: each member
// then gets 450 a second, where the default (half each) gives a 600 and b
// 300. Within a few seconds the two members' rates are within 12% of
// each other.
func TestLoadQueuePolicy(t *testing.T) {
	p, a, b := "na.c1.p", "na.c1.a", "na.c1.b"
	n := newTestNet(t, netSpec{
		brokers: []string{p, a, b},
		links:   []string{a + "-" + p, b + "-" + p},
		tweak: func(cfg *Config) {
			cfg.Routing.Queues = []router.QueueGroup{{Group: "render", Policy: router.QueueLoad}}
		},
	})
	n.waitRoutes()
	var counting atomic.Bool
	var got [2][2]atomic.Int64 // [member a, b][from x at a, from p]
	for i, m := range []string{a, b} {
		if _, err := n.connect(m).QueueSubscribe("render", "render", func(msg *nats.Msg) {
			if counting.Load() {
				got[i][int(msg.Data[0]-'x')&1].Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	n.waitInterest(p, "render", a)
	n.waitInterest(p, "render", b)
	x, pub := n.connect(a), n.connect(p)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		<-tick.C
		if time.Since(start) > 6*time.Second {
			counting.Store(true)
		}
		for range 3 {
			x.Publish("render", []byte("x"))
		}
		for range 6 {
			pub.Publish("render", []byte("y")) // 'y'-'x' = 1: from p
		}
	}
	x.Flush()
	pub.Flush()
	time.Sleep(200 * time.Millisecond)
	counting.Store(false)
	ta, tb := got[0][0].Load()+got[0][1].Load(), got[1][0].Load()+got[1][1].Load()
	fromP := got[0][1].Load() + got[1][1].Load()
	t.Logf("last 4 s: a received %d (%d from p), b %d; b's share of p's messages %.2f; weights at p %v",
		ta, got[0][1].Load(), tb, float64(got[1][1].Load())/float64(fromP), *n.brokers[p].qload.weights.Load())
	if got[1][0].Load() != 0 {
		t.Errorf("b received %d messages published at a, which a's member should take", got[1][0].Load())
	}
	if d := math.Abs(float64(ta-tb)) / float64(ta+tb); d > 0.12 {
		t.Errorf("members' rates differ by %.0f%% of their sum: a %d, b %d", d*100, ta, tb)
	}
}
