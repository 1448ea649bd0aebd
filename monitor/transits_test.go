package monitor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wayline/wayline/router"
)

// memoryLink simulates a link probed every 50 ms with the default window
// (256) and memory (2048), and returns the simulation and a step function
// that runs it n probe intervals further, taking a snapshot every
// interval and passing it to check.
func memoryLink(delay time.Duration, seed int64) (*simulation, func(n int, check func(Metrics))) {
	cfg := DefaultWANConfig()
	cfg.Interval = 50 * time.Millisecond
	s := newSimulation(cfg, delay, 0, 0, seed)
	step := func(n int, check func(Metrics)) {
		for range n {
			s.run(s.now.Add(cfg.Interval), nil)
			check(s.link.Snapshot())
		}
	}
	return s, step
}

// TestForwardDrawnFromMemory: on a steady link with a heavy tail (10 ms
// plus Lomax jitter of 3 ms mean, each way), the delay distribution is
// drawn from the latest 2048 answered probes (after the link's first
// window), not the window's 256; the memory never restarts while the link stays the same; and its 99th
// percentile is the link's.
func TestForwardDrawnFromMemory(t *testing.T) {
	const scale = 6.0 // ms: Lomax of shape 3 and this scale has a mean of 3 ms
	s, step := memoryLink(10*time.Millisecond, 7)
	s.extra = func() time.Duration {
		return time.Duration(scale * (math.Pow(1-s.rng.Float64(), -1.0/3) - 1) * float64(time.Millisecond))
	}
	// The first window is not remembered: 400 probes in, the memory
	// holds fewer than the window, whose distribution stands in.
	step(400, func(Metrics) {})
	if a := s.link.Snapshot().Forward.Arrived(); a != 256 {
		t.Fatalf("distribution of %v probes after 400, want the window's 256", a)
	}
	var last float64
	step(2000, func(m Metrics) {
		if a := m.Forward.Arrived(); a < last {
			t.Fatalf("the memory restarted on a steady link: %v probes after %v", a, last)
		}
		last = m.Forward.Arrived()
	})
	m := s.link.Snapshot()
	if m.Forward.Arrived() != 2048 || m.Samples > 256 {
		t.Fatalf("distribution of %v probes, window of %d; want 2048 and at most 256", m.Forward.Arrived(), m.Samples)
	}
	want := 10 + scale*(math.Pow(100, 1.0/3)-1) // the link's p99: 31.8 ms
	if got := m.Forward.Quantile(0.99); math.Abs(got-want) > 0.15*want {
		t.Errorf("p99 %.2f ms, want %.2f within 15%%", got, want)
	}
}

// TestForwardForgetsAChange: when the link slows from 10 to 30 ms, the
// distribution follows as soon as the window does (its median within
// half a window of probes, where a memory of 2048 that did not forget
// would take a thousand), and within two windows remembers nothing of
// the old delays.
func TestForwardForgetsAChange(t *testing.T) {
	s, step := memoryLink(10*time.Millisecond, 8)
	s.jitter = time.Millisecond
	step(2300, func(Metrics) {})
	if p50 := s.link.Snapshot().Forward.Quantile(0.5); math.Abs(p50-10) > 0.3 {
		t.Fatalf("p50 %.2f ms before the change, want 10", p50)
	}
	s.delay = 30 * time.Millisecond
	probes, crossed := 0, 0
	step(512, func(m Metrics) {
		probes++
		if crossed == 0 && m.Forward.Quantile(0.5) > 20 {
			crossed = probes
		}
	})
	if crossed == 0 || crossed > 140 {
		t.Errorf("median past 20 ms after %d probes at 30 ms, want within 140", crossed)
	}
	m := s.link.Snapshot()
	if q := m.Forward.Quantile(0.001); q < 28 {
		t.Errorf("after two windows the distribution still holds %.2f ms (of %v probes), want nothing under 28", q, m.Forward.Arrived())
	}
}

// TestBucketKS: the distance between two histograms read at their
// buckets' bounds.
func TestBucketKS(t *testing.T) {
	a := router.HistogramOf([]float64{10, 10, 20, 20}, 0)
	b := router.HistogramOf([]float64{10, 20, 20, 20}, 3)
	for _, tt := range []struct {
		x, y router.Histogram
		want float64
	}{
		{a, a, 0},
		{a, b, 0.25},
		{b, a, 0.25},
		{a, router.HistogramOf([]float64{30}, 0), 1},
		{a, router.Histogram{}, 1},
	} {
		if got := bucketKS(tt.x, tt.y); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("bucketKS(%v, %v) = %v, want %v", tt.x, tt.y, got, tt.want)
		}
	}
}

// TestForwardMemoryOffset: on a link with normal jitter both ways (no
// floor), the distribution drawn from the memory takes the clocks' offset
// from the memory's 2048 probes, not the window's 256, so that its median
// is off by under 0.08 standard deviations of the jitter in the root mean
// square over 20 links (about 0.05 expected; with the window's offset,
// 0.12).
func TestForwardMemoryOffset(t *testing.T) {
	const sigma = 3.0 // ms
	var sq float64
	const links = 20
	for seed := range int64(links) {
		s, _ := memoryLink(10*time.Millisecond, 100+seed)
		s.extra = func() time.Duration { return time.Duration(s.rng.NormFloat64() * sigma * float64(time.Millisecond)) }
		s.run(s.now.Add(2320*s.link.cfg.Interval), nil)
		m := s.link.Snapshot()
		if m.Forward.Arrived() != 2048 {
			t.Fatalf("distribution of %v probes, want the memory's 2048", m.Forward.Arrived())
		}
		e := (m.Forward.Quantile(0.5) - 10) / sigma
		sq += e * e
	}
	rms := math.Sqrt(sq / links)
	t.Logf("median off by %.3f standard deviations (root mean square)", rms)
	if rms > 0.08 {
		t.Errorf("median off by %.3f standard deviations (root mean square), want under 0.08", rms)
	}
}

// BenchmarkLongForward is what a snapshot pays for a link's distribution
// from its memory, by the memory's size (the monitoring block's
// distribution_window): the clocks' offset, the histogram, and the check
// of the window against it.
func BenchmarkLongForward(b *testing.B) {
	for _, n := range []int{2048, 8192, 32768} {
		r := rand.New(rand.NewPCG(1, 2))
		mem := make([]transit, n)
		for i := range mem {
			mem[i] = transit{seq: uint64(i), fwd: int64(10e6 + r.Float64()*3e6), rev: int64(10e6 + r.Float64()*3e6)}
		}
		b.Run(fmt.Sprintf("probes=%d", n), func(b *testing.B) {
			for b.Loop() {
				longForward(mem[n-256:], mem, 0)
			}
		})
	}
}
