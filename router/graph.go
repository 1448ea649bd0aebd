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
	return l.Up && l.A != l.B && usableCost(l.Cost)
}

func usableCost(c float64) bool { return c >= 0 && !math.IsInf(c, 1) }

// Graph is an immutable weighted directed graph of brokers, with one cost
// per arc for each cost profile. It is safe for concurrent use.
//
// An arc is one direction of a link, or a summary arc: the way, inside a
// unit, from one of its border brokers to one broker of the unit, as the
// border announces it (see Summary). A summary arc is a path the map does
// not see hop by hop; its cost is that path's.
type Graph struct {
	addrs []Address  // node -> address
	index *nodeIndex // address -> node
	// The links' arcs in compressed form: the arcs out of node i are
	// arcs[first[i]:first[i+1]]; costs[p][k] is what arc k costs on
	// profile p, and refs[arcs[k].ref] says what it is.
	first []int32
	arcs  []arc
	costs [][]float64
	refs  []arcRef
	// delays[k] is the delay distribution over arc k, as its source
	// measures it; empty when unknown.
	delays []Histogram
	// The summaries of node i are sums[sumFirst[i]:sumFirst[i+1]]; nil
	// sumFirst: none.
	sumFirst []int32
	sums     []*summaryArcs
	skip     []bool // per summary, whether routes leave it out (see trust); nil: none
}

// summaryArcs are the arcs of one summary, from its border.
type summaryArcs struct {
	ref   int32       // in refs
	dests []int32     // the nodes it reaches
	costs [][]float64 // per profile, per dest
	// delays are, per dest, the delay distribution the border announces.
	delays []Histogram
	depth  uint8 // of the unit
	own    bool  // whether the map's own broker is in the unit
}

// An arc of a path is named by an int32 "via": k >= 0 is arcs[k]; -2-j is
// a summary arc of sums[j] (which of its arcs is known from its end);
// -1 is none.
func summaryVia(j int) int32 { return int32(-2 - j) }

// refOf is what the arc via crosses, as an index in refs.
func (g *Graph) refOf(via int32) int32 {
	if via >= 0 {
		return g.arcs[via].ref
	}
	return g.sums[-2-via].ref
}

// linkOf is the ID of the link the arc via crosses; "" for a summary arc.
func (g *Graph) linkOf(via int32) string {
	if via >= 0 {
		return g.refs[g.arcs[via].ref].link
	}
	return ""
}

// arc is one arc of a Graph.
type arc struct {
	to  int32
	ref int32
}

// arcRef is what an arc crosses: a link, or a unit as its border sees it.
type arcRef struct {
	link string  // the link's ID; "" for a summary arc
	unit Address // the unit a summary arc crosses; "" for a link
}

// NewGraph builds the undirected graph of links, with one cost profile.
// Its nodes are the ends of every link, usable or not, so that a broker
// whose links are all down is known but unreachable. Links that are down,
// loop on one broker, or cost less than zero, NaN or +Inf carry no route.
// Of parallel links between the same two brokers routes take the
// cheapest, the one with the smaller ID on a tie, whatever the order of
// links.
func NewGraph(links []Link) *Graph {
	names := make(map[Address]bool, len(links))
	for _, l := range links {
		names[l.A], names[l.B] = true, true
	}
	var gb graphBuilder
	gb.init(slices.Sorted(func(yield func(Address) bool) {
		for a := range names {
			if !yield(a) {
				return
			}
		}
	}), nil, 1)
	sorted := slices.Clone(links)
	slices.SortFunc(sorted, func(x, y Link) int { return cmp.Compare(x.ID, y.ID) })
	for _, l := range sorted {
		if l.usable() {
			ref := gb.ref(arcRef{link: l.ID})
			a, _ := gb.index.lookup(l.A)
			b, _ := gb.index.lookup(l.B)
			gb.add(a, b, ref, []float64{l.Cost}, Histogram{})
			gb.add(b, a, ref, []float64{l.Cost}, Histogram{})
		}
	}
	return gb.build()
}

