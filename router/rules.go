package router

import (
	"fmt"
	"math"
	"time"
)

// Rules say when a broker announces what it knows, and how firmly it
// holds its routes. Every broker of a network should use the same.
type Rules struct {
	// Threshold is the relative change of a cost, on any profile, that is
	// worth announcing (0.10: 10%), and MinChange the absolute change
	// below which it is not (0.5 cost units, so that a 1.0 link going
	// 1.05 stays quiet). A link going up or down, and a unit's summary
	// gaining or losing a broker (on any profile), are announced at once
	// whatever they.
	Threshold, MinChange float64
	// HoldDown is the least time between two announcements of a link, or
	// of a summary, that only change costs (1 s): a cost that moves every
	// probe is announced at most once per hold-down.
	HoldDown time.Duration
	// Margin is how much cheaper another path must be before a route
	// moves to it (0.10: 10%); a route whose path goes down moves at
	// once. See hold.go.
	Margin float64
	// A link that goes down and up repeatedly is damped, as BGP damps
	// flapping routes (RFC 2439): every fall adds 1 to its penalty, which
	// halves every FlapHalfLife (30 s); above FlapSuppress (3) the link
	// is announced down until the penalty is back under FlapReuse (1).
	// The penalty never exceeds what decays to FlapReuse in
	// FlapMaxSuppress (60 s: a penalty of 4), RFC 2439's maximum suppress
	// time, so that a link that fell many times in one stall is back in
	// service within a minute of working again, not after several.
	FlapHalfLife, FlapMaxSuppress time.Duration
	FlapSuppress, FlapReuse       float64
	// DelayShift is how far a link's delay distribution must move from
	// the one last announced (their Kolmogorov-Smirnov distance, see
	// Distance) for the link to be announced again, a hold-down after
	// the last announcement (0.03). It matters where delay contracts
	// compose the distributions: a link is first announced when its
	// monitor has a few probes, and its costs may never move past the
	// thresholds again, while the distribution they gave was a rough
	// one. Some 2,000 probes give a distribution within about 0.03 of
	// another window's of the same link, so a steady link is announced
	// for this less often than the refresh announces it anyway. The same
	// distance holds for the ways a unit's summary carries
	// (SummaryDelayDue).
	DelayShift float64
}

// DefaultRules returns the rules every field of which is described above.
func DefaultRules() Rules {
	return Rules{Threshold: 0.10, MinChange: 0.5, HoldDown: time.Second, Margin: 0.10,
		FlapHalfLife: 30 * time.Second, FlapMaxSuppress: time.Minute, FlapSuppress: 3, FlapReuse: 1, DelayShift: 0.03}
}

// Validate checks that every field is in range.
func (r Rules) Validate() error {
	switch {
	case !(r.Threshold >= 0 && r.Threshold < 10):
		return fmt.Errorf("threshold %v: want a fraction >= 0", r.Threshold)
	case !(r.MinChange >= 0) || math.IsInf(r.MinChange, 1):
		return fmt.Errorf("min change %v: want a cost >= 0", r.MinChange)
	case !(r.Margin >= 0 && r.Margin < 1):
		return fmt.Errorf("margin %v: want a fraction in [0, 1)", r.Margin)
	case r.HoldDown < 0 || r.FlapHalfLife <= 0:
		return fmt.Errorf("hold-down %v, flap half-life %v: want durations > 0", r.HoldDown, r.FlapHalfLife)
	case !(r.DelayShift >= 0 && r.DelayShift < 1):
		return fmt.Errorf("delay shift %v: want a distance in [0, 1)", r.DelayShift)
	case !(r.FlapReuse > 0 && r.FlapReuse <= r.FlapSuppress):
		return fmt.Errorf("flap reuse %v and suppress %v: want 0 < reuse <= suppress", r.FlapReuse, r.FlapSuppress)
	case !(r.flapCeiling() > r.FlapSuppress):
		return fmt.Errorf("flap max suppress %v: want over %v, the time a penalty of %v takes to decay to %v (half-life %v)",
			r.FlapMaxSuppress, time.Duration(r.FlapHalfLife.Seconds()*math.Log2(r.FlapSuppress/r.FlapReuse)*float64(time.Second)),
			r.FlapSuppress, r.FlapReuse, r.FlapHalfLife)
	}
	return nil
}

// flapCeiling is the highest a link's flap penalty goes: the penalty that
// decays to FlapReuse in FlapMaxSuppress.
func (r Rules) flapCeiling() float64 {
	return r.FlapReuse * math.Exp2(r.FlapMaxSuppress.Seconds()/r.FlapHalfLife.Seconds())
}

