package monitor

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wayline/wayline/router"
)

// windowOf returns a window holding rtts (ms) as answered probes, in
// order, with symmetric one-way transit times.
func windowOf(rtts []float64) *window {
	w := newWindow(len(rtts))
	for i, r := range rtts {
		d := time.Duration(r * float64(time.Millisecond))
		w.add(sample{seq: uint64(i + 1), rtt: d, fwd: int64(d / 2), rev: int64(d / 2), count: uint32(i + 1)})
	}
	return w
}

func TestOutlierSpike(t *testing.T) {
	tests := []struct {
		name   string
		jitter float64 // ms, uniform half-width of the RTT
	}{
		{"steady", 0},
		{"jittery", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			rtts := make([]float64, 100)
			for i := range rtts {
				rtts[i] = 20 + tt.jitter*(2*r.Float64()-1)
			}
			var clean Metrics
			windowStats(windowOf(rtts), nil, &clean)
			rtts[50] = 500 // a GC pause
			var m Metrics
			windowStats(windowOf(rtts), nil, &m)
			if m.Outliers != 1 {
				t.Errorf("Outliers = %d, want 1", m.Outliers)
			}
			if !near(m.RTT, clean.RTT, 0.1) {
				t.Errorf("mean RTT %.3f ms with the spike, %.3f without", m.RTT, clean.RTT)
			}
			if m.Latency.Max > 11 {
				t.Errorf("Latency.Max = %.1f ms, the spike was kept", m.Latency.Max)
			}
			if m.JitterMeanDiff > clean.JitterMeanDiff*1.1+0.01 {
				t.Errorf("JitterMeanDiff %.3f with the spike, %.3f without", m.JitterMeanDiff, clean.JitterMeanDiff)
			}
			if got := m.Histogram.Count(router.BucketOf(250)); got != 1 {
				t.Errorf("histogram holds %v samples at 250 ms, want the spike", got)
			}
		})
	}
}

// TestOutliersKeepRealJitter checks that genuine normal or uniform jitter
// is not trimmed as outliers.
func TestOutliersKeepRealJitter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	draws := map[string]func() float64{
		"normal":  func() float64 { return 80 + 7*r.NormFloat64() },
		"uniform": func() float64 { return 80 + 10*(2*r.Float64()-1) },
	}
	for name, draw := range draws {
		rtts := make([]float64, 256)
		for i := range rtts {
			rtts[i] = draw()
		}
		var m Metrics
		windowStats(windowOf(rtts), nil, &m)
		if m.Outliers > 1 {
			t.Errorf("%s: %d outliers among 256 genuine samples", name, m.Outliers)
		}
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{3}, 0.99, 3},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{1, 2, 3, 4}, 0, 1},
		{[]float64{1, 2, 3, 4}, 1, 4},
		{[]float64{0, 10}, 0.95, 9.5},
	}
	for _, tt := range tests {
		if got := quantile(tt.xs, tt.q); !near(got, tt.want, 1e-9) {
			t.Errorf("quantile(%v, %v) = %v, want %v", tt.xs, tt.q, got, tt.want)
		}
	}
}

func TestJitterEstimators(t *testing.T) {
	tests := []struct {
		name                  string
		xs                    []float64
		meanDiff, rfc, spread float64
	}{
		{"one value", []float64{5}, 0, 0, 0},
		{"constant", []float64{5, 5, 5}, 0, 0, 0},
		{"alternating", []float64{10, 12, 10, 12, 10}, 2, 2, 2},
		{"offset does not matter", []float64{1e6 + 10, 1e6 + 12, 1e6 + 10}, 2, 2, 1.8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := meanDiff(tt.xs); !near(got, tt.meanDiff, 1e-9) {
				t.Errorf("meanDiff = %v, want %v", got, tt.meanDiff)
			}
			if got := rfc3550(tt.xs); !near(got, tt.rfc, 1e-9) {
				t.Errorf("rfc3550 = %v, want %v", got, tt.rfc)
			}
			if got := spread95(tt.xs); !near(got, tt.spread, 1e-6) {
				t.Errorf("spread95 = %v, want %v", got, tt.spread)
			}
		})
	}
}

