package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// net is a whole network as every broker's tables see it, for following
// messages hop by hop as brokers forward them.
type net struct {
	links  []Link
	ends   map[string]Link
	tables map[Address]Table
}

func netOf(links []Link) *net {
	n := &net{links: links, ends: map[string]Link{}, tables: map[Address]Table{}}
	for _, l := range links {
		n.ends[l.ID] = l
		for _, a := range []Address{l.A, l.B} {
			if _, ok := n.tables[a]; !ok {
				n.tables[a] = bnmOf(a, links).Tables()[0]
			}
		}
	}
	return n
}

// walk follows a message from broker from to broker to the way brokers
// forward it: each hop looks up the node standing for the broker the
// message is steered to (the last exit pushed, or its destination) and
// pushes the exits of the route it takes; the broker owning an exit link
// sends the message over it. It returns the brokers visited and whether
// the message arrived within 64 hops.
func (n *net) walk(from, to Address) ([]Address, bool) {
	return n.follow(from, to, true)
}

// follow is walk, or with steer false, how messages went before routes
// named their exits: each broker to the next hop of its own route to the
// destination.
func (n *net) follow(from, to Address, steer bool) ([]Address, bool) {
	cur, path := from, []Address{from}
	var stack []Exit
	for len(path) < 64 {
		if cur == to {
			return path, true
		}
		var id string
		if k := len(stack) - 1; k >= 0 && stack[k].Broker == cur {
			id, stack = stack[k].Link, stack[:k]
		} else {
			target := to
			if k >= 0 {
				target = stack[k].Broker
			}
			r, ok := n.tables[cur].Lookup(Rep(cur, target))
			if !ok {
				return append(path, "(no route)"), false
			}
			for i := len(r.Exits) - 1; i >= 0 && steer; i-- {
				stack = append(stack, r.Exits[i])
			}
			id = r.Link
		}
		l, ok := n.ends[id]
		if !ok || !l.Up || (l.A != cur && l.B != cur) {
			return append(path, Address("(bad link "+id+")")), false
		}
		if l.A == cur {
			cur = l.B
		} else {
			cur = l.A
		}
		path = append(path, cur)
	}
	return path, false
}

// connected reports which brokers reach each other over up links.
func (n *net) connected() map[Address]int {
	comp := map[Address]int{}
	adj := map[Address][]Address{}
	for _, l := range n.links {
		comp[l.A], comp[l.B] = -1, -1
		if l.Up {
			adj[l.A] = append(adj[l.A], l.B)
			adj[l.B] = append(adj[l.B], l.A)
		}
	}
	c := 0
	for a := range comp {
		if comp[a] >= 0 {
			continue
		}
		stack := []Address{a}
		comp[a] = c
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, y := range adj[x] {
				if comp[y] < 0 {
					comp[y] = c
					stack = append(stack, y)
				}
			}
		}
		c++
	}
	return comp
}

// checkAll follows a message between every two brokers: those connected
// by up links must arrive, the others must not be sent round in circles.
func (n *net) checkAll(t *testing.T, what string) int {
	t.Helper()
	comp := n.connected()
	failed := 0
	for a := range comp {
		for b := range comp {
			path, ok := n.walk(a, b)
			if ok != (comp[a] == comp[b]) && failed < 5 {
				failed++
				t.Errorf("%s: %s -> %s (connected: %v): %v", what, a, b, comp[a] == comp[b], path)
			}
		}
	}
	return failed
}

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
		n := netOf(links)
		n.checkAll(t, l.ID+" down")
	}
	links := clusterGrid(3, 3)
	netOf(links).checkAll(t, "all up")
	for i := range links {
		if links[i].ID == "h01" {
			links[i].Up = false
		}
	}
	n := netOf(links)
	r, _ := n.tables["eu.g.r0.c2"].Lookup("eu.g.r0.c0")
	if len(r.Exits) != 1 || !strings.HasPrefix(string(r.Exits[0].Broker), "eu.g.r1.") {
		t.Errorf("r0.c2's route to r0.c0 crosses r1 but names no exit from it: %+v", r)
	}
	if r, _ := n.tables["eu.g.r0.c2"].Lookup("eu.g.r1"); len(r.Exits) != 0 {
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
	n := netOf(links)
	if n.checkAll(t, "axy down") == 0 {
		path, _ := n.walk("eu.a.x.1", "eu.a.y.1")
		want := "[eu.a.x.1 eu.b.p.1 eu.b.p.2 eu.b.q.1 eu.b.q.2 eu.a.y.2 eu.a.y.1]"
		if fmt.Sprint(path) != want {
			t.Errorf("x.1 -> y.1: %v, want %s", path, want)
		}
	}
}

// TestSplitRandom follows messages between every two brokers of random
// three-level networks, each unit connected inside, with all links up or
// one down: every broker that can reach another over up links gets there.
// (Without the exits, this fails in about one network in seven even with
// every link up: a broker in a unit the route crosses, pricing a neighbour
// unit as free to cross, sends the message back where it came from.)
func TestSplitRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 400 {
		links := randomHierarchy(rng)
		if len(links) == 0 {
			continue // a single broker
		}
		what := fmt.Sprintf("round %d, all up", round)
		if round%2 == 1 {
			down := rng.IntN(len(links))
			links[down].Up = false
			what = fmt.Sprintf("round %d, %s down", round, links[down].ID)
		}
		if netOf(links).checkAll(t, what) > 0 {
			t.Logf("links: %v", links)
			return
		}
	}
}

