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
	links, _ := m.links()
	graphs := make([]*Graph, m.profiles)
	for p, l := range links {
		graphs[p] = NewGraph(l)
	}
	return graphs
}

// links returns, per profile, the links self sees, between the nodes that
// stand for their ends, and the two brokers at the ends of each of them.
func (m *BNM) links() ([][]Link, map[string][2]Address) {
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
	owners := make(map[string][2]Address, len(byID))
	for id, e := range byID {
		a, b := e[0], e[1]
		if a == nil || b == nil || a.peer != b.origin || b.peer != a.origin {
			continue
		}
		ra, rb := Rep(m.self, a.origin), Rep(m.self, b.origin)
		if ra == rb {
			continue
		}
		owners[id] = [2]Address{a.origin, b.origin}
		for p := range perProfile {
			c := math.Max(costAt(a.costs, p), costAt(b.costs, p))
			perProfile[p] = append(perProfile[p], Link{ID: id, A: ra, B: rb, Cost: c, Up: !math.IsInf(c, 1)})
		}
	}
	return perProfile, owners
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
//
// A map sees a unit beside its own as one node that costs nothing to
// cross, and the brokers inside that unit see the rest of the network
// differently: left to itself, a broker in a unit the route crosses may
// send a message back where it came from (a neighbour unit, free to cross
// in its own map, looks like the shorter way). So a route names where it
// leaves each unit it crosses (Exits), and messages on it are steered
// through those exits: inside a unit, towards the broker that owns the
// exit link, which sends them over it. Routes of brokers of one cluster
// agree (they share one map), so brokers of self's cluster on the path
// need no such steering.
//
// A unit may be split inside: a link down can leave part of a cluster
// reachable only through a neighbour cluster. Then the route leaves the
// unit it serves and comes back in, and the neighbour's exit, listed like
// any other, brings it back on the right side of the split.
func (m *BNM) Tables() []Table {
	scopes := m.scopes()
	tables := make([]Table, m.profiles)
	perProfile, owners := m.links()
	for p, links := range perProfile {
		perScope := make([]Table, len(scopes))
		graphs := make([]*Graph, len(scopes))
		for i, scope := range scopes {
			var in []Link
			for _, l := range links {
				if l.A.Within(scope) && l.B.Within(scope) {
					in = append(in, l)
				}
			}
			graphs[i] = NewGraph(in)
			perScope[i] = ShortestPaths(graphs[i], m.self)
		}
		tables[p] = m.pick(perScope, graphs, scopes, owners)
	}
	return tables
}

// pick takes each destination's route from the smallest scope that
// reaches it (scopes smaller than the unit the destination shares with self
// do not hold it), and lists where it leaves the units it crosses.
func (m *BNM) pick(perScope []Table, graphs []*Graph, scopes []Address, owners map[string][2]Address) Table {
	whole := perScope[len(perScope)-1]
	var routes []Route
	for _, r := range whole.Routes() {
		for i := range scopes {
			if sr, ok := perScope[i].Lookup(r.Destination); ok {
				r = sr
				r.Exits = exits(m.self, r.Path, graphs[i], owners)
				break
			}
		}
		routes = append(routes, r)
	}
	return tableOf(routes)
}

// exits lists where path, a path of self's map over graph g, leaves each
// unit it crosses.
func exits(self Address, path []Address, g *Graph, owners map[string][2]Address) []Exit {
	var out []Exit
	for k := 1; k+1 < len(path); k++ {
		u := path[k]
		if u.Cluster() == self.Cluster() {
			continue // a broker of self's cluster
		}
		id, ok := g.LinkBetween(u, path[k+1])
		if !ok {
			return nil // not a path of g: cannot happen
		}
		for _, o := range owners[id] {
			if o.Within(u) {
				out = append(out, Exit{Broker: o, Link: id})
				break
			}
		}
	}
	return out
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
