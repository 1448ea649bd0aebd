package broker

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/transports"
)

// diamond is the network of the order tests: x.a reaches x.d over x.b
// (the quick way) or over x.c, with the links' delays in ms.
func diamond(t *testing.T, scheme string) *testNet {
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.c", "x.d"},
		links:   []string{"x.a-x.b:" + scheme, "x.b-x.d:" + scheme, "x.a-x.c:" + scheme, "x.c-x.d:" + scheme},
		tweak: linkEmulation(map[string]transports.Emulation{
			"x.a-x.b": {Delay: 5 * time.Millisecond}, "x.b-x.d": {Delay: 20 * time.Millisecond},
			"x.a-x.c": {Delay: 20 * time.Millisecond}, "x.c-x.d": {Delay: 20 * time.Millisecond},
		}),
	})
	waitPath(t, n.brokers["x.a"], "default", "x.d", "x.a x.b x.d")
	return n
}

// streamAcross publishes numbered messages at x.a every 2 ms to a
// subscriber at x.d; change, called 300 ms in, changes the network and
// returns once x.a's routes have followed. It checks that every message
// arrived once and in order, and returns how many were sent.
func streamAcross(t *testing.T, n *testNet, change func()) uint64 {
	var mu sync.Mutex
	var got []uint64
	sub := n.connect("x.d")
	sub.Subscribe("stream", func(m *nats.Msg) {
		mu.Lock()
		got = append(got, binary.BigEndian.Uint64(m.Data))
		mu.Unlock()
	})
	sub.Flush()
	n.waitInterest("x.a", "stream", "x.d")
	pub := n.connect("x.a")
	ctx, cancel := context.WithCancel(context.Background())
	var sent uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				sent++
				pub.Publish("stream", binary.BigEndian.AppendUint64(nil, sent))
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	change()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	pub.Flush()
	waitFor(t, "the stream's last message", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1] == sent
	})
	mu.Lock()
	defer mu.Unlock()
	seen := map[uint64]int{}
	inversions := 0
	for i, s := range got {
		seen[s]++
		if i > 0 && s < got[i-1] {
			inversions++
		}
	}
	for s := uint64(1); s <= sent; s++ {
		if seen[s] != 1 {
			t.Errorf("message %d delivered %d times", s, seen[s])
		}
	}
	d := n.brokers["x.d"].Status()
	t.Logf("%d messages, %d out of order, %d routed again by x.b, %d held for order by x.d (%d waits expired)", sent, inversions, n.brokers["x.b"].Status().Rerouted, d.HeldForOrder, d.OrderWaitsExpired)
	if inversions > 0 {
		t.Errorf("%d messages out of order", inversions)
	}
	return sent
}

// TestFailoverWithoutLoss: a stream crosses a link that fails; what the
// link had not delivered is routed again over the other path, and every
// message arrives once and in order, over tcp, udp and quic links.
// (The publisher's broker often learns of the failure before the broker
// that routes the stranded messages again, so that its new messages take
// the new path first: the destination holds them for the old ones,
// order.go.)
func TestFailoverWithoutLoss(t *testing.T) {
	for _, scheme := range []string{"tcp", "udp", "quic"} {
		t.Run(scheme, func(t *testing.T) {
			n := diamond(t, scheme)
			a, b := n.brokers["x.a"], n.brokers["x.b"]
			streamAcross(t, n, func() {
				// The link from b to d fails with messages on it.
				b.SetEmulation(linkOf(t, b, "x.d").ID, transports.EmulationSpec{Down: ptr(true)})
				waitPath(t, a, "default", "x.d", "x.a x.c x.d")
			})
			if r := b.Status().Rerouted; r == 0 {
				t.Errorf("nothing was routed again")
			}
		})
	}
}

// TestOrderAcrossSlowerPath: the quick path slows down (nothing fails),
// the route moves to the other one, and the messages sent on the new path
// do not overtake those still on the slow one.
func TestOrderAcrossSlowerPath(t *testing.T) {
	n := diamond(t, "tcp")
	a, b := n.brokers["x.a"], n.brokers["x.b"]
	streamAcross(t, n, func() {
		if _, err := b.SetEmulation(linkOf(t, b, "x.d").ID, transports.EmulationSpec{Delay: ptr(transports.Quantity("150ms"))}); err != nil {
			t.Fatal(err)
		}
		waitPath(t, a, "default", "x.d", "x.a x.c x.d")
	})
	if h := n.brokers["x.d"].Status().HeldForOrder; h == 0 {
		t.Errorf("x.d held nothing: the slow path's messages were not overtaken, so the test proves nothing")
	}
}

// TestStandbyCarriesWhatNothingElseCan: the only path's middle link slows
// down so suddenly that its monitor declares it down, though its
// connection holds and delivers. With no other path, the link stays in
// standby, announced down but taken by the routes, and the stream arrives
// whole and in order, where routes without it would have had none.
func TestStandbyCarriesWhatNothingElseCan(t *testing.T) {
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.d"},
		links:   []string{"x.a-x.b", "x.b-x.d"},
		tweak:   fastProbes,
	})
	a, b := n.brokers["x.a"], n.brokers["x.b"]
	waitPath(t, a, "default", "x.d", "x.a x.b x.d")
	streamAcross(t, n, func() {
		if _, err := b.SetEmulation(linkOf(t, b, "x.d").ID, transports.EmulationSpec{Delay: ptr(transports.Quantity("400ms"))}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "x.b's link to x.d in standby", 10*time.Second, func() bool {
			return linkOf(t, b, "x.d").Standby
		})
	})
	for _, name := range []string{"x.a", "x.b"} {
		if s := n.brokers[name].Status(); s.NoRoute > 0 {
			t.Errorf("%s dropped %d messages for want of a route", name, s.NoRoute)
		}
	}
}

