package router

import (
	"fmt"
	"math"
	"sort"
	"testing"
	"time"
)

// bnmOf is broker self's map once every announcement has travelled.
func bnmOf(self Address, links []Link) *BNM {
	return simulateOnly(links, 0, []Address{self}).bnms[self]
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
	s := simulateOnly(links, 0, []Address{"na.c1.a", "na.c2.y"})
	tab := s.tables["na.c1.a"]
	var dsts []Address
	for _, r := range tab.Routes() {
		dsts = append(dsts, r.Destination)
	}
	if fmt.Sprint(dsts) != "[eu.k.c1.a eu.k.c1.b na.c1.a na.c1.b na.c2.x na.c2.y na.c2.z]" {
		t.Fatalf("brokers reached from na.c1.a: %v", dsts)
	}
	r, _ := tab.Lookup("eu.k.c1.b")
	// na.c2 is crossed from x to z (a summary arc of x), eu entered at
	// eu.k.c1.a; the exits are the links leaving na.c2 at z.
	if fmt.Sprint(r.Path) != "[na.c1.a na.c1.b na.c2.x na.c2.z eu.k.c1.a eu.k.c1.b]" || r.NextHop != "na.c1.b" || r.Link != "ab" || r.Cost != 49 {
		t.Fatalf("route to eu %+v", r)
	}
	if fmt.Sprint(r.Exits) != "[{na.c2.z ze}]" {
		t.Fatalf("exits %v", r.Exits)
	}
	// The links inside na.c2 and inside eu are not in na.c1.a's map: it
	// knows those units from their borders' summaries.
	m := s.bnms["na.c1.a"]
	for k := range m.ann {
		if k.unit == "na.c2" || k.unit.Within("eu") {
			t.Errorf("na.c1.a hears %v", k)
		}
	}
	if got := fmt.Sprint(m.Origins()); got != "[eu.k.c1.a na.c1.a na.c1.b na.c2.x na.c2.z]" {
		t.Errorf("na.c1.a hears from %s", got)
	}
	// Inside na.c2, y sees its cluster in full.
	r, _ = s.tables["na.c2.y"].Lookup("na.c2.z")
	if r.NextHop != "na.c2.z" {
		t.Fatalf("y to z %+v", r)
	}
}

