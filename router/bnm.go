package router

import (
	"maps"
	"math"
	"slices"
	"strings"
)

// The Broker Network Map (BNM) of one broker: what every broker whose
// announcements reach it says, seen through the hierarchy.
//
// A broker hears the links of every unit it belongs to (a link is
// announced within the smallest unit holding both its ends, see
// CommonUnit), so its map holds its own cluster in full and, above it, the
// links that join the units beside its own. It does not see inside those
// units; it knows each as a complex node, from the summaries of its border
// brokers (see Summary): the way, inside the unit, from each border to
// every broker of the unit. A route enters and leaves a unit where its
// cheapest path does, and its cost is what that path costs. A unit split
// inside is seen as its parts: a border summarises only the brokers it
// reaches without leaving the unit, and what a broker holds from the
// other part of one of its own units, which that part can no longer
// refresh, is left out (see trust.go).

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
	// Standby marks a link that is down (+Inf costs) but still connected:
	// its monitor declared it down, or damping holds it down, and its
	// connection is open. Routes take it only where no link that is up
	// reaches (see StandbyCost), so that a link wrongly judged dead, or
	// dying, still carries what nothing else can.
	Standby bool
	// Delay is the one-way delay distribution the owner measures towards
	// Peer, its missing mass the loss; empty while none is measured.
	Delay Histogram
}

type annKey struct{ origin, unit Address }

// StandbyCost is what crossing a link in standby costs, on every profile
// and in the contracts' searches: more than any path of links that are up
// can cost, so that a route takes the fewest links in standby it can, and
// none where it can do without.
const StandbyCost = 1e9

// standbyOrUp reports whether an end of a link offers it to routes: up (a
// finite cost on some profile) or in standby.
func (l *AnnouncedLink) standbyOrUp() bool { return l.Standby || l.finite() }

// BNM is one broker's network map. It is not safe for concurrent use; the
// tables it computes are.
type BNM struct {
	self     Address
	profiles int
	margin   float64
	ann      map[annKey][]AnnouncedLink
	sum      map[annKey]*summary
	// Nodes are numbered once and for all, so that the routes held from
	// one computation to the next name the same nodes.
	names []Address
	index *nodeIndex
	depth []uint8 // per node, the depth of the smallest of self's units holding it (see trust)
	held  []*tree // per profile: the routes shown last
	// contracts are the contracts' routes computed last, which the next
	// computation's hold.
	contracts []*contractRoutes
	// ends is the delay every contract path adds at its two ends (see
	// SetEnds); empty: none.
	ends Histogram
	// What arcs cross are numbered once and for all too, so that a held
	// route's arcs are known from one graph to the next.
	refs     []arcRef
	refIndex map[arcRef]int32
	g        *Graph // the graph of what the map holds now; nil when it changed
	// The summary arcs of g, kept while no summary changes (see
	// addSummaries).
	sumFirst []int32
	sums     []*summaryArcs
	scratch  scratch
}

// summary is a Summary with its arcs ready for the graph.
type summary struct {
	Summary
	arcs summaryArcs
}

// NewBNM returns the empty map of broker self, for the given number of
// cost profiles. A route is held until another path is cheaper by margin
// (a fraction of the cost; 0 takes the cheapest path every time).
func NewBNM(self Address, profiles int, margin float64) *BNM {
	m := &BNM{self: self, profiles: profiles, margin: margin,
		ann: make(map[annKey][]AnnouncedLink), sum: make(map[annKey]*summary),
		index: &nodeIndex{}, held: make([]*tree, profiles), refIndex: map[arcRef]int32{}}
	m.intern([]Address{self})
	return m
}

// Set replaces what a.Origin said about its links in a.Unit.
func (m *BNM) Set(a Announcement) {
	m.g = nil
	k := annKey{a.Origin, a.Unit}
	if len(a.Links) == 0 {
		delete(m.ann, k)
		return
	}
	names := []Address{a.Origin}
	for _, l := range a.Links {
		names = append(names, l.Peer)
		m.ref(arcRef{link: l.ID})
	}
	m.intern(names)
	m.ann[k] = a.Links
}