// linkedPair returns brokers x.a and x.b of n, the id of the link between
// them and a check that both ends' monitors have it up, once they do.
func linkedPair(t *testing.T, n *testNet) (a, b *Broker, id string, upAtBoth func() bool) {
	t.Helper()
	a, b = n.brokers["x.a"], n.brokers["x.b"]
	id = linkOf(t, a, "x.b").ID
	upAtBoth = func() bool {
		return linkOf(t, a, "x.b").Metrics.State == "up" && linkOf(t, b, "x.a").Metrics.State == "up"
	}
	waitFor(t, "the link up", 10*time.Second, upAtBoth)
	return a, b, id, upAtBoth
}

// TestEmulatedOutageEnds: a full emulated outage set at either end keeps
// a new connection from forming once the old one is given up, as a real
// outage would (the end that dials does not dial, the end that accepts
// leaves the hello unanswered); ended at either end, even while no
// connection is up to tell the peer, the link comes back up.
func TestEmulatedOutageEnds(t *testing.T) {
	for _, c := range []struct{ transport, at string }{{"tcp", "x.a"}, {"tcp", "x.b"}, {"quic", "x.a"}, {"quic", "x.b"}} { // x.a dials x.b
		at := c.at
		t.Run(c.transport+" ended at "+at, func(t *testing.T) {
			n := newTestNet(t, netSpec{brokers: []string{"x.a", "x.b"}, links: []string{"x.a-x.b:" + c.transport}, tweak: fastProbes})
			a, b, id, upAtBoth := linkedPair(t, n)
			setter := n.brokers[at]
			if _, err := setter.SetEmulation(id, transports.EmulationSpec{Down: ptr(true)}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the link declared down", 10*time.Second, func() bool {
				return linkOf(t, a, "x.b").Metrics.State == "down" && linkOf(t, b, "x.a").Metrics.State == "down"
			})
			// The silent connection is given up after DeadAfter (1 s) and
			// no other forms: x.a does not dial through its own outage,
			// and x.b does not answer through its own.
			waitFor(t, "the connection given up", 10*time.Second, func() bool {
				return linkOf(t, a, "x.b").State == "down" && !linkOf(t, a, "x.b").Standby
			})
			time.Sleep(1500 * time.Millisecond)
			if l := linkOf(t, a, "x.b"); l.Standby || l.Ups != 1 {
				t.Fatalf("a connection formed during the outage: standby %v, ups %d", l.Standby, l.Ups)
			}
			began := time.Now()
			if _, err := setter.SetEmulation(id, transports.EmulationSpec{Down: ptr(false)}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(began); d > time.Second {
				t.Errorf("ending the outage took %v", d)
			}
			waitFor(t, "the link up again", 15*time.Second, upAtBoth)
			if e := linkOf(t, a, "x.b").Emulation; e != nil && e.Down != nil && *e.Down {
				t.Errorf("x.a still emulates the outage: %v", e)
			}
		})
	}
}

// TestDeadLinkLeavesStandby: a link whose peer falls silent leaves standby
// after half the shorter of DeadAfter and RetainAge, before its
// connection is given up (3 s here) and before what it was given ages out
// of what it keeps (1 s here), and what was sent towards it is counted as
// dropped, none lost uncounted.
func TestDeadLinkLeavesStandby(t *testing.T) {
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.d"},
		links:   []string{"x.a-x.b", "x.b-x.d"},
		tweak: func(c *Config) {
			fastProbes(c)
			c.DeadAfter, c.RetainAge = 3*time.Second, time.Second
		},
	})
	a, b := n.brokers["x.a"], n.brokers["x.b"]
	waitPath(t, a, "default", "x.d", "x.a x.b x.d")
	sub := n.connect("x.d")
	var got atomic.Int64
	sub.Subscribe("dead.>", func(*nats.Msg) { got.Add(1) })
	sub.Flush()
	n.waitInterest("x.a", "dead.>", "x.d")
	if _, err := b.SetEmulation(linkOf(t, b, "x.d").ID, transports.EmulationSpec{Down: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	pub := n.connect("x.a")
	const sent = 150
	for range sent {
		pub.Publish("dead.x", []byte("x"))
		time.Sleep(10 * time.Millisecond)
	}
	pub.Flush()
	if l := linkOf(t, b, "x.d"); l.Standby {
		t.Errorf("x.b's link to x.d still in standby 1.5 s into the outage")
	}
	counted := func() int64 {
		var c int64
		for _, name := range []string{"x.a", "x.b"} {
			br := n.brokers[name]
			c += int64(br.Status().NoRoute)
			for _, l := range br.Links() {
				c += int64(l.Dropped)
			}
		}
		return c
	}
	waitFor(t, "every message delivered or counted as dropped", 10*time.Second, func() bool {
		return got.Load()+counted() >= sent
	})
	t.Logf("%d delivered, %d counted as dropped", got.Load(), counted())
	for _, name := range []string{"x.a", "x.b"} {
		for _, l := range n.brokers[name].Links() {
			if l.Unprotected > 0 {
				t.Errorf("%s: %d messages fell out of what its link to %s keeps", name, l.Unprotected, l.Peer)
			}
		}
	}
}
