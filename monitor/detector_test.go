package monitor

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// fastWAN is the acceptance configuration: WAN defaults probed every
// 100 ms.
func fastWAN() Config {
	cfg := DefaultWANConfig()
	cfg.Interval = 100 * time.Millisecond
	return cfg
}

func TestDetectorOutageAndRecovery(t *testing.T) {
	s := newSimulation(fastWAN(), 40*time.Millisecond, 5*time.Millisecond, 0.05, 11)
	events, cancel := s.link.Subscribe()
	defer cancel()
	s.run(s.start.Add(simWarmup), nil)
	if st := s.link.State(); st != StateUp {
		t.Fatalf("after warm-up: %v", st)
	}
	drain(events)

	s.outage = s.now
	s.run(s.now.Add(10*time.Second), func() bool { return s.link.State() == StateDown })
	if took := s.now.Sub(s.outage); took > time.Second {
		t.Errorf("outage detected after %v, want <= 1s", took)
	}
	evs := drain(events)
	if len(evs) != 2 || evs[0].From != StateUp || evs[0].To != StateSuspect || evs[1].To != StateDown {
		t.Fatalf("outage events %+v, want up->suspect->down", evs)
	}
	if evs[1].LinkID != "sim" || !evs[1].At.Equal(s.now) || !strings.HasPrefix(evs[1].Reason, "phi ") {
		t.Errorf("down event %+v", evs[1])
	}

	healed := s.now
	s.outage = time.Time{}
	s.run(s.now.Add(10*time.Second), func() bool { return s.link.State() == StateUp })
	if took := s.now.Sub(healed); took > 500*time.Millisecond {
		t.Errorf("recovery seen after %v", took)
	}
	if evs := drain(events); len(evs) != 1 || evs[0].From != StateDown || evs[0].To != StateUp || evs[0].Reason != "response" {
		t.Errorf("recovery events %+v, want down->up", evs)
	}
}

// TestDetectionTime is the acceptance experiment: 40 ms one-way, 5% loss
// in each direction, 100 ms probes; a full outage is down within 1 s at
// the 99th percentile.
func TestDetectionTime(t *testing.T) {
	got := SimulateDetection(fastWAN(), 40*time.Millisecond, 5*time.Millisecond, 0.05, 200, 1)
	p50, p99 := percentile(got, 0.5), percentile(got, 0.99)
	t.Logf("detection over %d trials: p50 %v, p99 %v, max %v", len(got), p50, p99, slices.Max(got))
	if p99 > time.Second {
		t.Errorf("detection p99 %v, want <= 1s", p99)
	}
	if slices.Min(got) < 300*time.Millisecond {
		t.Errorf("detection after %v: faster than the loss allows", slices.Min(got))
	}
}

// TestNoFalseDowns is the other half: no down in 10 minutes of the same
// link without an outage.
func TestNoFalseDowns(t *testing.T) {
	for seed := range int64(3) {
		if n := SimulateFalseDowns(fastWAN(), 40*time.Millisecond, 5*time.Millisecond, 0.05, 10*time.Minute, seed); n != 0 {
			t.Errorf("seed %d: %d false downs in 10 minutes", seed, n)
		}
	}
}

func TestTimeoutDetector(t *testing.T) {
	cfg := fastWAN()
	cfg.Detector.Kind = DetectorTimeout
	cfg.Detector.SuspectAfter = 300 * time.Millisecond
	cfg.Detector.Timeout = 600 * time.Millisecond
	s := newSimulation(cfg, 40*time.Millisecond, time.Millisecond, 0, 5)
	s.run(s.start.Add(5*time.Second), nil)
	s.outage = s.now
	var suspect time.Duration
	s.run(s.now.Add(10*time.Second), func() bool {
		if suspect == 0 && s.link.State() == StateSuspect {
			suspect = s.now.Sub(s.outage)
		}
		return s.link.State() == StateDown
	})
	down := s.now.Sub(s.outage)
	// The last response came at most one interval minus the delay before
	// the outage, or one delay after it.
	if suspect < 200*time.Millisecond || suspect > 350*time.Millisecond || down < 500*time.Millisecond || down > 650*time.Millisecond {
		t.Errorf("suspect after %v, down after %v; want about 300 ms and 600 ms", suspect, down)
	}
}

