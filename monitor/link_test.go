package monitor

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestMeasurementAccuracy runs a Link against a synthetic network and
// compares its figures with the network's truth.
func TestMeasurementAccuracy(t *testing.T) {
	tests := []struct {
		name          string
		delay, jitter time.Duration
		normal        bool // normal jitter of std jitter; else uniform of half-width jitter
		loss          float64
	}{
		{"uniform 40ms±5ms 2% loss", 40 * time.Millisecond, 5 * time.Millisecond, false, 0.02},
		{"normal 40ms σ5ms 2% loss", 40 * time.Millisecond, 5 * time.Millisecond, true, 0.02},
		{"lan 1ms±0.2ms", time.Millisecond, 200 * time.Microsecond, false, 0},
		{"uniform 20ms±10ms 10% loss", 20 * time.Millisecond, 10 * time.Millisecond, false, 0.10},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultWANConfig()
			cfg.Interval = 100 * time.Millisecond
			cfg.Window = 2000
			s := newSimulation(cfg, tt.delay, tt.jitter, tt.loss, int64(i+1))
			j := ms(tt.jitter)
			meanDiff, ipdv := 2*j/3, 0.9*j
			if tt.normal {
				s.extra = func() time.Duration { return time.Duration(s.rng.NormFloat64() * float64(tt.jitter)) }
				meanDiff, ipdv = 2*j/math.Sqrt(math.Pi), 1.645*j
			}
			s.run(s.start.Add(2100*cfg.Interval), nil)
			m := s.link.Snapshot()

			d := ms(tt.delay)
			if tol := max(0.02*d, 0.3); !near(m.Latency.Mean, d, tol) {
				t.Errorf("mean latency %.3f ms, want %.3f ± %.3f", m.Latency.Mean, d, tol)
			}
			if !near(m.RTT, 2*m.Latency.Mean, 1e-9) {
				t.Errorf("RTT %.3f is not twice the latency %.3f", m.RTT, m.Latency.Mean)
			}
			if rt := 1 - (1-tt.loss)*(1-tt.loss); !near(m.Loss, rt, 0.01) {
				t.Errorf("round-trip loss %.4f, want %.4f ± 0.01", m.Loss, rt)
			}
			if !near(m.LossForward, tt.loss, 0.01) || !near(m.LossReverse, tt.loss, 0.01) {
				t.Errorf("loss forward %.4f reverse %.4f, want %.4f ± 0.01", m.LossForward, m.LossReverse, tt.loss)
			}
			if !near(m.JitterMeanDiff, meanDiff, 0.1*meanDiff) {
				t.Errorf("JitterMeanDiff %.3f, want %.3f ± 10%%", m.JitterMeanDiff, meanDiff)
			}
			if !near(m.JitterIPDV, ipdv, 0.15*ipdv) {
				t.Errorf("JitterIPDV %.3f, want %.3f ± 15%%", m.JitterIPDV, ipdv)
			}
			if !near(m.JitterRFC3550, meanDiff, 0.35*meanDiff) {
				t.Errorf("JitterRFC3550 %.3f, want %.3f ± 35%%", m.JitterRFC3550, meanDiff)
			}
			lostInWindow := math.Round(m.Loss * float64(cfg.Window))
			if got := m.Histogram.Arrived(); got != float64(m.Samples) || m.Histogram.Missing != lostInWindow {
				t.Errorf("histogram holds %v arrived and %v missing, want %d and %v", got, m.Histogram.Missing, m.Samples, lostInWindow)
			}
			if q := m.Histogram.Quantile(0.5 * (1 - m.Loss)); !near(q, m.Latency.P50, 0.13*m.Latency.P50) {
				t.Errorf("histogram median %.3f, window median %.3f", q, m.Latency.P50)
			}
			if m.Sent != m.Received+m.Lost+uint64(len(s.link.pending)) {
				t.Errorf("sent %d != received %d + lost %d + in flight %d", m.Sent, m.Received, m.Lost, len(s.link.pending))
			}
		})
	}
}

