package broker

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
)

// Unit summaries. A broker with a link out of one of its units is a border
// of that unit; it announces what it costs, inside the unit, to reach
// every broker of it (router.Summary), within the unit's parent, so that
// the brokers that see the unit as one complex node enter and leave it
// where the cheapest path does. Summaries are flooded and kept like cost
// updates: a newer version from the same origin and unit replaces the
// older whole; the origin announces again when router.Rules say so and
// every refresh interval.

// maxSummaryDests bounds the brokers one summary may list: about 25 bytes
// each and their delay distributions (at most router.SummaryBuckets
// buckets of 2-5 bytes), so that a summary fits in a frame of 1 MiB.
const maxSummaryDests = 10000

// summaryRec is a summary as it travels: its origin's profiles by name,
// the brokers as addresses.
type summaryRec struct {
	Origin   string
	Unit     string
	Ver      version
	Time     int64    // unix ns when the origin computed it
	Profiles []string // the cost profiles, in the order of each dest's Costs
	Dests    []router.Dest
	at       time.Time // when this broker announced it (its own only)
	// Its own only: the distributions of its ways whole, as composed when
	// it was announced, and when they were last composed to be compared
	// with them (router.Rules.SummaryDelayDue).
	whole    []router.Histogram
	composed time.Time
}

func appendSummary(b []byte, s *summaryRec) []byte {
	b, st := overlay.BeginRecord(b, overlay.RecSummary)
	b = appendPricedHeader(b, s.Origin, s.Unit, s.Ver, s.Time, s.Profiles)
	b = overlay.AppendUvarint(b, uint64(len(s.Dests)))
	for _, d := range s.Dests {
		// Every broker of a summary is inside its unit: the unit's prefix
		// is left out.
		b = overlay.AppendStr(b, strings.TrimPrefix(string(d.Broker), s.Unit+"."))
		for i := range s.Profiles {
			b = overlay.AppendF64(b, d.Costs[i])
		}
		b = appendDelay(b, d.Delay)
	}
	return overlay.EndRecord(b, st)
}