// TestSplitRandomFailures: with two or three links down at once, two units
// can be split on one route; a broker then steers messages through a unit
// it cannot know is split, and they go round until their hops run out.
// This measures how rare that is (about 1 network in 350 when it was
// written) and fails if it becomes common.
func TestSplitRandomFailures(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	rounds, looping := 600, 0
	for range rounds {
		links := randomHierarchy(rng)
		if len(links) == 0 {
			continue
		}
		for range 2 + rng.IntN(2) {
			links[rng.IntN(len(links))].Up = false
		}
		n := netOf(links)
		comp := n.connected()
	pairs:
		for a := range comp {
			for b := range comp {
				if _, ok := n.walk(a, b); ok != (comp[a] == comp[b]) {
					looping++
					break pairs
				}
			}
		}
	}
	t.Logf("%d of %d networks with 2-3 links down have a pair that does not arrive", looping, rounds)
	if looping > rounds/50 {
		t.Errorf("%d of %d networks with 2-3 links down have a pair that does not arrive, want at most 2%%", looping, rounds)
	}
}

// randomHierarchy builds a random network of up to three super-clusters
// of up to three clusters of up to four brokers. Each unit is connected
// inside (a random tree of its parts, joined by links between random
// brokers), and random links are added at every level.
func randomHierarchy(rng *rand.Rand) []Link {
	var links []Link
	add := func(a, b Address) {
		links = append(links, Link{ID: fmt.Sprintf("l%d", len(links)), A: a, B: b, Cost: float64(1 + rng.IntN(5)), Up: true})
	}
	// tree joins parts (each a list of brokers) into one, and adds a few
	// more links between them.
	tree := func(parts [][]Address) []Address {
		pick := func(p []Address) Address { return p[rng.IntN(len(p))] }
		for i := 1; i < len(parts); i++ {
			add(pick(parts[rng.IntN(i)]), pick(parts[i]))
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
			clusters = append(clusters, tree(brokers))
		}
		supers = append(supers, tree(clusters))
	}
	tree(supers)
	return links
}

// TestRouteStretch: routes through a map that sees units as single nodes
// are not always the cheapest, and exits chosen without seeing inside a
// unit add to that. Over random healthy networks, the paths messages take
// cost on average at most 10% more than the cheapest paths over the whole
// network. (When written: 5-6% more; hop by hop without exits, 4% more
// for the pairs whose messages arrived, with 3% of pairs looping.)
func TestRouteStretch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var taken, cheapest float64
	for range 200 {
		links := randomHierarchy(rng)
		if len(links) == 0 {
			continue
		}
		n := netOf(links)
		whole := NewGraph(links)
		for a := range n.tables {
			best := ShortestPaths(whole, a)
			for b := range n.tables {
				path, ok := n.walk(a, b)
				if !ok {
					t.Fatalf("%s -> %s: %v", a, b, path)
				}
				r, _ := best.Lookup(b)
				taken += n.cost(path)
				cheapest += r.Cost
			}
		}
	}
	t.Logf("paths taken cost %.3f times the cheapest", taken/cheapest)
	if taken > 1.1*cheapest {
		t.Errorf("paths taken cost %.3f times the cheapest, want at most 1.1", taken/cheapest)
	}
}

// cost is what the cheapest up links along path cost.
func (n *net) cost(path []Address) float64 {
	c := 0.0
	for i := 1; i < len(path); i++ {
		best := math.Inf(1)
		for _, l := range n.links {
			if l.Up && (l.A == path[i-1] && l.B == path[i] || l.B == path[i-1] && l.A == path[i]) {
				best = min(best, l.Cost)
			}
		}
		c += best
	}
	return c
}

// BenchmarkPathsThroughUnits follows messages between every two connected
// brokers of random three-level networks (up to 3 super-clusters of 3
// clusters of 4 brokers), with 0, 1 and 2-3 links down, steered through
// their routes' exits and, side by side, hop by hop as before exits. It
// reports the share of pairs whose messages never arrive and, with every
// link up, what the paths taken cost against the cheapest over the whole
// network.
func BenchmarkPathsThroughUnits(b *testing.B) {
	for _, steer := range []bool{false, true} {
		name := "hop-by-hop"
		if steer {
			name = "exits"
		}
		b.Run(name, func(b *testing.B) {
			var lost, pairs [3]int
			var taken, cheapest float64
			for b.Loop() {
				rng := rand.New(rand.NewPCG(3, 4))
				for round := range 1500 {
					links := randomHierarchy(rng)
					if len(links) == 0 {
						continue
					}
					down := round % 3
					for range down + rng.IntN(down/2+1) {
						links[rng.IntN(len(links))].Up = false
					}
					n := netOf(links)
					comp := n.connected()
					whole := NewGraph(links)
					for a := range n.tables {
						best := ShortestPaths(whole, a)
						for c := range n.tables {
							if a == c || comp[a] != comp[c] {
								continue
							}
							pairs[down]++
							path, ok := n.follow(a, c, steer)
							if !ok {
								lost[down]++
							} else if down == 0 {
								r, _ := best.Lookup(c)
								taken += n.cost(path)
								cheapest += r.Cost
							}
						}
					}
				}
			}
			b.ReportMetric(100*float64(lost[0])/float64(pairs[0]), "%lost-all-up")
			b.ReportMetric(100*float64(lost[1])/float64(pairs[1]), "%lost-1-down")
			b.ReportMetric(100*float64(lost[2])/float64(pairs[2]), "%lost-2-3-down")
			b.ReportMetric(taken/cheapest, "cost/cheapest")
		})
	}
}