func TestReorderedDuplicateLateUnmatched(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.Interval = 100 * time.Millisecond
	cfg.ProbeTimeout = time.Second
	h := newHarness(t, cfg)
	var p [4]Packet
	for i := 1; i <= 3; i++ {
		h.tick(cfg.Interval)
		p[i] = h.last()
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.answer(p[3], 10*time.Millisecond, 0, 10*time.Millisecond, 3))
	must(h.answer(p[1], 10*time.Millisecond, 0, 10*time.Millisecond, 1)) // reordered
	must(h.answer(p[3], 10*time.Millisecond, 0, 10*time.Millisecond, 3)) // duplicate
	h.tick(2 * time.Second)                                              // probe 2 times out
	must(h.answer(p[2], 10*time.Millisecond, 0, 10*time.Millisecond, 2)) // late

	if err := h.answer(Packet{Seq: 99, T1: p[1].T1}, 0, 0, 0, 0); !errors.Is(err, ErrUnmatched) {
		t.Errorf("response to a probe never sent: %v, want ErrUnmatched", err)
	}
	forged := h.last() // the probe sent by the last tick, still in flight
	forged.T1++
	if err := h.answer(forged, 0, 0, 0, 0); !errors.Is(err, ErrUnmatched) {
		t.Errorf("response with a wrong T1: %v, want ErrUnmatched", err)
	}

	m := h.link.Snapshot()
	want := Metrics{Reordered: 1, Duplicated: 1, Late: 1, Received: 2, Lost: 1, Samples: 2}
	got := Metrics{Reordered: m.Reordered, Duplicated: m.Duplicated, Late: m.Late, Received: m.Received, Lost: m.Lost, Samples: m.Samples}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if m.Histogram.Missing != 1 || m.Histogram.Arrived() != 2 {
		t.Errorf("histogram %v arrived, %v missing; want 2 and 1", m.Histogram.Arrived(), m.Histogram.Missing)
	}
}

func TestRespond(t *testing.T) {
	h := newHarness(t, DefaultLANConfig())
	req := Packet{Type: PacketProbe, Seq: 5, T1: 123, Interval: 250, Pad: 3}
	for count, enabled := range []bool{true, false} {
		h.link.SetEnabled(enabled)
		at := epoch.Add(time.Duration(count) * time.Second)
		reply, err := h.link.Receive(req, at)
		if err != nil || reply == nil {
			t.Fatalf("enabled=%v: Receive(request) = %v, %v", enabled, reply, err)
		}
		want := Packet{Type: PacketProbe, Response: true, Seq: 5, T1: 123, T2: at.UnixNano(), Interval: 1000, Count: uint32(count + 1), Pad: 3}
		if *reply != want {
			t.Errorf("enabled=%v: reply %+v, want %+v", enabled, *reply, want)
		}
	}
	if got := h.link.Snapshot().PeerInterval; got != 250*time.Millisecond {
		t.Errorf("PeerInterval = %v, want 250ms", got)
	}
	if _, err := h.link.Receive(Packet{Type: 9, Seq: 1}, epoch); !errors.Is(err, ErrBadPacket) {
		t.Errorf("unknown type: %v, want ErrBadPacket", err)
	}
}

// TestRTTExcludesResponderTime checks RTT = (T4-T1) - (T3-T2), with a
// negative responder time (a clock step) ignored.
func TestRTTExcludesResponderTime(t *testing.T) {
	tests := []struct {
		name         string
		hold         time.Duration
		wantOneWayMs float64
		rewindT3     bool
	}{
		{"held 30ms", 30 * time.Millisecond, 10, false},
		{"T3 before T2", 0, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, DefaultLANConfig())
			h.tick(0)
			req := h.last()
			sent := time.Unix(0, req.T1)
			resp := Packet{Type: PacketProbe, Response: true, Seq: req.Seq, T1: req.T1,
				T2: sent.Add(10 * time.Millisecond).UnixNano(), T3: sent.Add(10*time.Millisecond + tt.hold).UnixNano()}
			if tt.rewindT3 {
				resp.T3 = resp.T2 - int64(time.Second)
			}
			if _, err := h.link.Receive(resp, sent.Add(20*time.Millisecond+tt.hold)); err != nil {
				t.Fatal(err)
			}
			if got := h.link.Snapshot().Latency.Mean; !near(got, tt.wantOneWayMs, 1e-6) {
				t.Errorf("latency %v ms, want %v", got, tt.wantOneWayMs)
			}
		})
	}
}

