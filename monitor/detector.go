package monitor

import (
	"fmt"
	"math"
	"time"
)

// The failure detector.
//
// Probes double as heartbeats, and the detector asks how unlikely the
// current silence is if the link is up. This is phi accrual (Hayashibara et
// al., 2004): phi = -log10 P(silence | up), compared with thresholds. What
// differs is the model behind P. The classic detector fits a normal
// distribution to heartbeat inter-arrival times; with probe loss q the
// inter-arrival times are multiples of the interval, and the normal fit is
// badly wrong in the tail: at 100 ms probes and q = 10% the fit has mean
// 111 ms and deviation 35 ms, so phi reaches 8 after 305 ms, which three
// lost probes in a row exceed about five times in ten minutes. A silence
// is really a run of unanswered probes, so here
//
//	P(silence | up) = product over the probes sent since the last answered
//	                  one of (q + (1-q) * P(RTT > now - sent))
//
// with q the window's probe loss (clamped to [LossFloor, LossCeiling]) and
// RTT normal with the RFC 6298 smoothed mean srtt and deviation 1.25 rttvar
// (at least MinStdDev). A probe whose response is overdue adds -log10 q;
// one still within its RTT adds about 0. The model knows the send times, so
// it needs no interval and follows adaptive intervals, and it needs no
// warm-up: before the first RTT sample only timed-out probes count.
//
// Thresholds, for the acceptance case of 100 ms probes, 40 ms one-way delay
// and 5% loss each way (q = 1-0.95^2 = 9.75%, 1.01 phi per overdue probe):
// PhiDown 6 is reached when the 6th probe after the last answered one is
// overdue, or the 7th when the window's loss estimate is above 10%
// (-log10 q < 1). The last answered probe left up to 40 ms before the
// outage plus up to one interval, so a full outage is declared
// 600 (or 700) + 80 (RTT) + 2-3 sigma - 40 - U*100 ms after it starts.
// SimulateDetection, 200 trials: p50 0.63 s, p99 0.76 s, max 0.81 s. A
// false down needs 6 probes lost in a row, 0.0975^6 = 8.6e-7 per probe,
// 0.005 expected in 10 minutes (6000 probes); five in a row (0.05
// expected) stay below 6: 5.05 plus a partial sixth. SimulateFalseDowns:
// none in 1000 simulated minutes; with PhiDown 5, eight.
//
// On an ordered transport (tcp, tls, ws) the probes share one stream with
// everything the link carries, and a stall (a retransmission, a sender
// that stopped for a moment) holds every probe behind the one it caught:
// ten probes sent in one 250 ms stall are one piece of evidence, not ten.
// Counting them as ten declared such links down several times a minute
// at 1% loss. So with DetectorConfig.Ordered the detector learns the
// link's stall span, the longest any response came late by, against srtt
// (a maximum that decays by 1/stallMemory a response), and of the probes
// unanswered since the last response it counts only those sent at least a
// span after the last one it counted. On a link that never stalls the
// span is the jitter's, shorter than the interval, and nothing changes; on
// one that stalls for 250 ms a full outage takes about five spans to
// declare instead of five intervals, the price of not calling every stall
// an outage.
//
// The timeout detector is the plain alternative: suspect after SuspectAfter
// and down after Timeout without a response, whatever the interval and the
// loss.

// probe is a request in flight.
type probe struct {
	seq  uint64
	sent time.Time
	// outage: the link was declared down while the probe was out, so its
	// loss belongs to the failure, not to the link's everyday loss.
	outage bool
}

// detector holds the failure detector's state. It is not safe for
// concurrent use; Link serialises it.
type detector struct {
	cfg   DetectorConfig
	state State
	// RFC 6298 estimators of the RTT: srtt smoothed with gain 1/8, rttvar
	// the smoothed mean deviation with gain 1/4.
	srtt, rttvar time.Duration
	hasRTT       bool
	// q is the probe loss rate assumed, as of the last response: the
	// silence being judged must not change its own yardstick.
	q float64
	// since is the last response or, before one, when measurement started.
	since time.Time
	// acked is the highest Seq answered; expired holds the send times of
	// the probes after it that timed out (those still pending are judged
	// by their age).
	acked   uint64
	expired []time.Time
	// span is the link's stall span (see Ordered): the longest a response
	// came late by, against srtt, decaying by 1/stallMemory a response.
	span time.Duration
}

// stallMemory is how many responses a stall span takes to decay by a
// factor e: a link that stalled once in a few minutes of probing is still
// judged as one that stalls.
const stallMemory = 1024

func newDetector(cfg DetectorConfig, now time.Time) detector {
	return detector{cfg: cfg, since: now, q: cfg.LossFloor}
}

// restart forgets the current silence, for a link whose measurement
// (re)starts at now: the next verdict is about probes sent from now on.
func (d *detector) restart(now time.Time, acked uint64) {
	d.since, d.acked, d.expired = now, acked, d.expired[:0]
}

