package router

import (
	"math"
	"slices"
)

// Delay buckets are HDR-style (as in HdrHistogram): linear inside each
// power of two, so that every bucket from 0.1 ms up is 1-2% as wide as the
// delays it holds, and a 45 ms link's few milliseconds of jitter spread
// over a dozen buckets. In microseconds:
//
//	bucket i, 0 <= i < 100:  [i, i+1) µs, 1 µs wide
//	bucket i = 50k + m, k >= 1 and 50 <= m < 100:  [m·2^k, (m+1)·2^k) µs,
//	    the octave [50·2^k, 100·2^k) in 50 buckets of 2^k µs
//
// up to k = 20: the last bucket, NumBuckets-1, starts at 99·2^20 µs
// (104 s) and holds everything above too. Bounds are whole microseconds,
// so in milliseconds they have at most three decimals (45.056). The
// buckets are the same for every link, so histograms add and convolve
// bucket by bucket, and a histogram travels as its non-empty buckets,
// each an index (below 2^11) and a count. BucketOf and BucketBounds map
// between an index and its delays; nothing else needs to know the scheme.
const (
	subBuckets = 50 // buckets per octave
	maxOctave  = 20
	// NumBuckets is the number of buckets, indices 0 to NumBuckets-1.
	NumBuckets = subBuckets * (maxOctave + 2)
)

// Histogram is a delay distribution in the quality-attenuation sense: the
// mass of delays that arrived, per bucket, and the mass that never
// arrived. A link's histogram counts the probes of its window; Convolve
// returns probabilities (total 1). Only ratios matter to CDF and Quantile.
type Histogram struct {
	// Buckets are the non-empty buckets, in ascending order of Index.
	Buckets []Bucket
	Missing float64
}

// Bucket is the mass of delays in one bucket (see BucketBounds).
type Bucket struct {
	Index int
	Count float64
}

// Point is one step of a CDF: the fraction P of all probes (lost ones
// included) that arrived within Ms milliseconds.
type Point struct {
	Ms, P float64
}

// BucketBounds returns the delays bucket i holds, [lo, hi) in
// milliseconds; the last bucket's hi is +Inf. An i out of range is taken
// as the nearest bucket.
func BucketBounds(i int) (lo, hi float64) {
	i = max(0, min(i, NumBuckets-1))
	if i < 2*subBuckets {
		return float64(i) / 1000, float64(i+1) / 1000
	}
	k := i/subBuckets - 1
	m := i - subBuckets*k
	lo, hi = math.Ldexp(float64(m), k)/1000, math.Ldexp(float64(m+1), k)/1000
	if i == NumBuckets-1 {
		hi = math.Inf(1)
	}
	return lo, hi
}

// BucketOf returns the index of the bucket that holds a delay of ms
// milliseconds: 0 for negatives and NaN, the last for anything past it.
func BucketOf(ms float64) int {
	us := ms * 1000
	// A bound written in ms and read back is a hair off its microsecond.
	if r := math.Round(us); math.Abs(us-r) < 1e-6 {
		us = r
	}
	switch {
	case !(us >= 0):
		return 0
	case us < 2*subBuckets:
		return int(us)
	case us >= math.Ldexp(2*subBuckets, maxOctave):
		return NumBuckets - 1
	}
	_, e := math.Frexp(us / subBuckets) // us/50 is in [2^(e-1), 2^e)
	k := e - 1
	return subBuckets*k + int(math.Ldexp(us, -k))
}

// HistogramOf returns the histogram of delays (milliseconds), with
// missing the mass that never arrived.
func HistogramOf(delays []float64, missing float64) Histogram {
	idx := make([]int, len(delays))
	for i, d := range delays {
		idx[i] = BucketOf(d)
	}
	slices.Sort(idx)
	h := Histogram{Missing: missing}
	for _, i := range idx {
		if n := len(h.Buckets); n > 0 && h.Buckets[n-1].Index == i {
			h.Buckets[n-1].Count++
			continue
		}
		h.Buckets = append(h.Buckets, Bucket{Index: i, Count: 1})
	}
	return h
}

// Add counts one delay of ms milliseconds.
func (h *Histogram) Add(ms float64) {
	i := BucketOf(ms)
	at, found := slices.BinarySearchFunc(h.Buckets, i, func(b Bucket, i int) int { return b.Index - i })
	if found {
		h.Buckets[at].Count++
		return
	}
	h.Buckets = slices.Insert(h.Buckets, at, Bucket{Index: i, Count: 1})
}

// Count is the mass in bucket i.
func (h Histogram) Count(i int) float64 {
	at, found := slices.BinarySearchFunc(h.Buckets, i, func(b Bucket, i int) int { return b.Index - i })
	if !found {
		return 0
	}
	return h.Buckets[at].Count
}

