package router

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
)

// Route is the best way from a table's source to one destination.
type Route struct {
	Destination Address
	NextHop     Address // the neighbour to hand traffic to; the source itself for its own route
	Link        string  // ID of the link to NextHop; "" for the source's own route
	Cost        float64 // what the path costs: its links, and the units it crosses
	// Path lists the brokers of the way, source and destination included,
	// as the source's map sees it: two brokers of a unit the path crosses
	// follow each other where the path crosses the unit between them.
	Path []Address
	// Exits lists where the path must be steered: the link each broker
	// outside the source's cluster sends the message over, in path order
	// (and every link after the first while a held route differs from
	// the cheapest, see BNM). Steer follows them.
	Exits []Exit
}

// Exit is a link a route leaves a broker by: the broker, and the link.
type Exit struct {
	Broker Address
	Link   string
}

// Table holds the routes from one source to every broker it can reach,
// itself included (with cost 0 and no link). The zero Table reaches
// nothing. A Table is immutable and safe for concurrent use.
//
// A table holds two trees of routes: the routes it shows (Lookup, Routes),
// which hold still within the map's margin, and the plain cheapest ones,
// which brokers use for the messages they pass on (see Steer).
type Table struct {
	held, base *tree
	// contract, when set, makes the table a contract's: a message that
	// enters the network here takes the path chosen for the contract.
	contract *contractRoutes
}

// Lookup returns the route to dst, and false when dst is unknown or
// unreachable from the table's source.
func (t Table) Lookup(dst Address) (Route, bool) {
	if t.held == nil {
		return Route{}, false
	}
	v, ok := t.held.g.index.lookup(dst)
	if !ok || !t.held.reached(v) {
		return Route{}, false
	}
	return t.held.route(v), true
}

// Cost returns the Cost of Lookup's route to dst without building the
// route, and false when dst is unknown or unreachable.
func (t Table) Cost(dst Address) (float64, bool) {
	if t.held == nil {
		return 0, false
	}
	v, ok := t.held.g.index.lookup(dst)
	if !ok || !t.held.reached(v) {
		return 0, false
	}
	return t.held.cost[v], true
}

// Routes returns every route of t, the source's own included, sorted by
// destination.
func (t Table) Routes() []Route {
	if t.held == nil {
		return nil
	}
	tr := t.held
	var out []Route
	for v := range int32(len(tr.cost)) {
		if tr.reached(v) {
			out = append(out, tr.route(v))
		}
	}
	slices.SortFunc(out, func(x, y Route) int { return cmp.Compare(x.Destination, y.Destination) })
	return out
}

// Way returns the first link and the exits of the route towards target:
// the route the table shows when origin is set (the message enters the
// network at the table's source), the cheapest one otherwise. The exits
// are shared: do not modify them.
func (t Table) Way(target Address, origin bool) (Way, bool) {
	tr := t.base
	if origin {
		tr = t.held
	}
	if tr == nil {
		return Way{}, false
	}
	v, ok := tr.g.index.lookup(target)
	if ok && origin && t.contract != nil {
		if k := t.contract.pick(v); k >= 0 && v != tr.src {
			return t.contract.ways[v], true
		}
	}
	if !ok || !tr.reached(v) || v == tr.src {
		return Way{}, false
	}
	return Way{Link: tr.g.linkOf(tr.first[v]), Exits: tr.lists[tr.exits[v]]}, true
}

// Broker returns the address of the broker a names, if the table knows
// it, without copying a: for looking up addresses read off the wire.
func (t Table) Broker(a []byte) (Address, bool) {
	if t.held == nil {
		return "", false
	}
	g := t.held.g
	v, ok := g.index.base[Address(a)]
	if !ok {
		v, ok = g.index.recent[Address(a)]
	}
	if !ok {
		return "", false
	}
	return g.addrs[v], true
}

// WayChange is how one table's ways differ from another's.
type WayChange struct {
	// Reach: some broker is reached by one table and not the other.
	Reach bool
	// Moved: some broker both reach goes another way, over another
	// first link or through other exits. A route that appears or goes
	// puts no message behind one sent before it; one that moves may.
	Moved bool
}

// Same reports whether the tables send messages to every broker the same
// way.
func (c WayChange) Same() bool { return !c.Reach && !c.Moved }

