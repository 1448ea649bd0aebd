package router

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"testing"
	"time"
)

// sim is a whole network as its brokers' maps see it once every
// announcement has travelled: each broker's links announced within their
// unit, each border's summaries within their unit's parent, each flooded
// over up links between brokers of the scope, as brokers flood them.
type sim struct {
	links  []Link
	ends   map[string]Link
	bnms   map[Address]*BNM
	tables map[Address]Table
	parts  map[Address]map[Address]int // scope -> broker -> its part of the scope
	maps   map[Address]map[int][]*BNM  // scope -> part -> the maps of its brokers
	// Only the brokers asked for need every record; a border needs only
	// what its summaries are built from: the records of the units it
	// borders. borders lists those units, smallest first.
	all     map[Address]bool
	borders map[Address][]Address
	// held is the summary each map holds of each border and unit: as
	// brokers do when a link comes up, a map that a summary can reach is
	// brought up to date whether or not the summary changed.
	held map[Address]map[annKey]string
	// rules, when set, say when a border announces its summary again
	// (Rules.SummaryDue, hold-down long past): a summary whose costs moved
	// less than the thresholds is not; announced holds what each border
	// last announced.
	rules     *Rules
	announced map[annKey]Summary
}

// simDelay, when set, gives each link of a simulation its delay
// distribution.
var simDelay func(Link) Histogram

// announce builds every broker's link announcements, each link with one
// cost (and, with simDelay, its distribution), scoped by CommonUnit.
func announce(links []Link) []Announcement {
	type key struct{ o, u Address }
	m := map[key][]AnnouncedLink{}
	for _, l := range links {
		c := l.Cost
		if !l.Up {
			c = math.Inf(1)
		}
		u := CommonUnit(l.A, l.B)
		var d Histogram
		if simDelay != nil {
			d = simDelay(l)
		}
		m[key{l.A, u}] = append(m[key{l.A, u}], AnnouncedLink{ID: l.ID, Peer: l.B, Costs: []float64{c}, Delay: d})
		m[key{l.B, u}] = append(m[key{l.B, u}], AnnouncedLink{ID: l.ID, Peer: l.A, Costs: []float64{c}, Delay: d})
	}
	var out []Announcement
	for k, v := range m {
		out = append(out, Announcement{Origin: k.o, Unit: k.u, Links: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin+out[i].Unit < out[j].Origin+out[j].Unit })
	return out
}

// brokersOf lists the ends of links, sorted.
func brokersOf(links []Link) []Address {
	seen := map[Address]bool{}
	for _, l := range links {
		seen[l.A], seen[l.B] = true, true
	}
	return slices.Sorted(maps.Keys(seen))
}

// reach lists the brokers with a map that a record from origin flooded
// within scope reaches: those joined to it by up links between brokers of
// the scope.
func (s *sim) reach(origin, scope Address, unit Address, summary bool) []*BNM {
	var out []*BNM
	for _, m := range s.flood(origin, scope) {
		if m.self == origin || s.needs(m.self, unit, summary) {
			out = append(out, m)
		}
	}
	return out
}

// needs reports whether broker b needs a record about unit: a summary of
// it, or a link announced within it.
func (s *sim) needs(b, unit Address, summary bool) bool {
	if s.all[b] {
		return true
	}
	for _, v := range s.borders[b] {
		if unit.Within(v) && !(summary && unit == v) {
			return true
		}
	}
	return false
}

// flood lists the maps of the brokers a record from origin flooded within
// scope reaches.
func (s *sim) flood(origin, scope Address) []*BNM {
	parts, ok := s.parts[scope]
	if !ok {
		parts = components(s.links, scope)
		s.parts[scope] = parts
		s.maps[scope] = map[int][]*BNM{}
		for b, m := range s.bnms {
			if p := parts[b]; p != 0 {
				s.maps[scope][p] = append(s.maps[scope][p], m)
			}
		}
	}
	if p := parts[origin]; p != 0 {
		return s.maps[scope][p]
	}
	if m := s.bnms[origin]; m != nil {
		return []*BNM{m}
	}
	return nil
}

// components numbers, from 1, the parts of scope that up links between
// its brokers join.
func components(links []Link, scope Address) map[Address]int {
	adj := map[Address][]Address{}
	for _, l := range links {
		if l.Up && l.A.Within(scope) && l.B.Within(scope) {
			adj[l.A] = append(adj[l.A], l.B)
			adj[l.B] = append(adj[l.B], l.A)
		}
	}
	comp := map[Address]int{}
	n := 0
	for a := range adj {
		if comp[a] != 0 {
			continue
		}
		n++
		comp[a] = n
		stack := []Address{a}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, y := range adj[x] {
				if comp[y] == 0 {
					comp[y] = n
					stack = append(stack, y)
				}
			}
		}
	}
	return comp
}

// simulate builds every broker's map of links and lets the borders'
// summaries travel until none changes. margin is the maps' margin.
func simulate(links []Link, margin float64) *sim {
	return simulateOnly(links, margin, brokersOf(links))
}