func TestSetInterval(t *testing.T) {
	tests := []struct {
		d  time.Duration
		ok bool
	}{
		{0, false}, {9 * time.Millisecond, false}, {MinInterval, true}, {100 * time.Millisecond, true},
		{MaxInterval, true}, {MaxInterval + time.Millisecond, false}, {-time.Second, false},
	}
	for _, tt := range tests {
		h := newHarness(t, DefaultLANConfig())
		h.tick(0)
		err := h.link.SetInterval(tt.d)
		if tt.ok != (err == nil) || !tt.ok && !errors.Is(err, ErrBadConfig) {
			t.Errorf("SetInterval(%v) = %v", tt.d, err)
			continue
		}
		want := time.Second
		if tt.ok {
			want = tt.d
		}
		if got := h.link.Snapshot().Interval; got != want {
			t.Errorf("after SetInterval(%v): interval %v, want %v", tt.d, got, want)
		}
		if next := h.link.Tick(h.now); next.After(h.now.Add(time.Duration(float64(want) * (1 + ProbeSpread)))) {
			t.Errorf("after SetInterval(%v): next tick in %v", tt.d, next.Sub(h.now))
		}
	}
}

// TestProbeGapsSpread: the gaps between probes are drawn within
// ProbeSpread of the interval either way, spread over that range, with the
// interval as their mean; two links draw different gaps.
func TestProbeGapsSpread(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.Interval = 100 * time.Millisecond
	gaps := func(id string) []time.Duration {
		now := epoch
		var sent []time.Time
		l := NewLink(id, cfg, func([]byte) error { sent = append(sent, now); return nil }, func() time.Time { return now })
		for len(sent) < 2001 {
			now = l.Tick(now)
		}
		var gs []time.Duration
		for i := 1; i < len(sent); i++ {
			gs = append(gs, sent[i].Sub(sent[i-1]))
		}
		return gs
	}
	a, b := gaps("a"), gaps("b")
	lo, hi := time.Duration(float64(cfg.Interval)*(1-ProbeSpread)), time.Duration(float64(cfg.Interval)*(1+ProbeSpread))
	var sum time.Duration
	for i, g := range a {
		if g < lo || g > hi {
			t.Fatalf("gap %d is %v, want within [%v, %v]", i, g, lo, hi)
		}
		sum += g
	}
	mean := sum / time.Duration(len(a))
	if d := mean - cfg.Interval; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("mean gap %v, want the interval %v within 1 ms", mean, cfg.Interval)
	}
	// A tenth of the range either side of the interval: uniform draws put
	// a fifth of the gaps there, exact ones none.
	var wide int
	for _, g := range a {
		if g < cfg.Interval*92/100 || g > cfg.Interval*108/100 {
			wide++
		}
	}
	if wide < len(a)/10 {
		t.Errorf("%d of %d gaps more than 8%% from the interval, want about a fifth", wide, len(a))
	}
	if slices.Equal(a, b) {
		t.Error("links a and b drew the same gaps")
	}
}

func TestEnableDisable(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.Interval = 100 * time.Millisecond
	h := newHarness(t, cfg)
	events, cancel := h.link.Subscribe()
	defer cancel()

	h.tick(0)
	inFlight := h.last()
	h.link.SetEnabled(false)
	if st := h.link.State(); st != StateDisabled {
		t.Fatalf("state %v after SetEnabled(false)", st)
	}
	sent := len(h.sent)
	for range 100 {
		if next := h.tick(100 * time.Millisecond); next.Sub(h.now) != MaxInterval {
			t.Fatalf("disabled link wants a tick in %v", next.Sub(h.now))
		}
	}
	if len(h.sent) != sent {
		t.Errorf("disabled link sent %d probes", len(h.sent)-sent)
	}
	if err := h.answer(inFlight, time.Millisecond, 0, time.Millisecond, 1); err != nil {
		t.Errorf("response to a forgotten probe: %v", err)
	}
	if m := h.link.Snapshot(); m.Lost != 0 || m.Late != 1 || m.State != StateDisabled {
		t.Errorf("disabled: lost %d late %d state %v; want 0, 1, disabled", m.Lost, m.Late, m.State)
	}

	h.link.SetEnabled(true)
	h.tick(0)
	if len(h.sent) != sent+1 {
		t.Fatalf("enabled link sent %d probes at once, want 1", len(h.sent)-sent)
	}
	if err := h.answer(h.last(), time.Millisecond, 0, time.Millisecond, 2); err != nil {
		t.Fatal(err)
	}
	var got []State
	for _, ev := range drain(events) {
		got = append(got, ev.To)
	}
	want := []State{StateDisabled, StateUnknown, StateUp}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("events to %v, want %v", got, want)
	}
}