func TestBNMNeedsBothEnds(t *testing.T) {
	m := NewBNM("x.a", 1, 0)
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

// syntheticMap is the map of broker s0.c0.k0.b0 of the 10x10x10x10
// network once every announcement has travelled, and one announcement
// of its cluster to replace.
func syntheticMap() (*BNM, Announcement) {
	links := synthetic(10)
	self := Address("s0.c0.k0.b0")
	m := simulateOnly(links, DefaultRules().Margin, []Address{self}).bnms[self]
	for k, ls := range m.ann {
		if k.origin != self && k.unit == self.Cluster() {
			return m, Announcement{Origin: k.origin, Unit: k.unit, Links: ls}
		}
	}
	panic("no announcement of the cluster")
}

// BenchmarkBNMUpdate times what one accepted cost update costs a broker of
// a 10x10x10x10 network (10,000 brokers): replacing one announcement and
// computing fresh routes for one profile. It reports what the broker
// hears (announcements of links, summaries of units, and the brokers the
// summaries list) and the size of its map.
func BenchmarkBNMUpdate(b *testing.B) {
	m, upd := syntheticMap()
	entries := 0
	for _, s := range m.sum {
		entries += len(s.Dests)
	}
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
	b.ReportMetric(float64(len(m.ann)), "link-announcements-heard")
	b.ReportMetric(float64(len(m.sum)), "summaries-heard")
	b.ReportMetric(float64(entries), "summary-entries")
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
	m := simulateOnly(links, DefaultRules().Margin, []Address{self}).bnms[self]
	tab := m.Tables()[0]
	if n := len(tab.Routes()); n != 10000 {
		t.Errorf("%d brokers reachable, want 10000", n)
	}
	whole := ShortestPaths(NewGraph(links), self)
	for _, a := range []Address{"s9.c9.k9.b9", "s0.c5.k3.b2", "s0.c0.k7.b1", "s0.c0.k0.b6"} {
		r, ok := tab.Lookup(a)
		best, _ := whole.Lookup(a)
		if !ok || math.Abs(r.Cost-best.Cost) > 1e-9 {
			t.Errorf("%s: route %v at %v, cheapest %v", a, r.Path, r.Cost, best.Cost)
		}
	}
	if b := m.Bytes(); b > 10<<20 {
		t.Fatalf("BNM holds %d bytes", b)
	}
	start := time.Now()
	for range 20 {
		m.g = nil
		m.Tables()
	}
	t.Logf("%d links in the network, %d routes, %d bytes, %v per recomputation", len(links), len(tab.Routes()), m.Bytes(), time.Since(start)/20)
}

// TestBNMRoutesLeaveTheirUnit: a route leaves the unit it serves, and
// comes back into it, when that is cheaper, and only then.
func TestBNMRoutesLeaveTheirUnit(t *testing.T) {
	links := []Link{
		{ID: "ab", A: "g.r1.a", B: "g.r1.b", Cost: 5, Up: true},
		{ID: "bc", A: "g.r1.b", B: "g.r1.c", Cost: 5, Up: true},
		{ID: "a0", A: "g.r1.a", B: "g.r0.a", Cost: 1, Up: true},
		{ID: "c0", A: "g.r1.c", B: "g.r0.c", Cost: 1, Up: true},
		{ID: "r0", A: "g.r0.a", B: "g.r0.c", Cost: 50, Up: true},
	}
	for _, tc := range []struct {
		bc, r0 float64
		want   string
		cost   float64
	}{
		{5, 50, "[g.r1.a g.r1.b g.r1.c]", 10},
		// A link inside the cluster just came back, priced 1000 until
		// measured: the way through the neighbour is cheaper.
		{1000, 5, "[g.r1.a g.r0.a g.r0.c g.r1.c]", 7},
		// Cut inside: the detour is the only way.
		{math.Inf(1), 50, "[g.r1.a g.r0.a g.r0.c g.r1.c]", 52},
	} {
		links[1].Cost, links[1].Up = tc.bc, !math.IsInf(tc.bc, 1)
		links[4].Cost = tc.r0
		s := simulate(links, 0)
		r, ok := s.tables["g.r1.a"].Lookup("g.r1.c")
		if !ok || fmt.Sprint(r.Path) != tc.want || r.Cost != tc.cost {
			t.Errorf("b-c at %v, r0 at %v: route %v at %v, want %s at %v", tc.bc, tc.r0, r.Path, r.Cost, tc.want, tc.cost)
		}
		s.checkAll(t, fmt.Sprintf("b-c at %v", tc.bc))
	}
}

// TestBNMEntersWhereCheapest is the case of a unit whose crossing a
// simple node would price as free: from w, z is reached over the direct
// 30 ms link, not through x (29 ms), which has no way to z inside its
// cluster and would send it back through w (88 ms in all).
func TestBNMEntersWhereCheapest(t *testing.T) {
	links := []Link{
		{ID: "xy", A: "na.a.c1.x", B: "na.a.c1.y", Cost: 1, Up: true},
		{ID: "wx", A: "na.b.c1.w", B: "na.a.c1.x", Cost: 29, Up: true},
		{ID: "wz", A: "na.b.c1.w", B: "na.a.c1.z", Cost: 30, Up: true},
	}
	s := simulate(links, 0)
	r, ok := s.tables["na.b.c1.w"].Lookup("na.a.c1.z")
	if !ok || fmt.Sprint(r.Path) != "[na.b.c1.w na.a.c1.z]" || r.Cost != 30 || r.Link != "wz" {
		t.Fatalf("w to z: %+v", r)
	}
	// z has no link inside its cluster: it reaches y through w and x, from
	// x's summary of the cluster.
	r, ok = s.tables["na.a.c1.z"].Lookup("na.a.c1.y")
	if !ok || fmt.Sprint(r.Path) != "[na.a.c1.z na.b.c1.w na.a.c1.x na.a.c1.y]" || r.Cost != 60 {
		t.Fatalf("z to y: %+v", r)
	}
	s.checkAll(t, "example")
}

// TestBNMStandby: a link that one end has in standby carries routes only
// where no link that is up reaches, at StandbyCost, and is neither up nor
// in standby when its other end has it down.
func TestBNMStandby(t *testing.T) {
	inf := math.Inf(1)
	m := NewBNM("x.c.a", 1, 0)
	set := func(origin Address, links ...AnnouncedLink) {
		m.Set(Announcement{Origin: origin, Unit: "x.c", Links: links})
	}
	set("x.c.a", AnnouncedLink{ID: "ab", Peer: "x.c.b", Costs: []float64{1}})
	set("x.c.b", AnnouncedLink{ID: "ab", Peer: "x.c.a", Costs: []float64{1}},
		AnnouncedLink{ID: "bc", Peer: "x.c.c", Costs: []float64{inf}, Standby: true})
	set("x.c.c", AnnouncedLink{ID: "bc", Peer: "x.c.b", Costs: []float64{2}})
	if m.LinkUp("bc") || !m.LinkStandby("bc") || m.LinkStandby("ab") || !m.LinkUp("ab") {
		t.Fatalf("bc up %v standby %v; ab up %v standby %v", m.LinkUp("bc"), m.LinkStandby("bc"), m.LinkUp("ab"), m.LinkStandby("ab"))
	}
	r, ok := m.Tables()[0].Lookup("x.c.c")
	if !ok || fmt.Sprint(r.Path) != "[x.c.a x.c.b x.c.c]" || r.Cost != 1+StandbyCost {
		t.Fatalf("route over the link in standby: %+v %v", r, ok)
	}
	// Another way, however dear, wins over the link in standby.
	set("x.c.a", AnnouncedLink{ID: "ab", Peer: "x.c.b", Costs: []float64{1}},
		AnnouncedLink{ID: "ad", Peer: "x.c.d", Costs: []float64{500}})
	set("x.c.d", AnnouncedLink{ID: "ad", Peer: "x.c.a", Costs: []float64{500}},
		AnnouncedLink{ID: "dc", Peer: "x.c.c", Costs: []float64{500}})
	set("x.c.c", AnnouncedLink{ID: "bc", Peer: "x.c.b", Costs: []float64{2}},
		AnnouncedLink{ID: "dc", Peer: "x.c.d", Costs: []float64{500}})
	r, ok = m.Tables()[0].Lookup("x.c.c")
	if !ok || fmt.Sprint(r.Path) != "[x.c.a x.c.d x.c.c]" || r.Cost != 1000 {
		t.Fatalf("route with another way: %+v %v", r, ok)
	}
	// Down at the other end (closed, not in standby): no route over it.
	set("x.c.c", AnnouncedLink{ID: "bc", Peer: "x.c.b", Costs: []float64{inf}})
	if m.LinkStandby("bc") || m.LinkUp("bc") {
		t.Fatal("bc down at one end is still offered")
	}
	set("x.c.a", AnnouncedLink{ID: "ab", Peer: "x.c.b", Costs: []float64{1}})
	if r, ok := m.Tables()[0].Lookup("x.c.c"); ok {
		t.Fatalf("route over a link down at one end: %+v", r)
	}
}
