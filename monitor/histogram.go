package monitor

import "math"

// Histogram buckets are fixed and shared by every link, so that histograms
// from different links add and convolve bucket by bucket. Bucket 0 holds
// [0, 0.05 ms); bucket i in 1..62 holds [0.05 ms * 10^((i-1)/10),
// 0.05 ms * 10^(i/10)), ten per decade, each 26% wider than the last; bucket
// 63 holds everything from 0.05 ms * 10^6.2 (79 s) up. A value's bucket
// gives it to within ±12%.
const (
	HistBuckets   = 64
	histBase      = 0.05 // ms, the upper bound of bucket 0
	histPerDecade = 10
)

// Histogram is a delay distribution in the quality-attenuation sense: the
// mass of delays that arrived, per bucket, and the mass that never
// arrived. A link's histogram counts the probes of its window; Convolve
// returns probabilities (total 1). Only ratios matter to CDF and Quantile.
type Histogram struct {
	Counts  [HistBuckets]float64
	Missing float64
}

// Point is one step of a CDF: the fraction P of all probes (lost ones
// included) that arrived within Ms milliseconds.
type Point struct {
	Ms, P float64
}

// BucketBounds returns the bounds of bucket i in milliseconds; the last
// bucket's hi is +Inf.
func BucketBounds(i int) (lo, hi float64) {
	switch {
	case i <= 0:
		return 0, histBase
	case i >= HistBuckets-1:
		return edge(HistBuckets - 2), math.Inf(1)
	}
	return edge(i - 1), edge(i)
}

// edge is the upper bound of bucket k, for k >= 0.
func edge(k int) float64 { return histBase * math.Pow(10, float64(k)/histPerDecade) }

// bucketOf returns the bucket holding ms.
func bucketOf(ms float64) int {
	if !(ms >= histBase) { // also NaN and negatives
		return 0
	}
	i := 1 + int(math.Floor(math.Log10(ms/histBase)*histPerDecade+1e-9))
	return min(i, HistBuckets-1)
}

// Add counts one delay of ms milliseconds.
func (h *Histogram) Add(ms float64) { h.Counts[bucketOf(ms)]++ }

// Arrived is the mass of delays that arrived.
func (h *Histogram) Arrived() float64 {
	var s float64
	for _, c := range h.Counts {
		s += c
	}
	return s
}

// Total is the arrived mass plus the missing mass.
func (h *Histogram) Total() float64 { return h.Arrived() + h.Missing }

// CDF returns, for each bucket from the first to the last non-empty one,
// its upper bound and the fraction of the total that arrived within it.
// The last point's P is 1 - the loss. Empty for an empty histogram.
func (h Histogram) CDF() []Point {
	total := h.Total()
	first, last := -1, -1
	for i, c := range h.Counts {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	pts := make([]Point, 0, last-first+1)
	var cum float64
	for i := first; i <= last; i++ {
		cum += h.Counts[i]
		lo, hi := BucketBounds(i)
		if math.IsInf(hi, 1) {
			hi = lo
		}
		pts = append(pts, Point{Ms: hi, P: cum / total})
	}
	return pts
}

// Quantile returns the delay in ms within which a fraction q of all probes
// arrived, interpolated log-linearly inside its bucket. Outcomes: the delay;
// +Inf when q exceeds the arrived fraction (that much never arrives); 0 for
// an empty histogram or q <= 0.
func (h Histogram) Quantile(q float64) float64 {
	total := h.Total()
	if total == 0 || q <= 0 {
		return 0
	}
	target := q * total
	var cum float64
	for i, c := range h.Counts {
		if c == 0 || cum+c < target {
			cum += c
			continue
		}
		f := (target - cum) / c
		lo, hi := BucketBounds(i)
		switch i {
		case 0:
			return lo + f*(hi-lo)
		case HistBuckets - 1:
			return lo
		}
		return lo * math.Pow(hi/lo, f)
	}
	return math.Inf(1)
}

// Convolve returns the distribution of the sum of independent delays drawn
// from a and b: the delay over two hops. The sum of a value from bucket i
// and one from bucket j lies in [lo_i+lo_j, hi_i+hi_j); the pair's mass is
// spread over that range as if uniform, so the result is as good as the
// buckets (a delay known to ±12% per hop). The result is in probabilities:
// a delay arrives over both hops with the product of the arrival
// probabilities, and the rest is Missing. Outcome: the zero Histogram if
// either input is empty.
func Convolve(a, b Histogram) Histogram {
	ta, tb := a.Total(), b.Total()
	var out Histogram
	if ta == 0 || tb == 0 {
		return out
	}
	for i, ca := range a.Counts {
		if ca == 0 {
			continue
		}
		for j, cb := range b.Counts {
			if cb == 0 {
				continue
			}
			loA, hiA := BucketBounds(i)
			loB, hiB := BucketBounds(j)
			out.spread(loA+loB, hiA+hiB, (ca/ta)*(cb/tb))
		}
	}
	out.Missing = 1 - (a.Arrived()/ta)*(b.Arrived()/tb)
	return out
}

// spread adds mass m spread uniformly over [lo, hi); an unbounded range
// puts it all in lo's bucket.
func (h *Histogram) spread(lo, hi, m float64) {
	first, last := bucketOf(lo), bucketOf(hi)
	if math.IsInf(hi, 1) || first == last {
		h.Counts[first] += m
		return
	}
	for k := first; k <= last; k++ {
		blo, bhi := BucketBounds(k)
		if overlap := min(hi, bhi) - max(lo, blo); overlap > 0 {
			h.Counts[k] += m * overlap / (hi - lo)
		}
	}
}
