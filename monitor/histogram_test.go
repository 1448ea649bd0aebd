package monitor

import (
	"math"
	"testing"
)

func TestBuckets(t *testing.T) {
	var prevHi float64
	for i := range HistBuckets {
		lo, hi := BucketBounds(i)
		if lo != prevHi || !(hi > lo) {
			t.Fatalf("bucket %d = [%v, %v), previous ended at %v", i, lo, hi, prevHi)
		}
		prevHi = hi
		if got := bucketOf(lo); got != i {
			t.Errorf("bucketOf(%v) = %d, want %d", lo, got, i)
		}
	}
	tests := []struct {
		ms   float64
		want int
	}{
		{-1, 0}, {math.NaN(), 0}, {0, 0}, {0.0499, 0}, {0.05, 1}, {0.5, 11}, {40, 30}, {60_000, 61}, {1e9, HistBuckets - 1},
	}
	for _, tt := range tests {
		if got := bucketOf(tt.ms); got != tt.want {
			t.Errorf("bucketOf(%v) = %d, want %d", tt.ms, got, tt.want)
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
		{0.01, 10, 10.5, false},
		{0.5, 13, 16, false},
		{0.94, 17, 20, false},
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
	if len(cdf) == 0 || !near(cdf[len(cdf)-1].P, 0.95, 1e-9) {
		t.Fatalf("CDF = %+v, want it to end at 0.95", cdf)
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i].Ms <= cdf[i-1].Ms || cdf[i].P < cdf[i-1].P {
			t.Fatalf("CDF not increasing at %d: %+v", i, cdf)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.CDF() != nil {
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
	if got := c.Quantile(0.5); got < 30 || got > 30*1.26 {
		t.Errorf("median of 10 ms + 20 ms = %v ms", got)
	}
	if got := Convolve(a, Histogram{}); got != (Histogram{}) {
		t.Errorf("convolving with an empty histogram = %+v, want empty", got)
	}
}