func TestSplitLoss(t *testing.T) {
	mk := func(seqCounts ...uint64) []sample {
		var out []sample
		for i := 0; i < len(seqCounts); i += 2 {
			out = append(out, sample{seq: seqCounts[i], count: uint32(seqCounts[i+1])})
		}
		return out
	}
	sym := func(loss float64) float64 { return 1 - math.Sqrt(1-loss) }
	tests := []struct {
		name     string
		ans      []sample
		loss     float64
		fwd, rev float64
	}{
		{"no loss", mk(1, 1, 2, 2, 3, 3, 4, 4, 5, 5), 0, 0, 0},
		// 10 probes after the first: the peer saw 8 (2 lost forward), 6 came back.
		{"both ways", mk(1, 1, 3, 2, 4, 3, 6, 5, 8, 6, 10, 7, 11, 9), 0.4, 0.2, 0.25},
		{"counter wrapped", mk(1, math.MaxUint32, 2, 0, 3, 1), 0, 0, 0},
		{"one sample", mk(1, 1), 0.5, sym(0.5), sym(0.5)},
		{"peer restarted", mk(1, 500, 2, 1, 3, 2), 0.1, sym(0.1), sym(0.1)},
		{"duplicated requests", mk(1, 1, 2, 5), 0.1, sym(0.1), sym(0.1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fwd, rev := splitLoss(tt.ans, 0, tt.loss)
			if !near(fwd, tt.fwd, 1e-9) || !near(rev, tt.rev, 1e-9) {
				t.Errorf("splitLoss = %v, %v; want %v, %v", fwd, rev, tt.fwd, tt.rev)
			}
		})
	}
}

func TestWindowRing(t *testing.T) {
	w := newWindow(3)
	for i := uint64(1); i <= 5; i++ {
		w.add(sample{seq: i, lost: i%2 == 1})
	}
	// Holds 3, 4, 5: two lost.
	if w.n != 3 || w.lost != 2 || !near(w.everydayLoss(), 2.0/3, 1e-9) {
		t.Fatalf("n=%d lost=%d rate=%v", w.n, w.lost, w.everydayLoss())
	}
	if _, ok := w.find(2); ok {
		t.Errorf("found seq 2, which left the window")
	}
	if s, ok := w.find(4); !ok || s.lost {
		t.Errorf("find(4) = %+v, %v", s, ok)
	}
	if ans := w.answered(); len(ans) != 1 || ans[0].seq != 4 {
		t.Errorf("answered = %+v", ans)
	}
}

func TestRecentFollowsAChange(t *testing.T) {
	w := newWindow(256)
	for i := range 200 {
		w.add(sample{seq: uint64(i + 1), rtt: 4 * time.Millisecond})
	}
	for i := range 10 {
		w.add(sample{seq: uint64(201 + i), rtt: 100 * time.Millisecond})
	}
	var m Metrics
	windowStats(w, nil, &m)
	if m.RecentLatency != 50 {
		t.Fatalf("recent latency %v after 10 of 16 samples moved to 50 ms", m.RecentLatency)
	}
	if m.Latency.Mean > 5 {
		t.Fatalf("window mean %v: the new samples should still be outliers to the window", m.Latency.Mean)
	}
	for i := range 8 {
		w.add(sample{seq: uint64(211 + i), lost: true})
	}
	windowStats(w, nil, &m)
	if want := 1 - math.Sqrt(1-8.0/32); math.Abs(m.RecentLoss-want) > 1e-9 {
		t.Fatalf("recent loss %v, want %v", m.RecentLoss, want)
	}
}

func TestRecentLossIgnoresStartUp(t *testing.T) {
	w := newWindow(256)
	for i := range 10 {
		w.add(sample{seq: uint64(i + 1), lost: true}) // before the peer answered
	}
	for i := range 20 {
		w.add(sample{seq: uint64(11 + i), rtt: 4 * time.Millisecond})
	}
	var m Metrics
	windowStats(w, nil, &m)
	if m.RecentLoss != 0 {
		t.Fatalf("recent loss %v counts the probes before the link came up", m.RecentLoss)
	}
}

