package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/transports"
)

// The accuracy experiment checks that link monitoring measures what the
// emulator does. Two real brokers run in this process, joined by one link
// per case, each end emulating the same conditions for what it sends; the
// monitor's figures are compared with the emulator's own Expectation.

// AccuracyConfig sets up `wayline bench accuracy`.
type AccuracyConfig struct {
	// Duration is how long the links of each transport are measured,
	// once all are up, before the figures are read; the transports take
	// turns (see RunAccuracy). Default 30 s: about 2900 answered probes
	// per udp link, which puts the standard error of the per-direction
	// loss at 0.3 points for 5% loss, a third of the 1-point target.
	Duration time.Duration
	// Transports to measure. Default tcp, tls, udp, ws, quic. Loss is
	// emulated on udp and quic only: tcp, tls and ws repair it in sight of
	// their probes, while quic's probes travel as datagrams that QUIC does
	// not repair.
	Transports []string
	// Delays are the emulated one-way delays. Default 1, 20 and 100 ms.
	Delays []time.Duration
	// Logger receives the brokers' logs. Default: discard.
	Logger *slog.Logger
}

// AccuracyCase is one emulated link: its conditions, what the emulator
// says a monitor should measure (Want*), and what was measured (Got*).
// Delays are in milliseconds, loss is a fraction per direction.
type AccuracyCase struct {
	Transport               string
	Delay, Jitter           time.Duration
	Loss                    float64
	WantLatency, WantJitter float64
	WantLoss                float64
	GotLatency, GotJitter   float64
	GotLoss                 float64
	Samples                 int
	Pass                    bool
	Why                     string // what failed, and where B's probes disagree; empty when all is well
}

// Pass bounds. The jitter floor exists because 20% of a true jitter of
// zero is zero, while what the emulator's lateness correction leaves (the
// time from hand-off to the receiver's timestamp: a syscall, loopback and
// the reader goroutine's wake-up) is not: 0.02-0.05 ms measured on a quiet
// two-core machine.
const (
	latencyTolFrac = 0.02
	latencyTolAbs  = 0.3 // ms
	jitterTolFrac  = 0.2
	jitterTolAbs   = 0.1 // ms
	lossTolAbs     = 0.01
)

// Loss rates of the udp and quic cases.
var accuracyLosses = []float64{0, 0.01, 0.05}

// accuracySchemes are the transports the experiment knows, in the order of
// broker B's listeners.
var accuracySchemes = []string{"tcp", "tls", "udp", "ws", "quic"}

// unreliableProbes reports whether a transport's probes meet the network
// as it is: udp carries everything that way, quic its probes (as QUIC
// datagrams).
func unreliableProbes(transport string) bool { return transport == "udp" || transport == "quic" }

// Sizes that probe traffic at the default interval is computed from:
// the overlay record header (overlay/wire.go), the stream frame length
// (transports/stream.go), and IPv4+TCP headers with the timestamp option
// that Linux sets by default (20+20+12).
const (
	recordHeaderBytes = 5
	streamHeaderBytes = 4
	ipTCPHeaderBytes  = 52
)

