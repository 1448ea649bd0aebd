package broker

import (
	"math"
	"strings"
	"testing"

	"github.com/wayline/wayline/router"
)

// queueNet is the network the choice tests route on, seen from the
// publisher's broker na.c1.p: route costs 5 to na.c1.m1, 20 to na.c2.m2,
// 80 to eu.c1.m3 and eu.c1.m4, 150 to as.c1.m5; na.c9.dead is known but
// unreachable.
func queueNet() *routeTable {
	links := []router.Link{
		{ID: "1", A: "na.c1.p", B: "na.c1.m1", Cost: 5, Up: true},
		{ID: "2", A: "na.c1.p", B: "na.c2.m2", Cost: 20, Up: true},
		{ID: "3", A: "na.c1.p", B: "eu.c1.m3", Cost: 80, Up: true},
		{ID: "4", A: "na.c1.p", B: "eu.c1.m4", Cost: 80, Up: true},
		{ID: "5", A: "na.c1.p", B: "as.c1.m5", Cost: 150, Up: true},
		{ID: "6", A: "na.c1.p", B: "na.c9.dead", Cost: 1, Up: false},
	}
	return &routeTable{self: "na.c1.p", tables: []router.Table{router.ShortestPaths(router.NewGraph(links), "na.c1.p")}}
}

func TestQueuePolicyChoice(t *testing.T) {
	from, other := &leafConn{}, &leafConn{}
	from.holder.leaf, other.holder.leaf = from, other
	weights := func(w map[string]float64) router.QueueGroup { return router.QueueGroup{Group: "g", Weights: w} }
	nearest := router.QueueGroup{Group: "g", Policy: router.QueueNearest}
	tests := []struct {
		name    string
		policy  router.QueueGroup
		local   bool              // a member on another local leaf
		brokers map[string]uint32 // member brokers and their member counts
		want    map[string]float64
		counts  map[string]float64 // shares counted by where they went; nil: not checked
	}{{
		name:    "weights split by unit, evenly inside it",
		policy:  weights(map[string]float64{"na": 90, "eu": 10}),
		brokers: map[string]uint32{"na.c1.m1": 1, "eu.c1.m3": 1, "eu.c1.m4": 1},
		want:    map[string]float64{"na.c1.m1": 0.9, "eu.c1.m3": 0.05, "eu.c1.m4": 0.05},
		counts:  map[string]float64{"na": 0.9, "eu": 0.1},
	}, {
		name:    "weights inside a unit follow member counts",
		policy:  weights(map[string]float64{"na": 50, "eu": 50}),
		brokers: map[string]uint32{"na.c1.m1": 1, "eu.c1.m3": 3, "eu.c1.m4": 1},
		want:    map[string]float64{"na.c1.m1": 0.5, "eu.c1.m3": 0.375, "eu.c1.m4": 0.125},
	}, {
		name:    "a unit without members gives its share to the others, and unlisted members get nothing",
		policy:  weights(map[string]float64{"na": 90, "eu": 8, "as": 2}),
		brokers: map[string]uint32{"eu.c1.m3": 1, "as.c1.m5": 1},
		want:    map[string]float64{"eu.c1.m3": 0.8, "as.c1.m5": 0.2},
	}, {
		name:    "members in no listed unit",
		policy:  weights(map[string]float64{"na": 90, "eu": 10}),
		brokers: map[string]uint32{"eu.c1.m3": 1, "as.c1.m5": 1},
		want:    map[string]float64{"eu.c1.m3": 1},
	}, {
		name:    "an unreachable member does not make its unit present",
		policy:  weights(map[string]float64{"na": 90, "eu": 10}),
		brokers: map[string]uint32{"na.c9.dead": 5, "eu.c1.m3": 1},
		want:    map[string]float64{"eu.c1.m3": 1},
	}, {
		name:    "no listed unit has a member: the default choice",
		policy:  weights(map[string]float64{"na": 90, "eu": 10}),
		brokers: map[string]uint32{"as.c1.m5": 1},
		want:    map[string]float64{"as.c1.m5": 1},
		counts:  map[string]float64{"(other)": 1},
	}, {
		name:    "longest prefix",
		policy:  weights(map[string]float64{"na": 75, "na.c2": 25}),
		brokers: map[string]uint32{"na.c1.m1": 1, "na.c2.m2": 1},
		want:    map[string]float64{"na.c1.m1": 0.75, "na.c2.m2": 0.25},
	}, {
		name:    "a unit given by a broker",
		policy:  weights(map[string]float64{"na.c1.m1": 1, "eu": 3}),
		brokers: map[string]uint32{"na.c1.m1": 1, "na.c2.m2": 1, "eu.c1.m3": 1},
		want:    map[string]float64{"na.c1.m1": 0.25, "eu.c1.m3": 0.75},
	}, {
		name:    "local members belong to the publisher's unit and are not always preferred",
		policy:  weights(map[string]float64{"na": 90, "eu": 10}),
		local:   true,
		brokers: map[string]uint32{"na.c1.m1": 1, "eu.c1.m3": 1},
		want:    map[string]float64{"local": 0.9, "eu.c1.m3": 0.1},
	}, {
		name:    "local members in a unit of their own",
		policy:  weights(map[string]float64{"na.c1": 40, "na": 60}),
		local:   true,
		brokers: map[string]uint32{"na.c1.m1": 1, "na.c2.m2": 1},
		want:    map[string]float64{"local": 0.4, "na.c2.m2": 0.6},
	}, {
		name:    "nearest: the cheapest route",
		policy:  nearest,
		brokers: map[string]uint32{"eu.c1.m3": 9, "na.c2.m2": 1, "as.c1.m5": 1, "na.c9.dead": 1},
		want:    map[string]float64{"na.c2.m2": 1},
		counts:  map[string]float64{"na.c2.m2": 1},
	}, {
		name:    "nearest: ties at random",
		policy:  nearest,
		brokers: map[string]uint32{"eu.c1.m3": 1, "eu.c1.m4": 1, "as.c1.m5": 1},
		want:    map[string]float64{"eu.c1.m3": 0.5, "eu.c1.m4": 0.5},
	}, {
		name:    "nearest: local members first",
		policy:  nearest,
		local:   true,
		brokers: map[string]uint32{"na.c1.m1": 1},
		want:    map[string]float64{"local": 1},
		counts:  map[string]float64{"na.c1.p": 1},
	}}
	const draws = 20000
	rt := queueNet()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Broker{addr: []byte("na.c1.p")}
			qp := newQueuePolicies("na.c1.p", []router.QueueGroup{tt.policy})["g"]
			var local uint32
			if tt.local {
				local = 1
			}
			qm := groupMatch(from, 1, other, local, tt.brokers)
			got := map[string]float64{}
			var p plan
			for range draws {
				p.reset()
				if !b.pickByPolicy(qp, &p, qm, []byte("g"), from, rt, 0) {
					t.Fatal("no member chosen")
				}
				if n := len(p.leaves) + len(p.dests); n != 1 {
					t.Fatalf("%d members chosen", n)
				}
				if len(p.leaves) == 1 {
					if p.leaves[0].leaf != other {
						t.Fatal("the publisher's own leaf chosen")
					}
					got["local"] += 1.0 / draws
				} else {
					got[string(p.dests[0].Broker)] += 1.0 / draws
				}
			}
			checkShares(t, "chosen", got, tt.want)
			if tt.counts != nil {
				counted := map[string]float64{}
				for to, n := range qp.counts {
					counted[to] = float64(*n) / draws
				}
				checkShares(t, "counted", counted, tt.counts)
			}
		})
	}
}

