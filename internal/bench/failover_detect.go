package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/transports"
)

// The liveness experiment behind `wayline bench failover-detect`: how fast
// a link's monitor calls a full outage, and how often it calls a live link
// down, on real brokers in this process joined by real sockets, with the
// emulated transport supplying the wide-area delay and loss. The monitor's
// own virtual-time simulation runs beside it, so that a gap between the
// model and the running system shows.

// DetectConfig sets up the experiment. Zero fields take the values of
// DefaultDetectConfig, except Simulate, whose zero value skips the
// simulation.
type DetectConfig struct {
	// Trials is the number of outages timed. Default 100.
	Trials int
	// SoakDuration is how long, in real time, a second link runs without
	// outages while its false downs are counted. Default 10 minutes.
	SoakDuration time.Duration
	// Delay is the one-way delay of each direction. Default 40 ms.
	Delay time.Duration
	// Loss is the frame loss of each direction, drawn independently per
	// frame. Default 5%; a negative value means none.
	Loss float64
	// Interval is the probe interval of the links' monitors. Default 100 ms.
	Interval time.Duration
	// Transport is "udp" (default), "tcp", "ws" or "mem". On the reliable
	// ones a lost frame arrives one retransmission timeout late instead.
	Transport string
	// Simulate adds monitor.SimulateDetection and SimulateFalseDowns figures
	// for the same link and detector, in virtual time (under a second).
	Simulate bool
	// Pairs is the number of broker pairs that time outages side by side.
	// Default: enough for the trials to take about SoakDuration, at most 8.
	Pairs int
	// Settle is how long a trial link runs undisturbed before each outage.
	// The monitor estimates probe loss over its window, and an outage's lost
	// probes stay in it: back-to-back outages would inflate the loss the
	// detector assumes and slow it down, which says nothing about a link
	// that fails once. Default ProbeTimeout + Window*Interval of the
	// monitor (27.6 s at 100 ms), after which they have left the window.
	Settle time.Duration
	Logger *slog.Logger
}

// DefaultDetectConfig is the acceptance case: a 40 ms link with 5% loss
// each way, probed every 100 ms over udp, 100 outages, a 10-minute soak.
func DefaultDetectConfig() DetectConfig {
	return DetectConfig{
		Trials:       100,
		SoakDuration: 10 * time.Minute,
		Delay:        40 * time.Millisecond,
		Loss:         0.05,
		Interval:     100 * time.Millisecond,
		Transport:    "udp",
		Simulate:     true,
	}
}

