package router

import (
	"math"
	"testing"
	"time"
)

func TestLinkRecordDue(t *testing.T) {
	r := DefaultRules()
	t0 := time.Unix(1000, 0)
	var a LinkRecord
	if !a.Due(r, true, []float64{45}, t0) {
		t.Fatal("the first announcement is not due")
	}
	a.Announced(true, []float64{45}, Histogram{}, t0)
	for _, tc := range []struct {
		name  string
		up    bool
		cost  float64
		after time.Duration
		want  bool
	}{
		{"noise under the threshold", true, 47, 10 * time.Millisecond, false},
		{"worse past the threshold waits for the hold-down", true, 52, 10 * time.Millisecond, false},
		{"better past the threshold waits for the hold-down", true, 38, 10 * time.Millisecond, false},
		{"worse past the threshold after the hold-down", true, 52, 2 * time.Second, true},
		{"better past the threshold after the hold-down", true, 38, 2 * time.Second, true},
		{"down goes at once", false, math.Inf(1), 0, true},
	} {
		if got := a.Due(r, tc.up, []float64{tc.cost}, t0.Add(tc.after)); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
	small := LinkRecord{}
	small.Announced(true, []float64{1}, Histogram{}, t0)
	if small.Due(r, true, []float64{1.3}, t0.Add(time.Hour)) {
		t.Error("a change under min change is due")
	}
}

func TestLinkRecordDamp(t *testing.T) {
	r := DefaultRules()
	now := time.Unix(1000, 0)
	var a LinkRecord
	a.Damp(r, true, now)
	for i := range 4 {
		now = now.Add(time.Second)
		a.Damp(r, false, now)
		now = now.Add(time.Second)
		if up := a.Damp(r, true, now); up != (i < 3) {
			t.Fatalf("fall %d: may be announced up %v", i+1, up)
		}
	}
	// The penalty halves every half-life; under reuse the link is back.
	now = now.Add(3 * r.FlapHalfLife)
	if !a.Damp(r, true, now) {
		t.Fatal("still suppressed after the penalty decayed")
	}
}

// TestLinkRecordDampCeiling: a link that fell twenty times in one stall
// is held down no longer than FlapMaxSuppress once it works again (the
// penalty of 20 would have taken 130 s to decay to the reuse threshold).
func TestLinkRecordDampCeiling(t *testing.T) {
	r := DefaultRules()
	now := time.Unix(1000, 0)
	var a LinkRecord
	a.Damp(r, true, now)
	for range 20 {
		now = now.Add(200 * time.Millisecond)
		a.Damp(r, false, now)
		now = now.Add(200 * time.Millisecond)
		a.Damp(r, true, now)
	}
	if a.UpNow() {
		t.Fatal("a link that fell twenty times in 8 s is not suppressed")
	}
	if a.Damp(r, true, now.Add(r.FlapMaxSuppress-5*time.Second)) {
		t.Fatalf("back %v before the maximum suppress time", 5*time.Second)
	}
	if !a.Damp(r, true, now.Add(r.FlapMaxSuppress+time.Second)) {
		t.Fatalf("still suppressed %v after the maximum suppress time", time.Second)
	}
}

func TestSummaryDue(t *testing.T) {
	r := DefaultRules()
	t0 := time.Unix(1000, 0)
	last := Summary{Origin: "a.x.1", Unit: "a.x", Dests: []Dest{{Broker: "a.x.2", Costs: []float64{10}}, {Broker: "a.x.3", Costs: []float64{20}}}}
	mk := func(d ...Dest) Summary { return Summary{Origin: "a.x.1", Unit: "a.x", Dests: d} }
	for _, tc := range []struct {
		name  string
		cur   Summary
		after time.Duration
		want  bool
	}{
		{"same", mk(Dest{Broker: "a.x.2", Costs: []float64{10}}, Dest{Broker: "a.x.3", Costs: []float64{20}}), time.Hour, false},
		{"noise", mk(Dest{Broker: "a.x.2", Costs: []float64{10.4}}, Dest{Broker: "a.x.3", Costs: []float64{21}}), time.Hour, false},
		{"a broker lost", mk(Dest{Broker: "a.x.2", Costs: []float64{10}}), 0, true},
		{"another broker", mk(Dest{Broker: "a.x.2", Costs: []float64{10}}, Dest{Broker: "a.x.4", Costs: []float64{20}}), 0, true},
		{"worse, soon", mk(Dest{Broker: "a.x.2", Costs: []float64{10}}, Dest{Broker: "a.x.3", Costs: []float64{30}}), 0, false},
		{"worse, after the hold-down", mk(Dest{Broker: "a.x.2", Costs: []float64{10}}, Dest{Broker: "a.x.3", Costs: []float64{30}}), 2 * time.Second, true},
		{"better, soon", mk(Dest{Broker: "a.x.2", Costs: []float64{5}}, Dest{Broker: "a.x.3", Costs: []float64{20}}), 0, false},
		{"better, after the hold-down", mk(Dest{Broker: "a.x.2", Costs: []float64{5}}, Dest{Broker: "a.x.3", Costs: []float64{20}}), 2 * time.Second, true},
		{"unreachable on a profile", mk(Dest{Broker: "a.x.2", Costs: []float64{math.Inf(1)}}, Dest{Broker: "a.x.3", Costs: []float64{20}}), 0, true},
	} {
		if got := r.SummaryDue(&last, t0, tc.cur, t0.Add(tc.after)); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
	if !r.SummaryDue(nil, t0, last, t0) {
		t.Error("a first summary is not due")
	}
}

func TestRulesValidate(t *testing.T) {
	if err := DefaultRules().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Rules){
		func(r *Rules) { r.Margin = 1 },
		func(r *Rules) { r.Margin = -0.1 },
		func(r *Rules) { r.Threshold = math.NaN() },
		func(r *Rules) { r.MinChange = -1 },
		func(r *Rules) { r.FlapReuse = 5 },
		func(r *Rules) { r.FlapHalfLife = 0 },
		// 3 decays to 1 in 47.5 s: a shorter ceiling would never suppress.
		func(r *Rules) { r.FlapMaxSuppress = 45 * time.Second },
		func(r *Rules) { r.FlapMaxSuppress = 0 },
	} {
		r := DefaultRules()
		bad(&r)
		if r.Validate() == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func TestSteer(t *testing.T) {
	links := []Link{
		{ID: "ab", A: "u.c1.a", B: "u.c1.b", Cost: 1, Up: true},
		{ID: "bx", A: "u.c1.b", B: "u.c2.x", Cost: 1, Up: true},
		{ID: "xy", A: "u.c2.x", B: "u.c2.y", Cost: 1, Up: true},
		{ID: "yz", A: "u.c2.y", B: "u.c3.z", Cost: 1, Up: true},
	}
	s := simulate(links, 0)
	a := s.tables["u.c1.a"]
	up := func(string) bool { return true }
	link, exits, err := Steer(a, "u.c1.a", "u.c3.z", nil, true, up)
	if err != nil || link != "ab" || len(exits) != 1 || exits[0] != (Exit{"u.c2.y", "yz"}) {
		t.Fatalf("from a: %s %v %v", link, exits, err)
	}
	// At y, the exit is taken and popped.
	y := s.tables["u.c2.y"]
	if link, rest, err := Steer(y, "u.c2.y", "u.c3.z", exits, false, up); err != nil || link != "yz" || len(rest) != 0 {
		t.Fatalf("at y: %s %v %v", link, rest, err)
	}
	// An exit whose link is down is dropped and the destination routed
	// afresh.
	down := func(id string) bool { return id != "yz" }
	if _, rest, err := Steer(y, "u.c2.y", "u.c3.z", []Exit{{"u.c2.y", "yz"}}, false, down); err != nil || len(rest) != 0 {
		t.Fatalf("exit down: %v %v", rest, err)
	}
	// An exit out of reach is dropped too; an unknown destination has no
	// route.
	if link, _, err := Steer(a, "u.c1.a", "u.c3.z", []Exit{{"nowhere.q", "qq"}}, false, up); err != nil || link != "ab" {
		t.Fatalf("exit out of reach: %s %v", link, err)
	}
	if _, _, err := Steer(a, "u.c1.a", "nowhere.q", nil, false, up); err != ErrNoRoute {
		t.Fatalf("unknown destination: %v", err)
	}
	full := make([]Exit, MaxExits)
	for i := range full {
		full[i] = Exit{"u.c3.z", "yz"}
	}
	if _, _, err := Steer(a, "u.c1.a", "u.c3.z", full, false, up); err != ErrTooManyExits {
		t.Fatalf("full stack: %v", err)
	}
}

func TestLinkRecordDelayDue(t *testing.T) {
	r := DefaultRules()
	t0 := time.Unix(1000, 0)
	at := func(ms ...float64) Histogram { return HistogramOf(ms, 0) }
	steady := at(10, 10.5, 11, 11.5, 12, 12.5, 13, 13.5, 14, 14.5)
	var a LinkRecord
	if a.DelayDue(r, steady, t0) {
		t.Fatal("a link never announced is due for its delay")
	}
	a.Announced(true, []float64{45}, steady, t0)
	for _, tc := range []struct {
		name  string
		delay Histogram
		after time.Duration
		want  bool
	}{
		{"the same", steady, time.Hour, false},
		{"the same, a probe more", at(10, 10.5, 11, 11.5, 12, 12.5, 13, 13.5, 14, 14.5, 12), time.Hour, true},
		{"a tenth later, within the hold-down", at(10.5, 11, 11.5, 12, 12.5, 13, 13.5, 14, 14.5, 15), 10 * time.Millisecond, false},
		{"a tenth later, after the hold-down", at(10.5, 11, 11.5, 12, 12.5, 13, 13.5, 14, 14.5, 15), 2 * time.Second, true},
		{"lossier", HistogramOf([]float64{10, 10.5, 11, 11.5, 12, 12.5, 13, 13.5, 14, 14.5}, 1), 2 * time.Second, true},
	} {
		if got := a.DelayDue(r, tc.delay, t0.Add(tc.after)); got != tc.want {
			t.Errorf("%s: due %v (distance %.3f), want %v", tc.name, got, Distance(steady, tc.delay), tc.want)
		}
	}
	off := r
	off.DelayShift = 0
	if a.DelayDue(off, at(50), t0.Add(time.Hour)) {
		t.Error("due for its delay with DelayShift 0")
	}
	a.Announced(false, []float64{math.Inf(1)}, steady, t0)
	if a.DelayDue(r, at(50), t0.Add(time.Hour)) {
		t.Error("a link announced down is due for its delay")
	}
	r.DelayShift = 1
	if r.Validate() == nil {
		t.Error("a delay shift of 1 is valid")
	}
}
