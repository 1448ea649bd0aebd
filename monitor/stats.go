package monitor

import (
	"math"
	"slices"
	"time"

	"github.com/wayline/wayline/internal/selection"
	"github.com/wayline/wayline/router"
)

// Metrics is a snapshot of one link's measurements. Delays are in
// milliseconds. Window statistics cover the last Config.Window resolved
// probes; counters run from the Link's creation.
type Metrics struct {
	// RTT is the mean round-trip time, (T4-T1)-(T3-T2), outliers removed.
	RTT float64
	// Latency summarises the one-way delay, estimated as RTT/2 (no clock
	// synchronisation is needed), outliers removed.
	Latency Summary
	// JitterMeanDiff is the mean of |D| over the window, where D is the
	// change in one-way transit time between consecutive probes (RFC 3550
	// section 6.4.1), per direction, averaged over both directions. It is
	// the value RFC 3550's J estimates, E|X1-X2| for iid extra delays X,
	// with about a third of the sampling noise of J's running average: the
	// figure to publish as "jitter", comparable with an emulated link's
	// expected mean difference. Uniform jitter of half-width J: 2J/3;
	// normal of standard deviation s: 2s/sqrt(pi) = 1.128s.
	JitterMeanDiff float64
	// JitterRFC3550 is RFC 3550's interarrival jitter, J += (|D|-J)/16,
	// run over the window in sequence order per direction and averaged over
	// both; it starts at the first |D| rather than 0. It converges to the
	// same value as JitterMeanDiff but follows the last ~16 probes.
	JitterRFC3550 float64
	// JitterIPDV is P95 - P50 of the one-way delay per direction, averaged
	// over both (the spread owping reports as jitter). Uniform of
	// half-width J: 0.9J; normal of standard deviation s: 1.645s.
	JitterIPDV float64
	// Loss is the fraction of the window's probes that got no response in
	// time (ProbeTimeout): round-trip loss. With independent loss p in each
	// direction it is 1-(1-p)^2, about 2p. It is the loss of the link while
	// up: probes lost while the link was declared down (and those out when
	// it was) are its outage, not loss, and count in neither part of the
	// fraction, nor of LossForward, LossReverse, RecentLoss or the
	// histograms' missing mass. Traffic does not take a link that is down,
	// so what a message meets on it is the loss while up.
	Loss float64
	// Outage is the fraction of the window's probes lost while the link
	// was declared down.
	Outage float64
	// LossForward and LossReverse split Loss by direction: forward (our
	// requests lost on the way to the peer) from the peer's request count,
	// reverse (its responses lost on the way back) from the rest. Where
	// the count is unusable (a peer that restarted, or fewer than two
	// responses) both are the symmetric split 1-sqrt(1-Loss).
	LossForward, LossReverse float64
	// Reordered counts responses whose Seq was below the highest already
	// received, Duplicated responses received twice (counted once as a
	// sample), Late responses that came after their probe had been counted
	// lost. Since creation.
	Reordered, Duplicated, Late uint64
	// Samples is the number of answered probes in the window, Outliers
	// how many of them were left out of the delay and jitter statistics.
	Samples, Outliers int
	// Sent, Received and Lost count probes since creation: sent, answered
	// in time, and timed out. The rest are in flight, or were forgotten by
	// SetEnabled(false). Lost/(Received+Lost) is the lifetime loss.
	Sent, Received, Lost uint64
	// Interval is the current probe interval; PeerInterval the one the peer
	// last announced (0 if it did not).
	Interval, PeerInterval time.Duration
	// State is the failure detector's verdict.
	State State
	// Histogram is the one-way delay distribution of the window, outliers
	// included (they are part of the delay a message sees), with the lost
	// probes as its missing mass.
	Histogram router.Histogram
	// Forward is the distribution of the one-way delays towards the peer
	// (T2-T1, less the offset between the two clocks), with the forward
	// loss as its missing mass: what a message sent over the link meets,
	// which half the round trip understates when the two directions
	// vary independently. The offset is taken as half the difference
	// between the forward and the reverse transit times' 2% quantiles, as
	// if the two directions' quickest trips were equally quick (see
	// forwardOffset), over the same probes as the distribution.
	Forward router.Histogram
	// RecentLatency is the median one-way latency of the last RecentSamples
	// answered probes, and RecentLoss the one-way loss, 1-sqrt(1-q), of the
	// last RecentProbes resolved ones (q their round-trip loss). The window
	// figures are steady but take a window to follow a change; these follow
	// it within a few probes, for decisions that must react, such as a
	// link's routing cost. The median ignores a lone spike.
	RecentLatency, RecentLoss float64
}