func (c *DetectConfig) defaults(mon monitor.Config) {
	def := DefaultDetectConfig()
	detectDefault(&c.Trials, def.Trials)
	detectDefault(&c.SoakDuration, def.SoakDuration)
	detectDefault(&c.Delay, def.Delay)
	detectDefault(&c.Interval, def.Interval)
	switch {
	case c.Loss == 0:
		c.Loss = def.Loss
	case c.Loss < 0:
		c.Loss = 0
	}
	if c.Transport == "" {
		c.Transport = def.Transport
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	detectDefault(&c.Settle, windowClears(mon, c.Interval))
	if c.Pairs <= 0 {
		perTrial := c.Settle + c.Interval + time.Second // settle, pause, detection and recovery
		c.Pairs = min(int(math.Ceil(float64(c.Trials)*float64(perTrial)/float64(c.SoakDuration))), 8)
	}
	c.Pairs = min(c.Pairs, c.Trials)
}

// windowClears is how long after an outage its lost probes take to leave
// the monitor's window: they time out, then a window of new probes follows.
func windowClears(mon monitor.Config, interval time.Duration) time.Duration {
	return mon.ProbeTimeout + time.Duration(mon.Window)*interval
}

func detectDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// DetectResult holds the experiment's figures.
type DetectResult struct {
	// Detect is each trial's detection time at the end that took the link
	// down, in trial order: from the outage to the first 5 ms poll of
	// Links() that saw the monitor say down, so up to one poll late.
	Detect             []time.Duration
	P50, P90, P99, Max time.Duration
	// Undetected counts the trials with no down within detectGiveUp; their
	// Detect entry is detectGiveUp.
	Undetected int
	// FalseDowns counts the soak link's transitions to down, at either end.
	FalseDowns   int
	SoakDuration time.Duration
	// The simulated figures, zero unless Simulate: the p99 of 1000
	// simulated outages, and the false downs in SimMinutes of simulated
	// time.
	SimP99        time.Duration
	SimFalseDowns int
	SimMinutes    float64
}

const (
	detectPoll   = 5 * time.Millisecond  // how often a trial looks at the link state
	soakPoll     = 20 * time.Millisecond // how often the soak does
	detectGiveUp = 10 * time.Second      // a trial whose outage is not called by then is undetected
	upTimeout    = 20 * time.Second      // for a link to come (back) up
	minSamples   = 20                    // answered probes in A's window before an outage
	simTrials    = 1000
	simMinutes   = 1000
	simSeed      = 1
	seedEraIvl   = 300 * time.Millisecond
)

// RunFailoverDetect runs the experiment and writes its report to w, ending
// with the lines detect_p99_ms=<ms> and false_downs=<n>/<soak duration>.
// The outage trials and the soak run at the same time, so it takes about
// max(trials, SoakDuration). Outcomes: the figures and nil; or an error
// when a broker or link fails to start or come back, or ctx ends (an error
// wrapping ctx.Err(), after every broker is closed).
func RunFailoverDetect(ctx context.Context, w io.Writer, cfg DetectConfig) (DetectResult, error) {
	mon := monitor.DefaultWANConfig()
	cfg.defaults(mon)
	mon.Interval = cfg.Interval
	if err := mon.Validate(); err != nil {
		return DetectResult{}, fmt.Errorf("failover-detect: %w", err)
	}
	emu := transports.Emulation{Delay: cfg.Delay, Loss: cfg.Loss}
	if err := emu.Validate(); err != nil {
		return DetectResult{}, fmt.Errorf("failover-detect: %w", err)
	}
	printDetectConfig(w, cfg, mon)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		trials detectTrials
		soak   detectSoak
		fail   firstError
		start  = time.Now()
	)
	wg.Go(func() {
		var err error
		if trials, err = runDetectTrials(ctx, w, cfg, mon, emu); err != nil {
			fail.set(err, cancel)
		}
	})
	wg.Go(func() {
		var err error
		if soak, err = runDetectSoak(ctx, cfg, mon, emu); err != nil {
			fail.set(err, cancel)
		}
	})
	wg.Wait()
	if err := fail.get(); err != nil {
		return DetectResult{}, fmt.Errorf("failover-detect: %w", err)
	}
	cfg.Logger.Info("failover-detect: real runs done", slog.Duration("took", time.Since(start)))

	res := DetectResult{
		Detect:       trials.a,
		Undetected:   trials.undetected,
		FalseDowns:   soak.downs(),
		SoakDuration: soak.took,
	}
	a := detectSorted(trials.a)
	res.P50, res.P90, res.P99, res.Max = detectPct(a, 0.5), detectPct(a, 0.9), detectPct(a, 0.99), a[len(a)-1]
	printDetection(w, cfg, res, trials)
	printSoak(w, cfg, soak, trials)
	if cfg.Simulate {
		if err := detectSimulate(ctx, w, cfg, mon, &res); err != nil {
			return res, fmt.Errorf("failover-detect: %w", err)
		}
	}
	fmt.Fprintf(w, "detect_p99_ms=%d\n", res.P99.Round(time.Millisecond).Milliseconds())
	fmt.Fprintf(w, "false_downs=%d/%v\n", res.FalseDowns, cfg.SoakDuration)
	return res, nil
}

// detectTrials are the outage trials' figures, in trial order.
type detectTrials struct {
	a          []time.Duration // at A, polled
	event      []time.Duration // at A, from the logged state event; 0 if none was seen
	b          []time.Duration // at B (the peer), polled
	undetected int
	// otherDowns counts downs on the trial links outside the outages, at
	// either end; linkTime is how long those links ran, outages included.
	otherDowns int
	linkTime   time.Duration
}

