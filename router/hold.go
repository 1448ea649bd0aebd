package router

import "slices"

// Routes that hold still. A broker keeps the route it held to a broker
// while that route's path still exists and no other path is cheaper by
// more than the margin (a fraction of the held path's cost): a route
// moves only to a path cheaper by the margin, and at once when its own
// path goes down. What a route reports is always what its path costs now.
//
// Held routes can differ from one broker to the next (they depend on
// what each has seen), so only the broker where a message enters the
// network follows its held route; every other broker passes messages on
// along the plain cheapest paths, on which brokers sharing a map agree.
// While a held route differs from the cheapest, the entering broker pins
// its whole path with exits so that the brokers after it follow it.

// The routes held are the tree of routes shown by the last computation
// (see BNM.Tables): its graph says what each node's last arc crossed.

// heldArc returns the last arc of v's path in t: its predecessor (-1 for
// none), what it crosses, and v's place in a summary's dests.
func (t *tree) heldArc(v int32) (pred, ref, pos int32) {
	if t == nil || int(v) >= len(t.pred) || t.pred[v] < 0 {
		return -1, 0, 0
	}
	return t.pred[v], t.g.refOf(t.via[v]), t.pos[v]
}

// same reports whether every node's path in s (a settled search) ends
// with the arc its held path ended with: then the routes held are the
// cheapest ones.
func (s *search) same(h *tree) bool {
	for _, v := range s.order {
		hp, ref, _ := h.heldArc(v)
		if hp != s.pred[v] || s.pred[v] >= 0 && ref != s.g.refOf(s.via[v]) {
			return false
		}
	}
	return true
}

// hold chooses the routes to show from the cheapest ones, those of the
// settled search s, and the routes held before. Nodes are decided in the
// order s settled them, cheapest first, so that a path's predecessor is
// decided before it: a node keeps its held route if the predecessor is
// decided and the route within the margin; otherwise it takes the
// cheapest path's last arc, after its predecessor's chosen path. Either
// way no path costs more than 1/(1 - margin) times the cheapest.
//
// It returns the choice as a search (sharing s's order and graph), and
// which nodes' paths differ from the cheapest.
func (s *search) hold(h *tree, margin float64) (*search, []bool) {
	g := s.g
	n := len(g.addrs)
	c := &search{g: g, profile: s.profile, costs: s.costs, src: s.src, order: s.order,
		cost: make([]float64, n), hops: make([]int32, n), pred: make([]int32, n), via: make([]int32, n), pos: make([]int32, n)}
	differs := make([]bool, n)
	decided := make([]bool, n)
	for i := range n {
		c.cost[i], c.pred[i], c.via[i] = s.cost[i], -1, -1
	}
	decided[s.src] = true
	for _, v := range s.order {
		u := s.pred[v]
		if u < 0 {
			continue
		}
		if hp, ref, pos := h.heldArc(v); hp >= 0 && decided[hp] {
			if via, pos, cost, ok := g.arcTo(hp, v, ref, pos, s.profile); ok && (1-margin)*(c.cost[hp]+cost) <= s.cost[v] {
				c.take(v, hp, via, pos, cost)
				differs[v] = differs[hp] || hp != u || via != s.via[v]
				decided[v] = true
				continue
			}
		}
		c.take(v, u, s.via[v], s.pos[v], g.arcCost(s.via[v], s.pos[v], s.profile))
		differs[v] = differs[u]
		decided[v] = true
	}
	return c, differs
}

// take makes the arc via (at pos, costing cost) from u the last of v's
// path.
func (s *search) take(v, u, via, pos int32, cost float64) {
	s.pred[v], s.via[v], s.pos[v] = u, via, pos
	s.cost[v], s.hops[v] = s.cost[u]+cost, s.hops[u]+1
}

// arcCost is what the arc via (at pos, for a summary arc) costs on the
// profile.
func (g *Graph) arcCost(via, pos int32, profile int) float64 {
	if via >= 0 {
		return g.costs[profile][via]
	}
	return g.sums[-2-via].costs[profile][pos]
}

// arcTo finds the arc from u to v crossing ref, with the place of v in a
// summary's dests as a hint, and returns it, v's place if it is a summary
// arc, and what it costs on the profile; false when there is none or it
// cannot be used.
func (g *Graph) arcTo(u, v, ref, pos int32, profile int) (int32, int32, float64, bool) {
	for k := g.first[u]; k < g.first[u+1]; k++ {
		if g.arcs[k].to == v && g.arcs[k].ref == ref {
			c := g.costs[profile][k]
			return k, -1, c, usableCost(c)
		}
	}
	if g.sumFirst == nil {
		return 0, 0, 0, false
	}
	for j := g.sumFirst[u]; j < g.sumFirst[u+1]; j++ {
		sa := g.sums[j]
		if sa.ref != ref || g.skip != nil && g.skip[j] {
			continue
		}
		if pos < 0 || int(pos) >= len(sa.dests) || sa.dests[pos] != v {
			// The summary changed: find v by address (dests are sorted).
			i, found := slices.BinarySearchFunc(sa.dests, g.addrs[v], func(d int32, a Address) int {
				switch {
				case g.addrs[d] < a:
					return -1
				case g.addrs[d] > a:
					return 1
				}
				return 0
			})
			if !found {
				return 0, 0, 0, false
			}
			pos = int32(i)
		}
		c := sa.costs[profile][pos]
		return summaryVia(int(j)), pos, c, usableCost(c)
	}
	return 0, 0, 0, false
}
