package router

import (
	"container/heap"
	"math"
	"sort"
)

// Route is the best way from a table's source to one destination.
type Route struct {
	Destination Address
	NextHop     Address   // the neighbour to hand traffic to; the source itself for its own route
	Link        string    // ID of the link to NextHop; "" for the source's own route
	Cost        float64   // sum of the link costs along Path
	Path        []Address // source ... Destination, both included; shared, do not modify
	// Exits lists, for every unit the path crosses (a node of the map
	// that stands for a unit, other than the destination's), the link the
	// path leaves it by, in path order. See BNM.Tables.
	Exits []Exit
}

// Exit is where a route leaves a unit it crosses: the link, and the broker
// inside the unit that owns it.
type Exit struct {
	Broker Address
	Link   string
}

// Table holds the best routes from one source to every broker it can reach,
// itself included (with cost 0 and no link). The zero Table reaches
// nothing. A Table is immutable and safe for concurrent use.
type Table struct {
	index  map[Address]int32 // destination -> index into routes
	routes []Route           // by destination order; Path is nil when unreachable
}

// Lookup returns the route to dst, and false when dst is unknown or
// unreachable from the table's source.
func (t Table) Lookup(dst Address) (Route, bool) {
	i, ok := t.index[dst]
	if !ok || t.routes[i].Path == nil {
		return Route{}, false
	}
	return t.routes[i], true
}

// Routes returns every route of t, the source's own included, sorted by
// destination.
func (t Table) Routes() []Route {
	out := make([]Route, 0, len(t.routes))
	for _, r := range t.routes {
		if r.Path != nil {
			out = append(out, r)
		}
	}
	return out
}

// ShortestPaths runs Dijkstra on g from the broker from and returns its
// routes. A source that g does not know reaches only itself.
//
// Routes minimise cost; among routes of equal cost, the one with fewer hops
// wins, and then the path that is lexicographically smaller, comparing
// addresses from the source on. This order is the same on every broker and
// the best route's tail from any hop is that hop's own best route, so
// brokers forwarding hop by hop over the same graph follow one path and
// never loop. Costs are compared exactly: paths whose sums differ only by
// floating-point rounding are not ties.
func ShortestPaths(g *Graph, from Address) Table {
	src, ok := g.index[from]
	if !ok {
		return Table{
			index:  map[Address]int32{from: 0},
			routes: []Route{{Destination: from, NextHop: from, Path: []Address{from}}},
		}
	}
	s := newSearch(g, src)
	s.run()
	return s.table()
}

// search is the state of one run of Dijkstra over the graph's node
// indexes. The heap holds the nodes reached but not settled, keyed by their
// best cost and hops so far; nothing in the loop allocates once the heap's
// slice has grown.
type search struct {
	g    *Graph
	src  int32
	dist []float64 // best cost found so far; +Inf when none
	hops []int32   // links on the best path found so far
	pred []int32   // previous node on that path; -1 for the source
	via  []int32   // index in g.edges of the link from pred; -1 for the source
	heap nodeHeap
}

func newSearch(g *Graph, src int32) *search {
	n := len(g.addrs)
	s := &search{
		g: g, src: src,
		dist: make([]float64, n),
		hops: make([]int32, n),
		pred: make([]int32, n),
		via:  make([]int32, n),
		heap: nodeHeap{pos: make([]int32, n)},
	}
	for i := range n {
		s.dist[i], s.pred[i], s.via[i], s.heap.pos[i] = math.Inf(1), -1, -1, unseen
	}
	s.dist[src] = 0
	s.heap.update(src, 0, 0)
	return s
}

// run settles nodes cheapest first until none is left to reach.
func (s *search) run() {
	for len(s.heap.items) > 0 {
		u := s.heap.items[0].node
		heap.Pop(&s.heap)
		s.relax(u)
	}
}

