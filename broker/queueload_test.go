package broker

import (
	"log/slog"
	"testing"
	"time"

	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
)

func loadBroker(weights map[string]queueWeights) *Broker {
	b := &Broker{addr: []byte("na.c1.p"), cfg: Config{Address: "na.c1.p"}, qload: newQueueLoad([]router.QueueGroup{{Group: "g", Policy: router.QueueLoad}})}
	b.drops.log = slog.New(slog.DiscardHandler)
	if weights != nil {
		b.qload.weights.Store(&weights)
	}
	return b
}

func TestLoadChoice(t *testing.T) {
	from, other := &leafConn{}, &leafConn{}
	from.holder.leaf, other.holder.leaf = from, other
	tests := []struct {
		name    string
		weights map[string]queueWeights
		local   uint32 // members on another local leaf
		brokers map[string]uint32
		want    map[string]float64
	}{{
		name:    "no weights yet: by members",
		brokers: map[string]uint32{"na.c1.m1": 3, "eu.c1.m3": 1},
		want:    map[string]float64{"na.c1.m1": 0.75, "eu.c1.m3": 0.25},
	}, {
		name:    "members times weights",
		weights: map[string]queueWeights{"g": {"na.c1.m1": 0.5, "eu.c1.m3": 2}},
		brokers: map[string]uint32{"na.c1.m1": 2, "eu.c1.m3": 1, "na.c2.m2": 1},
		want:    map[string]float64{"na.c1.m1": 0.25, "eu.c1.m3": 0.5, "na.c2.m2": 0.25},
	}, {
		name:    "local members are one broker among the others, not always preferred",
		weights: map[string]queueWeights{"g": {"na.c1.p": 0.5}},
		local:   2,
		brokers: map[string]uint32{"na.c1.m1": 1},
		want:    map[string]float64{"local": 0.5, "na.c1.m1": 0.5},
	}, {
		name:    "another group's weights do not count",
		weights: map[string]queueWeights{"h": {"na.c1.m1": 100}},
		brokers: map[string]uint32{"na.c1.m1": 1, "eu.c1.m3": 1},
		want:    map[string]float64{"na.c1.m1": 0.5, "eu.c1.m3": 0.5},
	}, {
		name:    "unreachable members get nothing",
		weights: map[string]queueWeights{"g": {"na.c9.dead": 100}},
		brokers: map[string]uint32{"na.c9.dead": 5, "eu.c1.m3": 1},
		want:    map[string]float64{"eu.c1.m3": 1},
	}}
	const draws = 20000
	rt := queueNet()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := loadBroker(tt.weights)
			qp := newQueuePolicies("na.c1.p", []router.QueueGroup{{Group: "g", Policy: router.QueueLoad}})["g"]
			qm := groupMatch(from, 7, other, tt.local, tt.brokers)
			got := map[string]float64{}
			var p plan
			for range draws {
				p.reset()
				if !b.pickByPolicy(qp, &p, qm, []byte("g"), from, rt, 0) {
					t.Fatal("no member chosen")
				}
				switch {
				case len(p.leaves)+len(p.dests) != 1:
					t.Fatalf("%d members chosen", len(p.leaves)+len(p.dests))
				case len(p.leaves) == 1 && p.leaves[0].leaf != other:
					t.Fatal("the publisher's own leaf chosen")
				case len(p.leaves) == 1:
					got["local"] += 1.0 / draws
				default:
					got[string(p.dests[0].Broker)] += 1.0 / draws
				}
			}
			checkShares(t, "chosen", got, tt.want)
		})
	}
	qm := &queueMatch{name: "g", leaves: []*entry{{h: &from.holder, weight: 1}},
		brokers: []*entry{{h: &holder{broker: "na.c9.dead", addr: []byte("na.c9.dead")}, weight: 1}}}
	var p plan
	if loadBroker(nil).pickByPolicy(newQueuePolicies("na.c1.p", []router.QueueGroup{{Group: "g", Policy: router.QueueLoad}})["g"], &p, qm, []byte("g"), from, rt, 0) {
		t.Error("a member chosen where none is reachable")
	}
}

// A broker takes load reports only from the broker they name, and only
// of the groups it has the load policy for; the rest is dropped and
// counted. Figures too old are forgotten.
func TestLoadReports(t *testing.T) {
	b := loadBroker(nil)
	report := func(subjectOf, origin, data string) {
		b.onQueueLoad(internalMsg{Subject: netapi.QueueLoadSubject(subjectOf), Origin: origin, Data: []byte(data)})
	}
	report("na.c1.x", "na.c1.y", `{"g": {"members": 1, "rate": 5}}`)
	report("na.c1.x", "na.c1.x", `{"g": {"members": 1, "rate": `)
	if n := b.stats.badQueueLoads.Load(); n != 2 {
		t.Fatalf("%d reports refused, want 2", n)
	}
	report("na.c1.x", "na.c1.x", `{"g": {"members": 1, "rate": 30}, "h": {"members": 9, "rate": 1}}`)
	report("na.c1.z", "na.c1.z", `{"g": {"members": 1, "rate": 10}}`)
	report("na.c1.p", "na.c1.p", `{"g": {"members": 1, "rate": 99}}`) // our own, measured here
	if h := b.qload.heard["na.c1.x"]; len(h.figures) != 1 || h.figures["g"].Rate != 30 {
		t.Fatalf("heard from na.c1.x: %+v", h)
	}
	if _, ok := b.qload.heard["na.c1.p"]; ok {
		t.Fatal("took its own report from the network")
	}
	now := time.Now()
	b.qload.step(now)
	w := (*b.qload.weights.Load())["g"]
	if !(w["na.c1.x"] < 1 && w["na.c1.z"] > 1) {
		t.Fatalf("weights %v: the busier broker should lose weight", w)
	}
	b.qload.step(now.Add(queueLoadMaxAge + time.Millisecond))
	if w := (*b.qload.weights.Load())["g"]; len(w) != 0 || len(b.qload.heard) != 0 {
		t.Fatalf("old figures kept: weights %v, heard %v", w, b.qload.heard)
	}
}
