package router

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestQueueGroupValidate(t *testing.T) {
	tests := []struct {
		name string
		q    QueueGroup
		err  string // a part of the error; "" for none
	}{
		{"weights", QueueGroup{Group: "workers", Weights: map[string]float64{"na": 90, "eu": 10}}, ""},
		{"a broker as unit", QueueGroup{Group: "w", Weights: map[string]float64{"na.cgl.c1.b2": 1}}, ""},
		{"nearest", QueueGroup{Group: "billing", Policy: "nearest"}, ""},
		{"empty group", QueueGroup{Policy: "nearest"}, "group: required"},
		{"space in group", QueueGroup{Group: "a b", Policy: "nearest"}, "white space"},
		{"neither", QueueGroup{Group: "w"}, "give weights"},
		{"both", QueueGroup{Group: "w", Policy: "nearest", Weights: map[string]float64{"na": 1}}, "not both"},
		{"unknown policy", QueueGroup{Group: "w", Policy: "fastest"}, `unknown policy "fastest"`},
		{"load", QueueGroup{Group: "render", Policy: "load"}, ""},
		{"negative", QueueGroup{Group: "w", Weights: map[string]float64{"na": 90, "eu": -10}}, "eu: -10"},
		{"zero", QueueGroup{Group: "w", Weights: map[string]float64{"na": 0}}, "na: 0"},
		{"NaN", QueueGroup{Group: "w", Weights: map[string]float64{"na": math.NaN()}}, "na: NaN"},
		{"infinite", QueueGroup{Group: "w", Weights: map[string]float64{"na": math.Inf(1)}}, "na: +Inf"},
		{"bad unit", QueueGroup{Group: "w", Weights: map[string]float64{"NA": 1}}, `unit "NA"`},
		{"empty label", QueueGroup{Group: "w", Weights: map[string]float64{"na..c1": 1}}, `unit "na..c1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

func TestCheckQueueGroupsTwice(t *testing.T) {
	qs := []QueueGroup{{Group: "w", Policy: "nearest"}, {Group: "x", Policy: "nearest"}, {Group: "w", Weights: map[string]float64{"na": 1}}}
	if err := CheckQueueGroups(qs); err == nil || !strings.Contains(err.Error(), "queues[2]: group w given twice") {
		t.Fatalf("error %v", err)
	}
	if err := CheckQueueGroups(qs[:2]); err != nil {
		t.Fatal(err)
	}
}

func TestQueueSplitUnitOf(t *testing.T) {
	s := NewQueueSplit(map[string]float64{"na": 60, "na.cgl": 30, "eu": 10, "na.cgl.c1.b2": 1})
	tests := []struct {
		addr string
		want Address // "" for none
	}{
		{"na.cgl.c1.b2", "na.cgl.c1.b2"},
		{"na.cgl.c1.b3", "na.cgl"},
		{"na.cgl", "na.cgl"},
		{"na.cg.c1.b1", "na"},
		{"na", "na"},
		{"nab.c1.b1", ""},
		{"eu.c1.b1", "eu"},
		{"eux", ""},
		{"as.c1.b1", ""},
	}
	for _, tt := range tests {
		i := s.UnitOf([]byte(tt.addr))
		var got Address
		if i >= 0 {
			got = s.Unit(i)
		}
		if got != tt.want {
			t.Errorf("UnitOf(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestQueueSplitChoose(t *testing.T) {
	s := NewQueueSplit(map[string]float64{"na": 90, "eu": 9, "as": 1})
	idx := map[Address]int{}
	for i := range s.Units() {
		idx[s.Unit(i)] = i
	}
	tests := []struct {
		name    string
		present []Address
		want    map[Address]float64 // expected shares
	}{
		{"all present", []Address{"na", "eu", "as"}, map[Address]float64{"na": 0.90, "eu": 0.09, "as": 0.01}},
		{"na missing: its share is spread", []Address{"eu", "as"}, map[Address]float64{"eu": 0.9, "as": 0.1}},
		{"one present", []Address{"as"}, map[Address]float64{"as": 1}},
		{"none present", nil, nil},
	}
	const draws = 200_000
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			present := make([]bool, s.Units())
			for _, u := range tt.present {
				present[idx[u]] = true
			}
			got := map[Address]float64{}
			for range draws {
				i := s.Choose(present, rng.Float64())
				if i < 0 {
					if tt.want != nil {
						t.Fatal("no unit chosen")
					}
					continue
				}
				if !present[i] {
					t.Fatalf("chose %s, which is not present", s.Unit(i))
				}
				got[s.Unit(i)] += 1.0 / draws
			}
			for u, w := range tt.want {
				if math.Abs(got[u]-w) > 0.005 {
					t.Errorf("%s: share %.4f, want %.4f", u, got[u], w)
				}
			}
			if tt.want == nil && len(got) > 0 {
				t.Errorf("chose %v with no unit present", got)
			}
		})
	}
	// The ends of [0, 1) fall in the first and last present units.
	all := []bool{true, true, true}
	if i := s.Choose(all, 0); i != 0 {
		t.Errorf("Choose(0) = %d", i)
	}
	if i := s.Choose(all, math.Nextafter(1, 0)); i != 2 {
		t.Errorf("Choose(1-) = %d", i)
	}
}