func TestAdaptiveStaysInBounds(t *testing.T) {
	cfg := DefaultWANConfig()
	cfg.Adaptive = true
	s := newSimulation(cfg, 40*time.Millisecond, time.Millisecond, 0, 1)
	lo, hi := time.Hour, time.Duration(0)
	track := func() bool {
		s.link.mu.Lock()
		iv := s.link.interval
		s.link.mu.Unlock()
		lo, hi = min(lo, iv), max(hi, iv)
		return false
	}
	s.run(s.start.Add(5*time.Minute), track)
	if hi != cfg.AdaptiveMax {
		t.Errorf("steady link: interval reached %v, want %v", hi, cfg.AdaptiveMax)
	}
	s.outage = s.now
	lo, hi = time.Hour, 0
	s.run(s.now.Add(time.Minute), track)
	if lo != cfg.AdaptiveMin || hi > cfg.AdaptiveMax {
		t.Errorf("outage: interval in [%v, %v], want down to %v", lo, hi, cfg.AdaptiveMin)
	}
	s.link.SetAdaptive(false)
	if got := s.link.Snapshot().Interval; got != cfg.Interval {
		t.Errorf("adaptive off: interval %v, want %v", got, cfg.Interval)
	}
}

func TestSendErrorReadsAsLoss(t *testing.T) {
	h := newHarness(t, DefaultLANConfig())
	h.fail = errors.New("transport closed")
	h.tick(0)
	h.tick(DefaultLANConfig().ProbeTimeout)
	if m := h.link.Snapshot(); m.Sent != 1 || m.Lost != 1 {
		t.Errorf("sent %d lost %d, want 1 and 1", m.Sent, m.Lost)
	}
}

// TestRun checks that Run probes, follows SetInterval at once, and ends
// when its context does.
func TestRun(t *testing.T) {
	var sent atomic.Int64
	cfg := DefaultLocalConfig()
	cfg.Interval = MaxInterval
	l := NewLink("run", cfg, func([]byte) error { sent.Add(1); return nil }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	waitSent := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for sent.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if sent.Load() < n {
			t.Fatalf("Run sent %d probes, want %d", sent.Load(), n)
		}
	}
	waitSent(1) // the first probe goes at once
	if err := l.SetInterval(MinInterval); err != nil {
		t.Fatal(err)
	}
	waitSent(4) // long before the 60 s timer would have fired
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run still running 1 s after cancel")
	}
}

func TestConfig(t *testing.T) {
	for name, c := range map[string]Config{"lan": DefaultLANConfig(), "wan": DefaultWANConfig(), "local": DefaultLocalConfig(), "zero": {}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := []Config{
		{Interval: time.Millisecond},
		{AdaptiveMin: 2 * time.Second, AdaptiveMax: time.Second},
		{Window: -1},
		{ProbeTimeout: 2 * MaxInterval},
		{Detector: DetectorConfig{Kind: "gossip"}},
		{Detector: DetectorConfig{PhiSuspect: 9, PhiDown: 8}},
		{Detector: DetectorConfig{LossFloor: 1}},
		{Detector: DetectorConfig{SuspectAfter: 2 * time.Second, Timeout: time.Second}},
	}
	for _, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrBadConfig", c, err)
		}
	}
	got := Config{Interval: time.Millisecond, AdaptiveMin: time.Hour}.withDefaults()
	if got.Interval != MinInterval || got.AdaptiveMin != MaxInterval || got.AdaptiveMax != MaxInterval || got.Window != 256 {
		t.Errorf("withDefaults did not clamp: %+v", got)
	}
}