// checkShares compares shares within 2 points: 20,000 draws put one
// standard deviation under 0.4 points.
func checkShares(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if math.Abs(got[k]-w) > 0.02 {
			t.Errorf("%s: %s has %.3f, want %.3f (all: %v)", what, k, got[k], w, got)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s has %.3f, want none", what, k, g)
		}
	}
}

func TestQueuePolicyNoMember(t *testing.T) {
	from := &leafConn{}
	from.holder.leaf = from
	qm := &queueMatch{name: "g", leaves: []*entry{{h: &from.holder, weight: 1}},
		brokers: []*entry{{h: &holder{broker: "na.c9.dead", addr: []byte("na.c9.dead")}, weight: 1}}}
	for _, q := range []router.QueueGroup{
		{Group: "g", Policy: router.QueueNearest},
		{Group: "g", Weights: map[string]float64{"na": 1}},
		{Group: "g", Weights: map[string]float64{"eu": 1}},
	} {
		b := &Broker{addr: []byte("na.c1.p")}
		var p plan
		if b.pickByPolicy(newQueuePolicies("na.c1.p", []router.QueueGroup{q})["g"], &p, qm, []byte("g"), from, queueNet(), 0) {
			t.Errorf("%+v: chose %d leaves, %d brokers with no reachable member", q, len(p.leaves), len(p.dests))
		}
	}
}

func TestQueuePolicyConfig(t *testing.T) {
	cfg := Config{Address: "na.c1.a", Client: "127.0.0.1:0", Routing: Routing{Queues: []router.QueueGroup{{Group: "w", Policy: "fastest"}}}}
	_, err := New(cfg)
	if want := `routing: queues[0]: group w: policy: unknown policy "fastest"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one with %q", err, want)
	}
}

// The choice runs for every message: once the counters hold every place,
// it allocates nothing.
func TestQueuePolicyAllocs(t *testing.T) {
	from := &leafConn{}
	from.holder.leaf = from
	qm := &queueMatch{name: "g", leaves: []*entry{{h: &from.holder, weight: 1}}}
	for _, a := range []string{"na.c1.m1", "eu.c1.m3", "eu.c1.m4"} {
		qm.brokers = append(qm.brokers, &entry{h: &holder{broker: a, addr: []byte(a)}, weight: 1})
	}
	rt := queueNet()
	for _, q := range []router.QueueGroup{
		{Group: "g", Policy: router.QueueNearest},
		{Group: "g", Weights: map[string]float64{"na": 9, "eu": 1}},
		{Group: "g", Policy: router.QueueLoad},
	} {
		b := loadBroker(map[string]queueWeights{"g": {"na.c1.m1": 2}})
		qp := newQueuePolicies("na.c1.p", []router.QueueGroup{q})["g"]
		var p plan
		name := []byte("g")
		pick := func() {
			p.reset()
			b.pickByPolicy(qp, &p, qm, name, from, rt, 0)
		}
		for range 1000 {
			pick()
		}
		if n := testing.AllocsPerRun(1000, pick); n != 0 {
			t.Errorf("%+v: %v allocations a message", q, n)
		}
	}
}

// groupMatch is the members of queue group "g": fromWeight on the
// publisher's own leaf from, otherWeight on another local leaf (none at
// 0), and the member brokers with their member counts.
func groupMatch(from *leafConn, fromWeight uint32, other *leafConn, otherWeight uint32, brokers map[string]uint32) *queueMatch {
	qm := &queueMatch{name: "g", leaves: []*entry{{h: &from.holder, weight: fromWeight}}}
	if otherWeight > 0 {
		qm.leaves = append(qm.leaves, &entry{h: &other.holder, weight: otherWeight})
	}
	for a, n := range brokers {
		qm.brokers = append(qm.brokers, &entry{h: &holder{broker: a, addr: []byte(a)}, weight: n})
	}
	return qm
}
