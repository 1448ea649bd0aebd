package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// link builds an up link; its ID names its ends.
func link(a, b Address, cost float64) Link {
	return Link{ID: string(a) + "-" + string(b), A: a, B: b, Cost: cost, Up: true}
}

// want is an expected route: its path as space-separated addresses, and its
// cost.
type want struct {
	path string
	cost float64
}

// grid returns the links of an n x n grid of unit-cost links between
// brokers named gRC.
func grid(n int) []Link {
	var links []Link
	name := func(r, c int) Address { return Address(fmt.Sprintf("g%d%d", r, c)) }
	for r := range n {
		for c := range n {
			if c+1 < n {
				links = append(links, link(name(r, c), name(r, c+1), 1))
			}
			if r+1 < n {
				links = append(links, link(name(r, c), name(r+1, c), 1))
			}
		}
	}
	return links
}

// acceptance is the four-broker network of the acceptance test.
func acceptance() []Link {
	return []Link{link("1", "2", 44.5), link("2", "4", 1.6), link("1", "3", 41.2), link("4", "3", 1.4)}
}

func TestShortestPaths(t *testing.T) {
	down := link("b", "c", 1)
	down.Up = false
	acceptanceDown := acceptance()
	acceptanceDown[3].Up = false
	tests := []struct {
		name        string
		links       []Link
		from        Address
		want        map[Address]want
		unreachable []Address
	}{{
		name:  "chain",
		links: []Link{link("a", "b", 1), link("b", "c", 2), link("c", "d", 3)},
		from:  "a",
		want:  map[Address]want{"a": {"a", 0}, "b": {"a b", 1}, "c": {"a b c", 3}, "d": {"a b c d", 6}},
	}, {
		name:  "chain from the middle",
		links: []Link{link("a", "b", 1), link("b", "c", 2), link("c", "d", 3)},
		from:  "c",
		want:  map[Address]want{"a": {"c b a", 3}, "d": {"c d", 3}},
	}, {
		name:  "diamond takes the cheaper side",
		links: []Link{link("a", "b", 1), link("a", "c", 1), link("b", "d", 5), link("c", "d", 1)},
		from:  "a",
		want:  map[Address]want{"d": {"a c d", 2}},
	}, {
		name:  "diamond tie goes to the smaller next hop",
		links: []Link{link("a", "c", 1), link("c", "d", 1), link("a", "b", 1), link("b", "d", 1)},
		from:  "a",
		want:  map[Address]want{"d": {"a b d", 2}},
	}, {
		name:  "equal cost prefers fewer hops",
		links: []Link{link("a", "b", 1), link("b", "c", 1), link("c", "d", 1), link("a", "z", 1.5), link("z", "d", 1.5)},
		from:  "a",
		want:  map[Address]want{"d": {"a z d", 3}},
	}, {
		name:  "grid",
		links: grid(3),
		from:  "g00",
		want: map[Address]want{
			"g22": {"g00 g01 g02 g12 g22", 4},
			"g11": {"g00 g01 g11", 2},
			"g20": {"g00 g10 g20", 2},
		},
	}, {
		name:        "disconnected nodes",
		links:       []Link{link("a", "b", 1), link("x", "y", 1), down},
		from:        "a",
		want:        map[Address]want{"a": {"a", 0}, "b": {"a b", 1}},
		unreachable: []Address{"c", "x", "y", "nowhere"},
	}, {
		name: "down, negative, NaN and infinite links are ignored",
		links: []Link{link("a", "b", 1), link("b", "c", 1), down, link("a", "c", -1),
			link("a", "c", math.NaN()), link("a", "c", math.Inf(1)), link("a", "a", 0)},
		from: "a",
		want: map[Address]want{"c": {"a b c", 2}},
	}, {
		name:  "zero cost links",
		links: []Link{link("a", "b", 0), link("b", "c", 0), link("a", "c", 0)},
		from:  "a",
		want:  map[Address]want{"c": {"a c", 0}},
	}, {
		name:  "acceptance",
		links: acceptance(),
		from:  "2",
		want:  map[Address]want{"3": {"2 4 3", 3.0}, "1": {"2 4 3 1", 44.2}},
	}, {
		name:  "acceptance with 4-3 down",
		links: acceptanceDown,
		from:  "2",
		want:  map[Address]want{"3": {"2 1 3", 85.7}, "4": {"2 4", 1.6}},
	}, {
		name:        "unknown source reaches itself",
		links:       []Link{link("a", "b", 1)},
		from:        "z",
		want:        map[Address]want{"z": {"z", 0}},
		unreachable: []Address{"a", "b"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := ShortestPaths(NewGraph(tt.links), tt.from)
			for dst, w := range tt.want {
				r, ok := table.Lookup(dst)
				if !ok {
					t.Errorf("Lookup(%s): unreachable, want %s", dst, w.path)
					continue
				}
				checkRoute(t, r, dst, w)
				if c, ok := table.Cost(dst); !ok || c != r.Cost {
					t.Errorf("Cost(%s) = %v, %v, want the route's %v", dst, c, ok, r.Cost)
				}
			}
			for _, dst := range tt.unreachable {
				if r, ok := table.Lookup(dst); ok {
					t.Errorf("Lookup(%s) = %v, want unreachable", dst, r.Path)
				}
				if c, ok := table.Cost(dst); ok {
					t.Errorf("Cost(%s) = %v, want unreachable", dst, c)
				}
			}
		})
	}
}