// change says how cur differs from old: in what it reaches (a cost
// finite in one and infinite in the other), or by a cost that moved past
// the thresholds.
func (r Rules) change(old, cur []float64) (reach, cost bool) {
	if len(old) != len(cur) {
		return true, false
	}
	for i := range cur {
		if math.IsInf(cur[i], 1) != math.IsInf(old[i], 1) {
			return true, false
		}
		d := math.Abs(cur[i] - old[i])
		if d >= r.MinChange && d >= r.Threshold*math.Abs(old[i]) {
			cost = true
		}
	}
	return false, cost
}

// LinkRecord is what a broker last announced about one of its links, and
// the link's flap damping. The zero value has announced nothing.
type LinkRecord struct {
	Up    bool      // as announced
	Costs []float64 // as announced; nil before the first announcement
	Delay Histogram // as announced (before it was compacted to be sent)
	At    time.Time // of the last announcement
	// Flap damping: the penalty, when it was last decayed, the last state
	// seen (announced or not), and whether damping holds the link down.
	penalty    float64
	decayed    time.Time
	wasUp      bool
	suppressed bool
}

// Damp brings the link's flap damping up to date with its state now and
// returns whether it may be announced up.
func (a *LinkRecord) Damp(r Rules, up bool, now time.Time) bool {
	if a.decayed.IsZero() {
		a.decayed = now
	}
	if dt := now.Sub(a.decayed); dt > 0 {
		a.penalty *= math.Exp2(-dt.Seconds() / r.FlapHalfLife.Seconds())
		a.decayed = now
	}
	if a.wasUp && !up {
		a.penalty = min(a.penalty+1, r.flapCeiling())
	}
	a.wasUp = up
	switch {
	case a.penalty > r.FlapSuppress:
		a.suppressed = true
	case a.penalty < r.FlapReuse:
		a.suppressed = false
	}
	return a.UpNow()
}

// UpNow is whether the link may be announced up: it is, and damping does
// not hold it down.
func (a *LinkRecord) UpNow() bool { return a.wasUp && !a.suppressed }

// Due reports whether the link must be announced now, being up (after
// damping) and priced at costs: the first time, when it went up or down,
// and when a cost moved past the thresholds a hold-down after the last
// announcement.
func (a *LinkRecord) Due(r Rules, up bool, costs []float64, now time.Time) bool {
	if a.Costs == nil || up != a.Up {
		return true
	}
	reach, cost := r.change(a.Costs, costs)
	return reach || cost && now.Sub(a.At) >= r.HoldDown
}

// DelayDue reports whether the link, announced up, must be announced
// again because its delay distribution moved more than r.DelayShift from
// the one announced, a hold-down after the last announcement. A
// DelayShift of 0 turns it off.
func (a *LinkRecord) DelayDue(r Rules, delay Histogram, now time.Time) bool {
	return a.Costs != nil && a.Up && r.DelayShift > 0 && now.Sub(a.At) >= r.HoldDown &&
		Distance(a.Delay, delay) > r.DelayShift
}

// SummaryDelayDue reports whether a summary must be announced again
// because the distribution of the way to one of its brokers moved more
// than r.DelayShift from the one announced: last and cur are the
// distributions whole (BNM.ComposeDelays), by broker in the summary's
// order, announced at the time at. Like DelayDue it waits a hold-down
// after the last announcement, and a DelayShift of 0 turns it off. A
// summary whose brokers changed is due by SummaryDue already.
func (r Rules) SummaryDelayDue(last, cur []Histogram, at, now time.Time) bool {
	if r.DelayShift <= 0 || now.Sub(at) < r.HoldDown {
		return false
	}
	if len(last) != len(cur) {
		return true
	}
	for i := range cur {
		if Distance(last[i], cur[i]) > r.DelayShift {
			return true
		}
	}
	return false
}

// Announced records an announcement.
func (a *LinkRecord) Announced(up bool, costs []float64, delay Histogram, now time.Time) {
	a.Up, a.Costs, a.Delay, a.At = up, costs, delay, now
}

// SummaryDue reports whether summary cur must be announced, last having
// been announced at the time at: at once when it reaches brokers last did
// not or no longer reaches some, and when a cost moved past the
// thresholds a hold-down after the last announcement.
func (r Rules) SummaryDue(last *Summary, at time.Time, cur Summary, now time.Time) bool {
	if last == nil || len(last.Dests) != len(cur.Dests) {
		return true
	}
	moved := false
	for i, d := range cur.Dests {
		if last.Dests[i].Broker != d.Broker {
			return true
		}
		reach, cost := r.change(last.Dests[i].Costs, d.Costs)
		if reach {
			return true
		}
		moved = moved || cost
	}
	return moved && now.Sub(at) >= r.HoldDown
}