// graphBuilder gathers arcs, then packs them into a Graph.
type graphBuilder struct {
	addrs    []Address
	index    *nodeIndex
	profiles int
	from     []int32
	arcs     []arc
	costs    [][]float64
	delays   []Histogram
	refs     []arcRef
	// refIndex, when set, numbers refs once and for all (see BNM).
	refIndex map[arcRef]int32
}

// init starts a graph over the nodes addrs (index maps them to their
// positions; nil builds the map).
func (gb *graphBuilder) init(addrs []Address, index *nodeIndex, profiles int) {
	if index == nil {
		index = (&nodeIndex{}).with(addrs, 0)
	}
	gb.addrs, gb.index, gb.profiles = addrs, index, profiles
	gb.costs = make([][]float64, profiles)
}

func (gb *graphBuilder) ref(r arcRef) int32 {
	if i, ok := gb.refIndex[r]; ok {
		return i
	}
	gb.refs = append(gb.refs, r)
	i := int32(len(gb.refs) - 1)
	if gb.refIndex != nil {
		gb.refIndex[r] = i
	}
	return i
}

// add adds the arc from a to b, with one cost per profile and its delay
// distribution.
func (gb *graphBuilder) add(a, b, ref int32, costs []float64, delay Histogram) {
	gb.from = append(gb.from, a)
	gb.arcs = append(gb.arcs, arc{to: b, ref: ref})
	gb.delays = append(gb.delays, delay)
	for p := range gb.profiles {
		gb.costs[p] = append(gb.costs[p], costAt(costs, p))
	}
}

// build packs the arcs by source, keeping the order they were added in.
func (gb *graphBuilder) build() *Graph {
	g := &Graph{addrs: gb.addrs, index: gb.index, refs: gb.refs}
	n := len(gb.addrs)
	g.first = make([]int32, n+1)
	for _, a := range gb.from {
		g.first[a+1]++
	}
	for i := 1; i <= n; i++ {
		g.first[i] += g.first[i-1]
	}
	next := slices.Clone(g.first[:n])
	g.arcs = make([]arc, len(gb.arcs))
	g.delays = make([]Histogram, len(gb.arcs))
	g.costs = make([][]float64, gb.profiles)
	for p := range g.costs {
		g.costs[p] = make([]float64, len(gb.arcs))
	}
	for k, a := range gb.from {
		i := next[a]
		next[a]++
		g.arcs[i] = gb.arcs[k]
		g.delays[i] = gb.delays[k]
		for p := range g.costs {
			g.costs[p][i] = gb.costs[p][k]
		}
	}
	return g
}

// costAt is the cost for profile p, +Inf when none is given (an owner
// configured with fewer profiles).
func costAt(costs []float64, p int) float64 {
	if p < len(costs) {
		return costs[p]
	}
	return math.Inf(1)
}

// LinkBetween returns the ID of the link that routes from a to b take
// (the cheapest usable one, on the first profile), and false when there
// is none.
func (g *Graph) LinkBetween(a, b Address) (string, bool) {
	i, ok := g.index.lookup(a)
	j, ok2 := g.index.lookup(b)
	if !ok || !ok2 {
		return "", false
	}
	best := -1
	for k := g.first[i]; k < g.first[i+1]; k++ {
		c := g.costs[0][k]
		if g.arcs[k].to == j && g.refs[g.arcs[k].ref].link != "" && usableCost(c) && (best < 0 || c < g.costs[0][best]) {
			best = int(k)
		}
	}
	if best < 0 {
		return "", false
	}
	return g.refs[g.arcs[best].ref].link, true
}

// Nodes returns the address of every broker the graph knows, sorted.
func (g *Graph) Nodes() []Address {
	return slices.Sorted(slices.Values(g.addrs))
}

// leaf reports whether no arc leaves node v: no route goes through it.
func (g *Graph) leaf(v int32) bool {
	return g.first[v] == g.first[v+1] && (g.sumFirst == nil || g.sumFirst[v] == g.sumFirst[v+1])
}