func (c *AccuracyConfig) defaults() error {
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if len(c.Transports) == 0 {
		c.Transports = accuracySchemes
	}
	if len(c.Delays) == 0 {
		c.Delays = []time.Duration{time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	// A transport named twice would be measured twice, under the same ids.
	var uniq []string
	for _, t := range c.Transports {
		if !slices.Contains(accuracySchemes, t) {
			return fmt.Errorf("accuracy: unknown transport %q (want one of %s)", t, strings.Join(accuracySchemes, ", "))
		}
		if !slices.Contains(uniq, t) {
			uniq = append(uniq, t)
		}
	}
	c.Transports = uniq
	for _, d := range c.Delays {
		// Above 10 s the probe timeout (4*delay + 200 ms) would pass the
		// monitor's limit of a minute.
		if d <= 0 || d > 10*time.Second {
			return fmt.Errorf("accuracy: delay %v outside (0, 10s]", d)
		}
	}
	return nil
}

// probeLink is one link of the run: a case, or one of the extra links
// behind the report lines.
type probeLink struct {
	id       string
	trans    string
	emu      transports.Emulation
	interval time.Duration
	// quietPeer turns B's probes off: only A measures, and B just answers.
	quietPeer bool
}

// probeLink returns the link that measures case c as link id. On a
// reliable link with jitter, B's probes and its responses share each
// direction with A's, at a phase that nothing controls: A's probe then
// often waits behind one of B's frames (head-of-line blocking, see
// interval), which in trial runs raised the mean at 100 ms ± 10 ms by up
// to 1.2 ms and cut the jitter by up to 9%, depending on that phase.
// Expectation leaves that out, so B stays quiet and A's figures measure
// the monitor rather than the phase. Probes that travel unreliably wait
// behind nothing.
func (c AccuracyCase) probeLink(id string) probeLink {
	return probeLink{id: id, trans: c.Transport, emu: c.emulation(), interval: c.interval(),
		quietPeer: !unreliableProbes(c.Transport) && c.Jitter > 0}
}

// emulation is the case's conditions: jitter is uniform with half-width
// Jitter, loss independent.
func (c AccuracyCase) emulation() transports.Emulation {
	return transports.Emulation{Delay: c.Delay, Jitter: c.Jitter, JitterDist: transports.JitterUniform, Loss: c.Loss}
}

// interval is how often a case's link is probed. On a reliable emulated
// link due times never go back, so a frame sent within the jitter range
// (2*Jitter) of the previous one may wait behind it, which narrows the
// measured jitter and raises the mean. Requests spaced by T leave the peer
// as responses spaced by at least T-2*Jitter, so T = 4*Jitter keeps both
// clear of each other. Unreliable probes (udp, quic) may be reordered
// freely, so they take the finest interval and the most samples.
func (c AccuracyCase) interval() time.Duration {
	if unreliableProbes(c.Transport) {
		return monitor.MinInterval
	}
	return max(monitor.MinInterval, 2*2*c.Jitter)
}

// monitorConfig measures a link at interval over a window that holds the
// whole run (up to 8192 probes), so that the loss estimate's sampling
// error, sqrt(p(1-p)/n), is as small as the run allows; no larger, since
// every Snapshot copies the whole window. The probe timeout sits well above
// the largest RTT (2*(Delay+Jitter)) so that no slow response counts as
// lost. Liveness is not under test, so the detector is the timeout kind:
// the phi detector, with its 1 ms deviation floor, calls a link probed
// every 10 ms suspect or down whenever the process stalls for a few ms,
// and the broker answers every such verdict by reviewing the cost of every
// link (see startAccuracyPair).
func monitorConfig(delay, interval, run time.Duration) *monitor.Config {
	m := monitor.DefaultLANConfig()
	m.Window = int(min(8192, max(256, 2*run/interval)))
	m.Interval = interval
	m.ProbeTimeout = max(4*delay+200*time.Millisecond, 500*time.Millisecond)
	m.Detector.Kind = monitor.DetectorTimeout
	return &m
}

// accuracyCases lists the cases of cfg with their truth filled in.
func accuracyCases(cfg AccuracyConfig) []AccuracyCase {
	var cases []AccuracyCase
	for _, tr := range cfg.Transports {
		losses := []float64{0}
		if unreliableProbes(tr) {
			losses = accuracyLosses
		}
		for _, d := range cfg.Delays {
			for _, j := range []time.Duration{0, d / 10} {
				for _, p := range losses {
					c := AccuracyCase{Transport: tr, Delay: d, Jitter: j, Loss: p}
					want := c.emulation().Expect()
					c.WantLatency = msOf(want.Delay)
					c.WantJitter = msOf(want.MeanDiff)
					c.WantLoss = want.Loss
					cases = append(cases, c)
				}
			}
		}
	}
	return cases
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Interval-halving links: udp, 20 ms ± 10%, probed at these two intervals.
const (
	halvingDelay = 20 * time.Millisecond
	halvingSlow  = 100 * time.Millisecond
	halvingFast  = 50 * time.Millisecond
)

// RunAccuracy measures every case of cfg, prints the table of truth
// against measured to w, the probe-traffic and interval-halving lines, and
// last the line accuracy_pass=<n>/<total>. It returns the cases, measured;
// an error means the run could not be made (brokers did not start, links
// did not come up, ctx ended), not that cases failed.
//
// Each transport is measured in its own phase, on a fresh pair of brokers,
// for cfg.Duration, so a default run takes about five times Duration. One
// phase with every link at once would be shorter, but on a two-core machine
// its 38 links at 100 probes a second each way raise the receive-side
// scheduling delay that no emulator header corrects (from about 0.04 to
// 0.15 ms) above the 0.1 ms jitter floor: the benchmark would measure its
// own load instead of the monitor.
func RunAccuracy(ctx context.Context, w io.Writer, cfg AccuracyConfig) ([]AccuracyCase, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	cases := accuracyCases(cfg)
	halving := transports.Emulation{Delay: halvingDelay, Jitter: halvingDelay / 10, JitterDist: transports.JitterUniform}
	slowID, fastID := accuracyID(len(cases)), accuracyID(len(cases)+1)
	// The halving links ride along with the udp phase, or with the first
	// phase when udp is not measured.
	halvingPhase := cfg.Transports[0]
	if slices.Contains(cfg.Transports, "udp") {
		halvingPhase = "udp"
	}
	fmt.Fprintf(w, "accuracy benchmark: %d cases on %s, delays %v, jitter 0 and 10%% of delay (uniform), loss %v on udp and quic; each transport measured for %v\n",
		len(cases), strings.Join(cfg.Transports, ","), cfg.Delays, accuracyLosses, cfg.Duration)
	infoA, infoB := map[string]netapi.LinkInfo{}, map[string]netapi.LinkInfo{}
	for _, tr := range cfg.Transports {
		var links []probeLink
		for i, c := range cases {
			if c.Transport == tr {
				links = append(links, c.probeLink(accuracyID(i)))
			}
		}
		if tr == halvingPhase {
			links = append(links,
				probeLink{id: slowID, trans: "udp", emu: halving, interval: halvingSlow},
				probeLink{id: fastID, trans: "udp", emu: halving, interval: halvingFast})
		}
		fmt.Fprintf(w, "measuring %s: %d links for %v\n", tr, len(links), cfg.Duration)
		a, b, err := measurePhase(ctx, cfg, links)
		if err != nil {
			return nil, fmt.Errorf("accuracy: %s: %w", tr, err)
		}
		maps.Copy(infoA, a)
		maps.Copy(infoB, b)
	}
	for i := range cases {
		judgeCase(&cases[i], infoA[accuracyID(i)].Metrics, infoB[accuracyID(i)].Metrics)
	}
	printAccuracy(w, cases)
	printProbeTraffic(w)
	slow, fast := infoA[slowID].Metrics.Latency.Mean, infoA[fastID].Metrics.Latency.Mean
	change := math.NaN()
	if slow > 0 {
		change = 100 * math.Abs(fast-slow) / slow
	}
	fmt.Fprintf(w, "interval_halving_mean_change=%.1f%% (udp %v ±10%%: mean %.3f ms at %v, %.3f ms at %v; target < 5%%)\n",
		change, halvingDelay, slow, halvingSlow, fast, halvingFast)
	pass := 0
	for _, c := range cases {
		if c.Pass {
			pass++
		}
	}
	fmt.Fprintf(w, "accuracy_pass=%d/%d\n", pass, len(cases))
	return cases, nil
}

// measurePhase runs links on a fresh pair of brokers for cfg.Duration once
// all are up, and returns what each end then reports, by link id. The
// brokers are closed before it returns.
func measurePhase(ctx context.Context, cfg AccuracyConfig, links []probeLink) (atA, atB map[string]netapi.LinkInfo, err error) {
	a, b, err := startAccuracyPair(ctx, cfg, links)
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	defer a.Close()
	ids := make([]string, len(links))
	for i, l := range links {
		ids[i] = l.id
	}
	if err := waitLinksUp(ctx, a, ids, 20*time.Second); err != nil {
		return nil, nil, err
	}
	cfg.Logger.Info("accuracy: links up; measuring", slog.Int("links", len(ids)), slog.Duration("for", cfg.Duration))
	timer := time.NewTimer(cfg.Duration)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-timer.C:
	}
	return linksByID(a), linksByID(b), nil
}

// accuracyID is the UUID-shaped id of the i-th link of the run.
func accuracyID(i int) string { return fmt.Sprintf("0000acc0-0000-4000-8000-%012d", i) }

// startAccuracyPair starts broker B, which listens on every transport,
// then broker A, which dials every link. B binds port 0 and A dials the
// URLs B reports, so no port can be taken between choosing and binding.
func startAccuracyPair(ctx context.Context, cfg AccuracyConfig, links []probeLink) (a, b *broker.Broker, err error) {
	const nameA, nameB = "bench.acc.a", "bench.acc.b"
	tlsCfg, err := throwawayTLS(nameA, nameB)
	if err != nil {
		return nil, nil, err
	}
	// Link costs are not used here, and a cost review computes the window
	// statistics of every link under the broker's lock: with 20 links of
	// 3000 samples that is 10-20 ms, four times a second by default, during
	// which frames wait. Reviews are put an hour apart.
	quiet := broker.Routing{Check: time.Hour, Refresh: time.Hour}
	cfgB := broker.Config{
		Address: nameB, Client: "127.0.0.1:0", Logger: cfg.Logger, Routing: quiet,
		Transport: transports.Config{TLS: tlsCfg},
		Listen:    []string{"tcp://127.0.0.1:0", "tls://127.0.0.1:0", "udp://127.0.0.1:0", "ws://127.0.0.1:0/overlay", "quic://127.0.0.1:0"},
	}
	cfgA := broker.Config{Address: nameA, Client: "127.0.0.1:0", Logger: cfg.Logger, Routing: quiet, Transport: transports.Config{TLS: tlsCfg}}
	for _, l := range links {
		lc := broker.LinkConfig{ID: l.id, Transport: l.trans, Monitor: monitorConfig(l.emu.Delay, l.interval, cfg.Duration)}
		la, lb := lc, lc
		ea, eb := l.emu, l.emu
		la.Peer, la.Emulation = nameB, &ea
		lb.Peer, lb.Emulation = nameA, &eb
		cfgA.Links = append(cfgA.Links, la)
		cfgB.Links = append(cfgB.Links, lb)
	}
	b, err = startBroker(ctx, cfgB)
	if err != nil {
		return nil, nil, err
	}
	urls := b.OverlayURLs()
	if len(urls) != len(accuracySchemes) {
		b.Close()
		return nil, nil, fmt.Errorf("broker B listens on %v, want one URL per %v", urls, accuracySchemes)
	}
	off := false
	for _, l := range links {
		if !l.quietPeer {
			continue
		}
		if err := b.SetMonitoring(l.id, broker.MonitoringChange{Enabled: &off}); err != nil {
			b.Close()
			return nil, nil, fmt.Errorf("link %s: quiet peer: %w", l.id, err)
		}
	}
	for i := range cfgA.Links {
		cfgA.Links[i].Dial = urls[slices.Index(accuracySchemes, cfgA.Links[i].Transport)]
	}
	a, err = startBroker(ctx, cfgA)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func startBroker(ctx context.Context, c broker.Config) (*broker.Broker, error) {
	b, err := broker.New(c)
	if err != nil {
		return nil, fmt.Errorf("broker %s: %w", c.Address, err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("broker %s: start: %w", c.Address, err)
	}
	return b, nil
}

// waitLinksUp waits until every link in ids is up at b and has answered a
// probe, so that the measured period starts with every link working.
func waitLinksUp(ctx context.Context, b *broker.Broker, ids []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info := linksByID(b)
		var down []string
		for _, id := range ids {
			if l, ok := info[id]; !ok || l.State != "up" || l.Metrics.Samples == 0 {
				down = append(down, fmt.Sprintf("%s (%s %s)", id, l.Transport, l.LastError))
			}
		}
		if len(down) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d links not up after %v: %s", len(down), timeout, strings.Join(down, "; "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for links: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func linksByID(b *broker.Broker) map[string]netapi.LinkInfo {
	out := map[string]netapi.LinkInfo{}
	for _, l := range b.Links() {
		out[l.ID] = l
	}
	return out
}

// verdict compares measured metrics with a case's truth and returns what
// is out of bounds; empty means pass.
func (c *AccuracyCase) verdict(lat, jit, loss float64, samples int) string {
	if samples == 0 {
		return "no samples"
	}
	var why []string
	if tol := max(latencyTolFrac*c.WantLatency, latencyTolAbs); math.Abs(lat-c.WantLatency) > tol {
		why = append(why, fmt.Sprintf("latency off by %+.3f ms (tolerance %.3f)", lat-c.WantLatency, tol))
	}
	if tol := max(jitterTolFrac*c.WantJitter, jitterTolAbs); math.Abs(jit-c.WantJitter) > tol {
		why = append(why, fmt.Sprintf("jitter off by %+.3f ms (tolerance %.3f)", jit-c.WantJitter, tol))
	}
	if math.Abs(loss-c.WantLoss) > lossTolAbs {
		why = append(why, fmt.Sprintf("loss off by %+.2f points (tolerance 1)", 100*(loss-c.WantLoss)))
	}
	return strings.Join(why, "; ")
}

// judgeCase fills in the figures A measured and the verdict on them.
// Unless it was kept quiet, B measured the same link with its own probes;
// where B's verdict differs, Why says so, to tell a harness or timing
// problem at one end from a monitor that is wrong at both.
func judgeCase(c *AccuracyCase, ma, mb netapi.LinkMetrics) {
	perDir := func(m netapi.LinkMetrics) float64 { return (m.LossForward + m.LossReverse) / 2 }
	c.GotLatency, c.GotJitter, c.GotLoss, c.Samples = ma.Latency.Mean, ma.Jitter, perDir(ma), ma.Samples
	c.Why = c.verdict(c.GotLatency, c.GotJitter, c.GotLoss, c.Samples)
	c.Pass = c.Why == ""
	if mb.State == monitor.StateDisabled.String() {
		return
	}
	whyB := c.verdict(mb.Latency.Mean, mb.Jitter, perDir(mb), mb.Samples)
	if (whyB == "") != c.Pass {
		note := "B's probes pass"
		if whyB != "" {
			note = "B's probes fail: " + whyB
		}
		c.Why = strings.TrimPrefix(c.Why+"; "+note, "; ")
	}
}

func printAccuracy(w io.Writer, cases []AccuracyCase) {
	fmt.Fprintln(w, "latency: mean one-way (RTT/2), pass within max(2%, 0.3 ms); jitter: mean |difference| of consecutive one-way delays,")
	fmt.Fprintln(w, "pass within max(20%, 0.1 ms) (the floor covers a true jitter of 0); loss: per direction, pass within 1 point;")
	fmt.Fprintln(w, "measured by A's probes; on reliable links with jitter B only answers, elsewhere B's probes cross-check A's")
	fmt.Fprintf(w, "%-5s %7s %7s %5s | %9s %9s | %8s %8s | %6s %6s | %7s | %s\n",
		"trans", "delay", "jitter", "loss", "lat.true", "lat.got", "jit.true", "jit.got", "loss.t", "loss.g", "samples", "result")
	for _, c := range cases {
		res := "PASS"
		if !c.Pass {
			res = "FAIL " + c.Why
		} else if c.Why != "" {
			res = "PASS (" + c.Why + ")"
		}
		fmt.Fprintf(w, "%-5s %7v %7v %4.0f%% | %9.3f %9.3f | %8.3f %8.3f | %5.2f%% %5.2f%% | %7d | %s\n",
			c.Transport, c.Delay, c.Jitter, 100*c.Loss, c.WantLatency, c.GotLatency, c.WantJitter, c.GotJitter,
			100*c.WantLoss, 100*c.GotLoss, c.Samples, res)
	}
}

// printProbeTraffic prints the probe traffic of one link direction at the
// default 1 s interval: each second a broker sends its own request and its
// response to the peer's, both monitor.PacketSize bytes plus framing.
func printProbeTraffic(w io.Writer) {
	plain := monitor.PacketSize + recordHeaderBytes + streamHeaderBytes + ipTCPHeaderBytes
	emulated := plain + transports.EmulationOverhead
	interval := monitor.DefaultLANConfig().Interval.Seconds()
	bps := func(size int) float64 { return 2 * float64(size) * 8 / interval }
	fmt.Fprintf(w, "probe_traffic_bps_at_1s=%.0f (%.2f%% of 1 Mbit/s; tcp over IPv4, 2 packets of %d bytes a second each way; %.0f bit/s, %.2f%%, when emulated; target < 1%%)\n",
		bps(plain), bps(plain)/1e4, plain, bps(emulated), bps(emulated)/1e4)
}
