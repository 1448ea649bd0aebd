package router

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func TestBuckets(t *testing.T) {
	var prevHi float64
	for i := range NumBuckets {
		lo, hi := BucketBounds(i)
		if lo != prevHi || !(hi > lo) {
			t.Fatalf("bucket %d = [%v, %v), previous ended at %v", i, lo, hi, prevHi)
		}
		prevHi = hi
		if got := BucketOf(lo); got != i {
			t.Errorf("BucketOf(%v) = %d, want %d", lo, got, i)
		}
		if mid := lo + (hi-lo)/2; !math.IsInf(hi, 1) && BucketOf(mid) != i {
			t.Errorf("BucketOf(%v) = %d, want %d", mid, BucketOf(mid), i)
		}
		// From 0.1 ms up every bucket is 1-2% as wide as its delays.
		if w := (hi - lo) / lo; lo >= 0.1 && !math.IsInf(hi, 1) && (w < 0.01-1e-12 || w > 0.02+1e-12) {
			t.Errorf("bucket %d = [%v, %v) is %.2f%% wide", i, lo, hi, 100*w)
		}
		// Bounds are whole microseconds: three decimals in ms.
		if s := strconv.FormatFloat(lo, 'f', -1, 64); len(s) > len(strconv.FormatFloat(lo, 'f', 3, 64)) {
			t.Errorf("bucket %d's lower bound is written %s", i, s)
		}
	}
	tests := []struct {
		ms   float64
		want int
	}{
		{-1, 0}, {math.NaN(), 0}, {0, 0}, {0.0009, 0}, {0.001, 1}, {0.0995, 99}, {0.1, 100}, {0.1019, 100}, {0.102, 101},
		{0.2, 150}, {45, 50*9 + 87}, {45.056, 50*9 + 88}, {1e9, NumBuckets - 1}, {math.Inf(1), NumBuckets - 1},
	}
	for _, tt := range tests {
		if got := BucketOf(tt.ms); got != tt.want {
			t.Errorf("BucketOf(%v) = %d, want %d", tt.ms, got, tt.want)
		}
	}
	if lo, hi := BucketBounds(-5); lo != 0 || hi != 0.001 {
		t.Errorf("BucketBounds(-5) = [%v, %v), want bucket 0", lo, hi)
	}
}

// TestHistogramShowsJitter: a link of 45 ms ± 3 ms spreads over a dozen
// buckets or more, not one.
func TestHistogramShowsJitter(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	delays := make([]float64, 256)
	for i := range delays {
		delays[i] = 45 + 3*(2*r.Float64()-1)
	}
	h := HistogramOf(delays, 3)
	if n := len(h.Buckets); n < 10 {
		t.Errorf("45 ms ± 3 ms fills %d buckets", n)
	}
	if len(h.CDF()) != len(h.Buckets) {
		t.Errorf("CDF has %d points for %d buckets", len(h.CDF()), len(h.Buckets))
	}
	for _, q := range []struct{ q, want float64 }{{0.25 * 256 / 259, 43.5}, {0.5 * 256 / 259, 45}, {0.75 * 256 / 259, 46.5}} {
		if got := h.Quantile(q.q); math.Abs(got-q.want) > 0.6 {
			t.Errorf("Quantile(%.3f) = %.2f ms, want about %.1f", q.q, got, q.want)
		}
	}
	var one Histogram
	for _, d := range delays {
		one.Add(d)
	}
	one.Missing = 3
	if len(one.Buckets) != len(h.Buckets) || one.Total() != h.Total() {
		t.Errorf("Add gave %d buckets and %v mass, HistogramOf %d and %v", len(one.Buckets), one.Total(), len(h.Buckets), h.Total())
	}
	for i, b := range h.Buckets {
		if one.Buckets[i] != b {
			t.Fatalf("bucket %d: Add gave %+v, HistogramOf %+v", i, one.Buckets[i], b)
		}
	}
}

func TestHistogramQuantileAndCDF(t *testing.T) {
	var h Histogram
	for i := range 95 {
		h.Add(10 + float64(i)/10) // 10.0 .. 19.4 ms
	}
	h.Missing = 5
	tests := []struct {
		q        float64
		lo, hi   float64
		infinite bool
	}{
		{0.01, 10, 10.2, false},
		{0.5, 14.5, 15, false},
		{0.94, 19.2, 19.5, false},
		{0.96, 0, 0, true},
		{1, 0, 0, true},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if tt.infinite != math.IsInf(got, 1) || !tt.infinite && (got < tt.lo || got > tt.hi) {
			t.Errorf("Quantile(%v) = %v, want in [%v, %v] (infinite %v)", tt.q, got, tt.lo, tt.hi, tt.infinite)
		}
	}
	cdf := h.CDF()
	if len(cdf) < 40 || !near(cdf[len(cdf)-1].P, 0.95, 1e-9) {
		t.Fatalf("CDF = %+v, want many points ending at 0.95", cdf)
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i].Ms <= cdf[i-1].Ms || cdf[i].P < cdf[i-1].P {
			t.Fatalf("CDF not increasing at %d: %+v", i, cdf)
		}
	}
	if got := h.Below(15); got < 48 || got > 51 {
		t.Errorf("Below(15) = %v, want the 50 delays under 15 ms, give or take a bucket", got)
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.CDF() != nil || empty.Below(100) != 0 {
		t.Errorf("empty histogram: Quantile %v, CDF %v", empty.Quantile(0.5), empty.CDF())
	}
}

