package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// clusterGrid is rows clusters eu.g.r<i>, each a chain of cols brokers c<j>, with
// a link between rows at every column.
func clusterGrid(rows, cols int) []Link {
	name := func(r, c int) Address { return Address(fmt.Sprintf("eu.g.r%d.c%d", r, c)) }
	var links []Link
	for r := range rows {
		for c := range cols {
			if c+1 < cols {
				links = append(links, Link{ID: fmt.Sprintf("h%d%d", r, c), A: name(r, c), B: name(r, c+1), Cost: 1, Up: true})
			}
			if r+1 < rows {
				links = append(links, Link{ID: fmt.Sprintf("v%d%d", r, c), A: name(r, c), B: name(r+1, c), Cost: 1, Up: true})
			}
		}
	}
	return links
}

// TestSplitCluster: one link down inside a cluster leaves its two sides
// reachable only through the neighbour clusters. Brokers there see the
// split cluster as one node, so without the route's re-entry point a
// message goes back and forth between the two clusters (r0.c2 -> r1.c2 ->
// r0.c2 ...) until its hops run out.
func TestSplitCluster(t *testing.T) {
	for i, l := range clusterGrid(3, 3) {
		if !strings.HasPrefix(l.ID, "h") {
			continue
		}
		links := clusterGrid(3, 3)
		links[i].Up = false
		simulate(links, 0).checkAll(t, l.ID+" down")
	}
	links := clusterGrid(3, 3)
	simulate(links, 0).checkAll(t, "all up")
	for i := range links {
		if links[i].ID == "h01" {
			links[i].Up = false
		}
	}
	s := simulate(links, 0)
	r, _ := s.tables["eu.g.r0.c2"].Lookup("eu.g.r0.c0")
	if len(r.Exits) == 0 || !strings.HasPrefix(string(r.Exits[0].Broker), "eu.g.r1.") {
		t.Errorf("r0.c2's route to r0.c0 crosses r1 but names no exit from it: %+v", r)
	}
	if r, _ := s.tables["eu.g.r0.c2"].Lookup("eu.g.r1.c2"); len(r.Exits) != 0 {
		t.Errorf("a route that crosses no unit names exits: %+v", r)
	}
}

// TestSplitSuperCluster: the same one level up. Super-cluster eu.a holds
// clusters x and y, joined by one link; when it fails, x and y reach each
// other only through super-cluster eu.b, whose brokers see eu.a as one node.
func TestSplitSuperCluster(t *testing.T) {
	links := []Link{
		{ID: "ax", A: "eu.a.x.1", B: "eu.a.x.2", Cost: 1, Up: true},
		{ID: "ay", A: "eu.a.y.1", B: "eu.a.y.2", Cost: 1, Up: true},
		{ID: "axy", A: "eu.a.x.2", B: "eu.a.y.1", Cost: 1, Up: false},
		{ID: "bp", A: "eu.b.p.1", B: "eu.b.p.2", Cost: 1, Up: true},
		{ID: "bq", A: "eu.b.q.1", B: "eu.b.q.2", Cost: 1, Up: true},
		{ID: "bpq", A: "eu.b.p.2", B: "eu.b.q.1", Cost: 1, Up: true},
		// eu.b's clusters reach x by their near ends, y by their far ends.
		{ID: "px", A: "eu.b.p.1", B: "eu.a.x.1", Cost: 1, Up: true},
		{ID: "qx", A: "eu.b.q.1", B: "eu.a.x.2", Cost: 1, Up: true},
		{ID: "qy", A: "eu.b.q.2", B: "eu.a.y.2", Cost: 5, Up: true},
	}
	s := simulate(links, 0)
	if s.checkAll(t, "axy down") == 0 {
		path, _ := s.walk("eu.a.x.1", "eu.a.y.1")
		want := "[eu.a.x.1 eu.a.x.2 eu.b.q.1 eu.b.q.2 eu.a.y.2 eu.a.y.1]"
		if fmt.Sprint(path) != want {
			t.Errorf("x.1 -> y.1: %v, want %s", path, want)
		}
	}
}

// TestSplitRandom follows messages between every two brokers of random
// three-level networks, with all links up or one down, units connected
// inside or not: every broker that can reach another gets there over the
// cheapest path, at the cost its route reports.
func TestSplitRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		links := randomHierarchy(rng, round%3 != 0)
		if len(links) == 0 {
			continue // a single broker
		}
		what := fmt.Sprintf("round %d, all up", round)
		if round%2 == 1 {
			down := rng.IntN(len(links))
			links[down].Up = false
			what = fmt.Sprintf("round %d, %s down", round, links[down].ID)
		}
		if simulate(links, 0).checkAll(t, what) > 0 {
			t.Logf("links: %v", links)
			return
		}
	}
}

// TestSplitRandomFailures: the same with two or three links down at once,
// which can split several units on one route.
func TestSplitRandomFailures(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for round := range 300 {
		links := randomHierarchy(rng, round%2 == 0)
		if len(links) == 0 {
			continue
		}
		for range 2 + rng.IntN(2) {
			links[rng.IntN(len(links))].Up = false
		}
		if simulate(links, 0).checkAll(t, fmt.Sprintf("round %d", round)) > 0 {
			t.Logf("links: %v", links)
			return
		}
	}
}