func TestUnknownUntilFirstResponse(t *testing.T) {
	cfg := DefaultLANConfig() // 1 s probes, 500 ms timeout, loss floor 5%
	h := newHarness(t, cfg)
	events, cancel := h.link.Subscribe()
	defer cancel()
	if st := h.link.State(); st != StateUnknown {
		t.Fatalf("new link: %v", st)
	}
	var down time.Duration
	for i := range 20 {
		h.tick(cfg.Interval / 2)
		if h.link.State() == StateDown {
			down = time.Duration(i+1) * cfg.Interval / 2
			break
		}
	}
	// Each timed-out probe adds -log10(0.05) = 1.3: down (6) at the fifth.
	if down != 5*time.Second {
		t.Errorf("silent link down after %v, want 5s", down)
	}
	h.tick(cfg.Interval)
	if err := h.answer(h.last(), time.Millisecond, 0, time.Millisecond, 1); err != nil {
		t.Fatal(err)
	}
	var to []State
	for _, ev := range drain(events) {
		to = append(to, ev.To)
	}
	if want := []State{StateSuspect, StateDown, StateUp}; !slices.Equal(to, want) {
		t.Errorf("events to %v, want %v", to, want)
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	h := newHarness(t, DefaultLANConfig())
	stuck, cancelStuck := h.link.Subscribe() // never read until the end
	done := make(chan struct{})
	go func() {
		for i := range 101 {
			h.link.SetEnabled(i%2 == 1)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SetEnabled blocked on a full subscriber")
	}
	evs := drain(stuck)
	if len(evs) != eventBuffer || evs[len(evs)-1].To != h.link.State() {
		t.Errorf("slow subscriber holds %d events ending %+v; want the latest %d", len(evs), evs[len(evs)-1], eventBuffer)
	}
	cancelStuck()
	cancelStuck()
	if _, open := <-stuck; open {
		t.Error("channel open after cancel")
	}
	h.link.SetEnabled(false) // publishing after cancel must not panic
}

func TestPhi(t *testing.T) {
	cfg := DefaultWANConfig().Detector
	t0 := epoch
	d := newDetector(cfg, t0)
	for seq := range uint64(50) { // settle srtt at 80 ms, sigma at its floor
		d.answered(seq+1, 80*time.Millisecond, t0, 0.1, false)
	}
	pending := []probe{{seq: 51, sent: t0}, {seq: 52, sent: t0.Add(100 * time.Millisecond)}, {seq: 53, sent: t0.Add(200 * time.Millisecond)}}
	tests := []struct {
		name    string
		now     time.Time
		expired int
		want    float64
	}{
		{"all in flight", t0.Add(60 * time.Millisecond), 0, 0},
		{"one overdue", t0.Add(150 * time.Millisecond), 0, 1},
		{"three overdue", t0.Add(time.Second), 0, 3},
		{"plus two timed out", t0.Add(time.Second), 2, 5},
	}
	for _, tt := range tests {
		d.expired = make([]time.Time, tt.expired)
		if got := d.phi(tt.now, pending); !near(got, tt.want, 0.05) {
			t.Errorf("%s: phi = %.3f, want %v", tt.name, got, tt.want)
		}
	}
	if next := d.nextCheck(t0.Add(150*time.Millisecond), pending); !next.After(t0.Add(150*time.Millisecond)) || next.After(t0.Add(200*time.Millisecond)) {
		t.Errorf("nextCheck = %v after t0, want the third probe's overdue time", next.Sub(t0))
	}
}

// TestOutageLossDoesNotSlowTheNextDetection: a link that just came back
// from an outage is detected as fast the next time as the first.
func TestOutageLossDoesNotSlowTheNextDetection(t *testing.T) {
	cfg := DefaultWANConfig()
	cfg.Interval = 100 * time.Millisecond
	first := detectAfterOutages(t, cfg, 0)
	again := detectAfterOutages(t, cfg, 3)
	t.Logf("detection: %v fresh, %v after three outages", first, again)
	if again > first+150*time.Millisecond {
		t.Fatalf("detection slowed from %v to %v after earlier outages", first, again)
	}
}

// detectAfterOutages drives a link whose probes are answered in 80 ms
// through a number of 1 s outages, 3 s apart, and returns how long the
// detector takes to call the next outage down.
func detectAfterOutages(t *testing.T, cfg Config, outages int) time.Duration {
	t.Helper()
	h := newHarness(t, cfg)
	answered := 0
	run := func(d time.Duration, down, stopAtDown bool) time.Duration {
		end := h.now.Add(d)
		start := h.now
		for h.now.Before(end) {
			h.tick(5 * time.Millisecond)
			for ; answered < len(h.sent); answered++ {
				req := h.sent[answered]
				if down {
					continue
				}
				if due := time.Unix(0, req.T1).Add(80 * time.Millisecond); due.After(h.now) {
					break
				}
				if err := h.answer(req, 40*time.Millisecond, 0, 40*time.Millisecond, uint32(req.Seq)); err != nil {
					t.Fatal(err)
				}
			}
			if stopAtDown && h.link.State() == StateDown {
				return h.now.Sub(start)
			}
		}
		return d
	}
	run(30*time.Second, false, false)
	for range outages {
		run(2*time.Second, true, false)
		run(3*time.Second, false, false)
	}
	t.Logf("window loss before the last outage: %.3f", h.link.Snapshot().Loss)
	return run(10*time.Second, true, true)
}

// TestOutageIsNotLoss: probes lost while a link was down are its outage,
// counted apart from its loss: once it is back, its loss figures (and the
// histogram's missing mass) are those of the link while up, and Outage
// says how much of the window the outage took.
func TestOutageIsNotLoss(t *testing.T) {
	s := newSimulation(fastWAN(), 40*time.Millisecond, 5*time.Millisecond, 0.02, 7)
	s.run(s.start.Add(simWarmup), nil)
	before := s.link.Snapshot()
	s.outage = s.now
	s.run(s.now.Add(3*time.Second), nil)
	if st := s.link.State(); st != StateDown {
		t.Fatalf("after 3 s of outage: %v", st)
	}
	s.outage = time.Time{}
	s.run(s.now.Add(2*time.Second), nil)
	m := s.link.Snapshot()
	t.Logf("before: fwd %.4f rev %.4f; loss %.4f (before the outage %.4f), forward %.4f, reverse %.4f, recent %.4f, outage %.4f, missing mass %.1f of %.0f",
		before.LossForward, before.LossReverse, m.Loss, before.Loss, m.LossForward, m.LossReverse, m.RecentLoss, m.Outage, m.Histogram.Missing, m.Histogram.Missing+m.Histogram.Arrived())
	// 3 s of 100 ms probes is some 30 of the window's 256: 12%.
	if m.Outage < 0.08 || m.Outage > 0.16 {
		t.Errorf("outage %.4f of the window, want about 0.12", m.Outage)
	}
	// 2% each way is 4% round trip; the probes lost in the moment before
	// the link was declared down may add a few.
	if m.Loss > 0.08 || m.LossForward > 0.05 || m.LossReverse > 0.05 || m.RecentLoss > 0.05 {
		t.Errorf("loss %.4f (forward %.4f, reverse %.4f, recent %.4f) with 2%% each way: the outage counted as loss", m.Loss, m.LossForward, m.LossReverse, m.RecentLoss)
	}
	if share := m.Histogram.Missing / (m.Histogram.Missing + m.Histogram.Arrived()); share > 0.08 {
		t.Errorf("histogram missing %.4f of its mass: the outage counted as loss", share)
	}
}

// streamSim is a simulation of an ordered stream each way (as tcp is),
// 10 ms ± 1 ms one way, that resends each frame it loses (loss each way)
// after rto, probed every 50 ms with the WAN detector; ordered sets the
// detector's Ordered.
func streamSim(loss float64, rto time.Duration, ordered bool, seed int64) *simulation {
	cfg := DefaultWANConfig()
	cfg.Interval, cfg.AdaptiveMin = 50*time.Millisecond, 50*time.Millisecond
	cfg.Detector.Ordered = ordered
	s := newSimulation(cfg, 10*time.Millisecond, time.Millisecond, loss, seed)
	s.stream = &simStream{rto: rto}
	return s
}

// TestOrderedStallsAreNotOutages: on an ordered stream that loses 1% of
// its frames each way and resends them after 250 ms, every probe behind a
// resent one is late. Counted one by one, those probes declare the link
// down every few seconds; counted once a stall span, a few times in 30
// minutes (a stall called an outage teaches nothing, so the span is
// learned from the stalls that were not), and a real outage is still
// declared within about two seconds.
func TestOrderedStallsAreNotOutages(t *testing.T) {
	const minutes = 30
	rto := 250 * time.Millisecond
	unordered := streamSim(0.01, rto, false, 1).falseDowns(minutes * time.Minute)
	ordered := streamSim(0.01, rto, true, 1).falseDowns(minutes * time.Minute)
	t.Logf("false downs in %d minutes: %d counting every probe, %d counting a probe a stall span", minutes, unordered, ordered)
	if unordered < minutes {
		t.Errorf("counting every probe, only %d false downs: the stream does not stall as the test needs", unordered)
	}
	if ordered > 5 || 20*ordered > unordered {
		t.Errorf("%d false downs with the stall span", ordered)
	}
	var worst time.Duration
	var took []time.Duration
	for i := range 40 {
		d := streamSim(0.01, rto, true, int64(100+i)).detect()
		took = append(took, d)
		worst = max(worst, d)
	}
	slices.Sort(took)
	t.Logf("outage declared after p50 %v, worst %v", took[len(took)/2], worst)
	if worst > 2500*time.Millisecond {
		t.Errorf("an outage took %v to declare", worst)
	}
}

// TestOrderedCleanLinkDetectsAsBefore: on an ordered stream that never
// stalls, the stall span is the jitter's and outages are declared as fast
// as when every probe counts.
func TestOrderedCleanLinkDetectsAsBefore(t *testing.T) {
	var plain, ordered []time.Duration
	for i := range 40 {
		plain = append(plain, streamSim(0, 0, false, int64(i)).detect())
		ordered = append(ordered, streamSim(0, 0, true, int64(i)).detect())
	}
	slices.Sort(plain)
	slices.Sort(ordered)
	t.Logf("p50: %v counting every probe, %v with the stall span", plain[20], ordered[20])
	if ordered[20] > plain[20]+10*time.Millisecond {
		t.Errorf("the stall span slowed detection on a clean link: p50 %v against %v", ordered[20], plain[20])
	}
}

// TestStallSpan: the span is learned from late responses, decays, and
// does not learn from a response an outage held up.
func TestStallSpan(t *testing.T) {
	cfg := DefaultWANConfig().Detector
	cfg.Ordered = true
	t0 := epoch
	d := newDetector(cfg, t0)
	seq := uint64(0)
	answer := func(rtt time.Duration, outage bool) {
		seq++
		d.answered(seq, rtt, t0, 0, outage)
	}
	for range 50 {
		answer(80*time.Millisecond, false)
	}
	if d.span > 5*time.Millisecond {
		t.Fatalf("span %v on a steady link", d.span)
	}
	answer(330*time.Millisecond, false)
	if d.span < 240*time.Millisecond || d.span > 260*time.Millisecond {
		t.Fatalf("span %v after a response 250 ms late", d.span)
	}
	answer(5*time.Second, true)
	if d.span > 260*time.Millisecond {
		t.Fatalf("span %v learned from a response an outage held", d.span)
	}
	for range stallMemory {
		answer(80*time.Millisecond, false)
	}
	if d.span > 100*time.Millisecond {
		t.Fatalf("span %v after %d steady responses", d.span, stallMemory)
	}
	// Five probes 50 ms apart, all unanswered a second later: one span
	// of evidence ordered, five unordered.
	pending := make([]probe, 5)
	for i := range pending {
		pending[i] = probe{seq: seq + uint64(i) + 1, sent: t0.Add(time.Duration(i) * 50 * time.Millisecond)}
	}
	d.span = 250 * time.Millisecond
	ordered := d.phi(t0.Add(time.Second), pending)
	d.cfg.Ordered = false
	unordered := d.phi(t0.Add(time.Second), pending)
	if !near(unordered, 5*ordered, 0.1) {
		t.Fatalf("phi %.2f ordered, %.2f unordered: want one probe's worth against five", ordered, unordered)
	}
}