// CompareWays says how t's ways differ from o's, two tables of one map:
// over which first link and through which exits they send messages to
// each broker, on the routes shown and on the cheapest ones.
func (t Table) CompareWays(o Table) WayChange {
	if t.held == nil || o.held == nil {
		return WayChange{Reach: t.held != o.held}
	}
	var c WayChange
	switch {
	case (t.contract == nil) != (o.contract == nil):
		c.Reach = true
	case t.contract != nil && !t.contract.sameWays(o.contract):
		c.Moved = true
	}
	h, b := t.held.compare(o.held), t.base.compare(o.base)
	c.Reach = c.Reach || h.Reach || b.Reach
	c.Moved = c.Moved || h.Moved || b.Moved
	return c
}

// SameWays reports whether t and o, two tables of one map, send messages
// to every broker the same way (CompareWays).
func (t Table) SameWays(o Table) bool { return t.CompareWays(o).Same() }

// ShortestPaths runs Dijkstra on g's first profile from the broker from
// and returns its routes. A source that g does not know reaches only
// itself.
//
// Routes minimise cost; among routes of equal cost, the one with fewer hops
// wins, and then the path that is lexicographically smaller, comparing
// addresses from the source on. This order is the same on every broker and
// the best route's tail from any hop is that hop's own best route, so
// brokers forwarding hop by hop over the same graph follow one path and
// never loop. Costs are compared exactly: paths whose sums differ only by
// floating-point rounding are not ties.
func ShortestPaths(g *Graph, from Address) Table {
	src, ok := g.index.lookup(from)
	if !ok {
		g = NewGraph([]Link{{A: from, B: from}})
		src = 0
	}
	s := newSearch(g, 0, src)
	s.settle()
	tr := s.tree()
	return Table{held: tr, base: tr}
}

// search is the state of one run of Dijkstra over the graph's nodes on one
// profile. The heap holds the nodes reached but not settled, keyed by
// their best cost and hops so far. Leaves, nodes no arc leaves, never
// enter it: they are final as soon as every other node is.
type search struct {
	g       *Graph
	profile int
	costs   []float64 // of each link arc, on the profile searched
	src     int32
	key     []float64 // the cost the search orders by: cost, with held arcs discounted
	cost    []float64 // what the path found costs; +Inf when none
	hops    []int32   // arcs on the path found
	pred    []int32   // previous node on that path; -1 for the source
	via     []int32   // the arc from pred (see Graph.refOf); -1 for the source
	pos     []int32   // for a summary arc, the node's place in its dests
	order   []int32   // nodes in the order their paths became final
	heap    nodeHeap
	// scope, when set, keeps the search inside one unit.
	scope *Address
}

func newSearch(g *Graph, profile int, src int32) *search {
	return newSearchIn(g, profile, src, &scratch{})
}

// scratch is the memory a search needs only while it runs, kept for the
// next one.
type scratch struct {
	key   []float64
	pos   []int32
	order []int32
	items []heapItem
	// For BNM.parts.
	in, mark []uint8
	queue    []int32
}

// newSearchIn starts a search that works in sc. Only one search may use
// sc at a time.
func newSearchIn(g *Graph, profile int, src int32, sc *scratch) *search {
	n := len(g.addrs)
	if cap(sc.key) < n {
		sc.key, sc.pos, sc.order = make([]float64, n), make([]int32, n), make([]int32, 0, n)
	}
	s := &search{
		g: g, profile: profile, costs: g.costs[profile], src: src,
		key:   sc.key[:n],
		cost:  make([]float64, n),
		hops:  make([]int32, n),
		pred:  make([]int32, n),
		via:   make([]int32, n),
		pos:   make([]int32, n),
		order: sc.order[:0],
		heap:  nodeHeap{pos: sc.pos[:n], items: sc.items[:0]},
	}
	for i := range n {
		s.key[i], s.cost[i], s.pred[i], s.via[i], s.heap.pos[i] = math.Inf(1), math.Inf(1), -1, -1, unseen
	}
	s.key[src], s.cost[src] = 0, 0
	s.heap.update(src, 0, 0)
	return s
}

// settle settles nodes cheapest first until none is left to reach; the
// leaves come last.
func (s *search) settle() {
	for len(s.heap.items) > 0 {
		u := s.heap.items[0].node
		heap.Pop(&s.heap)
		s.order = append(s.order, u)
		s.relax(u)
	}
	for v := range int32(len(s.pred)) {
		if s.pred[v] >= 0 && s.heap.pos[v] == unseen {
			s.order = append(s.order, v) // a leaf
		}
	}
}

