package router

import (
	"fmt"
	"math"
	"sort"
	"testing"
	"time"
)

// announce builds every broker's announcements from a list of links,
// each with one cost, scoped by CommonUnit.
func announce(links []Link) []Announcement {
	type key struct{ o, u Address }
	m := map[key][]AnnouncedLink{}
	for _, l := range links {
		c := l.Cost
		if !l.Up {
			c = math.Inf(1)
		}
		u := CommonUnit(l.A, l.B)
		m[key{l.A, u}] = append(m[key{l.A, u}], AnnouncedLink{ID: l.ID, Peer: l.B, Costs: []float64{c}})
		m[key{l.B, u}] = append(m[key{l.B, u}], AnnouncedLink{ID: l.ID, Peer: l.A, Costs: []float64{c}})
	}
	var out []Announcement
	for k, v := range m {
		out = append(out, Announcement{Origin: k.o, Unit: k.u, Links: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin+out[i].Unit < out[j].Origin+out[j].Unit })
	return out
}

// reaching keeps the announcements that reach self: those of the units
// self belongs to.
func reaching(self Address, all []Announcement) []Announcement {
	var out []Announcement
	for _, a := range all {
		if a.Unit == "" || self.Within(a.Unit) {
			out = append(out, a)
		}
	}
	return out
}

func bnmOf(self Address, links []Link) *BNM {
	m := NewBNM(self, 1)
	for _, a := range reaching(self, announce(links)) {
		m.Set(a)
	}
	return m
}

func TestBNMAcceptanceTopology(t *testing.T) {
	links := []Link{
		{ID: "12", A: "lab.x.b1", B: "lab.x.b2", Cost: 44.5, Up: true},
		{ID: "24", A: "lab.x.b2", B: "lab.x.b4", Cost: 1.6, Up: true},
		{ID: "13", A: "lab.x.b1", B: "lab.x.b3", Cost: 41.2, Up: true},
		{ID: "43", A: "lab.x.b4", B: "lab.x.b3", Cost: 1.4, Up: true},
	}
	r, ok := bnmOf("lab.x.b2", links).Tables()[0].Lookup("lab.x.b3")
	if !ok || fmt.Sprint(r.Path) != "[lab.x.b2 lab.x.b4 lab.x.b3]" || math.Abs(r.Cost-3.0) > 1e-9 {
		t.Fatalf("route %+v", r)
	}
	links[3].Up = false
	r, ok = bnmOf("lab.x.b2", links).Tables()[0].Lookup("lab.x.b3")
	if !ok || fmt.Sprint(r.Path) != "[lab.x.b2 lab.x.b1 lab.x.b3]" || math.Abs(r.Cost-85.7) > 1e-9 {
		t.Fatalf("route with 4-3 down %+v", r)
	}
}

func TestBNMHierarchy(t *testing.T) {
	links := []Link{
		// cluster na.c1: a - b
		{ID: "ab", A: "na.c1.a", B: "na.c1.b", Cost: 1, Up: true},
		// cluster na.c2: x - y - z, reached from na.c1.b
		{ID: "xy", A: "na.c2.x", B: "na.c2.y", Cost: 1, Up: true},
		{ID: "yz", A: "na.c2.y", B: "na.c2.z", Cost: 1, Up: true},
		{ID: "bx", A: "na.c1.b", B: "na.c2.x", Cost: 5, Up: true},
		// eu, reached from na.c2.z
		{ID: "ze", A: "na.c2.z", B: "eu.k.c1.a", Cost: 40, Up: true},
		{ID: "ee", A: "eu.k.c1.a", B: "eu.k.c1.b", Cost: 1, Up: true},
	}
	m := bnmOf("na.c1.a", links)
	tab := m.Tables()[0]
	var nodes []Address
	for _, r := range tab.Routes() {
		nodes = append(nodes, r.Destination)
	}
	if fmt.Sprint(nodes) != "[eu na.c1.a na.c1.b na.c2]" {
		t.Fatalf("nodes seen from na.c1.a: %v", nodes)
	}
	r, _ := tab.Lookup(Rep("na.c1.a", "eu.k.c1.b"))
	if fmt.Sprint(r.Path) != "[na.c1.a na.c1.b na.c2 eu]" || r.NextHop != "na.c1.b" || r.Link != "ab" || r.Cost != 46 {
		t.Fatalf("route to eu %+v", r)
	}
	// The links inside na.c2 and inside eu are not in na.c1.a's map.
	if got := len(reaching("na.c1.a", announce(links))); got >= len(announce(links)) {
		t.Fatalf("na.c1.a hears all %d announcements", got)
	}
	// Inside na.c2, y sees its cluster in full.
	r, _ = bnmOf("na.c2.y", links).Tables()[0].Lookup("na.c2.z")
	if r.NextHop != "na.c2.z" {
		t.Fatalf("y to z %+v", r)
	}
}

func TestBNMNeedsBothEnds(t *testing.T) {
	m := NewBNM("x.a", 1)
	m.Set(Announcement{Origin: "x.a", Unit: "x", Links: []AnnouncedLink{{ID: "l", Peer: "x.b", Costs: []float64{1}}}})
	if _, ok := m.Tables()[0].Lookup("x.b"); ok {
		t.Fatal("a link announced by one end carries routes")
	}
	m.Set(Announcement{Origin: "x.b", Unit: "x", Links: []AnnouncedLink{{ID: "l", Peer: "x.a", Costs: []float64{3}}}})
	r, ok := m.Tables()[0].Lookup("x.b")
	if !ok || r.Cost != 3 {
		t.Fatalf("route %+v, want the larger of the two prices", r)
	}
	m.Forget("x.b")
	if _, ok := m.Tables()[0].Lookup("x.b"); ok {
		t.Fatal("forgotten broker still reachable")
	}
}

// synthetic builds a hierarchical network of fan^4 brokers: each cluster a
// ring with two chords, and at every level above, the units of a parent
// joined in a ring with a chord by gateway links. Costs vary with the link.
func synthetic(fan int) []Link {
	var links []Link
	addr := func(i ...int) Address {
		return Address(fmt.Sprintf("s%d.c%d.k%d.b%d", i[0], i[1], i[2], i[3]))
	}
	cost := func(n int) float64 { return float64(1 + n%17) }
	add := func(a, b Address) {
		links = append(links, Link{ID: fmt.Sprintf("%s-%s", a, b), A: a, B: b, Cost: cost(len(links)), Up: true})
	}
	ring := func(n int, node func(i, side int) Address) {
		for i := 0; i < n; i++ {
			add(node(i, 0), node((i+1)%n, 1))
		}
		add(node(0, 0), node(n/2, 1))
		add(node(n/4, 0), node(3*n/4, 1))
	}
	for s := 0; s < fan; s++ {
		for c := 0; c < fan; c++ {
			for k := 0; k < fan; k++ {
				ring(fan, func(i, _ int) Address { return addr(s, c, k, i) })
			}
			// clusters of super-cluster (s, c), gateways on brokers 0 and 1
			ring(fan, func(i, side int) Address { return addr(s, c, i, side) })
		}
		ring(fan, func(i, side int) Address { return addr(s, i, 0, 2+side) })
	}
	ring(fan, func(i, side int) Address { return addr(i, 0, 1, 4+side) })
	return links
}

// BenchmarkBNMUpdate times what one accepted cost update costs a broker of
// a 10x10x10x10 network (10,000 brokers): replacing one announcement and
// computing fresh routes for one profile.
func BenchmarkBNMUpdate(b *testing.B) {
	links := synthetic(10)
	self := Address("s0.c0.k0.b0")
	all := announce(links)
	mine := reaching(self, all)
	m := NewBNM(self, 1)
	for _, a := range mine {
		m.Set(a)
	}
	upd := mine[len(mine)/2]
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		upd.Links[0].Costs[0] = float64(1 + i%7)
		m.Set(upd)
		_ = m.Tables()
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(all)), "announcements")
	b.ReportMetric(float64(len(mine)), "heard")
	b.ReportMetric(float64(m.Bytes()), "bnm-bytes")
}

