package monitor

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestSimulationDeterministic(t *testing.T) {
	a := SimulateDetection(fastWAN(), 40*time.Millisecond, 5*time.Millisecond, 0.05, 5, 3)
	b := SimulateDetection(fastWAN(), 40*time.Millisecond, 5*time.Millisecond, 0.05, 5, 3)
	c := SimulateDetection(fastWAN(), 40*time.Millisecond, 5*time.Millisecond, 0.05, 5, 4)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different results: %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds, same results: %v", a)
	}
}

// TestIntervalDoesNotBiasLatency halves the interval from 100 ms to 50 ms
// on the same network: the measured mean latency moves by under 5%.
func TestIntervalDoesNotBiasLatency(t *testing.T) {
	mean := func(interval time.Duration) float64 {
		cfg := fastWAN()
		cfg.Interval = interval
		s := newSimulation(cfg, 40*time.Millisecond, 5*time.Millisecond, 0.02, 9)
		s.run(s.start.Add(time.Minute), nil)
		return s.link.Snapshot().Latency.Mean
	}
	slow, fast := mean(100*time.Millisecond), mean(50*time.Millisecond)
	if math.Abs(fast-slow)/slow > 0.05 {
		t.Errorf("mean latency %.3f ms at 100 ms, %.3f ms at 50 ms", slow, fast)
	}
}