// TestLossOver: loss for routing is estimated over the latest n probes,
// without the probes lost while the link was down or before it answered.
func TestLossOver(t *testing.T) {
	var r lossRing
	for i := range 5 {
		r.add(sample{seq: uint64(i + 1), lost: true}) // before the peer answered
	}
	seq := uint64(5)
	add := func(s sample) {
		seq++
		s.seq = seq
		r.add(s)
	}
	for i := range 200 {
		add(sample{rtt: time.Millisecond, lost: i%50 == 25}) // 2% round trip
	}
	for range 20 {
		add(sample{lost: true, outage: true})
	}
	want := 1 - math.Sqrt(1-4.0/200)
	if got := r.over(1024); math.Abs(got-want) > 1e-9 {
		t.Fatalf("loss over every probe %v, want %v", got, want)
	}
	if got := r.over(40); math.Abs(got-(1-math.Sqrt(1-1.0/40))) > 1e-9 {
		t.Fatalf("loss over 40 probes %v", got)
	}
	// The ring keeps LossHistory probes: older ones fall out.
	for range LossHistory {
		add(sample{rtt: time.Millisecond})
	}
	if got := r.over(LossHistory); got != 0 {
		t.Fatalf("loss %v after %d answered probes", got, LossHistory)
	}
}

// TestForwardOffset: the clocks' offset, estimated from windows of 256
// probes whose delays have normal jitter both ways (no floor), is off by
// under a sixth of the jitter's standard deviation in the root mean square
// over 200 windows; the least transit each way was off by about 0.27 of it.
// With jitter one way only, spread evenly over 20 ms above a floor, it is
// off by under 0.5 ms (about 0.24 ms expected; the least transits: 0.04).
func TestForwardOffset(t *testing.T) {
	const (
		offset = int64(5 * time.Second)
		sigma  = 3e6 // ns
		base   = int64(10 * time.Millisecond)
	)
	var sq float64
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var ans []sample
		for i := range 256 {
			f := base + int64(rng.NormFloat64()*sigma)
			r := base + int64(rng.NormFloat64()*sigma)
			ans = append(ans, sample{seq: uint64(i + 1), fwd: f + offset, rev: r - offset, rtt: time.Duration(f + r)})
		}
		e := float64(forwardOffset(transitsOf(ans)) - offset)
		sq += e * e
	}
	if rms := math.Sqrt(sq/200) / sigma; rms > 1.0/6 {
		t.Errorf("offset off by %.3f standard deviations (root mean square), want under 1/6", rms)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var ans []sample
	for i := range 256 {
		f := base + rng.Int64N(int64(20*time.Millisecond))
		ans = append(ans, sample{seq: uint64(i + 1), fwd: f + offset, rev: base - offset, rtt: time.Duration(f + base)})
	}
	if e := time.Duration(forwardOffset(transitsOf(ans)) - offset); e < 0 || e > 500*time.Microsecond {
		t.Errorf("offset with one-way jitter off by %v, want 0 to 0.5 ms", e)
	}
}

// TestForwardHistogram: the forward distribution is the forward delays,
// whatever the offset between the clocks, and not half the round trip:
// here the way out varies from 10 to 30 ms and the way back is 10 ms.
func TestForwardHistogram(t *testing.T) {
	const offset = int64(5 * time.Second)
	var ans []sample
	for i := range 200 {
		f := int64(10*time.Millisecond) + int64(i)*int64(100*time.Microsecond)
		r := int64(10 * time.Millisecond)
		ans = append(ans, sample{seq: uint64(i + 1), fwd: f + offset, rev: r - offset, rtt: time.Duration(f + r)})
	}
	h := forwardHistogram(transitsOf(ans), forwardOffset(transitsOf(ans)), 0.2)
	if q := h.Quantile(0.04); math.Abs(q-11) > 0.3 { // 5% of what arrives
		t.Errorf("forward q4 %v ms, want about 11", q)
	}
	if q := h.Quantile(0.78); math.Abs(q-29.5) > 0.6 {
		t.Errorf("forward q78 %v ms, want about 29.5", q)
	}
	if loss := h.Missing / h.Total(); math.Abs(loss-0.2) > 1e-9 {
		t.Errorf("forward loss %v, want 0.2", loss)
	}
}
