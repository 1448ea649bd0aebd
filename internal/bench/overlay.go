package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// OverlayConfig sets up `wayline bench overlay`.
type OverlayConfig struct {
	// Duration of the throughput run of each system. Default 5 s.
	Duration time.Duration
	// Size of each message payload in bytes. Default 128.
	Size int
	// Window is how many messages the publisher lets be in flight (sent,
	// not yet received) before it waits: flow control, so that systems
	// are compared on delivered messages, not on messages lost. Default
	// 20,000.
	Window int
	// LatencyRate is the steady publishing rate of the latency run, in
	// messages per second. Default 10,000.
	LatencyRate int
	// LatencyDuration is the length of each latency run. Default 3 s.
	LatencyDuration time.Duration
	// Rounds is how many times each system is measured, the systems taking
	// turns; the median round is reported. Default 3.
	Rounds int
	// Slices, when above 0, measures the systems side by side instead of
	// in rounds: all of them run at once, and their latency runs take
	// turns in Slices slices of LatencyDuration each (see sideBySide).
	Slices int
	// Systems names the systems to measure, in order: "wayline" (the
	// chain over tcp), "wayline-secret" and "wayline-tls" (the chain with
	// its links authenticated by the network secret, or by certificates),
	// "wayline-quic" (the chain over quic), "nats-leaf", "nats-cluster".
	// Default wayline, nats-leaf, nats-cluster and wayline-quic. The NATS
	// ratio lines need wayline first and nats-leaf second; the quic line
	// needs wayline and wayline-quic; with wayline-secret the report adds
	// what authentication costs (see RunLinkSetup).
	Systems []string
	// Trace, when set, names an execution trace (runtime/trace) of each
	// system's latency run in the first round, written to Trace with the
	// system's name added ("out.trace" gives "out.trace.wayline"), with a
	// log event of category "late" for every message that took more than
	// LateAfter: what ran while a late message waited is the tail's cause.
	Trace     string
	LateAfter time.Duration
	Logger    *slog.Logger
}