// ref numbers what an arc crosses.
func (m *BNM) ref(r arcRef) int32 {
	if i, ok := m.refIndex[r]; ok {
		return i
	}
	m.refs = append(m.refs, r)
	m.refIndex[r] = int32(len(m.refs) - 1)
	return int32(len(m.refs) - 1)
}

// SetSummary replaces what s.Origin said about unit s.Unit.
func (m *BNM) SetSummary(s Summary) {
	m.g, m.sumFirst = nil, nil
	k := annKey{s.Origin, s.Unit}
	if len(s.Dests) == 0 {
		delete(m.sum, k)
		return
	}
	names := make([]Address, 0, len(s.Dests)+1)
	names = append(names, s.Origin)
	for _, d := range s.Dests {
		names = append(names, d.Broker)
	}
	m.intern(names)
	x := &summary{Summary: s, arcs: summaryArcs{ref: m.ref(arcRef{unit: s.Unit}), costs: make([][]float64, m.profiles+delayWeights),
		depth: uint8(min(s.Unit.Depth(), 255)), own: m.self.Within(s.Unit)}}
	from, _ := m.index.lookup(s.Origin)
	for p := range x.arcs.costs {
		x.arcs.costs[p] = make([]float64, 0, len(s.Dests))
	}
	for _, d := range s.Dests {
		v, _ := m.index.lookup(d.Broker)
		if v == from {
			continue
		}
		x.arcs.dests = append(x.arcs.dests, v)
		x.arcs.delays = append(x.arcs.delays, d.Delay)
		for p := range m.profiles {
			x.arcs.costs[p] = append(x.arcs.costs[p], costAt(d.Costs, p))
		}
		mean, tail := weightsOf(d.Delay)
		if costAt(d.Costs, 0) >= StandbyCost {
			// The way inside the unit crosses a link in standby.
			mean, tail = mean+StandbyCost, tail+StandbyCost
		}
		x.arcs.costs[m.profiles] = append(x.arcs.costs[m.profiles], mean)
		x.arcs.costs[m.profiles+1] = append(x.arcs.costs[m.profiles+1], tail)
	}
	m.sum[k] = x
}

// intern numbers the names not numbered yet.
func (m *BNM) intern(names []Address) {
	var fresh []Address
	var seen map[Address]bool
	for _, a := range names {
		if _, ok := m.index.lookup(a); ok || seen[a] {
			continue
		}
		if seen == nil {
			seen = map[Address]bool{}
		}
		seen[a] = true
		fresh = append(fresh, a)
	}
	if len(fresh) > 0 {
		m.index = m.index.with(fresh, int32(len(m.names)))
		m.names = append(m.names, fresh...)
		top := uint8(max(m.self.Depth()-1, 0))
		for _, a := range fresh {
			m.depth = append(m.depth, commonDepth(a, m.self, top))
		}
	}
}

// nodeIndex numbers addresses. It is never changed once made, so that
// tables handed out can read it while the map grows: adding names makes a
// new index, which shares the bulk of the old one (base) and copies only
// the names added since it was last rebuilt (recent), so that adding a
// name costs little on average however many there are.
type nodeIndex struct {
	base, recent map[Address]int32
}

func (x *nodeIndex) lookup(a Address) (int32, bool) {
	if i, ok := x.base[a]; ok {
		return i, true
	}
	i, ok := x.recent[a]
	return i, ok
}

// with returns the index with names numbered from next on.
func (x *nodeIndex) with(names []Address, next int32) *nodeIndex {
	out := &nodeIndex{base: x.base}
	var into map[Address]int32
	if len(x.recent)+len(names) > len(x.base)/4+64 {
		out.base = make(map[Address]int32, len(x.base)+len(x.recent)+len(names))
		maps.Copy(out.base, x.base)
		maps.Copy(out.base, x.recent)
		into = out.base
	} else {
		out.recent = make(map[Address]int32, len(x.recent)+len(names))
		maps.Copy(out.recent, x.recent)
		into = out.recent
	}
	for i, a := range names {
		into[a] = next + int32(i)
	}
	return out
}