func TestConvolve(t *testing.T) {
	var a, b Histogram
	for range 90 {
		a.Add(10)
	}
	a.Missing = 10
	for range 80 {
		b.Add(20)
	}
	b.Missing = 20
	c := Convolve(a, b)
	if !near(c.Total(), 1, 1e-9) {
		t.Errorf("total mass %v, want 1", c.Total())
	}
	if !near(c.Missing, 1-0.9*0.8, 1e-9) {
		t.Errorf("Missing = %v, want %v", c.Missing, 1-0.9*0.8)
	}
	// 10 and 20 ms sit at the bottom of their buckets: the sum is known
	// to within the buckets' width.
	if got := c.Quantile(0.5); got < 30 || got > 30*1.03 {
		t.Errorf("median of 10 ms + 20 ms = %v ms", got)
	}
	if got := Convolve(a, Histogram{}); got.Total() != 0 || got.Buckets != nil {
		t.Errorf("convolving with an empty histogram = %+v, want empty", got)
	}
}

// TestRepaired: a link that lost 2% of its probes, on a transport that
// resends, delivers everything: 98% as measured, 2% later by the time a
// resend takes.
func TestRepaired(t *testing.T) {
	var h Histogram
	for range 98 {
		h.Add(45)
	}
	h.Missing = 2
	r := Repaired(h, 120)
	if !near(r.Total(), 1, 1e-9) || r.Missing != 0 {
		t.Fatalf("total %v, missing %v: want everything delivered", r.Total(), r.Missing)
	}
	if got := r.Below(50); !near(got, 0.98, 1e-9) {
		t.Errorf("%v delivered as measured, want 0.98", got)
	}
	// Known to within the buckets' width (1-2%).
	if got := r.Quantile(0.99); got < 165*0.98 || got > 165*1.03 {
		t.Errorf("p99 %v ms, want the resent 2%% at 45 + 120 ms", got)
	}
	if got := Repaired(Histogram{Missing: 3}, 120); got.Total() != 0 {
		t.Errorf("nothing arrived: %+v, want empty", got)
	}
	lossless := Histogram{Buckets: h.Buckets}
	if got := Repaired(lossless, 120); !slices.Equal(got.Buckets, lossless.Buckets) || got.Missing != 0 {
		t.Errorf("a lossless link changed: %+v", got)
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestDistance(t *testing.T) {
	one := func(ms float64, count float64) Bucket { return Bucket{Index: BucketOf(ms), Count: count} }
	a := Histogram{Buckets: []Bucket{one(10, 1)}}
	for _, tc := range []struct {
		name string
		a, b Histogram
		want float64
	}{
		{"both empty", Histogram{}, Histogram{}, 0},
		{"one empty", a, Histogram{}, 1},
		{"the same", a, a, 0},
		{"the same shape, ten times the mass", a, Histogram{Buckets: []Bucket{one(10, 10)}}, 0},
		{"apart", a, Histogram{Buckets: []Bucket{one(20, 1)}}, 1},
		{"half later", a, Histogram{Buckets: []Bucket{one(10, 1), one(20, 1)}}, 0.5},
		{"a tenth lost", a, Histogram{Buckets: []Bucket{one(10, 0.9)}, Missing: 0.1}, 0.1},
		{"interleaved", Histogram{Buckets: []Bucket{one(10, 1), one(30, 1)}}, Histogram{Buckets: []Bucket{one(20, 1), one(40, 1)}}, 0.5},
		{"a quarter moved across two", Histogram{Buckets: []Bucket{one(10, 1), one(20, 1), one(30, 2)}}, Histogram{Buckets: []Bucket{one(20, 2), one(30, 2)}}, 0.25},
	} {
		for _, ab := range [][2]Histogram{{tc.a, tc.b}, {tc.b, tc.a}} {
			if got := Distance(ab[0], ab[1]); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("%s: distance %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	// Against the distance of the samples themselves, up to the buckets'
	// width: two draws of 2,000 from one distribution are close, from
	// two a tenth of the spread apart are not.
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(shift float64) Histogram {
		xs := make([]float64, 2000)
		for i := range xs {
			xs[i] = 10 + shift + 3*rng.Float64()
		}
		return HistogramOf(xs, 0)
	}
	if d := Distance(draw(0), draw(0)); d > 0.05 {
		t.Errorf("two draws of one distribution: distance %.3f", d)
	}
	if d := Distance(draw(0), draw(0.3)); d < 0.07 || d > 0.13 {
		t.Errorf("two draws a tenth of the spread apart: distance %.3f, want about 0.1", d)
	}
}
