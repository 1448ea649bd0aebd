package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/router"
)

// Networks full of cycles: every message arrives exactly once.

// gridSpec is a 3x3 grid of brokers, every neighbour linked: a mesh full
// of cycles.
func gridSpec() netSpec {
	var s netSpec
	name := func(r, c int) string { return fmt.Sprintf("eu.g.r%d.c%d", r, c) }
	for r := range 3 {
		for c := range 3 {
			s.brokers = append(s.brokers, name(r, c))
			if c < 2 {
				s.links = append(s.links, name(r, c)+"-"+name(r, c+1)+":tcp")
			}
			if r < 2 {
				s.links = append(s.links, name(r, c)+"-"+name(r+1, c)+":tcp")
			}
		}
	}
	return s
}

// exactlyOnce subscribes on every broker, publishes from every broker, and
// checks that each subscriber got each message exactly once.
func exactlyOnce(t *testing.T, n *testNet) {
	n.waitRoutes()
	subs := map[string]chan *nats.Msg{}
	for _, a := range n.order {
		subs[a] = collect(t, n.connect(a), "mesh.>", "")
	}
	for _, a := range n.order {
		for _, h := range n.order {
			if a != h {
				n.waitInterest(a, "mesh.>", h)
			}
		}
	}
	const per = 50
	for _, a := range n.order {
		pub := n.connect(a)
		for i := range per {
			pub.Publish("mesh."+a, []byte(fmt.Sprint(i)))
		}
		pub.Flush()
	}
	want := per * len(n.order)
	defer func() {
		if t.Failed() {
			for _, a := range n.order {
				t.Logf("%s: %+v", a, n.brokers[a].Status())
			}
		}
	}()
	for _, a := range n.order {
		ch := subs[a]
		seen := map[string]bool{}
		for len(seen) < want {
			m := expectMsg(t, ch, 10*time.Second)
			k := m.Subject + "/" + string(m.Data)
			if seen[k] {
				t.Fatalf("%s got %s twice", a, k)
			}
			seen[k] = true
		}
		expectNone(t, ch, 100*time.Millisecond)
	}
}

func TestDiamondExactlyOnce(t *testing.T) {
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.c", "x.d"},
		links:   []string{"x.a-x.b:tcp", "x.a-x.c:tcp", "x.b-x.d:tcp", "x.c-x.d:tcp"},
	})
	exactlyOnce(t, n)
}

func TestGridExactlyOnce(t *testing.T) {
	exactlyOnce(t, newTestNet(t, gridSpec()))
}

// TestGridSplitCluster: with the link r0.c1-r0.c2 out of routing, the two
// sides of cluster r0 reach each other only through r1, whose brokers see
// r0 as one node and, left to themselves, hand a message back to r0 over
// their nearest link, on the wrong side. The routes name their exits from
// r1, so every message arrives once and none goes round until the hop
// limit drops it.
func TestGridSplitCluster(t *testing.T) {
	n := newTestNet(t, gridSpec())
	n.waitRoutes()
	c1 := n.brokers["eu.g.r0.c1"]
	if err := c1.SetExcluded(linkOf(t, c1, "eu.g.r0.c2").ID, true); err != nil {
		t.Fatal(err)
	}
	crossesR1 := func(from, to string) bool {
		routes, _ := n.brokers[from].RoutesFor(router.DefaultProfileName)
		for _, r := range routes {
			if r.Destination == to {
				return len(r.Exits) == 1 && strings.HasPrefix(r.Exits[0].Broker, "eu.g.r1.")
			}
		}
		return false
	}
	waitFor(t, "routes between the sides of r0 through r1", 15*time.Second, func() bool {
		return crossesR1("eu.g.r0.c2", "eu.g.r0.c0") && crossesR1("eu.g.r0.c2", "eu.g.r0.c1") &&
			crossesR1("eu.g.r0.c1", "eu.g.r0.c2") && crossesR1("eu.g.r0.c0", "eu.g.r0.c2")
	})
	before := map[string]uint64{}
	for a, b := range n.brokers {
		before[a] = b.Status().HopLimit
	}
	exactlyOnce(t, n)
	for a, b := range n.brokers {
		if d := b.Status().HopLimit - before[a]; d != 0 {
			t.Errorf("%s dropped %d messages at the hop limit", a, d)
		}
	}
}
