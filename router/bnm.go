package router

import (
	"math"
	"sort"
)

// The Broker Network Map (BNM) of one broker: what every broker whose
// announcements reach it says about its links, seen through the hierarchy.
// A broker hears the links of every unit it belongs to (a link is announced
// within the smallest unit holding both its ends, see CommonUnit), so its
// map holds its own cluster in full and, above it, the units beside its own
// as single nodes joined by the links that cross between them.

// Announcement is what one broker says about its links within one unit.
type Announcement struct {
	Origin Address
	Unit   Address // the scope: CommonUnit(Origin, Peer) of every link in it
	Links  []AnnouncedLink
}

// AnnouncedLink is one link as its owner prices it: one cost per profile,
// in the map's profile order, +Inf while the link is down.
type AnnouncedLink struct {
	ID    string
	Peer  Address
	Costs []float64
}

type annKey struct{ origin, unit Address }

// BNM is one broker's network map. It is not safe for concurrent use.
type BNM struct {
	self     Address
	profiles int
	ann      map[annKey][]AnnouncedLink
}

// NewBNM returns the empty map of broker self, for the given number of
// cost profiles.
func NewBNM(self Address, profiles int) *BNM {
	return &BNM{self: self, profiles: profiles, ann: make(map[annKey][]AnnouncedLink)}
}

// Set replaces what a.Origin said about its links in a.Unit.
func (m *BNM) Set(a Announcement) {
	k := annKey{a.Origin, a.Unit}
	if len(a.Links) == 0 {
		delete(m.ann, k)
		return
	}
	m.ann[k] = a.Links
}

// Forget drops everything origin said.
func (m *BNM) Forget(origin Address) {
	for k := range m.ann {
		if k.origin == origin {
			delete(m.ann, k)
		}
	}
}

// Origins lists the brokers the map has heard from.
func (m *BNM) Origins() []Address {
	seen := map[Address]bool{}
	var out []Address
	for k := range m.ann {
		if !seen[k.origin] {
			seen[k.origin] = true
			out = append(out, k.origin)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// end is one end's announcement of a link.
type end struct {
	origin, peer Address
	costs        []float64
}

// Graphs builds one graph per profile, over the nodes self sees (Rep). A
// link counts only when both its ends announce it with each other as peer,
// so that a broker that died, and can no longer withdraw its links, drops
// out at once; it costs the larger of the two ends' prices. Links inside a
// unit self sees as one node are left out.
func (m *BNM) Graphs() []*Graph {
	links := m.links()
	graphs := make([]*Graph, m.profiles)
	for p, l := range links {
		graphs[p] = NewGraph(l)
	}
	return graphs
}

// links returns, per profile, the links self sees, between the nodes that
// stand for their ends.
func (m *BNM) links() [][]Link {
	byID := make(map[string][2]*end, len(m.ann))
	for k, links := range m.ann {
		for i := range links {
			l := &links[i]
			e := byID[l.ID]
			x := &end{origin: k.origin, peer: l.Peer, costs: l.Costs}
			if e[0] == nil {
				e[0] = x
			} else {
				e[1] = x
			}
			byID[l.ID] = e
		}
	}
	perProfile := make([][]Link, m.profiles)
	for id, e := range byID {
		a, b := e[0], e[1]
		if a == nil || b == nil || a.peer != b.origin || b.peer != a.origin {
			continue
		}
		ra, rb := Rep(m.self, a.origin), Rep(m.self, b.origin)
		if ra == rb {
			continue
		}
		for p := range perProfile {
			c := math.Max(costAt(a.costs, p), costAt(b.costs, p))
			perProfile[p] = append(perProfile[p], Link{ID: id, A: ra, B: rb, Cost: c, Up: !math.IsInf(c, 1)})
		}
	}
	return perProfile
}

// costAt is the cost for profile p, +Inf when the owner gave none (a
// broker configured with fewer profiles).
func costAt(costs []float64, p int) float64 {
	if p < len(costs) {
		return costs[p]
	}
	return math.Inf(1)
}

// Tables computes self's routes for every profile.
//
// A route stays inside the smallest unit that holds both self and its
// destination whenever it can: a broker of self's own cluster is reached
// through the cluster, a sibling cluster through the super-cluster, and so
// on; only a destination unreachable that way is routed through the wider
// network. The map prices a unit it sees as one node as if crossing it
// were free, which is only safe while routes do not leave the unit they
// serve: a broker would otherwise send a message for its own cluster out
// through a neighbour unit that, from inside, routes it straight back.
func (m *BNM) Tables() []Table {
	scopes := m.scopes()
	tables := make([]Table, m.profiles)
	for p, links := range m.links() {
		perScope := make([]Table, len(scopes))
		for i, scope := range scopes {
			var in []Link
			for _, l := range links {
				if l.A.Within(scope) && l.B.Within(scope) || scope == "" {
					in = append(in, l)
				}
			}
			perScope[i] = ShortestPaths(NewGraph(in), m.self)
		}
		tables[p] = m.pick(perScope, scopes)
	}
	return tables
}

// pick takes each destination's route from the smallest scope that
// reaches it (scopes smaller than the unit the destination shares with self
// do not hold it).
func (m *BNM) pick(perScope []Table, scopes []Address) Table {
	whole := perScope[len(perScope)-1]
	var routes []Route
	for _, r := range whole.Routes() {
		for i := range scopes {
			if sr, ok := perScope[i].Lookup(r.Destination); ok {
				r = sr
				break
			}
		}
		routes = append(routes, r)
	}
	return tableOf(routes)
}

// scopes lists the units that hold self, smallest first.
func (m *BNM) scopes() []Address {
	var out []Address
	for u := m.self.Cluster(); ; u = u.Cluster() {
		out = append(out, u)
		if u == "" {
			return out
		}
	}
}

// Bytes estimates the memory the map holds, for sizing.
func (m *BNM) Bytes() int {
	n := 0
	for k, links := range m.ann {
		n += len(k.origin) + len(k.unit) + 64
		for _, l := range links {
			n += len(l.ID) + len(l.Peer) + 8*len(l.Costs) + 64
		}
	}
	return n
}