func checkRoute(t *testing.T, r Route, dst Address, w want) {
	t.Helper()
	path := make([]string, len(r.Path))
	for i, a := range r.Path {
		path[i] = string(a)
	}
	if got := strings.Join(path, " "); got != w.path {
		t.Errorf("route to %s: path %s, want %s", dst, got, w.path)
	}
	if math.Abs(r.Cost-w.cost) > 1e-9 {
		t.Errorf("route to %s: cost %v, want %v", dst, r.Cost, w.cost)
	}
	if r.Destination != dst || r.Path[len(r.Path)-1] != dst {
		t.Errorf("route to %s: destination %s", dst, r.Destination)
	}
	if len(r.Path) == 1 {
		if r.NextHop != dst || r.Link != "" {
			t.Errorf("own route: next hop %s, link %q", r.NextHop, r.Link)
		}
		return
	}
	if r.NextHop != r.Path[1] {
		t.Errorf("route to %s: next hop %s, want %s", dst, r.NextHop, r.Path[1])
	}
	if id := string(r.Path[0]) + "-" + string(r.Path[1]); r.Link != id && r.Link != string(r.Path[1])+"-"+string(r.Path[0]) {
		t.Errorf("route to %s: link %q, want the link between %s and %s", dst, r.Link, r.Path[0], r.Path[1])
	}
}

func TestParallelLinks(t *testing.T) {
	links := []Link{
		{ID: "l3", A: "a", B: "b", Cost: 5, Up: true},
		{ID: "l2", A: "b", B: "a", Cost: 2, Up: true},
		{ID: "l1", A: "a", B: "b", Cost: 2, Up: true},
		{ID: "l0", A: "a", B: "b", Cost: 1, Up: false},
	}
	for range 10 {
		rand.Shuffle(len(links), func(i, j int) { links[i], links[j] = links[j], links[i] })
		for from, to := range map[Address]Address{"a": "b", "b": "a"} {
			r, ok := ShortestPaths(NewGraph(links), from).Lookup(to)
			if !ok || r.Link != "l1" || r.Cost != 2 {
				t.Fatalf("%s -> %s: route %+v, want link l1 at cost 2", from, to, r)
			}
		}
	}
}