// Forget drops everything origin said.
func (m *BNM) Forget(origin Address) {
	m.g, m.sumFirst = nil, nil
	for k := range m.ann {
		if k.origin == origin {
			delete(m.ann, k)
		}
	}
	for k := range m.sum {
		if k.origin == origin {
			delete(m.sum, k)
		}
	}
}

// Origins lists the brokers the map has heard from.
func (m *BNM) Origins() []Address {
	seen := map[Address]bool{}
	for k := range m.ann {
		seen[k.origin] = true
	}
	for k := range m.sum {
		seen[k.origin] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// graph builds the map's graph, every profile at once: one arc each way
// of every link whose two ends announce it with each other as peer (so
// that a broker that died, and can no longer withdraw its links, drops
// out at once), priced at the larger of the two ends' prices, or at
// StandbyCost when one end has it in standby and the other up or in
// standby too; and the summary arcs of every border but self.
func (m *BNM) graph() *Graph {
	if m.g == nil {
		m.g = m.buildGraph()
	}
	return m.g
}

func (m *BNM) buildGraph() *Graph {
	gb := graphBuilder{refs: m.refs[:len(m.refs):len(m.refs)], refIndex: m.refIndex}
	gb.init(m.names[:len(m.names):len(m.names)], m.index, m.profiles+delayWeights)
	type end struct {
		origin Address
		l      *AnnouncedLink
	}
	byID := make(map[string][2]end, len(m.ann))
	for _, k := range sortedKeys(m.ann) {
		links := m.ann[k]
		for i := range links {
			e := byID[links[i].ID]
			if e[0].l == nil {
				e[0] = end{k.origin, &links[i]}
			} else {
				e[1] = end{k.origin, &links[i]}
			}
			byID[links[i].ID] = e
		}
	}
	costs := make([]float64, m.profiles+delayWeights)
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		a, b := byID[id][0], byID[id][1]
		if b.l == nil || a.l.Peer != b.origin || b.l.Peer != a.origin || a.origin == b.origin {
			continue
		}
		for p := range m.profiles {
			costs[p] = math.Max(costAt(a.l.Costs, p), costAt(b.l.Costs, p))
		}
		ref := gb.ref(arcRef{link: id})
		x, _ := m.index.lookup(a.origin)
		y, _ := m.index.lookup(b.origin)
		// Each direction is priced on its own measured delays, for the
		// searches that find contracts' candidate paths.
		down := !usableCost(costs[0])
		standby := down && a.l.standbyOrUp() && b.l.standbyOrUp()
		if standby {
			for p := range m.profiles {
				costs[p] = StandbyCost
			}
		}
		for i, e := range [2]end{a, b} {
			costs[m.profiles], costs[m.profiles+1] = weightsOf(e.l.Delay)
			switch {
			case standby:
				costs[m.profiles], costs[m.profiles+1] = costs[m.profiles]+StandbyCost, costs[m.profiles+1]+StandbyCost
			case down:
				costs[m.profiles], costs[m.profiles+1] = math.Inf(1), math.Inf(1)
			}
			if i == 0 {
				gb.add(x, y, ref, costs, e.l.Delay)
			} else {
				gb.add(y, x, ref, costs, e.l.Delay)
			}
		}
	}
	g := gb.build()
	m.addSummaries(g)
	m.trust(g)
	return g
}

// addSummaries gives g the summary arcs of every border but self, each
// border's by unit. They are worked out again only when a summary
// changed: a link's new cost leaves them as they are.
func (m *BNM) addSummaries(g *Graph) {
	if m.sumFirst == nil {
		m.sumFirst, m.sums = m.summaryArcs()
	}
	// Nodes numbered since have no summary.
	for len(m.sumFirst) < len(g.addrs)+1 {
		m.sumFirst = append(m.sumFirst, m.sumFirst[len(m.sumFirst)-1])
	}
	g.sumFirst, g.sums = m.sumFirst[:len(g.addrs)+1], m.sums
}

// summaryArcs lays out the summary arcs by border.
func (m *BNM) summaryArcs() ([]int32, []*summaryArcs) {
	first := make([]int32, len(m.names)+1)
	type sum struct {
		from int32
		arcs *summaryArcs
	}
	var sums []sum
	for _, k := range sortedKeys(m.sum) {
		if k.origin == m.self {
			continue
		}
		from, _ := m.index.lookup(k.origin)
		sums = append(sums, sum{from, &m.sum[k].arcs})
		first[from+1]++
	}
	// Stable: a border's summaries stay in unit order.
	slices.SortStableFunc(sums, func(x, y sum) int { return int(x.from - y.from) })
	for i := 1; i < len(first); i++ {
		first[i] += first[i-1]
	}
	out := make([]*summaryArcs, len(sums))
	for i, s := range sums {
		out[i] = s.arcs
	}
	return first, out
}

func sortedKeys[V any](m map[annKey]V) []annKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(x, y annKey) int {
		if c := strings.Compare(string(x.origin), string(y.origin)); c != 0 {
			return c
		}
		return strings.Compare(string(x.unit), string(y.unit))
	})
	return keys
}

