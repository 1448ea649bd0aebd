package router

import (
	"cmp"
	"math"
	"slices"
)

// Link is one overlay link between two brokers, as the router sees it.
type Link struct {
	ID   string  // the link's UUID, unique in the network
	A, B Address // its two ends; a link carries traffic both ways
	Cost float64 // what crossing it costs, >= 0
	Up   bool    // whether it carries traffic now
}

// usable reports whether routes may cross l. Down links, self-loops and
// costs that are negative, NaN or +Inf are never used: a negative cost
// would break Dijkstra, and NaN compares false with everything.
func (l Link) usable() bool {
	return l.Up && l.A != l.B && l.Cost >= 0 && !math.IsInf(l.Cost, 1)
}

// Graph is an immutable weighted undirected graph of brokers, built by
// NewGraph. It is safe for concurrent use.
type Graph struct {
	addrs []Address         // node index -> address, sorted
	index map[Address]int32 // address -> node index
	// The adjacency lists in compressed form: the edges of node i are
	// edges[first[i]:first[i+1]], sorted by neighbour; ids[k] is the ID of
	// the link behind edges[k].
	first []int32
	edges []edge
	ids   []string
}

// edge is one direction of the cheapest usable link between two nodes.
type edge struct {
	to   int32
	cost float64
}

// NewGraph builds the graph of links. Its nodes are the ends of every link,
// usable or not, so that a broker whose links are all down is known but
// unreachable. Links that are down, loop on one broker, or cost less than
// zero, NaN or +Inf carry no route. Of parallel usable links between the
// same two brokers only the cheapest is kept, the one with the smaller ID
// on a tie, so the result does not depend on the order of links.
func NewGraph(links []Link) *Graph {
	g := &Graph{index: make(map[Address]int32)}
	g.intern(links)
	type arc struct {
		from, to int32
		link     *Link
	}
	arcs := make([]arc, 0, 2*len(links))
	for i := range links {
		l := &links[i]
		if l.usable() {
			a, b := g.index[l.A], g.index[l.B]
			arcs = append(arcs, arc{a, b, l}, arc{b, a, l})
		}
	}
	slices.SortFunc(arcs, func(x, y arc) int {
		// Not cmp.Or, which would compare the IDs every time.
		if x.from != y.from {
			return cmp.Compare(x.from, y.from)
		}
		if x.to != y.to {
			return cmp.Compare(x.to, y.to)
		}
		if x.link.Cost != y.link.Cost {
			return cmp.Compare(x.link.Cost, y.link.Cost)
		}
		return cmp.Compare(x.link.ID, y.link.ID)
	})
	arcs = slices.CompactFunc(arcs, func(x, y arc) bool { return x.from == y.from && x.to == y.to })
	g.first = make([]int32, len(g.addrs)+1)
	g.edges = make([]edge, len(arcs))
	g.ids = make([]string, len(arcs))
	for i, a := range arcs {
		g.first[a.from+1]++
		g.edges[i] = edge{a.to, a.link.Cost}
		g.ids[i] = a.link.ID
	}
	for i := 1; i < len(g.first); i++ {
		g.first[i] += g.first[i-1]
	}
	return g
}

// intern numbers the ends of links in address order, so that comparing
// node indexes compares addresses.
func (g *Graph) intern(links []Link) {
	for _, l := range links {
		g.index[l.A], g.index[l.B] = 0, 0
	}
	g.addrs = make([]Address, 0, len(g.index))
	for a := range g.index {
		g.addrs = append(g.addrs, a)
	}
	slices.Sort(g.addrs)
	for i, a := range g.addrs {
		g.index[a] = int32(i)
	}
}

// LinkBetween returns the ID of the link that routes between nodes a and b
// cross (the cheapest usable one), and false when they have none.
func (g *Graph) LinkBetween(a, b Address) (string, bool) {
	i, ok := g.index[a]
	j, ok2 := g.index[b]
	if !ok || !ok2 {
		return "", false
	}
	lo, hi := int(g.first[i]), int(g.first[i+1])
	k, found := slices.BinarySearchFunc(g.edges[lo:hi], j, func(e edge, to int32) int { return cmp.Compare(e.to, to) })
	if !found {
		return "", false
	}
	return g.ids[lo+k], true
}

// Nodes returns the address of every broker the graph knows, sorted.
func (g *Graph) Nodes() []Address {
	return slices.Clone(g.addrs)
}
