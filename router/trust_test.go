package router

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSplitUnitStaleSummary: when a cluster splits and its super-cluster
// with it, the brokers of one part stop hearing the other part's
// summaries, whose borders still reach them through another
// super-cluster. Here b kept x's summary of the cluster (x reaches d for
// 1), which x, cut off from d inside the cluster, could no longer
// withdraw; b sent its messages for d to x, and x, whose way to d runs
// through b, sent them back: b, o, x, o, b... for as long as the split
// lasted.
func TestSplitUnitStaleSummary(t *testing.T) {
	links := []Link{
		{ID: "xd", A: "a.s.c.x", B: "a.s.c.d", Cost: 1, Up: true},
		{ID: "bd", A: "a.s.c.b", B: "a.s.c.d", Cost: 100, Up: true},
		{ID: "xo", A: "a.s.c.x", B: "a.t.c.o", Cost: 1, Up: true},
		{ID: "bo", A: "a.s.c.b", B: "a.t.c.o", Cost: 1, Up: true},
	}
	s := simulate(links, 0)
	s.checkAll(t, "all up")
	links[0].Up = false
	s.update(links)
	s.checkAll(t, "x-d down")
}

// TestZeroCostBesideBorder: a link that costs nothing (a profile that
// prices only loss, over a clean link) joins m to the border a. a's
// summary of their cluster reaches d through m, so for m the way through
// a cost what its own did; m took it (a sorts before z), and a sent the
// messages back to m.
func TestZeroCostBesideBorder(t *testing.T) {
	links := []Link{
		{ID: "am", A: "x.c.a", B: "x.c.m", Cost: 0, Up: true},
		{ID: "mz", A: "x.c.m", B: "x.c.z", Cost: 1, Up: true},
		{ID: "zd", A: "x.c.z", B: "x.c.d", Cost: 1, Up: true},
		{ID: "ae", A: "x.c.a", B: "x.o.e", Cost: 1, Up: true},
	}
	simulate(links, 0).checkAll(t, "a-m free")
}

// TestSummaryBelowThreshold: a border announces its summary again only
// when a cost moved past the thresholds (Rules), so the summary its
// cluster holds may be a little cheaper than its way now is. b1 took b0's
// summary of their cluster (d for 101, announced before m-d went from 90
// to 99), cheaper than its own way through m (109); b0's way to d runs
// through b1, so messages for d went back and forth between the two until
// b0's next refresh.
func TestSummaryBelowThreshold(t *testing.T) {
	links := []Link{
		{ID: "01", A: "x.c.b0", B: "x.c.b1", Cost: 1, Up: true},
		{ID: "1m", A: "x.c.b1", B: "x.c.m", Cost: 10, Up: true},
		{ID: "md", A: "x.c.m", B: "x.c.d", Cost: 90, Up: true},
		{ID: "0e", A: "x.c.b0", B: "x.o.e", Cost: 1, Up: true},
	}
	s := simulate(links, 0)
	rules := DefaultRules()
	s.rules = &rules
	links[2].Cost = 99
	s.update(links)
	if sum := s.announced[annKey{"x.c.b0", "x.c"}]; fmt.Sprint(sum.Dests) != "[{x.c.b1 [1] {[] 0}} {x.c.d [101] {[] 0}} {x.c.m [11] {[] 0}}]" {
		t.Fatalf("b0's summary %v: the test needs the one from before m-d moved", sum.Dests)
	}
	for _, from := range []Address{"x.c.b0", "x.c.b1", "x.c.m", "x.o.e"} {
		if path, ok := s.walk(from, "x.c.d"); !ok {
			t.Errorf("%s -> d: %v", from, path)
		}
	}
	// Inside the cluster, over the cheapest path, at the cost it reports.
	if path, ok := s.walk("x.c.b1", "x.c.d"); fmt.Sprint(path) != "[x.c.b1 x.c.m x.c.d]" || !ok {
		t.Errorf("b1 -> d: %v", path)
	}
	if r, _ := s.tables["x.c.b1"].Lookup("x.c.d"); r.Cost != 109 {
		t.Errorf("b1's route to d: %+v", r)
	}
}