// decodeSummary parses a summary and checks that it makes sense: valid
// addresses, an origin inside the unit, a unit that is not the root,
// brokers inside the unit, costs that are >= 0 or +Inf.
func decodeSummary(body []byte) (*summaryRec, error) {
	r := overlay.NewReader(body)
	s := &summaryRec{}
	readPricedHeader(&r, &s.Origin, &s.Unit, &s.Ver, &s.Time, &s.Profiles)
	np := len(s.Profiles)
	n := r.Count(1 + 8*np + 2)
	if n > maxSummaryDests {
		return nil, fmt.Errorf("%d brokers, more than %d", n, maxSummaryDests)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		d := router.Dest{Broker: router.Address(s.Unit + "." + r.Str()), Costs: make([]float64, np)}
		for p := range np {
			d.Costs[p] = r.F64()
		}
		d.Delay = readDelay(&r)
		s.Dests = append(s.Dests, d)
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	return s, s.check()
}

var errBadSummary = errors.New("bad summary")

func (s *summaryRec) check() error {
	origin, err := router.ParseAddress(s.Origin)
	if err != nil {
		return err
	}
	unit, err := router.ParseAddress(s.Unit)
	if err != nil {
		return err
	}
	if !origin.Within(unit) || origin == unit {
		return fmt.Errorf("%w: %s is not a broker of unit %s", errBadSummary, origin, unit)
	}
	for i, d := range s.Dests {
		if _, err := router.ParseAddress(string(d.Broker)); err != nil {
			return err
		}
		if d.Broker == origin || i > 0 && d.Broker <= s.Dests[i-1].Broker {
			return fmt.Errorf("%w: brokers not in order or listing the origin at %s", errBadSummary, d.Broker)
		}
		for _, c := range d.Costs {
			if math.IsNaN(c) || c < 0 {
				return fmt.Errorf("%w: %s costs %v", errBadSummary, d.Broker, c)
			}
		}
	}
	return nil
}

// summaryScope is where a summary of unit is announced: the unit's
// parent.
func summaryScope(unit string) string { return string(router.Address(unit).Cluster()) }

// onSummary takes another broker's summary. One that is old, or out of
// its scope, is ignored and counted.
func (b *Broker) onSummary(from *session, s *summaryRec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.Origin == b.cfg.Address {
		b.ownEchoLocked(s.Unit, s.Ver, true)
		return
	}
	if !within(b.cfg.Address, summaryScope(s.Unit)) {
		b.stats.badUpdates.Add(1)
		b.noteDrop("summary", s.Origin, "announced outside its unit's parent")
		return
	}
	k := lsKey{s.Origin, s.Unit}
	if cur, ok := b.sumdb[k]; ok && b.staleLocked(s.Ver, cur.Ver) {
		return
	}
	b.sumdb[k] = s
	b.bnm.SetSummary(b.summary(s))
	b.floodSummaryLocked(from, s)
	b.recomputeRoutesLocked()
}

// summary turns a summary as it travels into the network map's terms,
// with its costs in this broker's profile order (a profile its origin does
// not know is priced on the origin's default profile).
func (b *Broker) summary(s *summaryRec) router.Summary {
	idx := b.profileIndex(s.Profiles)
	out := router.Summary{Origin: router.Address(s.Origin), Unit: router.Address(s.Unit), Dests: make([]router.Dest, len(s.Dests))}
	for i, d := range s.Dests {
		costs := make([]float64, len(idx))
		for p, j := range idx {
			if j < 0 {
				j = 0
			}
			costs[p] = d.Costs[j]
		}
		out.Dests[i] = router.Dest{Broker: d.Broker, Costs: costs, Delay: d.Delay}
	}
	return out
}

// profileIndex maps this broker's profiles to their places in names; -1
// for a profile names lacks.
func (b *Broker) profileIndex(names []string) []int {
	idx := make([]int, len(b.profiles))
	for i, p := range b.profiles {
		idx[i] = -1
		for j, name := range names {
			if name == p.Name {
				idx[i] = j
			}
		}
	}
	return idx
}

// floodSummaryLocked floods a summary within its scope and counts the
// copies that cross links.
func (b *Broker) floodSummaryLocked(except *session, s *summaryRec) {
	n := b.floodScopedLocked(except, summaryScope(s.Unit), func(buf []byte) []byte { return appendSummary(buf, s) })
	b.stats.updatesCarried.Add(uint64(n))
}

// announceSummariesLocked announces this broker's summaries of the units
// it borders, those router.Rules say are due now; with force, all of them
// (the periodic refresh). A summary whose news is only a cost waits for
// the hold-down: the cost loop's checks come back for it. With contracts,
// a summary whose distributions moved is due too (see delayMovedLocked).
func (b *Broker) announceSummariesLocked(now time.Time, force bool) {
	b.sumPending = false
	rules := b.cfg.Routing.Rules
	for _, s := range b.bnm.Summaries() {
		k := lsKey{b.cfg.Address, string(s.Unit)}
		last, had := b.sumdb[k]
		var lastSum *router.Summary
		var at time.Time
		if had {
			ls := router.Summary{Origin: s.Origin, Unit: s.Unit, Dests: last.Dests}
			lastSum, at = &ls, last.at
		}
		var whole []router.Histogram
		if !force && !rules.SummaryDue(lastSum, at, s, now) {
			// Pending only if it will be due once the hold-down is over: a
			// cost that moved less than the thresholds waits for the
			// refresh, and nothing need come back for it.
			b.sumPending = b.sumPending || rules.SummaryDue(lastSum, at, s, at.Add(rules.HoldDown))
			var moved bool
			if moved, whole = b.delayMovedLocked(last, &s, now); !moved {
				continue
			}
		}
		if whole == nil {
			whole = b.bnm.ComposeDelays(&s)
		}
		b.annSeq++
		rec := &summaryRec{Origin: b.cfg.Address, Unit: string(s.Unit), Ver: version{Epoch: b.epoch, Seq: b.annSeq},
			Time: now.UnixNano(), Dests: s.Dests, at: now, whole: whole, composed: now}
		for _, p := range b.profiles {
			rec.Profiles = append(rec.Profiles, p.Name)
		}
		b.sumdb[k] = rec
		b.stats.updatesSent.Add(1)
		b.stats.summariesSent.Add(1)
		b.floodSummaryLocked(nil, rec)
	}
}

// delayMovedLocked reports whether the ways of summary s, announced last
// as last, moved past router.Rules.DelayShift (router.Rules.
// SummaryDelayDue), with their distributions composed now, for contracts
// to take: a link inside the unit is announced again when its
// distribution moves, but only inside the unit, and its costs may stay
// within the thresholds all the while. Without contracts it reports
// false. Composing costs a search of the unit, so it is done at most once
// a hold-down for each summary; until then the summary is pending, and
// the cost loop comes back for it.
func (b *Broker) delayMovedLocked(last *summaryRec, s *router.Summary, now time.Time) (bool, []router.Histogram) {
	rules := b.cfg.Routing.Rules
	if len(b.cfg.Routing.Contracts) == 0 || rules.DelayShift <= 0 {
		return false, nil
	}
	since := last.at
	if last.composed.After(since) {
		since = last.composed
	}
	if now.Sub(since) < rules.HoldDown {
		b.sumPending = true
		return false, nil
	}
	last.composed = now
	whole := b.bnm.ComposeDelays(s)
	return rules.SummaryDelayDue(last.whole, whole, last.at, now), whole
}
