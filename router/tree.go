package router

import "slices"

// tree is the result of one search: the best path found to every node,
// as predecessors, and what forwarding needs of each.
type tree struct {
	g     *Graph
	src   int32
	cost  []float64
	hops  []int32
	pred  []int32
	via   []int32
	pos   []int32
	first []int32 // the path's first arc, a link; -1 for the source and the unreachable
	// The exits of each node's path are lists[exits[v]]: paths share
	// their lists.
	exits []int32
	lists [][]Exit
}

// Way is how a broker sends a message on towards one broker: the link it
// sends it over and the exits it steers it through (see Route.Exits).
type Way struct {
	Link  string
	Exits []Exit
}

// reached reports whether v has a path (the source has the empty one).
func (t *tree) reached(v int32) bool { return v == t.src || t.pred[v] >= 0 }

// route builds the route to v, a node reached.
func (t *tree) route(v int32) Route {
	g := t.g
	r := Route{Destination: g.addrs[v], NextHop: g.addrs[v], Cost: t.cost[v], Exits: t.lists[t.exits[v]]}
	r.Path = make([]Address, t.hops[v]+1)
	for i, x := len(r.Path)-1, v; i >= 0; i, x = i-1, t.pred[x] {
		r.Path[i] = g.addrs[x]
	}
	if v != t.src {
		first := g.arcs[t.first[v]] // a link: self's own summaries are not in its map
		r.NextHop, r.Link = g.addrs[first.to], g.refs[first.ref].link
	}
	return r
}

// compare says how t's ways differ from o's (trees of one map, whose
// nodes are numbered alike): nodes one reaches and the other does not,
// and nodes both reach over another first link or through other exits.
func (t *tree) compare(o *tree) WayChange {
	var c WayChange
	for v := range int32(max(len(t.pred), len(o.pred))) {
		tr := int(v) < len(t.pred) && t.reached(v) && v != t.src
		or := int(v) < len(o.pred) && o.reached(v) && v != o.src
		switch {
		case tr != or:
			c.Reach = true
		case tr && (t.g.linkOf(t.first[v]) != o.g.linkOf(o.first[v]) || !slices.Equal(t.lists[t.exits[v]], o.lists[o.exits[v]])):
			c.Moved = true
		}
		if c.Reach && c.Moved {
			break
		}
	}
	return c
}

// tree turns the search's result into a tree, with the first arc and the
// exits of every path. A path's exits are the links it leaves brokers of
// other clusters by: brokers of the source's own cluster share its map
// and choose as it does. pinned, when set, marks paths whose every link
// after the first is an exit.
func (s *search) tree() *tree {
	return s.treeWith(nil)
}

func (s *search) treeWith(pinned []bool) *tree {
	g := s.g
	n := len(g.addrs)
	t := &tree{g: g, src: s.src, cost: s.cost, hops: s.hops, pred: s.pred, via: s.via, pos: s.pos,
		first: make([]int32, n), exits: make([]int32, n), lists: [][]Exit{nil}}
	// full holds, for the paths that need it, the exits pinning every link
	// after the first (an index in lists).
	var full []int32
	if pinned != nil {
		full = make([]int32, n)
	}
	cluster := g.addrs[s.src].Cluster()
	for i := range t.first {
		t.first[i] = -1
	}
	add := func(list int32, e Exit) int32 {
		t.lists = append(t.lists, appendExit(t.lists[list], e))
		return int32(len(t.lists) - 1)
	}
	for _, v := range s.order {
		u := s.pred[v]
		if u < 0 {
			continue
		}
		k := s.via[v]
		if u == s.src {
			t.first[v] = k
		} else {
			t.first[v] = t.first[u]
		}
		link := g.linkOf(k)
		out := link != "" && u != s.src
		t.exits[v] = t.exits[u]
		if out && g.addrs[u].Cluster() != cluster {
			t.exits[v] = add(t.exits[u], Exit{Broker: g.addrs[u], Link: link})
		}
		if full != nil {
			full[v] = full[u]
			if out {
				full[v] = add(full[u], Exit{Broker: g.addrs[u], Link: link})
			}
			if pinned[v] {
				t.exits[v] = full[v]
			}
		}
	}
	return t
}

// appendExit returns exits with e added, never sharing the added element
// with another path.
func appendExit(exits []Exit, e Exit) []Exit {
	out := make([]Exit, len(exits)+1)
	copy(out, exits)
	out[len(exits)] = e
	return out
}