func (c *OverlayConfig) defaults() {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Size < 8 {
		c.Size = 128
	}
	if c.Window <= 0 {
		c.Window = 20000
	}
	if c.LatencyRate <= 0 {
		c.LatencyRate = 10000
	}
	if c.LatencyDuration <= 0 {
		c.LatencyDuration = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.LateAfter <= 0 {
		c.LateAfter = 500 * time.Microsecond
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if len(c.Systems) == 0 {
		c.Systems = []string{"wayline", "nats-leaf", "nats-cluster", "wayline-quic"}
	}
}

// Result is one system's figures.
type Result struct {
	System   string
	MsgsPerS float64
	Sent     uint64
	Received uint64
	Dropped  uint64 // sent but never received, plus what the system counted
	P50, P99 time.Duration
	LatencyN int
	// CPUPerMsg is the process CPU time (user and system, every part of
	// the system and the benchmark's own clients) per delivered message
	// during the throughput run.
	CPUPerMsg time.Duration
	// What the Go runtime did during the latency run, in the whole
	// process (every part of the system and the benchmark's clients): GC
	// cycles, and the CPU time of the garbage collector and of the
	// scavenger, which gives freed memory back to the operating system.
	// Both take a processor from the messages for a millisecond or more
	// at a time: on a 2-core machine, one source of the latency tail.
	GCCycles    uint64
	GCCPU       time.Duration
	ScavengeCPU time.Duration
}

// runtimeCost reads the Go runtime's GC cycles and the CPU time of its
// garbage collector and scavenger so far.
func runtimeCost() (cycles uint64, gc, scavenge time.Duration) {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/scavenge/total:cpu-seconds"},
	}
	metrics.Read(s)
	seconds := func(v metrics.Value) time.Duration {
		if v.Kind() != metrics.KindFloat64 {
			return 0
		}
		return time.Duration(v.Float64() * float64(time.Second))
	}
	if s[0].Value.Kind() == metrics.KindUint64 {
		cycles = s[0].Value.Uint64()
	}
	return cycles, seconds(s[1].Value), seconds(s[2].Value)
}

// RunOverlay measures the Wayline A-B-C chain, a NATS leafnode chain, a
// NATS cluster and the Wayline chain over quic one after the other, prints
// a table to w, and ends with the ratio lines: against the leafnode chain,
// then quic against tcp.
func RunOverlay(ctx context.Context, w io.Writer, cfg OverlayConfig) ([]Result, error) {
	cfg.defaults()
	all := map[string]func() (*system, error){
		"wayline":        func() (*system, error) { return waylineChain(ctx, cfg.Logger, "") },
		"wayline-secret": func() (*system, error) { return waylineChainAuth(ctx, cfg.Logger, "", "secret") },
		"wayline-tls":    func() (*system, error) { return waylineChainAuth(ctx, cfg.Logger, "", "tls") },
		"wayline-quic":   func() (*system, error) { return waylineChainAuth(ctx, cfg.Logger, "", "quic") },
		"nats-leaf":      natsLeafChain,
		"nats-cluster":   natsCluster,
	}
	var starts []func() (*system, error)
	for _, name := range cfg.Systems {
		start, ok := all[name]
		if !ok {
			return nil, fmt.Errorf("unknown system %q (want wayline, wayline-secret, wayline-tls, wayline-quic, nats-leaf or nats-cluster)", name)
		}
		starts = append(starts, start)
	}
	if cfg.Slices > 0 && cfg.Trace != "" {
		return nil, fmt.Errorf("a trace is taken of the first round's latency runs: it needs rounds, not slices")
	}
	if cfg.Slices > 0 {
		fmt.Fprintf(w, "overlay benchmark: %d-byte messages, %v throughput runs (window %d), latency at %d msg/s in %d slices of %v per system, the systems running side by side and taking turns slice by slice, GOMAXPROCS=%d\n",
			cfg.Size, cfg.Duration, cfg.Window, cfg.LatencyRate, cfg.Slices, cfg.LatencyDuration, runtime.GOMAXPROCS(0))
	} else {
		fmt.Fprintf(w, "overlay benchmark: %d-byte messages, %v throughput runs (window %d), latency at %d msg/s for %v, %d rounds (median shown), GOMAXPROCS=%d\n",
			cfg.Size, cfg.Duration, cfg.Window, cfg.LatencyRate, cfg.LatencyDuration, cfg.Rounds, runtime.GOMAXPROCS(0))
	}
	var rounds [][]Result
	var err error
	if cfg.Slices > 0 {
		rounds, err = sideBySide(ctx, w, cfg, starts)
	} else {
		rounds, err = inTurn(ctx, w, cfg, starts)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%-30s %14s %18s %12s %10s %10s %10s %8s %9s\n", "system", "delivered/s", "rounds' range", "cpu/msg", "dropped", "p50", "p99", "gc cpu", "scav cpu")
	var results []Result
	for i, rs := range rounds {
		r := median(rs)
		// A ratio against nothing would print as +Inf or NaN.
		if r.MsgsPerS == 0 {
			return nil, fmt.Errorf("%s delivered nothing in its median throughput run: no figure to compare", cfg.Systems[i])
		}
		if r.P99 == 0 {
			return nil, fmt.Errorf("%s: no latency measured in its median round: no figure to compare", cfg.Systems[i])
		}
		lo, hi := spread(rs)
		results = append(results, r)
		fmt.Fprintf(w, "%-30s %14.0f %18s %12v %10d %10s %10s %8v %9v\n", r.System, r.MsgsPerS, fmt.Sprintf("%.0f-%.0f", lo, hi),
			r.CPUPerMsg.Round(10*time.Nanosecond), r.Dropped, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
			r.GCCPU.Round(time.Millisecond), r.ScavengeCPU.Round(time.Millisecond))
	}
	if i, j := slices.Index(cfg.Systems, "wayline"), slices.Index(cfg.Systems, "wayline-secret"); i >= 0 && j >= 0 {
		if err := authCost(ctx, w, cfg, rounds[i], rounds[j]); err != nil {
			return results, err
		}
	}
	if len(results) >= 2 && cfg.Systems[0] == "wayline" && cfg.Systems[1] == "nats-leaf" {
		wl, leaf := results[0], results[1]
		fmt.Fprintf(w, "ratio_vs_nats_leaf_p50=%.2f\n", float64(wl.P50)/float64(leaf.P50))
		fmt.Fprintf(w, "ratio_vs_nats_leaf_p99=%.2f\n", float64(wl.P99)/float64(leaf.P99))
		fmt.Fprintf(w, "ratio_vs_nats_leaf_throughput=%.2f\n", wl.MsgsPerS/leaf.MsgsPerS)
	}
	tcp, quic := slices.Index(cfg.Systems, "wayline"), slices.Index(cfg.Systems, "wayline-quic")
	if tcp >= 0 && quic >= 0 {
		fmt.Fprintf(w, "ratio_quic_vs_tcp_p99=%.2f\n", float64(results[quic].P99)/float64(results[tcp].P99))
		fmt.Fprintf(w, "ratio_quic_vs_tcp_throughput=%.2f\n", results[quic].MsgsPerS/results[tcp].MsgsPerS)
	}
	return results, nil
}

// inTurn measures each system cfg.Rounds times, the systems taking turns:
// each measurement starts the system, runs its throughput and latency
// runs, and stops it. It returns each system's rounds.
func inTurn(ctx context.Context, w io.Writer, cfg OverlayConfig, starts []func() (*system, error)) ([][]Result, error) {
	rounds := make([][]Result, len(starts))
	for round := 0; round < cfg.Rounds; round++ {
		for i, start := range starts {
			sys, err := start()
			if err != nil {
				return nil, err
			}
			mcfg := cfg
			if round > 0 || cfg.Trace == "" {
				mcfg.Trace = ""
			} else {
				mcfg.Trace = cfg.Trace + "." + cfg.Systems[i]
			}
			r, err := measure(ctx, sys, mcfg)
			sys.close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sys.name, err)
			}
			fmt.Fprintf(w, "  round %d: %-30s %10.0f msg/s  cpu %v/msg  dropped %d  p50 %v  p99 %v  (latency run: %d GCs, gc cpu %v, scavenger cpu %v)\n", round+1, r.System, r.MsgsPerS,
				r.CPUPerMsg.Round(time.Nanosecond*10), r.Dropped, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
				r.GCCycles, r.GCCPU.Round(time.Millisecond), r.ScavengeCPU.Round(time.Millisecond))
			rounds[i] = append(rounds[i], r)
		}
	}
	return rounds, nil
}