// runDetectTrials times cfg.Trials outages on cfg.Pairs broker pairs, each pair
// taking the next trial when it has settled.
func runDetectTrials(ctx context.Context, w io.Writer, cfg DetectConfig, mon monitor.Config, emu transports.Emulation) (detectTrials, error) {
	st := detectTrials{
		a:     make([]time.Duration, cfg.Trials),
		event: make([]time.Duration, cfg.Trials),
		b:     make([]time.Duration, cfg.Trials),
	}
	var (
		next atomic.Int64
		done int
		mu   sync.Mutex // guards done, st's sums and the progress lines
		fail firstError
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	every := max(cfg.Trials/10, 1)
	for p := range cfg.Pairs {
		wg.Go(func() {
			pair, err := startDetectPair(ctx, fmt.Sprintf("t%d", p+1), 1+p, cfg, mon, emu)
			var ran int
			if err == nil {
				ran, err = pair.runTrials(ctx, cfg, &next, func(i int, t detectTimes) {
					st.a[i], st.event[i], st.b[i] = t.a, t.event, t.b
					mu.Lock()
					defer mu.Unlock()
					if done++; done%every == 0 {
						fmt.Fprintf(w, "  outages %d/%d; the last one called in %v\n", done, cfg.Trials, t.a.Round(time.Millisecond))
					}
				})
				other, up := pair.otherDowns(ran)
				mu.Lock()
				st.otherDowns += other
				st.linkTime += up
				mu.Unlock()
				pair.close()
			}
			if err != nil {
				fail.set(err, cancel)
			}
		})
	}
	wg.Wait()
	if err := fail.get(); err != nil {
		return st, err
	}
	for _, d := range st.a {
		if d >= detectGiveUp {
			st.undetected++
		}
	}
	return st, nil
}

// runTrials takes trials from next until there are none left and reports
// each to record. It returns how many it ran.
func (p *detectPair) runTrials(ctx context.Context, cfg DetectConfig, next *atomic.Int64, record func(int, detectTimes)) (int, error) {
	ran := 0
	since, err := p.waitUp(ctx)
	if err != nil {
		return 0, err
	}
	p.upSince = since
	for i := int(next.Add(1) - 1); i < cfg.Trials; i = int(next.Add(1) - 1) {
		if err := detectSleep(ctx, time.Until(since.Add(cfg.Settle))); err != nil {
			return ran, err
		}
		if err := p.waitSamples(ctx); err != nil {
			return ran, err
		}
		if err := detectSleep(ctx, rand.N(cfg.Interval)); err != nil {
			return ran, err
		}
		t, err := p.outage(ctx)
		if err != nil {
			return ran, fmt.Errorf("outage %d on pair %s: %w", i+1, p.name, err)
		}
		ran++
		record(i, t)
		cfg.Logger.Debug("failover-detect: outage timed", slog.Int("trial", i+1), slog.String("pair", p.name),
			slog.Duration("a", t.a), slog.Duration("b", t.b), slog.Duration("event", t.event))
		if since, err = p.waitUp(ctx); err != nil {
			return ran, fmt.Errorf("pair %s after outage %d: %w", p.name, i+1, err)
		}
	}
	return ran, nil
}

// detectTimes is one outage's detection times.
type detectTimes struct{ a, event, b time.Duration }

// outage takes the link down from A, which applies it to its own direction
// at once and tells B out of band to do the same, times both ends'
// verdicts, and brings the link back.
func (p *detectPair) outage(ctx context.Context) (detectTimes, error) {
	var t detectTimes
	downsBefore := p.eventsA.count("down")
	t0 := time.Now()
	if err := p.setDown(true); err != nil {
		return t, err
	}
	tick := time.NewTicker(detectPoll)
	defer tick.Stop()
	for t.a == 0 || t.b == 0 {
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-tick.C:
		}
		a, b := detectLink(p.a, p.linkID), detectLink(p.b, p.linkID)
		now := time.Since(t0)
		if t.a == 0 && a.Metrics.State == "down" {
			t.a = now
		}
		if t.b == 0 && b.Metrics.State == "down" {
			t.b = now
		}
		if now >= detectGiveUp {
			t.a, t.b = orGiveUp(t.a), orGiveUp(t.b)
		}
	}
	// The broker logs the state change just after the monitor makes it.
	for deadline := time.Now().Add(250 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if p.eventsA.count("down") > downsBefore {
			t.event = p.eventsA.lastDownAt().Sub(t0)
			break
		}
	}
	return t, p.setDown(false)
}