// How many of the latest probes the Recent figures cover.
const (
	RecentSamples = 16
	RecentProbes  = 32
)

// Summary describes a set of delays in milliseconds.
type Summary struct {
	Min, Mean, P50, P90, P99, Max float64
}

// Outlier rule: a sample whose RTT is more than outlierK scaled MADs from
// the window's median RTT is an outlier, such as a GC pause or a
// retransmission. The MAD is floored at outlierFloorFrac of the median and
// at outlierFloorAbs, so that a perfectly steady link does not make every
// tiny deviation an outlier. For normal jitter the MAD is 0.674 standard
// deviations, so the cut is at 3.4 of them and removes 0.08% of genuine
// samples, symmetrically, which moves neither mean nor jitter measurably;
// uniform jitter never reaches the cut. A heavy-tailed (pareto) delay loses
// its far tail, which lowers the mean slightly; the histogram keeps it.
const (
	outlierK         = 5
	outlierFloorFrac = 0.02
	outlierFloorAbs  = 0.05 // ms
)

// sample is one resolved probe.
type sample struct {
	seq  uint64
	lost bool
	// outage marks a probe that timed out while the link was declared
	// down: the link's failure, not its everyday loss.
	outage bool
	rtt    time.Duration // (T4-T1)-(T3-T2)
	// fwd and rev are the one-way transit times T2-T1 and T4-T3 in ns. Each
	// includes the offset between the two clocks, which cancels in every
	// difference and quantile spread computed from them.
	fwd, rev int64
	count    uint32 // the peer's request count in the response
}

// window is a ring of the most recent resolved probes.
type window struct {
	buf    []sample
	next   int
	n      int
	lost   int
	outage int // lost probes marked outage
}

func newWindow(size int) *window { return &window{buf: make([]sample, size)} }

func (w *window) add(s sample) {
	if w.n == len(w.buf) {
		if old := w.buf[w.next]; old.lost {
			w.lost--
			if old.outage {
				w.outage--
			}
		}
	} else {
		w.n++
	}
	if s.lost {
		w.lost++
		if s.outage {
			w.outage++
		}
	}
	w.buf[w.next] = s
	w.next = (w.next + 1) % len(w.buf)
}

// find returns the window's entry for seq, if any.
func (w *window) find(seq uint64) (sample, bool) {
	for i := range w.n {
		if w.buf[i].seq == seq {
			return w.buf[i], true
		}
	}
	return sample{}, false
}

// everydayLoss is the loss rate without the probes lost while the link was
// down: the link's loss while up (Metrics.Loss), and what the failure
// detector expects of a live link. A link that has just failed is
// otherwise judged lossier, and the next failure is seen later.
func (w *window) everydayLoss() float64 {
	n := w.n - w.outage
	if n <= 0 {
		return 0
	}
	return float64(w.lost-w.outage) / float64(n)
}

// outageShare is the fraction of the window's probes lost while the link
// was declared down.
func (w *window) outageShare() float64 {
	if w.n == 0 {
		return 0
	}
	return float64(w.outage) / float64(w.n)
}

// LossHistory is how many of a link's latest resolved probes LossOver can
// look back over: one bit each.
const LossHistory = 4096

// lossRing remembers whether each of the latest resolved probes was lost,
// for a loss estimate steadier than the window's. Probes lost while the
// link was down are its failure, which the failure detector reports, and
// probes lost before it first answered were lost before it was there:
// neither is remembered.
type lossRing struct {
	bits  [LossHistory / 64]uint64
	next  int    // where the next probe goes
	n     int    // probes remembered, up to LossHistory
	first uint64 // the first answered probe's seq; 0 before it
}

func (r *lossRing) add(s sample) {
	switch {
	case !s.lost && (r.first == 0 || s.seq < r.first):
		r.first = s.seq
	case s.outage, s.lost && (r.first == 0 || s.seq < r.first):
		return
	}
	w, b := r.next/64, uint(r.next%64)
	if s.lost {
		r.bits[w] |= 1 << b
	} else {
		r.bits[w] &^= 1 << b
	}
	r.next = (r.next + 1) % LossHistory
	r.n = min(r.n+1, LossHistory)
}

// over is the one-way loss, 1-sqrt(1-q), of the latest n probes
// remembered (all of them when there are fewer), q their round-trip loss.
func (r *lossRing) over(n int) float64 {
	n = min(n, r.n)
	if n <= 0 {
		return 0
	}
	lost := 0
	for k := 1; k <= n; k++ {
		i := (r.next - k + LossHistory) % LossHistory
		if r.bits[i/64]&(1<<uint(i%64)) != 0 {
			lost++
		}
	}
	return 1 - math.Sqrt(1-float64(lost)/float64(n))
}