// relax offers every unsettled neighbour of u the path through u: over
// u's links, and over the summary arcs of the units u borders.
func (s *search) relax(u int32) {
	g := s.g
	for k := g.first[u]; k < g.first[u+1]; k++ {
		v := g.arcs[k].to
		if s.scope == nil || g.addrs[v].Within(*s.scope) {
			s.offer(u, v, k, -1, g.arcs[k].ref, s.costs[k])
		}
	}
	if g.sumFirst == nil {
		return
	}
	for j := g.sumFirst[u]; j < g.sumFirst[u+1]; j++ {
		sa := g.sums[j]
		if g.skip != nil && g.skip[j] {
			continue
		}
		if s.scope != nil {
			// Inside a unit, only the summaries of smaller units inside it.
			if unit := g.refs[sa.ref].unit; unit == *s.scope || !unit.Within(*s.scope) {
				continue
			}
		}
		costs, via := sa.costs[s.profile], summaryVia(int(j))
		for i, v := range sa.dests {
			s.offer(u, v, via, int32(i), sa.ref, costs[i])
		}
	}
}

// offer offers v the path through u over the arc via (v at pos in it,
// for a summary arc; crossing ref) at cost c.
func (s *search) offer(u, v, via, pos, ref int32, c float64) {
	if s.heap.pos[v] == settled || !usableCost(c) {
		return
	}
	key := s.key[u] + c
	h := s.hops[u] + 1
	if key < s.key[v] || key == s.key[v] && (h < s.hops[v] || h == s.hops[v] && s.pathLess(u, s.pred[v])) {
		s.key[v], s.cost[v], s.hops[v], s.pred[v], s.via[v], s.pos[v] = key, s.cost[u]+c, h, u, via, pos
		if !s.g.leaf(v) {
			s.heap.update(v, key, h)
		}
	}
}

// pathLess reports whether the path to x is lexicographically smaller than
// the path to y, two different nodes with paths of equal length. The paths
// agree up to the nodes whose predecessors first coincide, walking back;
// there they differ.
//
// Both paths are final: x is the node being settled and y, having offered
// the path being compared with, was settled before it.
func (s *search) pathLess(x, y int32) bool {
	for s.pred[x] != s.pred[y] {
		x, y = s.pred[x], s.pred[y]
	}
	return s.g.addrs[x] < s.g.addrs[y]
}

// Positions in nodeHeap.pos of nodes outside the heap.
const (
	unseen  = -1 // not reached yet, or a leaf
	settled = -2 // popped: its route is final
)

// nodeHeap orders the nodes reached but not settled by cost, then hops,
// then index. Pop returns nothing: the caller reads the minimum, items[0],
// before popping, which spares boxing it in an interface.
type nodeHeap struct {
	items []heapItem
	pos   []int32 // node -> index in items, unseen or settled
}

type heapItem struct {
	cost float64
	hops int32
	node int32
}

// update inserts node v with the given key, or lowers its key.
func (h *nodeHeap) update(v int32, cost float64, hops int32) {
	i := h.pos[v]
	if i == unseen {
		i = int32(len(h.items))
		h.items = append(h.items, heapItem{})
		h.pos[v] = i
	}
	h.items[i] = heapItem{cost, hops, v}
	heap.Fix(h, int(i))
}

func (h *nodeHeap) Len() int { return len(h.items) }

func (h *nodeHeap) Less(i, j int) bool {
	x, y := &h.items[i], &h.items[j]
	if x.cost != y.cost {
		return x.cost < y.cost
	}
	if x.hops != y.hops {
		return x.hops < y.hops
	}
	return x.node < y.node
}

func (h *nodeHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.pos[h.items[i].node], h.pos[h.items[j].node] = int32(i), int32(j)
}

func (h *nodeHeap) Push(x any) {
	it := x.(heapItem)
	h.pos[it.node] = int32(len(h.items))
	h.items = append(h.items, it)
}

func (h *nodeHeap) Pop() any {
	last := len(h.items) - 1
	h.pos[h.items[last].node] = settled
	h.items = h.items[:last]
	return nil
}