// Arrived is the mass of delays that arrived.
func (h Histogram) Arrived() float64 {
	var s float64
	for _, b := range h.Buckets {
		s += b.Count
	}
	return s
}

// Total is the arrived mass plus the missing mass.
func (h Histogram) Total() float64 { return h.Arrived() + h.Missing }

// Below is the mass of the buckets that end at or under ms milliseconds:
// the delays known to be within ms, short of those in the one bucket that
// straddles it (1-2% of ms wide).
func (h Histogram) Below(ms float64) float64 {
	var s float64
	for _, b := range h.Buckets {
		if _, hi := BucketBounds(b.Index); hi > ms {
			break
		}
		s += b.Count
	}
	return s
}

// CDF returns, for each non-empty bucket, its upper bound and the fraction
// of the total that arrived within it (the last bucket's lower bound, as
// its upper one is infinite). The last point's P is 1 - the loss. Empty
// for an empty histogram.
func (h Histogram) CDF() []Point {
	total := h.Total()
	if len(h.Buckets) == 0 {
		return nil
	}
	pts := make([]Point, 0, len(h.Buckets))
	var cum float64
	for _, b := range h.Buckets {
		cum += b.Count
		lo, hi := BucketBounds(b.Index)
		if math.IsInf(hi, 1) {
			hi = lo
		}
		pts = append(pts, Point{Ms: hi, P: cum / total})
	}
	return pts
}

// Distance is the Kolmogorov-Smirnov distance between a and b: the
// largest difference between the fractions of their totals that arrived
// within the same delay, at the end of any bucket. Loss counts as never
// arriving, so two distributions alike but for their loss are that loss
// apart. Outcomes: 0 when both are empty, 1 when only one is.
func Distance(a, b Histogram) float64 {
	ta, tb := a.Total(), b.Total()
	switch {
	case ta == 0 && tb == 0:
		return 0
	case ta == 0 || tb == 0:
		return 1
	}
	var d, ca, cb float64
	i, j := 0, 0
	for i < len(a.Buckets) || j < len(b.Buckets) {
		// The next bucket end in either; both sums are taken at it.
		next := NumBuckets
		if i < len(a.Buckets) {
			next = a.Buckets[i].Index
		}
		if j < len(b.Buckets) {
			next = min(next, b.Buckets[j].Index)
		}
		for ; i < len(a.Buckets) && a.Buckets[i].Index == next; i++ {
			ca += a.Buckets[i].Count
		}
		for ; j < len(b.Buckets) && b.Buckets[j].Index == next; j++ {
			cb += b.Buckets[j].Count
		}
		d = max(d, math.Abs(ca/ta-cb/tb))
	}
	// Past the last bucket only the loss is left, which the last
	// difference already holds.
	return d
}

// Quantile returns the delay in ms within which a fraction q of all probes
// arrived, interpolated linearly inside the delays its bucket reaches (see
// reach). Outcomes: the delay; +Inf when q exceeds the arrived fraction
// (that much never arrives); 0 for an empty histogram or q <= 0.
func (h Histogram) Quantile(q float64) float64 {
	total := h.Total()
	if total == 0 || q <= 0 {
		return 0
	}
	target := q * total
	var cum float64
	for k, b := range h.Buckets {
		if cum+b.Count < target {
			cum += b.Count
			continue
		}
		lo, hi := h.reach(k)
		return lo + (target-cum)/b.Count*(hi-lo)
	}
	return math.Inf(1)
}

// reach returns the delays, [lo, hi) in ms, over which the mass of h's
// k-th bucket is read by Quantile and CDFAt: its own bounds, widened into
// the empty buckets on each side halfway to the next bucket that holds
// something, but no further into a gap than half the gap on its other
// side or its own width, whichever is more. A compacted histogram's
// buckets (Compact) stand each for a span of delays merged into one
// bucket, spaced about evenly; read so, they share out the range again
// as the spans did, where read at their own bounds they are steps of a
// few percent of the mass each, and the distribution's Kolmogorov-Smirnov
// distance from the delays it came from is twice as large. A heavy bucket
// beside a lone outlier stays within about its own width, and the first
// and last buckets reach outwards no further than their own width. The
// last bucket of the scheme, which has no upper bound, is read at its
// start.
func (h Histogram) reach(k int) (lo, hi float64) {
	at := func(i int) (float64, float64) {
		lo, hi := bounds[h.Buckets[i].Index], bounds[h.Buckets[i].Index+1]
		if math.IsInf(hi, 1) {
			hi = lo
		}
		return lo, hi
	}
	lo, hi = at(k)
	w := hi - lo
	left, right := -1.0, -1.0 // half the gap to each neighbour; -1 for none
	if k > 0 {
		_, prev := at(k - 1)
		left = (lo - prev) / 2
	}
	if k+1 < len(h.Buckets) {
		next, _ := at(k + 1)
		right = (next - hi) / 2
	}
	switch {
	case left >= 0 && right >= 0:
		return lo - min(left, max(right, w)), hi + min(right, max(left, w))
	case right >= 0: // the first
		e := min(right, w)
		return lo - e, hi + e
	case left >= 0: // the last
		e := min(left, w)
		return lo - e, hi + e
	}
	return lo, hi
}