// BenchmarkFlat6510 is the seed era's case: shortest paths over a flat
// graph of 6,510 nodes (the Berkeley overlay took 50 ms for it), here a
// ring of rings with chords, each node of degree about 3.
func BenchmarkFlat6510(b *testing.B) {
	const n = 6510
	var links []Link
	node := func(i int) Address { return Address(fmt.Sprintf("flat.n%d", i%n)) }
	for i := 0; i < n; i++ {
		links = append(links, Link{ID: fmt.Sprintf("r%d", i), A: node(i), B: node(i + 1), Cost: float64(1 + i%13), Up: true})
		if i%2 == 0 {
			links = append(links, Link{ID: fmt.Sprintf("c%d", i), A: node(i), B: node(i + 97), Cost: float64(1 + i%29), Up: true})
		}
	}
	g := NewGraph(links)
	b.ResetTimer()
	for b.Loop() {
		ShortestPaths(g, "flat.n0")
	}
}

func TestBNMSyntheticScale(t *testing.T) {
	links := synthetic(10)
	if n := len(links); n < 10000 {
		t.Fatalf("only %d links", n)
	}
	self := Address("s0.c0.k0.b0")
	m := bnmOf(self, links)
	tab := m.Tables()[0]
	// Every broker is reachable through the node that stands for it.
	for _, a := range []Address{"s9.c9.k9.b9", "s0.c5.k3.b2", "s0.c0.k7.b1", "s0.c0.k0.b6"} {
		if _, ok := tab.Lookup(Rep(self, a)); !ok {
			t.Errorf("%s (as %s) unreachable", a, Rep(self, a))
		}
	}
	if b := m.Bytes(); b > 10<<20 {
		t.Fatalf("BNM holds %d bytes", b)
	}
	start := time.Now()
	for range 100 {
		m.Tables()
	}
	t.Logf("%d links in the network, %d routes, %d bytes, %v per recomputation", len(links), len(tab.Routes()), m.Bytes(), time.Since(start)/100)
}