// Tables computes self's routes for every profile. The routes it shows
// are held within the map's margin (see hold.go); the routes of each
// computation are held by the next.
func (m *BNM) Tables() []Table {
	g := m.graph()
	src, _ := m.index.lookup(m.self)
	tables := make([]Table, m.profiles)
	for p := range tables {
		bs := newSearchIn(g, p, src, &m.scratch)
		bs.settle()
		base := bs.tree()
		tables[p] = Table{held: base, base: base}
		if m.margin > 0 && m.held[p] != nil && !bs.same(m.held[p]) {
			hs, differs := bs.hold(m.held[p], m.margin)
			tables[p].held = hs.treeWith(differs)
		}
		m.held[p] = tables[p].held
	}
	return tables
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
	for k, s := range m.sum {
		n += len(k.origin) + len(k.unit) + 64
		for _, d := range s.Dests {
			n += len(d.Broker) + 8*len(d.Costs) + 40 + 4
		}
	}
	for _, a := range m.names {
		n += 2*len(a) + 48
	}
	return n
}

// LinkUp reports whether link id carries routes in the map: both its ends
// announce it, each with the other as peer, at a finite cost on some
// profile.
func (m *BNM) LinkUp(id string) bool {
	a, b, ok := m.linkEnds(id)
	return ok && a.finite() && b.finite()
}

// LinkStandby reports whether link id is in standby in the map: both its
// ends announce it, each with the other as peer, one in standby and the
// other up or in standby, so that routes take it where nothing else
// reaches.
func (m *BNM) LinkStandby(id string) bool {
	a, b, ok := m.linkEnds(id)
	return ok && (a.Standby || b.Standby) && a.standbyOrUp() && b.standbyOrUp()
}

// finite reports whether some profile prices l at a finite cost.
func (l *AnnouncedLink) finite() bool {
	for _, c := range l.Costs {
		if usableCost(c) {
			return true
		}
	}
	return false
}

// linkEnds returns what the two ends of link id announce of it, and
// whether both do, each with the other as peer.
func (m *BNM) linkEnds(id string) (a, b *AnnouncedLink, ok bool) {
	var ends []*AnnouncedLink
	var names []Address
	for k, links := range m.ann {
		for i := range links {
			if links[i].ID == id {
				ends = append(ends, &links[i])
				names = append(names, k.origin, links[i].Peer)
			}
		}
	}
	if len(ends) != 2 || names[0] != names[3] || names[1] != names[2] {
		return nil, nil, false
	}
	return ends[0], ends[1], true
}