func TestRoutesSorted(t *testing.T) {
	table := ShortestPaths(NewGraph(grid(3)), "g11")
	routes := table.Routes()
	if len(routes) != 9 {
		t.Fatalf("%d routes, want 9", len(routes))
	}
	if !slices.IsSortedFunc(routes, func(x, y Route) int { return strings.Compare(string(x.Destination), string(y.Destination)) }) {
		t.Errorf("routes not sorted by destination")
	}
	if len((Table{}).Routes()) != 0 {
		t.Errorf("zero Table has routes")
	}
	if _, ok := (Table{}).Lookup("a"); ok {
		t.Errorf("zero Table reaches a")
	}
}

// randomGraph returns a connected-ish random graph with small integer costs,
// zero included, so that ties abound.
func randomGraph(rng *rand.Rand, nodes, links int) []Link {
	out := make([]Link, links)
	for i := range out {
		a, b := Address("n"+strconv.Itoa(rng.IntN(nodes))), Address("n"+strconv.Itoa(rng.IntN(nodes)))
		out[i] = Link{ID: strconv.Itoa(i), A: a, B: b, Cost: float64(rng.IntN(4)), Up: rng.IntN(10) > 0}
	}
	return out
}

// TestTieBreakingDeterminism checks that the order of links does not change
// any table, and that forwarding hop by hop, each broker using its own
// table, follows the source's path exactly: no loops, no divergence.
func TestTieBreakingDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		links := randomGraph(rng, 12, 30)
		g := NewGraph(links)
		tables := make(map[Address]Table)
		for _, n := range g.Nodes() {
			tables[n] = ShortestPaths(g, n)
		}
		rng.Shuffle(len(links), func(i, j int) { links[i], links[j] = links[j], links[i] })
		shuffled := NewGraph(links)
		for n, table := range tables {
			if got := ShortestPaths(shuffled, n).Routes(); !equalRoutes(got, table.Routes()) {
				t.Fatalf("round %d: routes from %s depend on the order of links", round, n)
			}
			for _, r := range table.Routes() {
				checkForwarding(t, tables, r)
			}
		}
		checkCosts(t, links, tables)
	}
}

func equalRoutes(x, y []Route) bool {
	return slices.EqualFunc(x, y, func(a, b Route) bool {
		return a.Destination == b.Destination && a.NextHop == b.NextHop && a.Link == b.Link &&
			a.Cost == b.Cost && slices.Equal(a.Path, b.Path)
	})
}

// checkForwarding follows r hop by hop through every broker's own table.
func checkForwarding(t *testing.T, tables map[Address]Table, r Route) {
	t.Helper()
	for i, hop := range r.Path {
		own, ok := tables[hop].Lookup(r.Destination)
		if !ok || !slices.Equal(own.Path, r.Path[i:]) {
			t.Fatalf("route %v: broker %s forwards along %v", r.Path, hop, own.Path)
		}
	}
}