// randomDeep builds a random network of levels levels, each unit of up to
// fan parts (a broker at the last level): connected as randomHierarchy's,
// with a quarter of the links costing nothing when zero is set.
func randomDeep(rng *rand.Rand, levels, fan int, connected, zero bool) []Link {
	var links []Link
	add := func(a, b Address) {
		c := float64(1 + rng.IntN(5))
		if zero && rng.IntN(4) == 0 {
			c = 0
		}
		links = append(links, Link{ID: fmt.Sprintf("l%d", len(links)), A: a, B: b, Cost: c, Up: true})
	}
	pick := func(p []Address) Address { return p[rng.IntN(len(p))] }
	var unit func(prefix string, level int) []Address
	unit = func(prefix string, level int) []Address {
		var parts [][]Address
		for i := range 1 + rng.IntN(fan) {
			name := fmt.Sprintf("%sn%d", prefix, i)
			if level == levels {
				parts = append(parts, []Address{Address(name)})
			} else {
				parts = append(parts, unit(name+".", level+1))
			}
		}
		if connected {
			for i := 1; i < len(parts); i++ {
				add(pick(parts[rng.IntN(i)]), pick(parts[i]))
			}
		}
		for range rng.IntN(len(parts) + 1) {
			if i, j := rng.IntN(len(parts)), rng.IntN(len(parts)); i != j {
				add(pick(parts[i]), pick(parts[j]))
			}
		}
		var all []Address
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	unit("", 1)
	return links
}

// TestRandomEvents: random four-level networks, units connected inside
// or not, some links free; links fail and come back one at a time, each
// change announced over the links that are up and the summaries left to
// settle, as brokers do, over what the maps held before. After every
// change, every two brokers that links join reach each other over the
// cheapest path, at the cost the route reports; the others send nothing
// round in circles.
func TestRandomEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for round := range 120 {
		links := randomDeep(rng, 4, 3, round%2 == 0, round%3 == 0)
		if len(links) < 2 {
			continue
		}
		s := simulate(links, 0)
		if s.checkAll(t, fmt.Sprintf("round %d, all up", round)) > 0 {
			t.Fatalf("links: %v", links)
		}
		for step := range 6 {
			i := rng.IntN(len(links))
			links[i].Up = !links[i].Up
			s.update(links)
			if s.checkAll(t, fmt.Sprintf("round %d step %d, %s up %v", round, step, links[i].ID, links[i].Up)) > 0 {
				t.Fatalf("links: %v", links)
			}
		}
	}
}

// TestRandomDrift: held routes, summaries announced as Rules say (a cost
// that moved less than the thresholds is not), costs wandering up to 30%
// from their level and now and then a link failing or coming back: every
// two brokers that links join reach each other, over a path that costs
// at most a little more than the cheapest (the margin, and what
// summaries not announced again leave out).
func TestRandomDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	rules := DefaultRules()
	var st stretch
	for round := range 60 {
		links := randomDeep(rng, 3, 3, round%2 == 0, false)
		if len(links) < 2 {
			continue
		}
		level := make([]float64, len(links))
		for i := range links {
			level[i] = float64(10 + rng.IntN(90))
			links[i].Cost = level[i]
		}
		s := simulate(links, rules.Margin)
		s.rules = &rules
		for range 8 {
			for i := range links {
				links[i].Cost = level[i] * (1 + 0.3*(2*rng.Float64()-1))
			}
			if rng.IntN(3) == 0 {
				i := rng.IntN(len(links))
				links[i].Up = !links[i].Up
			}
			s.update(links)
			st.add(s)
		}
	}
	t.Logf("paths taken cost %.4f times the cheapest on average, %.4f at worst, over %d pairs; %d lost",
		st.mean(), st.worst, st.pairs, st.lost)
	if st.lost > 0 || st.worst > 1.25 {
		t.Errorf("%d pairs lost, worst stretch %v", st.lost, st.worst)
	}
}
