package broker

import (
	"encoding/json"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
)

// Each broker prices its own links from their measurements, one cost per
// profile, and announces them: within the smallest unit holding both ends
// of each link, as a cost update flooded from broker to broker and shown to
// subscribers of $WL.cost.<unit>. It announces a link when it goes up or
// down (at once), when its cost moves by more than the threshold (at most
// once per hold-down), and every refresh interval whatever happened.

// unmeasuredLatencyMs is what a link that has no measurement yet is priced
// at: usable, but the last choice until its probes come back.
const unmeasuredLatencyMs = 1000

// announced remembers what was last said about one of our links.
type announced struct {
	up    bool // as announced
	costs []float64
	at    time.Time
	// Flap damping: the penalty, when it was last decayed, the last state
	// seen (announced or not), and whether damping holds the link down.
	penalty    float64
	decayed    time.Time
	wasUp      bool
	suppressed bool
}

// upNow is whether the link may be announced up: it is, and damping does
// not hold it down.
func (a *announced) upNow() bool { return a.wasUp && !a.suppressed }

// measures turns a link's monitor figures into what a profile prices.
// Routing reacts to the recent figures; jitter comes from the window.
func (l *link) measures() router.Measures {
	m := l.mon.Snapshot()
	r := router.Measures{Up: l.usable(), LatencyMs: m.RecentLatency, LossPercent: 100 * m.RecentLoss, JitterMs: m.JitterMeanDiff}
	if m.Samples == 0 {
		r.LatencyMs = unmeasuredLatencyMs
	}
	return r
}

// measureLinks reads every link's figures. It is called without b.mu:
// computing a monitor's statistics takes time, and nothing else should
// wait for it.
func (b *Broker) measureLinks() map[string]router.Measures {
	out := make(map[string]router.Measures, len(b.links))
	for id, l := range b.links { // b.links never changes after New
		out[id] = l.measures()
	}
	return out
}

// kickCosts asks the cost loop to review the links now: a link went up or
// down, or its monitor changed its verdict.
func (b *Broker) kickCosts() {
	b.kickState()
	select {
	case b.costKick <- struct{}{}:
	default:
	}
}

// reviewCostsLocked prices every link of ours from its measures and
// announces what changed enough; with force, it announces everything (the
// periodic refresh).
func (b *Broker) reviewCostsLocked(now time.Time, force bool, measures map[string]router.Measures) {
	units := map[string]bool{}
	for id, l := range b.links {
		a := b.ann[id]
		if a == nil {
			a = &announced{decayed: now}
			b.ann[id] = a
		}
		m := measures[id]
		// The link may have gone up or down since it was measured.
		m.Up = l.usable()
		up := b.damp(a, m.Up, now)
		m.Up = up
		costs := make([]float64, len(b.profiles))
		for i, p := range b.profiles {
			costs[i] = p.Cost(m)
		}
		unit := string(router.CommonUnit(router.Address(b.cfg.Address), router.Address(l.cfg.Peer)))
		switch {
		case force, a.costs == nil, up != a.up:
		case b.significant(a.costs, costs) && now.Sub(a.at) >= b.cfg.Routing.HoldDown:
		default:
			continue
		}
		units[unit] = true
	}
	if len(units) == 0 {
		return
	}
	for unit := range units {
		b.announceUnitLocked(unit, now, measures)
	}
	b.recomputeRoutesLocked()
}

// damp brings a link's flap damping up to date with its state now and
// returns whether it may be announced up.
func (b *Broker) damp(a *announced, up bool, now time.Time) bool {
	r := b.cfg.Routing
	if dt := now.Sub(a.decayed); dt > 0 {
		a.penalty *= math.Exp2(-dt.Seconds() / r.FlapHalfLife.Seconds())
		a.decayed = now
	}
	if a.wasUp && !up {
		a.penalty++
	}
	a.wasUp = up
	switch {
	case a.penalty > r.FlapSuppress:
		a.suppressed = true
	case a.penalty < r.FlapReuse:
		a.suppressed = false
	}
	return a.upNow()
}