// simulateOnly is simulate, keeping only the maps of the brokers named
// and of the borders (whose summaries the others need).
func simulateOnly(links []Link, margin float64, keep []Address) *sim {
	s := &sim{links: links, ends: map[string]Link{}, bnms: map[Address]*BNM{}, tables: map[Address]Table{},
		parts: map[Address]map[Address]int{}, maps: map[Address]map[int][]*BNM{}}
	for _, l := range links {
		s.ends[l.ID] = l
	}
	s.all, s.borders = map[Address]bool{}, map[Address][]Address{}
	for _, a := range keep {
		s.all[a] = true
	}
	for _, l := range links {
		for _, e := range [][2]Address{{l.A, l.B}, {l.B, l.A}} {
			for v := e[0].Cluster(); v != "" && !e[1].Within(v); v = v.Cluster() {
				if !slices.Contains(s.borders[e[0]], v) {
					s.borders[e[0]] = append(s.borders[e[0]], v)
				}
			}
		}
	}
	for _, b := range brokersOf(links) {
		if s.all[b] || len(s.borders[b]) > 0 {
			s.bnms[b] = NewBNM(b, 1, margin)
		}
	}
	s.held, s.announced = map[Address]map[annKey]string{}, map[annKey]Summary{}
	s.update(links)
	return s
}

// update gives the network's links new costs or states, announces them
// again over what the maps hold, and computes fresh tables for the
// brokers asked for. The links must be the same, in the same order.
func (s *sim) update(links []Link) {
	s.links = links
	s.parts, s.maps = map[Address]map[Address]int{}, map[Address]map[int][]*BNM{}
	for _, l := range links {
		s.ends[l.ID] = l
	}
	for _, a := range announce(links) {
		for _, m := range s.reach(a.Origin, a.Unit, a.Unit, false) {
			m.Set(a)
		}
	}
	s.settle()
	s.tables = map[Address]Table{}
	for a := range s.all {
		s.tables[a] = s.bnms[a].Tables()[0]
	}
}

// settle lets summaries travel until none changes.
func (s *sim) settle() {
	for range 16 {
		changed := false
		for _, b := range slices.Sorted(maps.Keys(s.bnms)) {
			for _, sum := range s.bnms[b].Summaries() {
				s.bnms[b].ComposeDelays(&sum)
				k := annKey{sum.Origin, sum.Unit}
				if last, ok := s.announced[k]; ok && s.rules != nil && !s.rules.SummaryDue(&last, time.Time{}, sum, time.Time{}.Add(time.Hour)) {
					sum = last
				}
				s.announced[k] = sum
				text := fmt.Sprint(sum.Dests)
				for _, m := range s.reach(b, sum.Unit.Cluster(), sum.Unit, true) {
					held := s.held[m.self]
					if held == nil {
						held = map[annKey]string{}
						s.held[m.self] = held
					}
					if held[k] != text {
						held[k], changed = text, true
						m.SetSummary(sum)
					}
				}
			}
		}
		if !changed {
			return
		}
	}
	panic("summaries do not settle")
}

// walk follows a message from broker from to broker to the way brokers
// forward it, with Steer. It returns the brokers visited and whether the
// message arrived within 64 hops.
func (s *sim) walk(from, to Address) ([]Address, bool) {
	path, _, ok := s.follow(from, to)
	return path, ok
}

// follow is walk, with the links crossed.
func (s *sim) follow(from, to Address) ([]Address, []string, bool) {
	cur, path := from, []Address{from}
	var exits []Exit
	var ids []string
	for len(path) < 64 {
		if cur == to {
			return path, ids, true
		}
		t, ok := s.tables[cur]
		if !ok {
			t = s.bnms[cur].Tables()[0]
			s.tables[cur] = t
		}
		id, next, err := Steer(t, cur, to, exits, cur == from, func(id string) bool {
			l, ok := s.ends[id]
			return ok && l.Up && (l.A == cur || l.B == cur)
		})
		if err != nil {
			return append(path, Address("("+err.Error()+")")), ids, false
		}
		exits = next
		l, ok := s.ends[id]
		if !ok || !l.Up || (l.A != cur && l.B != cur) {
			return append(path, Address("(bad link "+id+")")), ids, false
		}
		if l.A == cur {
			cur = l.B
		} else {
			cur = l.A
		}
		path, ids = append(path, cur), append(ids, id)
	}
	return path, ids, false
}

// cost is what the links crossed cost.
func (s *sim) cost(ids []string) float64 {
	c := 0.0
	for _, id := range ids {
		c += s.ends[id].Cost
	}
	return c
}

// connected reports which brokers reach each other over up links.
func (s *sim) connected() map[Address]int {
	comp := components(s.links, "")
	for _, a := range brokersOf(s.links) {
		if comp[a] == 0 {
			comp[a] = -len(comp) // alone
		}
	}
	return comp
}

// checkAll follows a message between every two brokers: those connected
// by up links must arrive over the cheapest path, at the cost the
// source's route reports; the others must not be sent round in circles.
// It returns how many pairs failed.
func (s *sim) checkAll(t *testing.T, what string) int {
	t.Helper()
	comp := s.connected()
	whole := NewGraph(s.links)
	failed := 0
	for _, a := range brokersOf(s.links) {
		best := ShortestPaths(whole, a)
		for _, b := range brokersOf(s.links) {
			path, ids, ok := s.follow(a, b)
			var bad string
			switch {
			case ok != (comp[a] == comp[b]):
				bad = fmt.Sprintf("connected %v, arrived %v", comp[a] == comp[b], ok)
			case ok && a != b:
				r, _ := best.Lookup(b)
				own, _ := s.tables[a].Lookup(b)
				if got := s.cost(ids); math.Abs(got-r.Cost) > 1e-9 || math.Abs(own.Cost-got) > 1e-9 {
					bad = fmt.Sprintf("path costs %v, cheapest %v, route says %v", got, r.Cost, own.Cost)
				}
			}
			if bad != "" {
				if failed < 5 {
					t.Errorf("%s: %s -> %s: %s: %v", what, a, b, bad, path)
				}
				failed++
			}
		}
	}
	return failed
}
