package broker

import (
	"testing"
	"time"

	"github.com/wayline/wayline/router"
)

// TestSummaryPending: a summary whose costs moved past the thresholds
// within the hold-down waits for it, and the cost loop comes back for it;
// one whose costs moved less is not due before the refresh, and nothing
// comes back for it (before, every check of the cost loop, four a second,
// worked out every summary again for as long as any cost differed at
// all from the one announced).
func TestSummaryPending(t *testing.T) {
	self := router.Address("x.c.a")
	m := router.NewBNM(self, 1, 0)
	link := func(id string, a, b router.Address, unit router.Address, cost float64) {
		m.Set(router.Announcement{Origin: a, Unit: unit, Links: []router.AnnouncedLink{{ID: id, Peer: b, Costs: []float64{cost}}}})
		m.Set(router.Announcement{Origin: b, Unit: unit, Links: []router.AnnouncedLink{{ID: id, Peer: a, Costs: []float64{cost}}}})
	}
	link("ae", self, "x.o.e", "x", 1)
	link("ab", self, "x.c.b", "x.c", 10)
	b := &Broker{cfg: Config{Address: string(self), Routing: Routing{Rules: router.DefaultRules()}},
		bnm: m, sumdb: map[lsKey]*summaryRec{}, profiles: []router.Profile{router.DefaultProfile()}}
	t0 := time.Unix(1000, 0)
	announced := func() float64 {
		rec := b.sumdb[lsKey{string(self), "x.c"}]
		if rec == nil || len(rec.Dests) != 1 {
			t.Fatalf("summary %+v", rec)
		}
		return rec.Dests[0].Costs[0]
	}
	b.announceSummariesLocked(t0, false)
	if c := announced(); c != 10 || b.sumPending {
		t.Fatalf("first summary: b at %v, pending %v", c, b.sumPending)
	}
	link("ab", self, "x.c.b", "x.c", 10.5) // 5%: below the threshold
	b.announceSummariesLocked(t0.Add(5*time.Second), false)
	if c := announced(); c != 10 || b.sumPending {
		t.Errorf("a cost 5%% off: b at %v, pending %v; want 10, nothing pending", c, b.sumPending)
	}
	b.announceSummariesLocked(t0.Add(6*time.Second), true)
	if c := announced(); c != 10.5 {
		t.Fatalf("refresh: b at %v", c)
	}
	link("ab", self, "x.c.b", "x.c", 15) // past the threshold, within the hold-down
	b.announceSummariesLocked(t0.Add(6500*time.Millisecond), false)
	if c := announced(); c != 10.5 || !b.sumPending {
		t.Errorf("a cost 43%% off within the hold-down: b at %v, pending %v; want 10.5, pending", c, b.sumPending)
	}
	b.announceSummariesLocked(t0.Add(7*time.Second), false)
	if c := announced(); c != 15 || b.sumPending {
		t.Errorf("after the hold-down: b at %v, pending %v; want 15, nothing pending", c, b.sumPending)
	}
}