// orGiveUp returns d, or detectGiveUp for an end that saw no down.
func orGiveUp(d time.Duration) time.Duration {
	if d == 0 {
		return detectGiveUp
	}
	return d
}

func (p *detectPair) setDown(down bool) error {
	if _, err := p.a.SetEmulation(p.linkID, transports.EmulationSpec{Down: &down}); err != nil {
		return fmt.Errorf("set down=%v: %w", down, err)
	}
	return nil
}

// otherDowns returns the downs A's and B's monitors called outside the ran
// outages, and the time the link ran.
func (p *detectPair) otherDowns(ran int) (int, time.Duration) {
	if p.upSince.IsZero() {
		return 0, 0
	}
	n := p.eventsA.count("down") + p.eventsB.count("down") - 2*ran
	return max(n, 0), time.Since(p.upSince)
}

// detectSoak are the soak link's figures.
type detectSoak struct {
	took               time.Duration
	polledA, polledB   int // transitions to down seen by polling
	eventsA, eventsB   int // transitions to down in the brokers' logs
	suspectA, suspectB int
	final              netapi.LinkMetrics // A's view at the end
}

// downs is the number of false downs: the logged ones, or the polled ones
// if the log showed fewer, which would mean the log no longer has them.
func (s detectSoak) downs() int {
	return max(s.eventsA, s.polledA) + max(s.eventsB, s.polledB)
}

// runDetectSoak runs a link without outages for cfg.SoakDuration and
// counts the times either end calls it down. The count comes from the
// state changes the brokers log, which misses none. Polling Links() every
// 20 ms checks it, but is not enough on its own: only a response ends a
// down, and a response to a probe sent after the down is a round trip
// (80 ms) away, but a late response to one sent before it, which the
// detector had counted overdue, can end it within a millisecond.
func runDetectSoak(ctx context.Context, cfg DetectConfig, mon monitor.Config, emu transports.Emulation) (detectSoak, error) {
	var st detectSoak
	p, err := startDetectPair(ctx, "soak", 0, cfg, mon, emu)
	if err != nil {
		return st, err
	}
	defer p.close()
	start, err := p.waitUp(ctx)
	if err != nil {
		return st, fmt.Errorf("soak: %w", err)
	}
	downA0, downB0 := p.eventsA.count("down"), p.eventsB.count("down")
	suspA0, suspB0 := p.eventsA.count("suspect"), p.eventsB.count("suspect")
	tick := time.NewTicker(soakPoll)
	defer tick.Stop()
	var wasA, wasB bool
	for time.Since(start) < cfg.SoakDuration {
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-tick.C:
		}
		a, b := detectLink(p.a, p.linkID).Metrics.State == "down", detectLink(p.b, p.linkID).Metrics.State == "down"
		if a && !wasA {
			st.polledA++
		}
		if b && !wasB {
			st.polledB++
		}
		wasA, wasB = a, b
	}
	st.took = time.Since(start)
	st.eventsA, st.eventsB = p.eventsA.count("down")-downA0, p.eventsB.count("down")-downB0
	st.suspectA, st.suspectB = p.eventsA.count("suspect")-suspA0, p.eventsB.count("suspect")-suspB0
	st.final = detectLink(p.a, p.linkID).Metrics
	return st, nil
}

// detectPair is two brokers joined by one emulated link, which A dials.
type detectPair struct {
	name             string
	a, b             *broker.Broker
	linkID           string
	eventsA, eventsB *detectStateLog
	upSince          time.Time // when the link first came up
}