// sideBySide starts every system at once, runs each one's throughput run
// in turn, then cfg.Slices latency slices per system, the systems taking
// turns slice by slice, so that whatever the machine does over a few
// seconds falls on every system alike. Each slice's figures are printed;
// a system's latency figures are those of all its slices together, its
// runtime figures their sum. It returns one round per system.
func sideBySide(ctx context.Context, w io.Writer, cfg OverlayConfig, starts []func() (*system, error)) ([][]Result, error) {
	type running struct {
		sys      *system
		pub, sub *nats.Conn
		before   uint64
		r        Result
		lat      []time.Duration
	}
	var all []*running
	defer func() {
		for _, x := range all {
			x.pub.Close()
			x.sub.Close()
			x.sys.close()
		}
	}()
	for _, start := range starts {
		sys, err := start()
		if err != nil {
			return nil, err
		}
		pub, sub, err := connect(sys)
		if err != nil {
			sys.close()
			return nil, fmt.Errorf("%s: %w", sys.name, err)
		}
		all = append(all, &running{sys: sys, pub: pub, sub: sub, before: sys.dropped(), r: Result{System: sys.name}})
	}
	for _, x := range all {
		if err := throughput(ctx, x.pub, x.sub, cfg, &x.r); err != nil {
			return nil, fmt.Errorf("%s: %w", x.sys.name, err)
		}
	}
	for k := 0; k < cfg.Slices; k++ {
		line := fmt.Sprintf("  slice %d:", k+1)
		for _, x := range all {
			var r Result
			lat, err := latency(ctx, x.pub, x.sub, cfg, &r)
			if err != nil {
				return nil, fmt.Errorf("%s: slice %d: %w", x.sys.name, k+1, err)
			}
			x.lat = append(x.lat, lat...)
			x.r.Dropped += r.Dropped
			x.r.GCCycles += r.GCCycles
			x.r.GCCPU += r.GCCPU
			x.r.ScavengeCPU += r.ScavengeCPU
			line += fmt.Sprintf("  %s p50 %v p99 %v", x.sys.name, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
		}
		fmt.Fprintln(w, line)
	}
	rounds := make([][]Result, len(all))
	for i, x := range all {
		slices.Sort(x.lat)
		x.r.setLatencies(x.lat)
		x.r.Dropped += x.sys.dropped() - x.before
		rounds[i] = []Result{x.r}
	}
	return rounds, nil
}

// spread is the lowest and the highest throughput of a system's rounds.
func spread(rs []Result) (lo, hi float64) {
	lo, hi = rs[0].MsgsPerS, rs[0].MsgsPerS
	for _, r := range rs {
		lo, hi = min(lo, r.MsgsPerS), max(hi, r.MsgsPerS)
	}
	return lo, hi
}

// median combines rounds: the median of each figure, and every drop.
func median(rs []Result) Result {
	out := rs[0]
	pick := func(get func(Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out.MsgsPerS = pick(func(r Result) float64 { return r.MsgsPerS })
	out.P50 = time.Duration(pick(func(r Result) float64 { return float64(r.P50) }))
	out.P99 = time.Duration(pick(func(r Result) float64 { return float64(r.P99) }))
	out.CPUPerMsg = time.Duration(pick(func(r Result) float64 { return float64(r.CPUPerMsg) }))
	out.GCCycles = uint64(pick(func(r Result) float64 { return float64(r.GCCycles) }))
	out.GCCPU = time.Duration(pick(func(r Result) float64 { return float64(r.GCCPU) }))
	out.ScavengeCPU = time.Duration(pick(func(r Result) float64 { return float64(r.ScavengeCPU) }))
	out.Dropped = 0
	for _, r := range rs {
		out.Dropped += r.Dropped
	}
	return out
}

// startTrace starts an execution trace into the file path names, and
// returns what stops it and closes the file.
func startTrace(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if err := trace.Start(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	return func() {
		trace.Stop()
		_ = f.Close()
	}, nil
}

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(ctx context.Context, sys *system, cfg OverlayConfig) (Result, error) {
	r := Result{System: sys.name}
	pub, sub, err := connect(sys)
	if err != nil {
		return r, err
	}
	defer pub.Close()
	defer sub.Close()
	droppedBefore := sys.dropped()

	if err := throughput(ctx, pub, sub, cfg, &r); err != nil {
		return r, err
	}
	if _, err := latency(ctx, pub, sub, cfg, &r); err != nil {
		return r, err
	}
	r.Dropped += sys.dropped() - droppedBefore
	return r, nil
}

// connect opens the publisher's and the subscriber's connections to sys.
func connect(sys *system) (pub, sub *nats.Conn, err error) {
	pub, err = nats.Connect(sys.pubURL)
	if err != nil {
		return nil, nil, fmt.Errorf("publisher: %w", err)
	}
	sub, err = nats.Connect(sys.subURL)
	if err != nil {
		pub.Close()
		return nil, nil, fmt.Errorf("subscriber: %w", err)
	}
	return pub, sub, nil
}

// subscribeReady subscribes cb to subject, waits until messages published
// at pub reach it (got counts them), and lets the probes drain.
func subscribeReady(pub, sub *nats.Conn, subject string, got *atomic.Uint64, cb nats.MsgHandler) (*nats.Subscription, error) {
	s, err := sub.Subscribe(subject, cb)
	if err != nil {
		return nil, err
	}
	_ = s.SetPendingLimits(-1, -1)
	err = sub.Flush()
	if err == nil {
		err = waitForPath(pub, subject, got)
	}
	if err != nil {
		_ = s.Unsubscribe()
		return nil, err
	}
	time.Sleep(100 * time.Millisecond)
	return s, nil
}

// waitForPath publishes probes until the subscriber sees one: interest has
// propagated end to end.
func waitForPath(pub *nats.Conn, subject string, got *atomic.Uint64) error {
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no message reached the subscriber on %s", subject)
		}
		if err := pub.Publish(subject, make([]byte, 8)); err != nil {
			return err
		}
		_ = pub.Flush()
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func throughput(ctx context.Context, pub, sub *nats.Conn, cfg OverlayConfig, r *Result) error {
	const subject = "bench.throughput"
	var received atomic.Uint64
	// The subscriber wakes a waiting publisher every so often, so that
	// neither side burns CPU the systems under test need.
	wake := make(chan struct{}, 1)
	s, err := subscribeReady(pub, sub, subject, &received, func(*nats.Msg) {
		if received.Add(1)%512 == 0 {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return err
	}
	defer s.Unsubscribe()
	base := received.Load()
	payload := make([]byte, cfg.Size)
	var sent uint64
	window := uint64(cfg.Window)
	warmup := 500 * time.Millisecond
	start := time.Now()
	var measuredFrom uint64
	var t0 time.Time
	var cpu0 time.Duration
	deadline := start.Add(warmup + cfg.Duration)
	for {
		now := time.Now()
		if t0.IsZero() && now.Sub(start) >= warmup {
			t0, measuredFrom, cpu0 = now, received.Load(), cpuTime()
		}
		if now.After(deadline) || ctx.Err() != nil {
			break
		}
		// A system that lost messages would hold the window shut for
		// good: the deadline ends the wait too.
		for sent-(received.Load()-base) >= window && time.Now().Before(deadline) && ctx.Err() == nil {
			select {
			case <-wake:
			case <-time.After(10 * time.Millisecond):
			}
		}
		for i := 0; i < 256; i++ {
			if err := pub.Publish(subject, payload); err != nil {
				return err
			}
			sent++
		}
	}
	elapsed := time.Since(t0)
	got := received.Load() - measuredFrom
	r.MsgsPerS = float64(got) / elapsed.Seconds()
	if got > 0 {
		r.CPUPerMsg = (cpuTime() - cpu0) / time.Duration(got)
	}
	_ = pub.Flush()
	// Whatever has not arrived after a grace period was lost.
	settle := time.Now().Add(3 * time.Second)
	for received.Load()-base < sent && time.Now().Before(settle) {
		time.Sleep(10 * time.Millisecond)
	}
	r.Sent, r.Received = sent, received.Load()-base
	if r.Received < sent {
		r.Dropped += sent - r.Received
	}
	return nil
}

// latency publishes at cfg.LatencyRate for cfg.LatencyDuration, fills r's
// latency, drop and runtime figures, and returns the latencies, sorted.
func latency(ctx context.Context, pub, sub *nats.Conn, cfg OverlayConfig, r *Result) ([]time.Duration, error) {
	const subject = "bench.latency"
	var (
		mu        sync.Mutex
		latencies []time.Duration
		got       atomic.Uint64
	)
	epoch := time.Now()
	var tracing atomic.Bool
	s, err := subscribeReady(pub, sub, subject, &got, func(m *nats.Msg) {
		now := time.Since(epoch)
		if len(m.Data) >= 8 {
			if sentAt := int64(binary.BigEndian.Uint64(m.Data)); sentAt > 0 {
				d := now - time.Duration(sentAt)
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
				if d > cfg.LateAfter && tracing.Load() {
					trace.Log(context.Background(), "late", fmt.Sprintf("%dus", d.Microseconds()))
				}
			}
		}
		got.Add(1)
	})
	if err != nil {
		return nil, err
	}
	defer s.Unsubscribe()
	mu.Lock()
	latencies = latencies[:0]
	mu.Unlock()
	if cfg.Trace != "" {
		stop, err := startTrace(cfg.Trace)
		if err != nil {
			return nil, err
		}
		tracing.Store(true)
		defer func() {
			tracing.Store(false)
			stop()
		}()
	}
	cycles0, gc0, scav0 := runtimeCost()
	payload := make([]byte, cfg.Size)
	interval := time.Second / time.Duration(cfg.LatencyRate)
	start := time.Now()
	n := int(cfg.LatencyDuration / interval)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		binary.BigEndian.PutUint64(payload, uint64(time.Since(epoch)))
		if err := pub.Publish(subject, payload); err != nil {
			return nil, err
		}
	}
	_ = pub.Flush()
	defer func() {
		cycles, gc, scav := runtimeCost()
		r.GCCycles, r.GCCPU, r.ScavengeCPU = cycles-cycles0, gc-gc0, scav-scav0
	}()
	// Wait while messages still come (a system may be draining what the
	// throughput run left), up to 3 s after the last one.
	last, lastK := time.Now(), -1
	for time.Since(last) < 3*time.Second && ctx.Err() == nil {
		mu.Lock()
		k := len(latencies)
		mu.Unlock()
		if k >= n {
			break
		}
		if k != lastK {
			last, lastK = time.Now(), k
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(latencies) == 0 {
		dropped, _ := s.Dropped()
		return nil, fmt.Errorf("latency run: none of %d messages received (publisher %s, subscriber %s, %d dropped by the subscriber's client)",
			n, pub.Status(), sub.Status(), dropped)
	}
	if len(latencies) < n {
		r.Dropped += uint64(n - len(latencies))
	}
	slices.Sort(latencies)
	r.setLatencies(latencies)
	return latencies, nil
}

// setLatencies sets r's latency figures from sorted, not empty.
func (r *Result) setLatencies(sorted []time.Duration) {
	r.LatencyN = len(sorted)
	r.P50 = sorted[len(sorted)/2]
	r.P99 = sorted[len(sorted)*99/100]
}