// Convolve returns the distribution of the sum of independent delays drawn
// from a and b: the delay over two hops. The sum of a value from bucket i
// and one from bucket j lies in [lo_i+lo_j, hi_i+hi_j); the pair's mass is
// spread over that range as if uniform, so the result is as good as the
// buckets (1-2% per hop). The result is in probabilities: a delay arrives
// over both hops with the product of the arrival probabilities, and the
// rest is Missing. Outcome: the zero Histogram if either input is empty.
func Convolve(a, b Histogram) Histogram {
	ta, tb := a.Total(), b.Total()
	if ta == 0 || tb == 0 {
		return Histogram{}
	}
	var dense [NumBuckets]float64
	lo, hi := NumBuckets, -1
	for _, x := range a.Buckets {
		loA, hiA := bounds[x.Index], bounds[x.Index+1]
		// The sums' lower ends rise with y: their buckets are found by
		// walking on from the last one, not by BucketOf each time.
		first := BucketOf(loA + bounds[b.Buckets[0].Index])
		for _, y := range b.Buckets {
			from := loA + bounds[y.Index]
			for first < NumBuckets-1 && bounds[first+1] <= from {
				first++
			}
			f, l := spread(&dense, first, from, hiA+bounds[y.Index+1], (x.Count/ta)*(y.Count/tb))
			lo, hi = min(lo, f), max(hi, l)
		}
	}
	return Histogram{Buckets: sparse(&dense, lo, hi), Missing: 1 - (a.Arrived()/ta)*(b.Arrived()/tb)}
}

// sparse returns the non-empty buckets of dense from lo to hi.
func sparse(dense *[NumBuckets]float64, lo, hi int) []Bucket {
	var out []Bucket
	for i := lo; i <= hi; i++ {
		if m := dense[i]; m > 0 {
			out = append(out, Bucket{Index: i, Count: m})
		}
	}
	return out
}

// Repaired is h as a transport that repairs loss delivers it, in
// probabilities (total 1): what arrived arrives as before, and the mass
// that never arrived (the loss of probes that nothing resends) arrives
// afterMs later than a delay drawn from what did, the time the transport
// takes to find the loss and send again. A histogram with nothing lost
// is returned as it is (counts, as Convolve takes them); one where nothing
// arrived gives the zero Histogram.
func Repaired(h Histogram, afterMs float64) Histogram {
	if h.Arrived() == 0 {
		return Histogram{}
	}
	if h.Missing <= 0 {
		return h
	}
	total := h.Total()
	var dense [NumBuckets]float64
	lo, hi := NumBuckets, -1
	for _, b := range h.Buckets {
		dense[b.Index] += b.Count / total
		lo, hi = min(lo, b.Index), max(hi, b.Index)
	}
	late := Convolve(Histogram{Buckets: h.Buckets}, HistogramOf([]float64{afterMs}, 0))
	for _, b := range late.Buckets {
		dense[b.Index] += b.Count * h.Missing / total
		lo, hi = min(lo, b.Index), max(hi, b.Index)
	}
	return Histogram{Buckets: sparse(&dense, lo, hi)}
}

// bounds[i] is where bucket i begins, in ms; bounds[NumBuckets] is +Inf.
var bounds = func() (b [NumBuckets + 1]float64) {
	for i := range NumBuckets {
		b[i], _ = BucketBounds(i)
	}
	b[NumBuckets] = math.Inf(1)
	return b
}()

// spread adds mass m spread uniformly over [lo, hi) to the buckets of
// dense, lo being in bucket first; an unbounded range puts it all in lo's
// bucket. It returns the first and last buckets it added to.
func spread(dense *[NumBuckets]float64, first int, lo, hi, m float64) (int, int) {
	if math.IsInf(hi, 1) || hi <= bounds[first+1] {
		dense[first] += m
		return first, first
	}
	k := first
	for ; k < NumBuckets && bounds[k] < hi; k++ {
		if overlap := min(hi, bounds[k+1]) - max(lo, bounds[k]); overlap > 0 {
			dense[k] += m * overlap / (hi - lo)
		}
	}
	return first, k - 1
}
