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

// TestSummaryDelayShift: with contracts, a summary whose way moved its
// distribution past routing.delay_shift, its costs unchanged, is announced
// again once the hold-down is over (before, brokers outside the unit kept
// the first distribution until the refresh); one that moved less is not,
// and without contracts none is.
func TestSummaryDelayShift(t *testing.T) {
	for _, contracts := range []bool{true, false} {
		self := router.Address("x.c.a")
		m := router.NewBNM(self, 1, 0)
		link := func(id string, a, b router.Address, unit router.Address, delay router.Histogram) {
			m.Set(router.Announcement{Origin: a, Unit: unit, Links: []router.AnnouncedLink{{ID: id, Peer: b, Costs: []float64{10}, Delay: delay}}})
			m.Set(router.Announcement{Origin: b, Unit: unit, Links: []router.AnnouncedLink{{ID: id, Peer: a, Costs: []float64{10}, Delay: delay}}})
		}
		dist := func(pairs ...float64) router.Histogram {
			var h router.Histogram
			for i := 0; i+1 < len(pairs); i += 2 {
				for range int(pairs[i+1]) {
					h.Add(pairs[i])
				}
			}
			return h
		}
		link("ae", self, "x.o.e", "x", dist(30, 100))
		link("ab", self, "x.c.b", "x.c", dist(10, 100))
		rules := router.DefaultRules()
		cfg := Config{Address: string(self), Routing: Routing{Rules: rules}}
		if contracts {
			cfg.Routing.Contracts = []SubjectContract{{Subject: "trade.>", Contract: router.Contract{Within: []router.Bound{{P: 0.99, Ms: 100}}, MaxLoss: 1}}}
		}
		b := &Broker{cfg: cfg, bnm: m, sumdb: map[lsKey]*summaryRec{}, profiles: []router.Profile{router.DefaultProfile()}}
		t0 := time.Unix(1000, 0)
		median := func() float64 {
			rec := b.sumdb[lsKey{string(self), "x.c"}]
			if rec == nil || len(rec.Dests) != 1 {
				t.Fatalf("summary %+v", rec)
			}
			return rec.Dests[0].Delay.Quantile(0.5)
		}
		b.announceSummariesLocked(t0, false)
		if got := median(); got < 9.5 || got > 10.5 {
			t.Fatalf("first summary: median %v ms, want 10", got)
		}
		// 2% of the way moves to 40 ms: less than the default 3%.
		link("ab", self, "x.c.b", "x.c", dist(10, 98, 40, 2))
		b.announceSummariesLocked(t0.Add(2*time.Second), false)
		if got := b.stats.summariesSent.Load(); got != 1 || b.sumPending {
			t.Errorf("contracts %v, moved 2%%: %d summaries sent, pending %v; want 1, nothing pending", contracts, got, b.sumPending)
		}
		// All of it moves to 20 ms, within the hold-down of that check.
		link("ab", self, "x.c.b", "x.c", dist(20, 100))
		b.announceSummariesLocked(t0.Add(2500*time.Millisecond), false)
		if got := median(); got > 10.5 || b.sumPending != contracts {
			t.Errorf("contracts %v, moved within the hold-down: median %v, pending %v; want 10, pending %v", contracts, got, b.sumPending, contracts)
		}
		b.announceSummariesLocked(t0.Add(3*time.Second), false)
		want := 10.0
		if contracts {
			want = 20
		}
		if got := median(); got < want-0.5 || got > want+0.5 || b.sumPending {
			t.Errorf("contracts %v, after the hold-down: median %v, pending %v; want %v, nothing pending", contracts, got, b.sumPending, want)
		}
	}
}