// relax offers every unsettled neighbour of u the path through u.
func (s *search) relax(u int32) {
	g := s.g
	for k := g.first[u]; k < g.first[u+1]; k++ {
		v := g.edges[k].to
		if s.heap.pos[v] == settled {
			continue
		}
		d, h := s.dist[u]+g.edges[k].cost, s.hops[u]+1
		if d < s.dist[v] || d == s.dist[v] && (h < s.hops[v] || h == s.hops[v] && s.pathLess(u, s.pred[v])) {
			s.dist[v], s.hops[v], s.pred[v], s.via[v] = d, h, u, k
			s.heap.update(v, d, h)
		}
	}
}

// pathLess reports whether the path to x is lexicographically smaller than
// the path to y, two different nodes with paths of equal length. The paths
// agree up to the nodes whose predecessors first coincide, walking back;
// there they differ, and node indexes order like addresses.
//
// Both paths are final: x is the node being settled and y, having offered
// the path being compared with, was settled before it.
func (s *search) pathLess(x, y int32) bool {
	for s.pred[x] != s.pred[y] {
		x, y = s.pred[x], s.pred[y]
	}
	return x < y
}

// table turns the search's result into routes, walking the tree of best
// paths depth first from the source. The paths share one buffer: a node's
// first child extends its path in place, the path written just before, so
// that only branching copies a path.
func (s *search) table() Table {
	g := s.g
	first, kids := s.children()
	routes := make([]Route, len(g.addrs))
	buf := make([]Address, s.pathsSize(first, kids))
	tail := 0
	stack := []int32{s.src}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for i := first[v+1] - 1; i >= first[v]; i-- {
			stack = append(stack, kids[i])
		}
		n, p := int(s.hops[v])+1, s.pred[v]
		start := tail
		if p < 0 || kids[first[p]] == v {
			start -= n - 1
		} else {
			copy(buf[start:], routes[p].Path)
		}
		tail = start + n
		r := &routes[v]
		r.Destination, r.Cost, r.Path = g.addrs[v], s.dist[v], buf[start:tail:tail]
		r.Path[n-1] = r.Destination
		switch p {
		case -1:
			r.NextHop = r.Destination
		case s.src:
			r.NextHop, r.Link = r.Destination, g.ids[s.via[v]]
		default:
			r.NextHop, r.Link = routes[p].NextHop, routes[p].Link
		}
	}
	return Table{index: g.index, routes: routes}
}

// children returns the tree of best paths as adjacency lists: the children
// of node p are kids[first[p]:first[p+1]], in index order.
func (s *search) children() (first, kids []int32) {
	first = make([]int32, len(s.pred)+2)
	for _, p := range s.pred {
		if p >= 0 {
			first[p+2]++
		}
	}
	for i := 2; i < len(first); i++ {
		first[i] += first[i-1]
	}
	kids = make([]int32, first[len(first)-1])
	for v, p := range s.pred {
		if p >= 0 {
			kids[first[p+1]] = int32(v)
			first[p+1]++
		}
	}
	return first[:len(first)-1], kids
}

// pathsSize returns the length of the buffer that table fills: one
// address for the source and for each first child, a whole path for every
// other child.
func (s *search) pathsSize(first, kids []int32) int {
	size := 1
	for p := range len(first) - 1 {
		for i := first[p]; i < first[p+1]; i++ {
			if i == first[p] {
				size++
			} else {
				size += int(s.hops[kids[i]]) + 1
			}
		}
	}
	return size
}

// Positions in nodeHeap.pos of nodes outside the heap.
const (
	unseen  = -1 // not reached yet
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

// tableOf makes a table of routes, as ShortestPaths would return them.
func tableOf(routes []Route) Table {
	sort.Slice(routes, func(i, j int) bool { return routes[i].Destination < routes[j].Destination })
	t := Table{index: make(map[Address]int32, len(routes)), routes: routes}
	for i, r := range routes {
		t.index[r.Destination] = int32(i)
	}
	return t
}
