package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

// ContractsConfig sets up the delay contract benchmark.
type ContractsConfig struct {
	// Hops are the path lengths measured; Dists the jitter distributions
	// (uniform, normal, pareto).
	Hops  []int
	Dists []string
	// Every hop of a path has the same emulated conditions: Delay, Jitter
	// drawn from the distribution, and Loss (a fraction), on Transport.
	Delay, Jitter time.Duration
	Loss          float64
	Transport     string
	// Messages are timed after Warm of the same traffic, one every Gap:
	// the links' monitors measure them under the load they carry.
	Messages  int
	Gap, Warm time.Duration
	// Bed runs the test bed of two paths as well; ModelOnly runs only
	// the composition against the emulation's model.
	Bed, ModelOnly bool
	// Window is how many probes a link's measured distribution holds (the
	// monitor's DistWindow), in the model comparison and on the brokers;
	// Seeds how many times each model case is drawn.
	Window, Seeds int
	// Probe is the brokers' probe interval (50 ms when zero).
	Probe  time.Duration
	Logger *slog.Logger
}

func (c *ContractsConfig) defaults() {
	if len(c.Hops) == 0 {
		c.Hops = []int{2, 3, 4}
	}
	if len(c.Dists) == 0 {
		c.Dists = []string{transports.JitterUniform, transports.JitterNormal, transports.JitterPareto}
	}
	if c.Delay == 0 {
		c.Delay = 10 * time.Millisecond
	}
	if c.Jitter == 0 {
		c.Jitter = 3 * time.Millisecond
	}
	if c.Transport == "" {
		c.Transport = "tcp"
	}
	if c.Messages == 0 {
		c.Messages = 300
	}
	if c.Gap == 0 {
		c.Gap = 40 * time.Millisecond
	}
	if c.Warm == 0 {
		c.Warm = 13 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Window == 0 {
		c.Window = monitor.DefaultWANConfig().DistWindow
	}
	if c.Seeds == 0 {
		c.Seeds = 5
	}
	if c.Probe == 0 {
		c.Probe = 50 * time.Millisecond
	}
}

// ContractCase is one path's prediction against its messages.
type ContractCase struct {
	Hops int
	Dist string
	// KS is the Kolmogorov-Smirnov distance between the predicted
	// distribution and the delivered messages' one-way delays.
	KS float64
	// Predicted and measured percentiles (ms) and loss (fraction).
	PredP50, P50, PredP99, P99 float64
	PredLoss, Loss             float64
	Sent, Delivered            int
	// The measurement's own spread: the p99 of the first and of the
	// second half of the delivered messages, and the Kolmogorov-Smirnov
	// distance between the halves. A prediction cannot be judged finer
	// than the messages agree with themselves.
	P99Halves [2]float64
	KSHalves  float64
}

// P99Error is the predicted p99's error, as a fraction of the measured.
func (c ContractCase) P99Error() float64 { return (c.PredP99 - c.P99) / c.P99 }

// contractSubject is what the benchmark's contract covers.
const contractSubject = "dq.>"

// RunContracts measures how well composed distributions predict what
// messages meet: for each path length and jitter distribution, a chain of
// brokers with every hop emulated alike, a contract on the chain's
// subject, and messages timed end to end against the distribution the
// first broker predicts for its path. With Bed it also runs the test bed
// (see RunContractBed).
func RunContracts(ctx context.Context, w io.Writer, cfg ContractsConfig) ([]ContractCase, error) {
	cfg.defaults()
	RunComposition(w, cfg)
	RunChainModel(w, cfg)
	if cfg.ModelOnly {
		return nil, nil
	}
	fmt.Fprintf(w, "delay contracts: every hop %v + %v jitter, %.1f%% loss, over %s, probed every %v, %d probes held; %d messages one every %v after %v of the same, prediction taken at the end\n",
		cfg.Delay, cfg.Jitter, 100*cfg.Loss, cfg.Transport, cfg.Probe, cfg.Window, cfg.Messages, cfg.Gap, cfg.Warm)
	fmt.Fprintf(w, "%-5s %-8s %6s %17s %17s %15s %9s   %s\n", "hops", "jitter", "KS", "p50 pred/meas", "p99 pred/meas", "loss pred/meas", "p99 err", "halves: KS, p99s")
	var out []ContractCase
	for _, d := range cfg.Dists {
		for _, h := range cfg.Hops {
			c, err := contractCase(ctx, cfg, h, d)
			if err != nil {
				return out, fmt.Errorf("%d hops, %s: %w", h, d, err)
			}
			out = append(out, c)
			fmt.Fprintf(w, "%-5d %-8s %6.3f %8.2f/%-8.2f %8.2f/%-8.2f %5.2f%%/%5.2f%%    %+8.1f%%   %.3f, %.2f/%.2f\n",
				h, d, c.KS, c.PredP50, c.P50, c.PredP99, c.P99, 100*c.PredLoss, 100*c.Loss, 100*c.P99Error(), c.KSHalves, c.P99Halves[0], c.P99Halves[1])
		}
	}
	worstKS, worstP99 := 0.0, 0.0
	for _, c := range out {
		worstKS, worstP99 = max(worstKS, c.KS), max(worstP99, math.Abs(c.P99Error()))
	}
	fmt.Fprintf(w, "contracts_worst_ks=%.3f contracts_worst_p99_error_pct=%.1f\n", worstKS, 100*worstP99)
	if cfg.Bed {
		if _, err := RunContractBed(ctx, w, cfg); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ModelCase is the composition of one path's hops against the
// emulation's own distribution of that path, over several draws.
type ModelCase struct {
	Hops           int
	Dist           string
	KS, P99Err     []float64 // per draw; P99Err a fraction of the true p99
	PredLoss, Loss float64   // of the last draw
}

// modelDraws is how many paths are drawn for the truth of a model case.
const modelDraws = 200000

// RunComposition compares, for each path length and jitter distribution,
// the composition routes make with the distribution of the emulated path
// itself: each hop's distribution is built from Window frames drawn from
// its emulation (what a link's monitor holds), compacted as cost updates
// send it, and the hops composed as routes compose them; the truth is
// 200,000 paths drawn hop by hop. It reports the KS distance and the
// predicted p99's error (of what arrives) per draw: median and range.
func RunComposition(w io.Writer, cfg ContractsConfig) []ModelCase {
	cfg.defaults()
	em := transports.Emulation{Delay: cfg.Delay, Jitter: cfg.Jitter, Loss: cfg.Loss}
	fmt.Fprintf(w, "composition against the emulation's model: every hop %v + %v jitter, %.1f%% loss; each hop measured from %d frames; %d draws, median [range]\n",
		cfg.Delay, cfg.Jitter, 100*cfg.Loss, cfg.Window, cfg.Seeds)
	fmt.Fprintf(w, "%-5s %-8s %-22s %-26s %s\n", "hops", "jitter", "KS", "p99 error", "loss pred/true")
	var out []ModelCase
	for _, d := range cfg.Dists {
		em.JitterDist = d
		for _, hops := range cfg.Hops {
			mc := ModelCase{Hops: hops, Dist: d}
			for seed := range cfg.Seeds {
				r := rand.New(rand.NewPCG(uint64(seed+1), uint64(hops*7+len(d))))
				links := make([]router.Histogram, hops)
				for i := range links {
					var delays []float64
					lost := 0
					for range cfg.Window {
						dl, l := em.Draw(r)
						if l {
							lost++
							continue
						}
						delays = append(delays, float64(dl)/1e6)
					}
					links[i] = router.HistogramOf(delays, float64(lost))
				}
				pred := router.ComposePath(links...)
				var truth []float64
				for range modelDraws {
					sum, lost := time.Duration(0), false
					for range hops {
						dl, l := em.Draw(r)
						sum, lost = sum+dl, lost || l
					}
					if !lost {
						truth = append(truth, float64(sum)/1e6)
					}
				}
				slices.Sort(truth)
				predLoss := pred.Missing / pred.Total()
				p99 := quantileOf(truth, 0.99)
				mc.KS = append(mc.KS, router.KSDistance(pred, truth))
				mc.P99Err = append(mc.P99Err, (pred.Quantile(0.99*(1-predLoss))-p99)/p99)
				mc.PredLoss, mc.Loss = predLoss, 1-float64(len(truth))/modelDraws
			}
			out = append(out, mc)
			fmt.Fprintf(w, "%-5d %-8s %-22s %-26s %.2f%%/%.2f%%\n", hops, d, spreadOf(mc.KS, 1, "%.3f"), spreadOf(mc.P99Err, 100, "%+.1f%%"), 100*mc.PredLoss, 100*mc.Loss)
		}
	}
	var ks, p99 []float64
	for _, mc := range out {
		ks = append(ks, slices.Max(mc.KS))
		for _, e := range mc.P99Err {
			p99 = append(p99, math.Abs(e))
		}
	}
	fmt.Fprintf(w, "composition_worst_ks=%.3f composition_worst_p99_error_pct=%.1f\n", slices.Max(ks), 100*slices.Max(p99))
	return out
}

// ChainCase is one path of the in-order chain model, over several draws:
// how far from the messages' end-to-end delays lands the composition of
// the hops' probe delays, and that of the messages' own delays on each
// hop. P99 errors are fractions of the messages' p99.
type ChainCase struct {
	Hops                 int
	Dist                 string
	ProbeKS, ProbeP99Err []float64
	HopsKS, HopsP99Err   []float64
	// The medians (ms) predicted from the probes and from the hops'
	// messages, and the messages' own, per draw.
	ProbeP50, HopsP50, P50 []float64
	Messages, ProbesAHop   int
}

// chainMessages is how many messages a draw of the chain model sends.
const chainMessages = 50000

// RunChainModel compares predictions with messages as the delivered runs
// do, in a model without brokers: a chain of hops each of which is the
// emulation's reliable link (transports.ReliableModel: frames in order, a
// lost frame one RTO late and the frames behind it held), messages every
// Gap from end to end, and on every hop probes every Probe each way (its
// own request and the answer to the peer's, at random phases, each gap
// drawn as a link's monitor draws it: monitor.GapScale). Each hop's
// probe delays, all of them, are composed as routes compose links, and so
// are each hop's message delays; both against the messages' end-to-end
// delays. The first is the best a prediction from probes on a timer can
// do with an unbounded memory; the second is what composing hops as
// independent misses even with the messages' own delays: on an in-order
// link a message's wait depends on the frames just before it, and those
// depend on the hops before.
func RunChainModel(w io.Writer, cfg ContractsConfig) []ChainCase {
	cfg.defaults()
	em := transports.Emulation{Delay: cfg.Delay, Jitter: cfg.Jitter, Loss: cfg.Loss}
	fmt.Fprintf(w, "in-order chain model: every hop %v + %v jitter, %.1f%% loss, in order as a reliable link; %d messages every %v end to end, probes about every %v each way on each hop; %d draws, median [range]\n",
		cfg.Delay, cfg.Jitter, 100*cfg.Loss, chainMessages, cfg.Gap, cfg.Probe, cfg.Seeds)
	fmt.Fprintf(w, "%-5s %-8s %-22s %-26s %-22s %-26s %s\n", "hops", "jitter", "KS, probes", "p99 error, probes", "KS, hops' messages", "p99 error, hops' messages", "p50 probes/hops'/messages (ms, median draw)")
	var out []ChainCase
	for _, d := range cfg.Dists {
		em.JitterDist = d
		for _, hops := range cfg.Hops {
			cc := ChainCase{Hops: hops, Dist: d, Messages: chainMessages}
			for seed := range cfg.Seeds {
				r := rand.New(rand.NewPCG(uint64(seed+1), uint64(hops*7+len(d)+1000)))
				probes, own, truth := chainDraw(em, r, hops, cfg.Gap, cfg.Probe)
				cc.ProbesAHop = len(probes[0])
				p99 := quantileOf(truth, 0.99)
				cc.P50 = append(cc.P50, quantileOf(truth, 0.5))
				for _, hs := range []struct {
					delays       [][]float64
					ks, err, p50 *[]float64
				}{{probes, &cc.ProbeKS, &cc.ProbeP99Err, &cc.ProbeP50}, {own, &cc.HopsKS, &cc.HopsP99Err, &cc.HopsP50}} {
					links := make([]router.Histogram, hops)
					for i, ds := range hs.delays {
						links[i] = router.HistogramOf(ds, 0)
					}
					pred := router.ComposePath(links...)
					*hs.ks = append(*hs.ks, router.KSDistance(pred, truth))
					*hs.err = append(*hs.err, (pred.Quantile(0.99)-p99)/p99)
					*hs.p50 = append(*hs.p50, pred.Quantile(0.5))
				}
			}
			out = append(out, cc)
			fmt.Fprintf(w, "%-5d %-8s %-22s %-26s %-22s %-26s %.2f/%.2f/%.2f\n", hops, d, spreadOf(cc.ProbeKS, 1, "%.3f"), spreadOf(cc.ProbeP99Err, 100, "%+.1f%%"),
				spreadOf(cc.HopsKS, 1, "%.3f"), spreadOf(cc.HopsP99Err, 100, "%+.1f%%"), medianOf(cc.ProbeP50), medianOf(cc.HopsP50), medianOf(cc.P50))
		}
	}
	var probeKS, hopsKS []float64
	for _, cc := range out {
		probeKS, hopsKS = append(probeKS, slices.Max(cc.ProbeKS)), append(hopsKS, slices.Max(cc.HopsKS))
	}
	fmt.Fprintf(w, "chain_worst_ks_probes=%.3f chain_worst_ks_hops_messages=%.3f\n", slices.Max(probeKS), slices.Max(hopsKS))
	return out
}

// chainDraw sends chainMessages messages, one every gap, along hops
// in-order links of emulation em, each hop carrying probes every probe
// each way besides. It returns each hop's probe delays and message delays
// and the messages' end-to-end delays (sorted), in milliseconds.
func chainDraw(em transports.Emulation, r *rand.Rand, hops int, gap, probe time.Duration) (probes, own [][]float64, truth []float64) {
	type frame struct {
		t   time.Time
		msg int // the message's index; -1 the hop's probe, -2 the answer to the peer's
	}
	epoch := time.Unix(0, 0)
	sent, at := make([]time.Time, chainMessages), make([]time.Time, chainMessages)
	for i := range sent {
		sent[i] = epoch.Add(time.Duration(i) * gap)
	}
	copy(at, sent)
	end := sent[len(sent)-1]
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for range hops {
		frames := make([]frame, 0, chainMessages+2*int(end.Sub(epoch)/probe)+2)
		for i, t := range at {
			frames = append(frames, frame{t, i})
		}
		for _, kind := range []int{-1, -2} {
			for t := epoch.Add(time.Duration(r.Int64N(int64(probe)))); !t.After(end); t = t.Add(time.Duration(float64(probe) * monitor.GapScale(r))) {
				frames = append(frames, frame{t, kind})
			}
		}
		slices.SortStableFunc(frames, func(a, b frame) int { return a.t.Compare(b.t) })
		link := em.Reliable(r)
		var pd, md []float64
		for _, f := range frames {
			due := link.Send(f.t)
			switch {
			case f.msg >= 0:
				md, at[f.msg] = append(md, ms(due.Sub(f.t))), due
			case f.msg == -1:
				pd = append(pd, ms(due.Sub(f.t)))
			}
		}
		probes, own = append(probes, pd), append(own, md)
	}
	truth = make([]float64, len(at))
	for i := range at {
		truth[i] = ms(at[i].Sub(sent[i]))
	}
	slices.Sort(truth)
	return probes, own, truth
}

// spreadOf formats xs (scaled) as "median [min, max]".
func spreadOf(xs []float64, scale float64, f string) string {
	s := slices.Clone(xs)
	slices.Sort(s)
	v := func(x float64) string { return fmt.Sprintf(f, scale*x) }
	return v(s[len(s)/2]) + " [" + v(s[0]) + ", " + v(s[len(s)-1]) + "]"
}

// benchBrokers are configs of brokers named names, probing their links
// every cfg.Probe with the wide-area settings (a tail of delays is not a
// failure) and holding cfg.Window probes of each link's delays, with the
// contract c on contractSubject.
func benchBrokers(cfg ContractsConfig, names []string, c router.Contract) []broker.Config {
	cfgs := make([]broker.Config, len(names))
	mon := monitor.DefaultWANConfig()
	mon.Interval, mon.AdaptiveMin, mon.DistWindow = cfg.Probe, cfg.Probe, cfg.Window
	for i, n := range names {
		cfgs[i] = broker.Config{Address: n, Client: "127.0.0.1:0", Logger: cfg.Logger, Monitor: mon}
		cfgs[i].Routing.Contracts = []broker.SubjectContract{{Subject: contractSubject, Contract: c}}
	}
	return cfgs
}

func contractCase(ctx context.Context, cfg ContractsConfig, hops int, dist string) (ContractCase, error) {
	names := make([]string, hops+1)
	for i := range names {
		names[i] = fmt.Sprintf("dq.c1.b%d", i)
	}
	anything := router.Contract{Within: []router.Bound{{P: 0.5, Ms: 1e6}}, MaxLoss: 1}
	cfgs := benchBrokers(cfg, names, anything)
	em := &transports.Emulation{Delay: cfg.Delay, Jitter: cfg.Jitter, JitterDist: dist, Loss: cfg.Loss}
	if err := linkChain(cfgs, "0000d0d0", func(int) (string, *transports.Emulation) { return cfg.Transport, em }); err != nil {
		return ContractCase{}, err
	}
	bs, err := startAll(ctx, cfgs)
	if err != nil {
		return ContractCase{}, err
	}
	defer closeBrokers(bs)
	src, dst := bs[0], bs[len(bs)-1]
	pub, arrs, done, err := contractEnds(ctx, src, dst, "dq.x")
	if err != nil {
		return ContractCase{}, err
	}
	defer done()
	arr := arrs[0]
	if err := publishTimed(ctx, pub, "dq.x", int(cfg.Warm/cfg.Gap), cfg.Gap); err != nil {
		return ContractCase{}, err
	}
	time.Sleep(2 * time.Second) // the warm-up's stragglers
	arr.reset()
	if err := publishTimed(ctx, pub, "dq.x", cfg.Messages, cfg.Gap); err != nil {
		return ContractCase{}, err
	}
	r, ok := src.ContractRoute(contractSubject, dst.Address())
	time.Sleep(2 * time.Second)
	inOrder := arr.inOrder()
	if !ok || len(inOrder) < 2 {
		return ContractCase{}, fmt.Errorf("%d of %d messages arrived; contract route found: %v", len(inOrder), cfg.Messages, ok)
	}
	delays := slices.Clone(inOrder)
	slices.Sort(delays)
	first, second := inOrder[:len(inOrder)/2], inOrder[len(inOrder)/2:] // inOrder is a copy
	slices.Sort(first)
	slices.Sort(second)
	return ContractCase{Hops: hops, Dist: dist, KS: router.KSDistance(r.Delay, delays),
		P99Halves: [2]float64{quantileOf(first, 0.99), quantileOf(second, 0.99)}, KSHalves: samplesKS(first, second),
		PredP50: r.Delay.Quantile(0.5), P50: quantileOf(delays, 0.5),
		// What arrives is compared with what is predicted to arrive.
		PredP99: r.Delay.Quantile(0.99 * (1 - r.Prediction.Loss)), P99: quantileOf(delays, 0.99),
		PredLoss: r.Prediction.Loss, Loss: 1 - float64(len(delays))/float64(cfg.Messages),
		Sent: cfg.Messages, Delivered: len(delays)}, nil
}

// ContractBed is the test bed's result: what the contract's messages and
// default messages met.
type ContractBed struct {
	ContractPath, DefaultPath []string
	Status                    string
	// Contract and default traffic: delivered, p99 (ms), and the share
	// within the contract's delay.
	ContractP99, DefaultP99       float64
	ContractWithin, DefaultWithin float64
	Sent, ContractGot, DefaultGot int
}

// RunContractBed runs the test bed: from bed.c1.a to bed.c1.d one path has
// the lower mean delay but a heavy tail (5 ms, then 5 ms plus Pareto
// jitter of 8 ms mean), the other is steady (18 ms a hop). The contract
// asks 99% within 50 ms. Contract traffic and default traffic are sent
// side by side and timed.
func RunContractBed(ctx context.Context, w io.Writer, cfg ContractsConfig) (ContractBed, error) {
	cfg.defaults()
	const limit = 50.0
	contract := router.Contract{Within: []router.Bound{{P: 0.99, Ms: limit}}, MaxLoss: 1}
	names := []string{"bed.c1.a", "bed.c1.b", "bed.c1.c", "bed.c1.d"}
	cfgs := benchBrokers(cfg, names, contract)
	link := func(i, j int, n int, em *transports.Emulation) error {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		u := "tcp://" + addr
		id := fmt.Sprintf("0000bed0-0000-4000-8000-%012d", n)
		cfgs[j].Listen = append(cfgs[j].Listen, u)
		cfgs[i].Links = append(cfgs[i].Links, broker.LinkConfig{ID: id, Peer: names[j], Transport: "tcp", Dial: u, Emulation: em})
		cfgs[j].Links = append(cfgs[j].Links, broker.LinkConfig{ID: id, Peer: names[i], Transport: "tcp", Emulation: em})
		return nil
	}
	heavy := &transports.Emulation{Delay: 5 * time.Millisecond, Jitter: 8 * time.Millisecond, JitterDist: transports.JitterPareto}
	for n, l := range []struct {
		i, j int
		em   *transports.Emulation
	}{{0, 1, heavy}, {1, 3, &transports.Emulation{Delay: 5 * time.Millisecond}},
		{0, 2, &transports.Emulation{Delay: 18 * time.Millisecond}}, {2, 3, &transports.Emulation{Delay: 18 * time.Millisecond}}} {
		if err := link(l.i, l.j, n+1, l.em); err != nil {
			return ContractBed{}, err
		}
	}
	bs, err := startAll(ctx, cfgs)
	if err != nil {
		return ContractBed{}, err
	}
	defer closeBrokers(bs)
	src, dst := bs[0], bs[3]
	pub, arrs, done, err := contractEnds(ctx, src, dst, "dq.x", "plain.x")
	if err != nil {
		return ContractBed{}, err
	}
	defer done()
	onContract, onDefault := arrs[0], arrs[1]
	time.Sleep(cfg.Warm) // the monitors' windows fill
	n := cfg.Messages
	errc := make(chan error, 1)
	go func() { errc <- publishTimed(ctx, pub, "plain.x", n, cfg.Gap) }()
	if err := publishTimed(ctx, pub, "dq.x", n, cfg.Gap); err != nil {
		return ContractBed{}, err
	}
	if err := <-errc; err != nil {
		return ContractBed{}, err
	}
	time.Sleep(2 * time.Second)
	bed := ContractBed{Sent: n}
	if r, ok := src.ContractRoute(contractSubject, dst.Address()); ok {
		bed.Status = r.Prediction.Status
		for _, a := range r.Path {
			bed.ContractPath = append(bed.ContractPath, string(a))
		}
	}
	for _, r := range src.Routes() {
		if r.Profile == router.DefaultProfileName && r.Destination == dst.Address() {
			bed.DefaultPath = r.Path
		}
	}
	c, d := onContract.sorted(), onDefault.sorted()
	bed.ContractGot, bed.DefaultGot = len(c), len(d)
	if len(c) == 0 || len(d) == 0 {
		return bed, fmt.Errorf("contract messages %d, default %d of %d arrived", len(c), len(d), n)
	}
	within := func(xs []float64) float64 {
		k, _ := slices.BinarySearch(xs, limit)
		return float64(k) / float64(n)
	}
	bed.ContractP99, bed.DefaultP99 = quantileOf(c, 0.99), quantileOf(d, 0.99)
	bed.ContractWithin, bed.DefaultWithin = within(c), within(d)
	fmt.Fprintf(w, "test bed: contract 99%% within %.0f ms; %d messages of each, one every %v\n", limit, n, cfg.Gap)
	fmt.Fprintf(w, "  contract traffic: path %v (predicted %s), delivered %d, p99 %.1f ms, within %.0f ms %.2f%%\n",
		bed.ContractPath, bed.Status, bed.ContractGot, bed.ContractP99, limit, 100*bed.ContractWithin)
	fmt.Fprintf(w, "  default traffic:  path %v, delivered %d, p99 %.1f ms, within %.0f ms %.2f%%\n",
		bed.DefaultPath, bed.DefaultGot, bed.DefaultP99, limit, 100*bed.DefaultWithin)
	fmt.Fprintf(w, "contracts_bed_contract_within_pct=%.2f contracts_bed_default_within_pct=%.2f\n", 100*bed.ContractWithin, 100*bed.DefaultWithin)
	return bed, nil
}

// contractEnds connects a subscriber at dst that times the messages of
// each subject and a publisher at src, once src has a measured contract
// route to dst; done closes both.
func contractEnds(ctx context.Context, src, dst *broker.Broker, subjects ...string) (*nats.Conn, []*arrivals, func(), error) {
	sub, err := nats.Connect(dst.ClientURL())
	if err != nil {
		return nil, nil, nil, err
	}
	var arrs []*arrivals
	for _, s := range subjects {
		a, err := timeArrivals(sub, s)
		if err != nil {
			sub.Close()
			return nil, nil, nil, err
		}
		arrs = append(arrs, a)
	}
	pub, err := nats.Connect(src.ClientURL())
	if err != nil {
		sub.Close()
		return nil, nil, nil, err
	}
	done := func() { pub.Close(); sub.Close() }
	if err := waitContractRoute(ctx, src, dst.Address(), 30*time.Second); err != nil {
		done()
		return nil, nil, nil, err
	}
	return pub, arrs, done, nil
}

// waitContractRoute waits until src has a contract route to dst whose
// every hop is measured.
func waitContractRoute(ctx context.Context, src *broker.Broker, dst string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if r, ok := src.ContractRoute(contractSubject, dst); ok && r.Prediction.Status != router.Unknown {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no measured contract route to " + dst)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// publishTimed publishes n messages on subject, one every gap, each
// carrying the time it was sent.
func publishTimed(ctx context.Context, nc *nats.Conn, subject string, n int, gap time.Duration) error {
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for range n {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
		if err := nc.Publish(subject, b[:]); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nc.Flush()
}

// arrivals are the one-way delays (ms) of the messages of one
// subscription, timed as they arrive.
type arrivals struct {
	mu     sync.Mutex
	delays []float64
}

func timeArrivals(nc *nats.Conn, subject string) (*arrivals, error) {
	a := &arrivals{}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		now := time.Now().UnixNano()
		if len(m.Data) < 8 {
			return
		}
		sent := int64(binary.BigEndian.Uint64(m.Data))
		a.mu.Lock()
		a.delays = append(a.delays, float64(now-sent)/1e6)
		a.mu.Unlock()
	}); err != nil {
		return nil, err
	}
	return a, nc.Flush()
}

func (a *arrivals) reset() {
	a.mu.Lock()
	a.delays = a.delays[:0]
	a.mu.Unlock()
}

func (a *arrivals) sorted() []float64 {
	out := a.inOrder()
	slices.Sort(out)
	return out
}

// inOrder returns the delays in the order the messages arrived.
func (a *arrivals) inOrder() []float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.delays)
}

// samplesKS is the Kolmogorov-Smirnov distance between the sorted samples
// a and b (neither empty).
func samplesKS(a, b []float64) float64 {
	var d float64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] == x {
			i++
		}
		for j < len(b) && b[j] == x {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

// quantileOf is the q-quantile of sorted xs.
func quantileOf(xs []float64, q float64) float64 {
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}
