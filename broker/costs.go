package broker

import (
	"encoding/json"
	"log/slog"
	"sort"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
)

// Each broker prices its own links from their measurements, one cost per
// profile, and announces them: within the smallest unit holding both ends
// of each link, as a cost update flooded from broker to broker and shown to
// subscribers of $WL.cost.<unit>. When to announce is router.Rules': up
// and down at once, a cost moving past the threshold at most once per
// hold-down, and every refresh interval whatever happened.

// unmeasuredLatencyMs is what a link that has no measurement yet is priced
// at: usable, but the last choice until its probes come back.
const unmeasuredLatencyMs = 1000

// measures turns a link's monitor figures into what a profile prices.
// Latency is the recent median, which follows a change within a few
// probes and ignores a lone spike; loss is estimated over lossWindow
// probes, enough for a steady figure; jitter comes from the window. The
// delay distribution, which contracts compose along paths, is the one
// messages meet: on an emulated link, the monitor's (the emulated
// network's) with the emulation's hand-off lateness added; on quic, whose
// probes travel as datagrams that nothing resends while messages travel
// on a stream that does, with the probes' loss turned into delay (see
// quicRepairMs).
func (l *link) measures(lossWindow int) router.Measures {
	m := l.mon.Snapshot()
	r := router.Measures{Up: l.usable(), LatencyMs: m.RecentLatency, LossPercent: 100 * l.mon.LossOver(lossWindow), JitterMs: m.JitterMeanDiff}
	if m.Samples == 0 {
		r.LatencyMs = unmeasuredLatencyMs
		return r
	}
	r.Delay = m.Forward
	if l.cfg.Transport == "quic" {
		r.Delay = router.Repaired(r.Delay, quicRepairMs(m))
	}
	if s := l.sess.Load(); s != nil {
		if late := lateness(s.HandOffLateness()); late.Total() > 0 {
			r.Delay = router.Convolve(r.Delay, late)
		}
	}
	return r
}

// quicRepairMs is how long after a lost packet was sent quic sends its
// data again: once a later packet is acknowledged and 9/8 of a round trip
// has passed (RFC 9002's time threshold; a receiver acknowledges at once
// a packet that follows a gap), taken from the link's measured round
// trip. On a link that carries so little that no later packet follows
// within the round trip, the resend waits longer, up to quic's probe
// timeout (the round trip plus four times its mean deviation plus 25
// ms). Messages sent behind the lost packet on the stream wait for it
// too; the prediction leaves that out (on tcp the probes share the
// stream, and meet it).
func quicRepairMs(m monitor.Metrics) float64 {
	return 9 * m.RTT / 8
}

// latenessMin is how many hand-offs an emulated link must have made
// before their lateness counts.
const latenessMin = 32

// lateness is the distribution of an emulation's hand-off lateness, or an
// empty one for fewer than latenessMin hand-offs.
func lateness(late []time.Duration) router.Histogram {
	if len(late) < latenessMin {
		return router.Histogram{}
	}
	ms := make([]float64, len(late))
	for i, d := range late {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	return router.HistogramOf(ms, 0)
}

// measureLinks reads every link's figures. It is called without b.mu:
// computing a monitor's statistics takes time, and nothing else should
// wait for it.
func (b *Broker) measureLinks() map[string]router.Measures {
	out := make(map[string]router.Measures, len(b.links))
	for id, l := range b.links { // b.links never changes after New
		out[id] = l.measures(b.cfg.Routing.LossWindow)
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
	rules := b.cfg.Routing.Rules
	units := map[string]bool{}
	for id, l := range b.links {
		a := b.ann[id]
		if a == nil {
			a = &router.LinkRecord{}
			b.ann[id] = a
		}
		m := measures[id]
		// The link may have gone up or down since it was measured.
		m.Up = a.Damp(rules, l.usable(), now)
		b.reclaimLocked(id, l)
		standby := !m.Up && l.canStandby()
		costs := make([]float64, len(b.profiles))
		for i, p := range b.profiles {
			costs[i] = p.Cost(m)
		}
		// With contracts, a link whose distribution moved is announced
		// too: contracts compose it, and its costs may stay within the
		// thresholds all the while (see router.Rules.DelayShift).
		if force || a.Due(rules, m.Up, costs, now) || standby != l.standby ||
			len(b.cfg.Routing.Contracts) > 0 && a.DelayDue(rules, m.Delay, now) {
			units[string(router.CommonUnit(router.Address(b.cfg.Address), router.Address(l.cfg.Peer)))] = true
		}
	}
	for unit := range units {
		b.announceUnitLocked(unit, now, measures)
	}
	switch {
	case len(units) > 0:
		b.recomputeRoutesLocked()
	case b.sumPending:
		b.announceSummariesLocked(now, false)
	}
	if len(b.reroute) > 0 {
		b.rerouteLocked(b.routes.Load())
	}
	if force {
		b.announceSummariesLocked(now, true)
	}
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
		up := a.UpNow()
		m.Up = up
		standby := !up && l.canStandby()
		lk := lsLink{ID: id, Peer: l.cfg.Peer, Up: up, Standby: standby, LatencyMs: m.LatencyMs, JitterMs: m.JitterMs, Loss: m.LossPercent / 100,
			Delay: m.Delay.Compact(router.SentBuckets)}
		for _, p := range b.profiles {
			lk.Costs = append(lk.Costs, p.Cost(m))
		}
		if a.Costs == nil || a.Up != up || l.standby != standby {
			l.log.Info("link announced", slog.Bool("up", up), slog.Bool("standby", standby), slog.Float64("cost", lk.Costs[0]))
		}
		l.standby = standby
		a.Announced(up, lk.Costs, m.Delay, now)
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
		cl := netapi.CostUpdateLink{ID: l.ID, A: ls.Origin, B: l.Peer, Up: l.Up, Standby: l.Standby, LatencyMs: l.LatencyMs, JitterMs: l.JitterMs, Loss: l.Loss}
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

// profileFor returns the index of the route table subject routes on: that
// of the first contract whose pattern matches it (the contracts' tables
// follow the profiles'), else that of the profile of the first subject
// pattern that matches it, else the default profile's.
func (b *Broker) profileFor(subject string) byte {
	for i, c := range b.cfg.Routing.Contracts {
		if server.SubjectMatchesFilter(subject, c.Subject) {
			return byte(len(b.profiles) + i)
		}
	}
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