// startDetectPair starts B, listening, then A, dialing B's bound address,
// so that no port has to be guessed free. Both ends emulate their own
// direction with emu and measure the link with mon.
func startDetectPair(ctx context.Context, name string, n int, cfg DetectConfig, mon monitor.Config, emu transports.Emulation) (*detectPair, error) {
	var listen string
	switch cfg.Transport {
	case "udp", "tcp", "ws":
		listen = cfg.Transport + "://127.0.0.1:0"
	case "mem":
		listen = fmt.Sprintf("mem://failover-detect-%s-%x", name, rand.Uint64())
	default:
		return nil, fmt.Errorf("transport %q: want udp, tcp, ws or mem", cfg.Transport)
	}
	p := &detectPair{name: name, linkID: fmt.Sprintf("00000000-0000-4000-8000-fd%010d", n)}
	addrA, addrB := "detect."+name+".a", "detect."+name+".b"
	log := cfg.Logger.With(slog.String("pair", name))
	link := func(peer, dial string) []broker.LinkConfig {
		e, m := emu, mon
		return []broker.LinkConfig{{ID: p.linkID, Peer: peer, Transport: cfg.Transport, Dial: dial, Emulation: &e, Monitor: &m}}
	}
	p.eventsB = newDetectStateLog(log.Handler())
	b, err := detectStartBroker(ctx, broker.Config{Address: addrB, Client: "127.0.0.1:0", Listen: []string{listen},
		Links: link(addrA, ""), Monitor: mon, Logger: slog.New(p.eventsB)})
	if err != nil {
		return nil, err
	}
	p.b = b
	p.eventsA = newDetectStateLog(log.Handler())
	a, err := detectStartBroker(ctx, broker.Config{Address: addrA, Client: "127.0.0.1:0",
		Links: link(addrB, b.OverlayURLs()[0]), Monitor: mon, Logger: slog.New(p.eventsA)})
	if err != nil {
		b.Close()
		return nil, err
	}
	p.a = a
	return p, nil
}

func detectStartBroker(ctx context.Context, c broker.Config) (*broker.Broker, error) {
	b, err := broker.New(c)
	if err != nil {
		return nil, fmt.Errorf("broker %s: %w", c.Address, err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("broker %s: start: %w", c.Address, err)
	}
	return b, nil
}

func (p *detectPair) close() {
	p.a.Close()
	p.b.Close()
}

// waitUp waits until both ends' monitors say up and returns that moment.
func (p *detectPair) waitUp(ctx context.Context) (time.Time, error) { return p.waitFor(ctx, 0) }

// waitSamples waits until both ends say up and A has minSamples samples.
func (p *detectPair) waitSamples(ctx context.Context) error {
	_, err := p.waitFor(ctx, minSamples)
	return err
}

func (p *detectPair) waitFor(ctx context.Context, samples int) (time.Time, error) {
	deadline := time.Now().Add(upTimeout)
	for {
		a, b := detectLink(p.a, p.linkID), detectLink(p.b, p.linkID)
		if a.Metrics.State == "up" && b.Metrics.State == "up" && a.Metrics.Samples >= samples {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("pair %s: link not up after %v: A %s (%s), B %s (%s)", p.name, upTimeout,
				a.Metrics.State, a.LastError, b.Metrics.State, b.LastError)
		}
		if err := detectSleep(ctx, detectPoll); err != nil {
			return time.Time{}, err
		}
	}
}

// detectLink returns the link id of b as Links() reports it.
func detectLink(b *broker.Broker, id string) netapi.LinkInfo {
	for _, l := range b.Links() {
		if l.ID == id {
			return l
		}
	}
	return netapi.LinkInfo{}
}

// detectStateLog is a slog.Handler that counts the link state changes a
// broker logs, and passes every record on to next. The broker exports no
// stream of state changes, and polling Links() can miss a down that a
// response still in flight ends a moment later; the broker logs every
// change (watchMonitor in broker/monitoring.go: "link state", to=<state>).
// Each broker here has one link, so records need not name it. Handlers
// derived by WithAttrs and WithGroup share the counts.
type detectStateLog struct {
	next slog.Handler
	c    *detectStateCounts
}

type detectStateCounts struct {
	mu       sync.Mutex
	to       map[string]int // changes by new state
	lastDown time.Time      // when the last change to down was logged
}

func newDetectStateLog(next slog.Handler) *detectStateLog {
	return &detectStateLog{next: next, c: &detectStateCounts{to: map[string]int{}}}
}

// Enabled admits Info and above whatever next admits: state changes are
// logged at Info, and at Warn for down.
func (h *detectStateLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *detectStateLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "link state" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key != "to" {
				return true
			}
			to := a.Value.String()
			h.c.mu.Lock()
			h.c.to[to]++
			if to == monitor.StateDown.String() {
				h.c.lastDown = r.Time
			}
			h.c.mu.Unlock()
			return false
		})
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *detectStateLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &detectStateLog{next: h.next.WithAttrs(as), c: h.c}
}

