package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestHeldRoutes: in a steady network a route moves only to a path
// cheaper by the margin, and at once when its own path goes down; what a
// route reports is what its path costs.
func TestHeldRoutes(t *testing.T) {
	links := []Link{
		{ID: "sa", A: "x.s", B: "x.a", Cost: 10, Up: true},
		{ID: "ad", A: "x.a", B: "x.d", Cost: 40, Up: true},
		{ID: "sb", A: "x.s", B: "x.b", Cost: 10, Up: true},
		{ID: "bd", A: "x.b", B: "x.d", Cost: 42, Up: true},
	}
	s := simulate(links, 0.10)
	for i, step := range []struct {
		ad   float64 // the cost of a-d; +Inf: down
		want string
		cost float64
	}{
		{40, "[x.s x.a x.d]", 50},
		{44, "[x.s x.a x.d]", 54},     // b is 2 cheaper: 4%, held
		{47.5, "[x.s x.a x.d]", 57.5}, // 5.5 cheaper: 9.6%, held
		{60, "[x.s x.b x.d]", 52},     // 18 cheaper: moves
		{40, "[x.s x.b x.d]", 52},     // a is 2 cheaper again: held
		{math.Inf(1), "[x.s x.b x.d]", 52},
		{40, "[x.s x.b x.d]", 52},
	} {
		links[1].Cost, links[1].Up = step.ad, !math.IsInf(step.ad, 1)
		s.update(links)
		r, ok := s.tables["x.s"].Lookup("x.d")
		if !ok || fmt.Sprint(r.Path) != step.want || r.Cost != step.cost {
			t.Fatalf("step %d (a-d at %v): route %v at %v, want %s at %v", i, step.ad, r.Path, r.Cost, step.want, step.cost)
		}
	}
	// Its path down, a route moves at once, even to a dearer one.
	links[2].Up = false
	s.update(links)
	if r, _ := s.tables["x.s"].Lookup("x.d"); fmt.Sprint(r.Path) != "[x.s x.a x.d]" || r.Cost != 50 {
		t.Fatalf("b side down: route %v at %v", r.Path, r.Cost)
	}
}

// TestHeldRoutesArePinned: a broker that holds a route other than the
// cheapest pins its path with exits, so that brokers after it, which pass
// messages on along the cheapest paths, follow it; messages take the path
// the route reports.
func TestHeldRoutesArePinned(t *testing.T) {
	// s reaches d through a then b (held) or through c (cheaper by less
	// than the margin); a itself would go to d through c.
	links := []Link{
		{ID: "sa", A: "x.s", B: "x.a", Cost: 1, Up: true},
		{ID: "ab", A: "x.a", B: "x.b", Cost: 10, Up: true},
		{ID: "bd", A: "x.b", B: "x.d", Cost: 10, Up: true},
		{ID: "ac", A: "x.a", B: "x.c", Cost: 10, Up: true},
		{ID: "cd", A: "x.c", B: "x.d", Cost: 11, Up: true},
	}
	s := simulate(links, 0.10)
	r, _ := s.tables["x.s"].Lookup("x.d")
	if fmt.Sprint(r.Path) != "[x.s x.a x.b x.d]" || len(r.Exits) != 0 {
		t.Fatalf("route %v exits %v", r.Path, r.Exits)
	}
	links[2].Cost = 11.5 // through b: 22.5; through c: 22; held
	s.update(links)
	r, _ = s.tables["x.s"].Lookup("x.d")
	if fmt.Sprint(r.Path) != "[x.s x.a x.b x.d]" || r.Cost != 22.5 {
		t.Fatalf("held route %v at %v", r.Path, r.Cost)
	}
	if fmt.Sprint(r.Exits) != "[{x.a ab} {x.b bd}]" {
		t.Errorf("held route's exits %v, want every link after the first", r.Exits)
	}
	if w, _ := s.tables["x.a"].Way("x.d", false); w.Link != "ac" {
		t.Fatalf("a passes messages on over %s: the test needs a to prefer c", w.Link)
	}
	path, ok := s.walk("x.s", "x.d")
	if !ok || fmt.Sprint(path) != "[x.s x.a x.b x.d]" {
		t.Fatalf("message from s went %v", path)
	}
}

// TestHeldRoutesNoise: link costs that wander within a few percent of
// their level never move a route, on random networks; every message
// arrives, over a path that costs what its route reports or, where it
// crosses a unit whose brokers found a cheaper way than the held route's
// (they pass messages on along the cheapest paths), less, and never more
// than the margin over the cheapest.
func TestHeldRoutesNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 40 {
		links := randomHierarchy(rng, true)
		if len(links) < 2 {
			continue
		}
		base := make([]float64, len(links))
		for i := range links {
			base[i] = links[i].Cost
		}
		s := simulate(links, 0.10)
		first := map[[2]Address]string{}
		for a, tab := range s.tables {
			for _, r := range tab.Routes() {
				first[[2]Address{a, r.Destination}] = fmt.Sprint(r.Path)
			}
		}
		for step := range 20 {
			for i := range links {
				links[i].Cost = base[i] * (1 + 0.03*(2*rng.Float64()-1))
			}
			s.update(links)
			for a, tab := range s.tables {
				for _, r := range tab.Routes() {
					if got := fmt.Sprint(r.Path); got != first[[2]Address{a, r.Destination}] {
						t.Fatalf("round %d step %d: %s -> %s moved from %s to %s on noise", round, step, a, r.Destination, first[[2]Address{a, r.Destination}], got)
					}
				}
			}
		}
		whole := NewGraph(links)
		for a, tab := range s.tables {
			best := ShortestPaths(whole, a)
			for _, r := range tab.Routes() {
				_, ids, ok := s.follow(a, r.Destination)
				cheapest, _ := best.Lookup(r.Destination)
				taken := s.cost(ids)
				if !ok || taken > r.Cost+1e-9 || 0.9*taken > cheapest.Cost+1e-9 {
					t.Fatalf("round %d: %s -> %s took %v at %v (arrived %v), route %v at %v, cheapest %v",
						round, a, r.Destination, ids, taken, ok, r.Path, r.Cost, cheapest.Cost)
				}
			}
		}
	}
}