// checkCosts compares every table's costs with Floyd-Warshall's.
func checkCosts(t *testing.T, links []Link, tables map[Address]Table) {
	t.Helper()
	dist := make(map[[2]Address]float64)
	for _, l := range links {
		if l.usable() {
			for _, k := range [][2]Address{{l.A, l.B}, {l.B, l.A}} {
				if d, ok := dist[k]; !ok || l.Cost < d {
					dist[k] = l.Cost
				}
			}
		}
	}
	nodes := slices.Sorted(func(yield func(Address) bool) {
		for n := range tables {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range nodes {
		dist[[2]Address{n, n}] = 0
	}
	for _, k := range nodes {
		for _, i := range nodes {
			for _, j := range nodes {
				dik, ok1 := dist[[2]Address{i, k}]
				dkj, ok2 := dist[[2]Address{k, j}]
				if d, ok := dist[[2]Address{i, j}]; ok1 && ok2 && (!ok || dik+dkj < d) {
					dist[[2]Address{i, j}] = dik + dkj
				}
			}
		}
	}
	for _, i := range nodes {
		for _, j := range nodes {
			d, reach := dist[[2]Address{i, j}]
			r, ok := tables[i].Lookup(j)
			if ok != reach || ok && r.Cost != d {
				t.Fatalf("%s -> %s: route %v cost %v (reachable %v), want %v (reachable %v)", i, j, r.Path, r.Cost, ok, d, reach)
			}
		}
	}
}

// network returns a synthetic network of 10 super-super-clusters of 10
// super-clusters of 10 clusters of 10 brokers. Each cluster is a ring with
// two chords; broker 0 of each cluster is its gateway to the next cluster
// of its super-cluster, broker 1 of each cluster 0 to the next super-cluster,
// broker 2 of each super-cluster 0 to the next super-super-cluster. Costs
// vary between 1 and 10.
func network() []Link {
	addr := func(ssc, sc, c, b int) Address { return Address(fmt.Sprintf("s%d.u%d.c%d.b%d", ssc, sc, c, b)) }
	var links []Link
	add := func(a, b Address) {
		cost := 1 + float64(len(links)*7919%90)/10
		links = append(links, Link{ID: strconv.Itoa(len(links)), A: a, B: b, Cost: cost, Up: true})
	}
	for s := range 10 {
		for u := range 10 {
			for c := range 10 {
				for b := range 10 {
					add(addr(s, u, c, b), addr(s, u, c, (b+1)%10))
				}
				add(addr(s, u, c, 0), addr(s, u, c, 5))
				add(addr(s, u, c, 2), addr(s, u, c, 7))
				add(addr(s, u, c, 0), addr(s, u, (c+1)%10, 0))
			}
			add(addr(s, u, 0, 1), addr(s, (u+1)%10, 0, 1))
		}
		add(addr(s, 0, 0, 2), addr((s+1)%10, 0, 0, 2))
	}
	return links
}

func TestNetworkConnected(t *testing.T) {
	g := NewGraph(network())
	if n := len(g.Nodes()); n != 10000 {
		t.Fatalf("%d nodes, want 10000", n)
	}
	if n := len(ShortestPaths(g, "s3.u4.c5.b6").Routes()); n != 10000 {
		t.Fatalf("%d routes, want 10000", n)
	}
}

func BenchmarkShortestPaths(b *testing.B) {
	g := NewGraph(network())
	b.ReportAllocs()
	for b.Loop() {
		ShortestPaths(g, "s3.u4.c5.b6")
	}
}

func BenchmarkNewGraph(b *testing.B) {
	links := network()
	b.ReportAllocs()
	for b.Loop() {
		NewGraph(links)
	}
}

// TestCompareWays: a table has moved from another when a broker both
// reach goes another way, not when a broker is reached or lost, which
// changes its reach.
func TestCompareWays(t *testing.T) {
	links := func(ab, bc, ac float64, acUp bool) []Link {
		return []Link{
			{ID: "ab", A: "x.a", B: "x.b", Cost: ab, Up: true},
			{ID: "bc", A: "x.b", B: "x.c", Cost: bc, Up: true},
			{ID: "ac", A: "x.a", B: "x.c", Cost: ac, Up: acUp},
		}
	}
	g := NewGraph(links(1, 1, 5, true))
	viaB := ShortestPaths(g, "x.a")
	direct := ShortestPaths(NewGraph(links(1, 9, 5, true)), "x.a")
	onlyB := ShortestPaths(NewGraph([]Link{{ID: "ab", A: "x.a", B: "x.b", Cost: 1, Up: true}, {ID: "bc", A: "x.b", B: "x.c", Cost: 1}, {ID: "ac", A: "x.a", B: "x.c", Cost: 5}}), "x.a")
	if c := direct.CompareWays(viaB); c != (WayChange{Moved: true}) || viaB.CompareWays(direct) != c {
		t.Errorf("x.c moved from x.b's link to its own: %+v", c)
	}
	if c := viaB.CompareWays(ShortestPaths(NewGraph(links(2, 2, 5, true)), "x.a")); !c.Same() {
		t.Errorf("costs changed, ways did not: %+v", c)
	}
	if c := onlyB.CompareWays(viaB); c != (WayChange{Reach: true}) || viaB.CompareWays(onlyB) != c {
		t.Errorf("x.c was lost or reached, no way moved: %+v", c)
	}
}