func (h *detectStateLog) WithGroup(name string) slog.Handler {
	return &detectStateLog{next: h.next.WithGroup(name), c: h.c}
}

func (h *detectStateLog) count(to string) int {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.c.to[to]
}

func (h *detectStateLog) lastDownAt() time.Time {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.c.lastDown
}

// firstError keeps the first error of goroutines that work together, and
// stops the others: theirs are mostly the cancellation that follows.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error, cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		cancel()
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// detectSleep waits d, or until ctx ends.
func detectSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func detectSorted(ds []time.Duration) []time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s
}

// detectPct is the nearest-rank percentile of sorted: the smallest value
// that at least a fraction q of the values do not exceed.
func detectPct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func printDetectConfig(w io.Writer, cfg DetectConfig, mon monitor.Config) {
	d := mon.Detector
	rtLoss := 1 - (1-cfg.Loss)*(1-cfg.Loss)
	fmt.Fprintf(w, "failover-detect: full outages on an emulated wide-area link, called by the link monitor\n")
	fmt.Fprintf(w, "  link: %s, %v one way (RTT %v), loss %.1f%% per direction, independent (a probe round trip: %.2f%%)\n",
		cfg.Transport, cfg.Delay, 2*cfg.Delay, 100*cfg.Loss, 100*rtLoss)
	fmt.Fprintf(w, "  detector: monitor.DefaultWANConfig() with Interval %v, nothing else changed: %s, suspect at phi %g, down at phi %g,\n",
		mon.Interval, d.Kind, d.PhiSuspect, d.PhiDown)
	fmt.Fprintf(w, "    loss floor %g%%, ceiling %g%%, min stddev %v, probe timeout %v, window %d probes, adaptive interval %s\n",
		100*d.LossFloor, 100*d.LossCeiling, d.MinStdDev, mon.ProbeTimeout, mon.Window, map[bool]string{false: "off", true: "on"}[mon.Adaptive])
	fmt.Fprintf(w, "  outages: %d on %d broker pairs, each after %v undisturbed and a random 0-%v pause; A takes both directions\n",
		cfg.Trials, cfg.Pairs, cfg.Settle, cfg.Interval)
	fmt.Fprintf(w, "    down (SetEmulation down=true); both ends polled every %v, so times are up to %v late\n", detectPoll, detectPoll)
	if clears := windowClears(mon, cfg.Interval); cfg.Settle < clears {
		fmt.Fprintf(w, "    CAUTION: settle under %v: lost probes of the last outage are still in the window; they raise the loss\n", clears)
		fmt.Fprintf(w, "    the detector assumes, which slows it (on the first outage of a pair the window is merely short)\n")
	}
	fmt.Fprintf(w, "  soak: %v on another pair without outages, counting changes to down at either end\n", cfg.SoakDuration)
}

