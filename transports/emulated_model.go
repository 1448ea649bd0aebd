package transports

import (
	"math"
	"math/rand/v2"
	"time"
)

// The random and timed parts of an emulation, as pure functions of an
// Emulation, a random source and the clock, so that they are tested by
// drawing rather than by sleeping.

const (
	// paretoShape is the Lomax shape: 3 keeps the variance finite while the
	// tail stays heavy.
	paretoShape = 3
	// paretoCut bounds a pareto draw at paretoCut*Jitter; the cut lowers the
	// mean by 4e-6 of itself and the standard deviation by about 0.3%.
	paretoCut = 1000
	// pcgStream is the second PCG seed word, fixed so that Seed alone picks
	// the sequence.
	pcgStream = 0x9e3779b97f4a7c15
	// maxOutageChain bounds how many back-to-back scheduled outages are
	// followed to find when the link comes back.
	maxOutageChain = 64
)

// newRand returns the random source of one emulation: seeded from seed, or
// from the runtime's random generator when seed is 0.
func newRand(seed int64) *rand.Rand {
	if seed == 0 {
		return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return rand.New(rand.NewPCG(uint64(seed), pcgStream))
}

// chance reports true with probability p; it draws nothing when p is 0.
func chance(r *rand.Rand, p float64) bool { return p > 0 && r.Float64() < p }

// extraDelay draws the random part of one frame's delay, as Emulation
// defines it for dist: uniform in [-j, j], normal with standard deviation j,
// or Lomax with mean j.
func extraDelay(r *rand.Rand, dist string, j time.Duration) time.Duration {
	if j == 0 {
		return 0
	}
	fj := float64(j)
	switch dist {
	case JitterNormal:
		return time.Duration(r.NormFloat64() * fj)
	case JitterPareto:
		// Inverse CDF of Lomax(shape a, scale (a-1)*j), whose mean is j;
		// 1-Float64 is in (0, 1], so the power is finite.
		x := (paretoShape - 1) * fj * (math.Pow(1-r.Float64(), -1.0/paretoShape) - 1)
		return time.Duration(min(x, paretoCut*fj))
	default:
		return time.Duration((2*r.Float64() - 1) * fj)
	}
}

// gilbertState is the state of a Gilbert-Elliott chain; the zero value is
// the good state.
type gilbertState struct{ bad bool }

// lose draws the fate of one frame in the current state, then moves the
// chain.
func (s *gilbertState) lose(r *rand.Rand, ge GilbertElliott) bool {
	p := ge.LossGood
	if s.bad {
		p = ge.LossBad
	}
	lost := chance(r, p)
	if s.bad {
		s.bad = !chance(r, ge.R)
	} else {
		s.bad = chance(r, ge.P)
	}
	return lost
}

// outageAt reports whether the link is down at t, for an emulation set at
// epoch. For a scheduled outage it also returns when the link comes back,
// following outages that start as others end; for Down, whose end nobody
// knows, end is zero.
func (e *Emulation) outageAt(epoch, t time.Time) (down bool, end time.Time) {
	if e.Down {
		return true, time.Time{}
	}
	end = t
	for range maxOutageChain {
		later := end
		for _, o := range e.Outages {
			if oe, ok := o.endAfter(epoch, end); ok && oe.After(later) {
				later = oe
			}
		}
		if !later.After(end) {
			break
		}
		end = later
	}
	if !end.After(t) {
		return false, time.Time{}
	}
	return true, end
}

// endAfter reports whether o is in progress at t and, if so, when it ends.
func (o Outage) endAfter(epoch, t time.Time) (time.Time, bool) {
	rel := t.Sub(epoch) - o.Start
	if rel < 0 {
		return time.Time{}, false
	}
	if o.Every > 0 {
		rel %= o.Every
	}
	if rel >= o.Duration {
		return time.Time{}, false
	}
	return t.Add(o.Duration - rel), true
}

// Expectation is what a link monitor should measure on an emulated link:
// the truth that monitoring is tested against. The delay figures describe
// Delay and Jitter alone; they leave out bandwidth queueing, Reorder, the
// clamp at zero (see Emulation), and the retransmissions and head-of-line
// blocking of reliable links, which delay frames sent closer together than
// the jitter.
type Expectation struct {
	// Delay is the mean one-way delay.
	Delay time.Duration
	// StdDev is the standard deviation of the one-way delay.
	StdDev time.Duration
	// MeanDiff is the mean absolute difference between the delays of two
	// frames, E|D1-D2|: the value that RFC 3550 interarrival jitter
	// estimates. Uniform: 2/3 Jitter; normal: 2/sqrt(pi) Jitter; pareto:
	// 1.2 Jitter.
	MeanDiff time.Duration
	// Loss is the long-run fraction of frames lost on an unreliable link;
	// a reliable link loses nothing.
	Loss float64
}

// Expect returns the Expectation of e.
func (e Emulation) Expect() Expectation {
	j := float64(e.Jitter)
	var mean, std, diff float64
	switch e.JitterDist {
	case JitterNormal:
		std, diff = j, 2*j/math.Sqrt(math.Pi)
	case JitterPareto:
		// Lomax with shape a=3 and scale s=2j: mean s/(a-1) = j, variance
		// s²a/((a-1)²(a-2)) = 3j², Gini mean difference
		// 2sa/((a-1)(2a-1)) = 1.2j.
		mean, std, diff = j, math.Sqrt(3)*j, 1.2*j
	default:
		std, diff = j/math.Sqrt(3), 2*j/3
	}
	return Expectation{
		Delay:    e.Delay + time.Duration(mean),
		StdDev:   time.Duration(std),
		MeanDiff: time.Duration(diff),
		Loss:     e.lossRate(),
	}
}

// lossRate is the long-run loss probability of the loss model.
func (e Emulation) lossRate() float64 {
	if e.LossModel != LossGilbert {
		return e.Loss
	}
	g := e.GE
	if g.P+g.R == 0 {
		return g.LossGood // the chain never leaves the good state
	}
	return (g.R*g.LossGood + g.P*g.LossBad) / (g.P + g.R)
}

// Draw draws one frame's fate on an idle link with emulation e: its
// one-way delay (Delay plus the jitter, never below zero) and whether it
// is lost, under independent loss. Bandwidth, outages and the
// Gilbert-Elliott model are left out: it is the distribution a frame
// meets on its own, for comparing models of a link with the emulation.
func (e Emulation) Draw(r *rand.Rand) (delay time.Duration, lost bool) {
	return e.delay(r), chance(r, e.Loss)
}

// delay draws one frame's propagation delay, never negative.
func (e *Emulation) delay(r *rand.Rand) time.Duration {
	return max(e.Delay+extraDelay(r, e.JitterDist, e.Jitter), 0)
}

// inOrder is a reliable link's schedule (see Emulation): a frame drawn as
// lost is one RTO late, frames sent within togetherFor of a draw meet that
// draw's delay, and due times never go back.
type inOrder struct {
	lastDue time.Time
	drawAt  time.Time
	drawn   time.Duration
}

// due is when a frame that enters the network at t0, and is out of the
// bandwidth cap at out, arrives; draw gives a fresh delay when the frame
// is not sent together with the one before it.
func (s *inOrder) due(t0, out time.Time, lost bool, rto time.Duration, draw func() time.Duration) time.Time {
	if d := t0.Sub(s.drawAt); s.drawAt.IsZero() || d < 0 || d >= togetherFor {
		s.drawAt, s.drawn = t0, draw()
	}
	due := out.Add(s.drawn)
	if lost {
		due = due.Add(rto)
	}
	if due.Before(s.lastDue) {
		due = s.lastDue
	}
	s.lastDue = due
	return due
}

// ReliableModel is what a reliable emulated link does to the frames sent
// on it, without a network: each frame's arrival, in order, with the
// retransmission stalls and head-of-line blocking the emulation gives
// (independent loss, no bandwidth cap or outages). It is for models that
// compare what frames meet one after another, such as the delay contract
// benchmark's.
type ReliableModel struct {
	e Emulation
	r *rand.Rand
	s inOrder
}

// Reliable returns e's reliable link drawn from r.
func (e Emulation) Reliable(r *rand.Rand) *ReliableModel {
	return &ReliableModel{e: e, r: r}
}

// Send returns when a frame sent at t arrives, never before the frame
// sent before it (frames are meant to be sent in the order of their
// times; one sent earlier than the frame before it draws a delay of its
// own and still arrives after that frame).
func (m *ReliableModel) Send(t time.Time) time.Time {
	lost := chance(m.r, m.e.Loss)
	return m.s.due(t, t, lost, m.e.rto(), func() time.Duration { return m.e.delay(m.r) })
}