// randomHierarchy builds a random network of up to three super-clusters
// of up to three clusters of up to four brokers. With connected set, each
// unit is connected inside (a random tree of its parts, joined by links
// between random brokers) and random links are added at every level;
// without, every unit's inner links are drawn at random, so that units
// are often in pieces that only links through other units join.
func randomHierarchy(rng *rand.Rand, connected bool) []Link {
	var links []Link
	add := func(a, b Address) {
		links = append(links, Link{ID: fmt.Sprintf("l%d", len(links)), A: a, B: b, Cost: float64(1 + rng.IntN(5)), Up: true})
	}
	// join joins parts (each a list of brokers) into one, and adds a few
	// more links between them.
	join := func(parts [][]Address) []Address {
		pick := func(p []Address) Address { return p[rng.IntN(len(p))] }
		if connected {
			for i := 1; i < len(parts); i++ {
				add(pick(parts[rng.IntN(i)]), pick(parts[i]))
			}
		}
		for range rng.IntN(len(parts) + 1) {
			i, j := rng.IntN(len(parts)), rng.IntN(len(parts))
			if i != j {
				add(pick(parts[i]), pick(parts[j]))
			}
		}
		var all []Address
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	var supers [][]Address
	for s := range 1 + rng.IntN(3) {
		var clusters [][]Address
		for c := range 1 + rng.IntN(3) {
			var brokers [][]Address
			for b := range 1 + rng.IntN(4) {
				brokers = append(brokers, []Address{Address(fmt.Sprintf("s%d.c%d.b%d", s, c, b))})
			}
			clusters = append(clusters, join(brokers))
		}
		supers = append(supers, join(clusters))
	}
	join(supers)
	return links
}

// TestRouteStretch: over random healthy networks, units connected inside
// or not, every message takes a path that costs what the cheapest path
// over the whole network costs.
func TestRouteStretch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var st stretch
	for round := range 200 {
		links := randomHierarchy(rng, round%2 == 0)
		if len(links) == 0 {
			continue
		}
		st.add(simulate(links, 0))
	}
	t.Logf("paths taken cost %.4f times the cheapest on average, %.4f at worst, over %d pairs; %d lost, %d with a route cost other than the path's",
		st.mean(), st.worst, st.pairs, st.lost, st.misreported)
	if st.worst > 1+1e-9 || st.lost > 0 || st.misreported > 0 {
		t.Errorf("worst stretch %v, %d pairs lost, %d misreported", st.worst, st.lost, st.misreported)
	}
}

// stretch gathers what the paths messages take cost against the cheapest.
type stretch struct {
	pairs, lost, misreported int
	sum, worst               float64
}

// add follows a message between every two connected brokers of s.
func (st *stretch) add(s *sim) {
	comp := s.connected()
	whole := NewGraph(s.links)
	brokers := brokersOf(s.links)
	for _, a := range brokers {
		best := ShortestPaths(whole, a)
		for _, b := range brokers {
			if a == b || comp[a] != comp[b] {
				continue
			}
			st.pairs++
			_, ids, ok := s.follow(a, b)
			if !ok {
				st.lost++
				continue
			}
			r, _ := best.Lookup(b)
			taken := s.cost(ids)
			ratio := taken / r.Cost
			st.sum += ratio
			st.worst = max(st.worst, ratio)
			if own, _ := s.tables[a].Lookup(b); math.Abs(own.Cost-taken) > 1e-9 {
				st.misreported++
			}
		}
	}
}

func (st *stretch) mean() float64 { return st.sum / float64(max(st.pairs-st.lost, 1)) }

// BenchmarkPathsThroughUnits follows messages between every two connected
// brokers of random three-level networks (up to 3 super-clusters of 3
// clusters of 4 brokers), whose units are connected inside or drawn at
// random, with 0, 1 and 2-3 links down, and of the network where a unit
// seen as a free node is entered at the wrong broker (see
// TestBNMEntersWhereCheapest). It reports, for each, the mean and worst
// stretch (what the path taken costs over the cheapest path in the whole
// network), the share of pairs whose messages never arrive, and the pairs
// whose route reports a cost other than its path's.
func BenchmarkPathsThroughUnits(b *testing.B) {
	example := []Link{
		{ID: "xy", A: "na.a.c1.x", B: "na.a.c1.y", Cost: 1, Up: true},
		{ID: "wx", A: "na.b.c1.w", B: "na.a.c1.x", Cost: 29, Up: true},
		{ID: "wz", A: "na.b.c1.w", B: "na.a.c1.z", Cost: 30, Up: true},
	}
	for _, kind := range []string{"connected", "random-inside"} {
		for down, name := range []string{"all-up", "1-down", "2-3-down"} {
			b.Run(kind+"/"+name, func(b *testing.B) {
				var st stretch
				for b.Loop() {
					st = stretch{}
					rng := rand.New(rand.NewPCG(3, uint64(4+down)))
					for range 500 {
						links := randomHierarchy(rng, kind == "connected")
						if len(links) == 0 {
							continue
						}
						for range down + rng.IntN(down/2+1) {
							links[rng.IntN(len(links))].Up = false
						}
						st.add(simulate(links, 0))
					}
				}
				st.report(b)
			})
		}
	}
	b.Run("example", func(b *testing.B) {
		var st stretch
		for b.Loop() {
			st = stretch{}
			st.add(simulate(example, 0))
		}
		st.report(b)
	})
}

func (st *stretch) report(b *testing.B) {
	b.ReportMetric(st.mean(), "mean-stretch")
	b.ReportMetric(st.worst, "worst-stretch")
	b.ReportMetric(100*float64(st.lost)/float64(max(st.pairs, 1)), "%lost")
	b.ReportMetric(float64(st.misreported), "misreported")
	b.ReportMetric(float64(st.pairs), "pairs")
}