func printDetection(w io.Writer, cfg DetectConfig, res DetectResult, tr detectTrials) {
	line := func(label string, ds []time.Duration) {
		s := detectSorted(ds)
		fmt.Fprintf(w, "  %-38s p50 %-7v p90 %-7v p99 %-7v max %v\n", label, detectPct(s, 0.5).Round(time.Millisecond),
			detectPct(s, 0.9).Round(time.Millisecond), detectPct(s, 0.99).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(w, "detection over %d outages (nearest-rank percentiles):\n", len(tr.a))
	line("at A, polled:", tr.a)
	if ev := slices.DeleteFunc(slices.Clone(tr.event), func(d time.Duration) bool { return d == 0 }); len(ev) > 0 {
		line(fmt.Sprintf("at A, logged state change (%d):", len(ev)), ev)
	}
	line("at the peer B, polled:", tr.b)
	fmt.Fprintf(w, "  undetected within %v: %d\n", detectGiveUp, res.Undetected)
	verdict := "met"
	if res.P99 > time.Second || res.Undetected > 0 {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "  target p99 <= 1s: %s (%v)\n", verdict, res.P99.Round(time.Millisecond))
	fmt.Fprintf(w, "  seed era (Berkeley overlay): 1.8-2s at %v heartbeats; here p99 %v at %v probes (%.1fx the rate): %.1fx faster than 1.8s\n",
		seedEraIvl, res.P99.Round(time.Millisecond), cfg.Interval, float64(seedEraIvl)/float64(cfg.Interval), 1.8/res.P99.Seconds())
}

func printSoak(w io.Writer, cfg DetectConfig, s detectSoak, tr detectTrials) {
	fmt.Fprintf(w, "false downs over %v of a link without outages: %d (logged: A %d, B %d; polled every %v: A %d, B %d); suspects: A %d, B %d\n",
		s.took.Round(time.Second), s.downs(), s.eventsA, s.eventsB, soakPoll, s.polledA, s.polledB, s.suspectA, s.suspectB)
	m := s.final
	fmt.Fprintf(w, "  the soak link as A measured it last: rtt %.1fms, loss %.1f%% one way, %.1f%% of probe round trips (window of %d answered), %d probes sent\n",
		m.RTT, 100*m.Loss, 100*m.LossRoundTrip, m.Samples, m.ProbesSent)
	fmt.Fprintf(w, "  the trial links, outside their outages: %d downs in %.1f minutes of running\n", tr.otherDowns, tr.linkTime.Minutes())
	switch {
	case s.downs() > 0:
		fmt.Fprintf(w, "  target no false down in 10m: MISSED\n")
	case cfg.SoakDuration < 10*time.Minute:
		fmt.Fprintf(w, "  target no false down in 10m: not shown, the soak was shorter\n")
	default:
		fmt.Fprintf(w, "  target no false down in 10m: met\n")
	}
}

// detectSimulate reports the monitor's simulation of the same detector on
// the same link in virtual time, and of the detector at the seed era's
// 300 ms heartbeats, to tell what the probe rate buys from what the
// detector does. It runs after the real experiment, so as not to take CPU
// from its timing, in chunks that let ctx end it; the chunks give the same
// figures as one run (SimulateDetection seeds each trial with seed+i).
func detectSimulate(ctx context.Context, w io.Writer, cfg DetectConfig, mon monitor.Config, res *DetectResult) error {
	detect := func(m monitor.Config) ([]time.Duration, error) {
		var out []time.Duration
		for len(out) < simTrials {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("simulation: %w", err)
			}
			out = append(out, monitor.SimulateDetection(m, cfg.Delay, 0, cfg.Loss, 100, simSeed+int64(len(out)))...)
		}
		slices.Sort(out)
		return out, nil
	}
	sim, err := detect(mon)
	if err != nil {
		return err
	}
	slow := mon
	slow.Interval = seedEraIvl
	simSlow, err := detect(slow)
	if err != nil {
		return err
	}
	const chunk = 100
	downs := 0
	for k := range simMinutes / chunk {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("simulation: %w", err)
		}
		downs += monitor.SimulateFalseDowns(mon, cfg.Delay, 0, cfg.Loss, chunk*time.Minute, simSeed+int64(k))
	}
	res.SimP99, res.SimFalseDowns, res.SimMinutes = detectPct(sim, 0.99), downs, simMinutes
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	fmt.Fprintf(w, "simulated, virtual time (monitor.SimulateDetection, same link and detector, jitter 0, %d outages, seed %d):\n", simTrials, simSeed)
	fmt.Fprintf(w, "  at %v probes: p50 %v p90 %v p99 %v max %v\n", mon.Interval,
		r(detectPct(sim, 0.5)), r(detectPct(sim, 0.9)), r(res.SimP99), r(sim[len(sim)-1]))
	fmt.Fprintf(w, "  at %v probes (the seed era's rate): p50 %v p90 %v p99 %v max %v\n", seedEraIvl,
		r(detectPct(simSlow, 0.5)), r(detectPct(simSlow, 0.9)), r(detectPct(simSlow, 0.99)), r(simSlow[len(simSlow)-1]))
	fmt.Fprintf(w, "simulated false downs (monitor.SimulateFalseDowns, %d virtual minutes at %v): %d, %.3f per 10 minutes\n",
		simMinutes, mon.Interval, downs, float64(downs)*10/simMinutes)
	return nil
}