// outageBetween counts the window's probes lost while the link was down
// between the first and last of ans, its answered probes in sequence
// order.
func (w *window) outageBetween(ans []sample) int {
	if w.outage == 0 || len(ans) < 2 {
		return 0
	}
	lo, hi, n := ans[0].seq, ans[len(ans)-1].seq, 0
	for _, s := range w.buf[:w.n] {
		if s.outage && s.seq > lo && s.seq < hi {
			n++
		}
	}
	return n
}

// answered returns the window's answered probes in sequence order.
func (w *window) answered() []sample {
	out := make([]sample, 0, w.n-w.lost)
	for _, s := range w.buf[:w.n] {
		if !s.lost {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sample) int { return cmpU64(a.seq, b.seq) })
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// recent fills the Recent figures of m from the latest probes of w. Probes
// lost before the link first answered are not loss: the link was not there
// yet.
func recent(w *window, m *Metrics) {
	first := uint64(math.MaxUint64)
	for _, s := range w.buf[:w.n] {
		if !s.lost && s.seq < first {
			first = s.seq
		}
	}
	var lat []float64
	lost, resolved := 0, 0
	for k := 1; k <= w.n && (len(lat) < RecentSamples || resolved < RecentProbes); k++ {
		s := w.buf[(w.next-k+len(w.buf))%len(w.buf)]
		if s.lost && (s.seq < first || s.outage) {
			continue
		}
		if resolved < RecentProbes {
			resolved++
			if s.lost {
				lost++
			}
		}
		if !s.lost && len(lat) < RecentSamples {
			lat = append(lat, ms(s.rtt)/2)
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		m.RecentLatency = lat[len(lat)/2]
	}
	if resolved > 0 {
		m.RecentLoss = 1 - math.Sqrt(1-float64(lost)/float64(resolved))
	}
}

// windowStats fills the window figures of m from w, and m.Forward from
// the memory mem when it has more than the window (see transits.go). It
// returns the sequence number the memory should restart from when the
// window no longer looks drawn from it, or 0.
func windowStats(w *window, mem []transit, m *Metrics) (restartAt uint64) {
	recent(w, m)
	m.Loss, m.Outage = w.everydayLoss(), w.outageShare()
	ans := w.answered()
	m.Samples = len(ans)
	delays := make([]float64, len(ans))
	for i, s := range ans {
		delays[i] = ms(s.rtt) / 2
	}
	m.Histogram = router.HistogramOf(delays, float64(w.lost-w.outage))
	m.LossForward, m.LossReverse = splitLoss(ans, w.outageBetween(ans), m.Loss)
	// The distribution is the memory's while it holds more than the
	// window and the window still looks drawn from it; the window's
	// otherwise.
	ts := transitsOf(ans)
	fromMemory := false
	if len(mem) > len(ans) && len(ans) > 0 {
		long, changed := longForward(ts, mem, m.LossForward)
		if changed {
			restartAt = ans[len(ans)-1].seq + 1
		} else {
			m.Forward, fromMemory = long, true
		}
	}
	if !fromMemory && len(ts) > 0 {
		m.Forward = forwardHistogram(ts, forwardOffset(ts), m.LossForward)
	}
	kept := withoutOutliers(ans)
	m.Outliers = len(ans) - len(kept)
	if len(kept) == 0 {
		return restartAt
	}
	oneWay := make([]float64, len(kept))
	fwd := make([]float64, len(kept))
	rev := make([]float64, len(kept))
	for i, s := range kept {
		oneWay[i] = ms(s.rtt) / 2
		fwd[i] = float64(s.fwd) / 1e6
		rev[i] = float64(s.rev) / 1e6
	}
	m.Latency = Summarize(oneWay)
	m.RTT = 2 * m.Latency.Mean
	m.JitterMeanDiff = (meanDiff(fwd) + meanDiff(rev)) / 2
	m.JitterRFC3550 = (rfc3550(fwd) + rfc3550(rev)) / 2
	m.JitterIPDV = (spread95(fwd) + spread95(rev)) / 2
	return restartAt
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// forwardHistogram is the forward distribution of the answered probes'
// transits ts, with the clocks' offset (see forwardOffset) taken out and
// a forward loss of loss (a fraction).
func forwardHistogram(ts []transit, offset int64, loss float64) router.Histogram {
	if len(ts) == 0 {
		return router.Histogram{}
	}
	delays := make([]float64, len(ts))
	for i, x := range ts {
		delays[i] = float64(x.fwd-offset) / 1e6
	}
	return router.HistogramOf(delays, missingFor(loss, len(ts)))
}

// offsetQuantile is the quantile of each direction's transit times that
// forwardOffset takes as that direction's quickest trip. The least of a
// window's 256 transits is a poor estimate where delay has no floor, as
// with normal jitter: it moves by about 0.38 standard deviations of the
// jitter from one window to the next, so that the offset moves by about
// 0.27. The 2% quantile moves by about a third as much (the offset by
// 0.12 over 256 probes, 0.04 over the memory's 2048). Where delay has a
// floor, as real networks' propagation gives it, the 2% quantile sits
// above the floor by the jitter's own 2% quantile, which is small: for
// jitter spread evenly over W in one direction only, the offset is off by
// about 0.012 W. Under 50 probes it is the least.
const offsetQuantile = 0.02

// forwardOffset is the offset between the two ends' clocks, taken from the
// answered probes' transits ts (not empty): half the difference between
// the forward and the reverse transit times' offsetQuantile quantiles, as
// if the two directions' quickest trips were equally quick. The more
// probes, the steadier it is, so that a distribution drawn from the
// memory takes the memory's offset, not the window's.
func forwardOffset(ts []transit) int64 {
	fwd := make([]int64, len(ts))
	rev := make([]int64, len(ts))
	for i, x := range ts {
		fwd[i], rev[i] = x.fwd, x.rev
	}
	k := int(offsetQuantile * float64(len(ts)))
	return (selection.Nth(fwd, k) - selection.Nth(rev, k)) / 2
}

// missingFor is the missing mass that makes a fraction loss of n arrived
// probes' histogram lost.
func missingFor(loss float64, n int) float64 {
	if loss > 0 && loss < 1 {
		return loss / (1 - loss) * float64(n)
	}
	return 0
}

// withoutOutliers returns the samples within outlierK floored MADs of the
// median RTT, in their original order.
func withoutOutliers(ans []sample) []sample {
	if len(ans) < 3 {
		return ans
	}
	rtts := make([]float64, len(ans))
	for i, s := range ans {
		rtts[i] = ms(s.rtt)
	}
	med := median(rtts)
	dev := make([]float64, len(rtts))
	for i, x := range rtts {
		dev[i] = math.Abs(x - med)
	}
	limit := outlierK * max(median(dev), outlierFloorFrac*med, outlierFloorAbs)
	kept := make([]sample, 0, len(ans))
	for i, s := range ans {
		if dev[i] <= limit {
			kept = append(kept, s)
		}
	}
	return kept
}

// median returns the median of xs without reordering it.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// quantile returns the q-quantile of sorted xs by linear interpolation
// between closest ranks; 0 for no data.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// Summarize is the Summary of xs (not empty), which it leaves as they
// are.
func Summarize(xs []float64) Summary {
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Summary{
		Min:  s[0],
		Mean: sum / float64(len(s)),
		P50:  quantile(s, 0.5),
		P90:  quantile(s, 0.9),
		P99:  quantile(s, 0.99),
		Max:  s[len(s)-1],
	}
}

// meanDiff is the mean |D| between consecutive values; 0 for fewer than 2.
func meanDiff(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var sum float64
	for i := 1; i < len(xs); i++ {
		sum += math.Abs(xs[i] - xs[i-1])
	}
	return sum / float64(len(xs)-1)
}

// rfc3550 runs the RFC 3550 jitter estimator over xs, started at the first
// |D|; 0 for fewer than 2 values.
func rfc3550(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	j := math.Abs(xs[1] - xs[0])
	for i := 2; i < len(xs); i++ {
		j += (math.Abs(xs[i]-xs[i-1]) - j) / 16
	}
	return j
}

// spread95 is P95 - P50 of xs.
func spread95(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.95) - quantile(s, 0.5)
}

// splitLoss divides the round-trip loss between the directions. Between
// the first and last answered probes (by Seq) the peer's request count grew
// by dc of ds probes sent, outage of them lost while the link was down and
// left out: ds-dc were lost forward, and of the dc that arrived,
// dc-(answered-1) were lost on the way back. An outage one way only, whose
// requests arrived, makes the count unusable (dc above ds).
func splitLoss(ans []sample, outage int, loss float64) (fwd, rev float64) {
	sym := 1 - math.Sqrt(1-loss)
	if len(ans) < 2 {
		return sym, sym
	}
	first, last := ans[0], ans[len(ans)-1]
	ds := float64(last.seq - first.seq - uint64(outage))
	dc := float64(last.count - first.count) // wraps like the counter
	got := float64(len(ans) - 1)
	if dc > ds || dc < got || dc == 0 {
		return sym, sym
	}
	return 1 - dc/ds, 1 - got/dc
}
