package router

import "math"

// Which records a broker's map takes on trust.
//
// A record announced within a unit (a link within the smallest unit
// holding both its ends, a summary within its unit's parent) is flooded
// over links inside that unit, so it reaches only the part of the unit
// its origin is in. When a unit splits, what a broker holds from the
// other part stops being refreshed: a link there that fails, or a border
// whose way inside changes, is never heard of. Such records are stale by
// construction, and routing on them sends messages to a border for a way
// it no longer has, which it may answer by sending them back: a loop no
// exit breaks when both are brokers of one cluster. So a record counts
// only while its origin is in self's part of its unit (reached from self
// inside the unit, see parts); the other part is seen, as it should be,
// from the summaries of the units around it.
//
// A summary of a unit self belongs to, from a border in self's part of
// it, tells self nothing its own map does not: self reaches the same
// brokers inside the unit itself. It is left out too. Kept, it would make
// brokers of one cluster see different maps (each leaves out its own
// summaries), and a summary announced before its costs last moved (below
// the thresholds, see Rules) or one whose way runs back through self over
// a link that costs nothing would send self's messages to the border,
// which sends them back over its own way: another loop inside a cluster.

// trust drops from g, a graph of m's, the link arcs and summaries that
// self does not take on trust.
func (m *BNM) trust(g *Graph) {
	top := uint8(m.self.Depth() - 1) // the depth of self's cluster
	if top == 0 {
		return // a broker of one label: every record is the root's
	}
	in := m.parts(g, top)
	for u := range int32(len(g.addrs)) {
		for k := g.first[u]; k < g.first[u+1]; k++ {
			v := g.arcs[k].to
			if sd := min(m.depth[u], m.depth[v]); sd > 0 && (in[u] < sd || in[v] < sd) {
				for p := range g.costs {
					g.costs[p][k] = math.Inf(1)
				}
			}
		}
		if g.sumFirst == nil {
			continue
		}
		for j := g.sumFirst[u]; j < g.sumFirst[u+1]; j++ {
			sa := g.sums[j]
			stale := sa.depth > 1 && in[u] < sa.depth-1
			redundant := sa.own && in[u] >= sa.depth
			if stale || redundant {
				if g.skip == nil {
					g.skip = make([]bool, len(g.sums))
				}
				g.skip[j] = true
			}
		}
	}
}

// parts finds self's part of each unit it belongs to: in[v] is the depth
// of the smallest of self's units whose part holds v (v is in self's part
// of every larger one), 0 when none does. A part is what self reaches
// inside the unit, over links and over summaries of the units inside it,
// each counted only if its origin is in self's part of the unit it was
// announced in; so the parts are found from the smallest unit up.
func (m *BNM) parts(g *Graph, top uint8) []uint8 {
	sc := &m.scratch
	n := len(g.addrs)
	if cap(sc.in) < n {
		sc.in, sc.mark = make([]uint8, n), make([]uint8, n)
	}
	in, mark := sc.in[:n], sc.mark[:n]
	clear(in)
	clear(mark)
	src, _ := m.index.lookup(m.self)
	reach := func(v int32, level uint8) {
		if mark[v] != level {
			mark[v] = level
			in[v] = max(in[v], level)
			sc.queue = append(sc.queue, v)
		}
	}
	for level := top; level > 0; level-- {
		sc.queue = sc.queue[:0]
		reach(src, level)
		for i := 0; i < len(sc.queue); i++ {
			u := sc.queue[i]
			for k := g.first[u]; k < g.first[u+1]; k++ {
				v := g.arcs[k].to
				sd := min(m.depth[u], m.depth[v]) // the link's unit
				if m.depth[v] >= level && (sd == level || in[u] >= sd && in[v] >= sd) && g.usable(k) {
					reach(v, level)
				}
			}
			if g.sumFirst == nil {
				continue
			}
			for j := g.sumFirst[u]; j < g.sumFirst[u+1]; j++ {
				sa := g.sums[j]
				// Only units inside this one, whose summaries are
				// announced in it or in a unit inside it.
				if sa.depth <= level || sa.depth-1 > level && in[u] < sa.depth-1 {
					continue
				}
				for i, v := range sa.dests {
					if sa.usable(i) {
						reach(v, level)
					}
				}
			}
		}
	}
	return in
}

// usable reports whether link arc k carries routes on some profile.
func (g *Graph) usable(k int32) bool {
	for p := range g.costs {
		if usableCost(g.costs[p][k]) {
			return true
		}
	}
	return false
}

// usable reports whether the summary reaches its i-th dest on some
// profile.
func (sa *summaryArcs) usable(i int) bool {
	for p := range sa.costs {
		if usableCost(sa.costs[p][i]) {
			return true
		}
	}
	return false
}

// commonDepth is how many leading labels a shares with self, at most
// top: the depth of the smallest of self's units that holds a (0: the
// root).
func commonDepth(a, self Address, top uint8) uint8 {
	d := uint8(0)
	for d < top {
		u := self.Unit(int(d) + 1)
		if !a.Within(u) {
			break
		}
		d++
	}
	return d
}