// answered records a response to probe seq with the given RTT, arriving at
// at, with loss the window's current loss rate; outage says the link was
// declared down while the probe was out. It reports whether the RTT was a
// surprise: more than 4 deviations from srtt.
func (d *detector) answered(seq uint64, rtt time.Duration, at time.Time, loss float64, outage bool) (surprise bool) {
	if d.hasRTT {
		// A response held up by an outage (a stream that kept it while
		// the link was down) says how long the outage lasted, not how
		// long the link stalls when it is up.
		d.span -= d.span / stallMemory
		if late := rtt - d.srtt; late > d.span && !outage {
			d.span = late
		}
		dev := (rtt - d.srtt).Abs()
		surprise = dev > 4*max(d.rttvar, d.cfg.MinStdDev)
		d.rttvar += (dev - d.rttvar) / 4
		d.srtt += (rtt - d.srtt) / 8
	} else {
		d.srtt, d.rttvar, d.hasRTT = rtt, rtt/2, true
	}
	if seq > d.acked {
		// Probes time out in Seq order, so every expired one is below seq.
		d.acked, d.expired = seq, d.expired[:0]
	}
	d.since = at
	d.q = min(max(loss, d.cfg.LossFloor), d.cfg.LossCeiling)
	return surprise
}

// timedOut records that probe p got no response in time.
func (d *detector) timedOut(p probe) {
	if p.seq > d.acked {
		d.expired = append(d.expired, p.sent)
	}
}

// sigma is the RTT standard deviation assumed: 1.25 mean deviations, as
// for a normal distribution.
func (d *detector) sigma() time.Duration {
	return max(d.rttvar*5/4, d.cfg.MinStdDev)
}

// phi is -log10 P(the current silence | the link is up) at now.
func (d *detector) phi(now time.Time, pending []probe) float64 {
	perLost := -math.Log10(d.q)
	// counts says whether a probe sent at t is evidence of its own: on an
	// ordered transport, only when sent a stall span after the last one
	// counted.
	var last time.Time
	counts := func(t time.Time) bool {
		if !d.cfg.Ordered || d.span <= 0 {
			return true
		}
		if !last.IsZero() && t.Sub(last) < d.span {
			return false
		}
		last = t
		return true
	}
	var phi float64
	for _, t := range d.expired {
		if counts(t) {
			phi += perLost
		}
	}
	if !d.hasRTT {
		return phi
	}
	sigma := float64(d.sigma())
	for _, p := range pending {
		if p.seq <= d.acked || !counts(p.sent) {
			continue
		}
		z := float64(now.Sub(p.sent)-d.srtt) / sigma
		late := 0.5 * math.Erfc(z/math.Sqrt2)
		phi -= math.Log10(d.q + (1-d.q)*late)
	}
	return phi
}

// verdict returns the state the silence calls for at now: StateDown,
// StateSuspect or StateUp (no complaint), and why.
func (d *detector) verdict(now time.Time, pending []probe) (State, string) {
	if d.cfg.Kind == DetectorTimeout {
		silence := now.Sub(d.since)
		switch {
		case silence >= d.cfg.Timeout:
			return StateDown, fmt.Sprintf("no response for %v >= %v", silence, d.cfg.Timeout)
		case silence >= d.cfg.SuspectAfter:
			return StateSuspect, fmt.Sprintf("no response for %v >= %v", silence, d.cfg.SuspectAfter)
		}
		return StateUp, ""
	}
	phi := d.phi(now, pending)
	switch {
	case phi >= d.cfg.PhiDown:
		return StateDown, fmt.Sprintf("phi %.2f >= %g", phi, d.cfg.PhiDown)
	case phi >= d.cfg.PhiSuspect:
		return StateSuspect, fmt.Sprintf("phi %.2f >= %g", phi, d.cfg.PhiSuspect)
	}
	return StateUp, ""
}

// judge applies the verdict at now to the current state and returns the
// new state, if it changes. A silence only makes things worse: up or
// unknown may become suspect, any of them down; only a response (see
// answered) brings a link back up.
func (d *detector) judge(now time.Time, pending []probe) (to State, reason string, changed bool) {
	if d.state == StateDisabled || d.state == StateDown {
		return d.state, "", false
	}
	v, reason := d.verdict(now, pending)
	switch {
	case v == StateDown, v == StateSuspect && d.state != StateSuspect:
		return v, reason, true
	}
	return d.state, "", false
}

// nextCheck returns when the verdict may next change, or the zero time if
// only a response or a timeout can change it. For phi that is when the
// next pending probe becomes overdue (srtt + 3 sigma after its send, where
// its phi is within 0.01 of -log10 q); for the timeout detector, when the
// silence crosses the next threshold.
func (d *detector) nextCheck(now time.Time, pending []probe) time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if d.cfg.Kind == DetectorTimeout {
		earliest(d.since.Add(d.cfg.SuspectAfter))
		earliest(d.since.Add(d.cfg.Timeout))
		return next
	}
	if !d.hasRTT {
		return next
	}
	overdue := d.srtt + 3*d.sigma()
	for _, p := range pending {
		if p.seq > d.acked {
			earliest(p.sent.Add(overdue))
		}
	}
	return next
}
