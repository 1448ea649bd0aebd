package router

import (
	"cmp"
	"math"
	"slices"
)

// Summary is what a border broker of a unit says of it to the brokers
// that see the unit as one complex node: the cost, inside the unit, from
// the border to every broker of the unit it reaches without leaving it
// (the unit's other borders among them). Every border of a unit
// summarises it, so a broker outside knows where the unit can be entered,
// what crossing it between two borders costs, and what reaching each of
// its brokers costs from each border, as OSPF's area border routers
// announce their cost to each destination of their area and PNNI's
// complex nodes their transit costs between border ports.
//
// A summary is announced within the unit's parent (Unit.Cluster()): the
// brokers that see the unit beside their own, and the brokers inside it,
// which use it to reach the parts of a unit that is split inside. It
// replaces whole the origin's previous summary of the unit.
type Summary struct {
	Origin Address // a broker of Unit with a link out of it
	Unit   Address // a unit holding Origin, not the root
	Dests  []Dest  // by address; Origin is not listed
}

// Dest is one broker a summary reaches, and what reaching it costs on
// each profile (+Inf on a profile that does not reach it).
type Dest struct {
	Broker Address
	Costs  []float64
	// Delay is the delay distribution of the way to Broker on the first
	// profile's path, its hops convolved; empty when some hop of it is
	// not measured.
	Delay Histogram
}

// ComposeDelays gives each broker of s, one of self's summaries, the
// delay distribution of the way to it on the first profile's path inside
// the unit, its hops convolved, compacted to SummaryBuckets for sending,
// and returns the distributions whole, by broker (empty for one not
// reached), for Rules.SummaryDelayDue to compare with later ones.
// Summaries leaves them out: composing the way to every broker of a unit
// costs far more than pricing it, and a summary is computed after every
// change of the map but announced only when its costs moved enough (or
// its distributions did, with contracts; or at the refresh).
func (m *BNM) ComposeDelays(s *Summary) []Histogram {
	g := m.graph()
	src, _ := m.index.lookup(m.self)
	search := newSearchIn(g, 0, src, &m.scratch)
	search.scope = &s.Unit
	search.settle()
	tr := search.tree()
	ct := newContractTrees([]*tree{tr}, Histogram{}) // the ways inside the unit: no ends
	ct.mu.Lock()
	defer ct.mu.Unlock()
	whole := make([]Histogram, len(s.Dests))
	for i, d := range s.Dests {
		if v, ok := g.index.lookup(d.Broker); ok && tr.reached(v) {
			whole[i] = ct.dist(0, v)
			s.Dests[i].Delay = whole[i].Compact(SummaryBuckets)
		}
	}
	return whole
}

// Summaries computes what self announces as a border: one summary of each
// unit self belongs to and has a link out of (its cluster, the units
// above it, not the root), from its map restricted to the unit: the links
// inside it and the summaries of the smaller units inside it. A summary of
// the unit itself or of a larger one is never used, so that no summary is
// built on another that may be built on it. A unit self reaches nothing
// of has an empty summary, which withdraws the previous one.
func (m *BNM) Summaries() []Summary {
	units := m.bordered()
	if len(units) == 0 {
		return nil
	}
	g := m.graph()
	src, _ := m.index.lookup(m.self)
	out := make([]Summary, 0, len(units))
	costs := make([][]float64, m.profiles)
	for _, u := range units {
		for p := range m.profiles {
			s := newSearchIn(g, p, src, &m.scratch)
			s.scope = &u
			s.settle()
			costs[p] = s.cost
		}
		sum := Summary{Origin: m.self, Unit: u}
		for v, a := range g.addrs {
			if int32(v) == src || !a.Within(u) {
				continue
			}
			d := Dest{Broker: a, Costs: make([]float64, m.profiles)}
			reached := false
			for p := range m.profiles {
				d.Costs[p] = costs[p][v]
				reached = reached || !math.IsInf(d.Costs[p], 1)
			}
			if reached {
				sum.Dests = append(sum.Dests, d)
			}
		}
		slices.SortFunc(sum.Dests, func(x, y Dest) int { return cmp.Compare(x.Broker, y.Broker) })
		out = append(out, sum)
	}
	return out
}

// bordered lists the units self has a link out of, smallest first.
func (m *BNM) bordered() []Address {
	var out []Address
	for u := m.self.Cluster(); u != ""; u = u.Cluster() {
		if m.linksOut(u) {
			out = append(out, u)
		}
	}
	return out
}

// linksOut reports whether self announces a link to a broker outside u.
func (m *BNM) linksOut(u Address) bool {
	for k, links := range m.ann {
		if k.origin != m.self {
			continue
		}
		for _, l := range links {
			if !l.Peer.Within(u) {
				return true
			}
		}
	}
	return false
}