// significant reports whether any profile's cost moved by more than the
// thresholds.
func (b *Broker) significant(old, cur []float64) bool {
	r := b.cfg.Routing
	for i := range cur {
		if i >= len(old) {
			return true
		}
		d := math.Abs(cur[i] - old[i])
		if d >= r.MinChange && d >= r.Threshold*math.Abs(old[i]) {
			return true
		}
	}
	return false
}

// announceUnitLocked announces all our links of one unit with their
// current costs.
func (b *Broker) announceUnitLocked(unit string, now time.Time, measures map[string]router.Measures) {
	b.annSeq++
	ls := &linkState{
		Origin: b.cfg.Address, Unit: unit,
		Ver:  version{Epoch: b.epoch, Seq: b.annSeq},
		Time: now.UnixNano(),
	}
	for _, p := range b.profiles {
		ls.Profiles = append(ls.Profiles, p.Name)
	}
	for id, l := range b.links {
		if string(router.CommonUnit(router.Address(b.cfg.Address), router.Address(l.cfg.Peer))) != unit {
			continue
		}
		m := measures[id]
		a := b.ann[id]
		up := a.upNow()
		m.Up = up
		lk := lsLink{ID: id, Peer: l.cfg.Peer, Up: up, LatencyMs: m.LatencyMs, JitterMs: m.JitterMs, Loss: m.LossPercent / 100}
		for _, p := range b.profiles {
			lk.Costs = append(lk.Costs, p.Cost(m))
		}
		if a.up != up {
			l.log.Info("link announced", slog.Bool("up", up), slog.Float64("cost", lk.Costs[0]))
		}
		a.up, a.costs, a.at = up, lk.Costs, now
		ls.Links = append(ls.Links, lk)
	}
	sort.Slice(ls.Links, func(i, j int) bool { return ls.Links[i].ID < ls.Links[j].ID })
	b.stats.updatesSent.Add(1)
	b.lsdb[lsKey{ls.Origin, ls.Unit}] = ls
	b.bnm.Set(b.announcement(ls))
	b.floodUpdateLocked(nil, ls)
	b.publishCostLocal(ls)
}

// costLoop reviews link costs, when asked and every Check, and refreshes
// every announcement, until the broker stops.
func (b *Broker) costLoop() {
	r := b.cfg.Routing
	check := time.NewTicker(r.Check)
	defer check.Stop()
	refresh := time.NewTicker(r.Refresh)
	defer refresh.Stop()
	for {
		force := false
		select {
		case <-b.ctx.Done():
			return
		case <-b.costKick:
		case <-check.C:
		case <-refresh.C:
			force = true
		}
		measures := b.measureLinks()
		b.mu.Lock()
		if !b.closed {
			b.reviewCostsLocked(time.Now(), force, measures)
		}
		b.mu.Unlock()
	}
}

// publishCostLocal shows a cost update to this broker's own subscribers of
// its unit's cost subject; other brokers get it by flooding.
func (b *Broker) publishCostLocal(ls *linkState) {
	u := netapi.CostUpdate{Origin: ls.Origin, Unit: ls.Unit, Seq: ls.Ver.Seq, Time: time.Unix(0, ls.Time).UTC()}
	for _, l := range ls.Links {
		cl := netapi.CostUpdateLink{ID: l.ID, A: ls.Origin, B: l.Peer, Up: l.Up, LatencyMs: l.LatencyMs, JitterMs: l.JitterMs, Loss: l.Loss}
		if l.Up {
			cl.Cost = map[string]float64{}
			for i, p := range ls.Profiles {
				cl.Cost[p] = l.Costs[i]
			}
		}
		u.Links = append(u.Links, cl)
	}
	js, err := json.Marshal(u)
	if err != nil {
		return
	}
	b.publishLocal(netapi.CostSubject(ls.Unit), js)
}

// profileFor returns the index of the cost profile subject routes on: the
// first subject pattern that matches it, or the default.
func (b *Broker) profileFor(subject string) byte {
	for _, sp := range b.cfg.Routing.Subjects {
		if server.SubjectMatchesFilter(subject, sp.Subject) {
			for i, p := range b.profiles {
				if p.Name == sp.Profile {
					return byte(i)
				}
			}
		}
	}
	return 0
}