// TestBNMRoutesStayInTheirUnit: a broker of one's own cluster is reached
// through the cluster even when a neighbour unit, seen as one node, looks
// like a shortcut; the neighbour would route the message straight back.
func TestBNMRoutesStayInTheirUnit(t *testing.T) {
	links := []Link{
		{ID: "ab", A: "g.r1.a", B: "g.r1.b", Cost: 5, Up: true},
		{ID: "bc", A: "g.r1.b", B: "g.r1.c", Cost: 5, Up: true},
		{ID: "a0", A: "g.r1.a", B: "g.r0.a", Cost: 1, Up: true},
		{ID: "c0", A: "g.r1.c", B: "g.r0.c", Cost: 1, Up: true},
		{ID: "r0", A: "g.r0.a", B: "g.r0.c", Cost: 50, Up: true},
	}
	r, _ := bnmOf("g.r1.a", links).Tables()[0].Lookup("g.r1.c")
	if fmt.Sprint(r.Path) != "[g.r1.a g.r1.b g.r1.c]" {
		t.Fatalf("route %v leaves the cluster", r.Path)
	}
	// With the cluster cut, the detour through the neighbour is the only
	// way, and it is taken.
	links[1].Up = false
	r, ok := bnmOf("g.r1.a", links).Tables()[0].Lookup("g.r1.c")
	if !ok || fmt.Sprint(r.Path) != "[g.r1.a g.r0 g.r1.c]" {
		t.Fatalf("route %v", r.Path)
	}
}
