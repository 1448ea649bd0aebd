package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/transports"
)

// FailoverConfig sets up `wayline bench failover`.
type FailoverConfig struct {
	// Trials is the number of failures timed. Default 20.
	Trials int
	// Interval is the probe interval of every link. Default 100 ms.
	Interval time.Duration
	// Rate is the steady stream's messages per second. Default 500.
	Rate int
	// Settle is how long the network runs undisturbed before each failure.
	// Failing one link again and again is what flap damping is for: every
	// fall adds 1 to the link's penalty, which halves every 30 s, and above
	// 3 the link is held down. Failures 20 s apart keep the penalty at
	// about 2.7, so that every trial starts on the busiest link. Default
	// 20 s.
	Settle time.Duration
	// Slowdowns is the number of times the busiest link's delay is
	// doubled, after the failures, timing until the stream leaves it.
	// Default 5.
	Slowdowns int
	Logger    *slog.Logger
}

// FailoverTrial is one failure, timed from the moment the link died.
type FailoverTrial struct {
	Detection     time.Duration // until the broker at the link's end declared it down
	Dissemination time.Duration // from then until the publisher's broker changed its routes
	Recompute     time.Duration // mean route computation at the publisher's broker
	FirstAfter    time.Duration // until the first message delivered after the failure
	Lost          int           // stream messages never delivered
	Duplicates    int           // stream messages delivered more than once
	Inversions    int           // stream messages delivered after a later one
	FirstSeq      uint64        // which message after the failure arrived first
}

// The 6-broker WAN: two regions of three brokers, joined by two
// trans-Atlantic links over udp. The stream runs from na.c1.a to eu.c1.b
// over the busiest link, na.c1.b - eu.c1.a, which is the one that fails.
var foBrokers = []string{"wan.na.c1.a", "wan.na.c1.b", "wan.na.c2.a", "wan.eu.c1.a", "wan.eu.c1.b", "wan.eu.c2.a"}

var foLinks = []struct {
	a, b, transport string
	delay           time.Duration
}{
	{"wan.na.c1.a", "wan.na.c1.b", "tcp", 3 * time.Millisecond},
	{"wan.na.c1.a", "wan.na.c2.a", "tcp", 8 * time.Millisecond},
	{"wan.na.c1.b", "wan.na.c2.a", "tcp", 6 * time.Millisecond},
	{"wan.eu.c1.a", "wan.eu.c1.b", "tcp", 3 * time.Millisecond},
	{"wan.eu.c1.a", "wan.eu.c2.a", "tcp", 6 * time.Millisecond},
	{"wan.eu.c1.b", "wan.eu.c2.a", "tcp", 8 * time.Millisecond},
	{"wan.na.c1.b", "wan.eu.c1.a", "udp", 40 * time.Millisecond},
	{"wan.na.c2.a", "wan.eu.c2.a", "udp", 45 * time.Millisecond},
}

const (
	foPublisher = "wan.na.c1.a"
	foSubscribe = "wan.eu.c1.b"
	foBusiest   = 6 // index in foLinks
)

func foLinkID(i int) string { return fmt.Sprintf("0000f0f0-0000-4000-8000-%012d", i) }

// startWAN starts the six brokers in this process.
func startWAN(ctx context.Context, cfg FailoverConfig) (map[string]*broker.Broker, error) {
	mon := monitor.DefaultWANConfig()
	mon.Interval = cfg.Interval
	cfgs := map[string]*broker.Config{}
	for _, a := range foBrokers {
		cfgs[a] = &broker.Config{Address: a, Client: "127.0.0.1:0", Monitor: mon, Logger: cfg.Logger}
	}
	listen := map[string]string{}
	for i, l := range foLinks {
		key := l.b + "/" + l.transport
		u, ok := listen[key]
		if !ok {
			addr, err := freeAddr()
			if err != nil {
				return nil, err
			}
			u = l.transport + "://" + addr
			listen[key] = u
			cfgs[l.b].Listen = append(cfgs[l.b].Listen, u)
		}
		e := transports.Emulation{Delay: l.delay}
		cfgs[l.a].Links = append(cfgs[l.a].Links, broker.LinkConfig{ID: foLinkID(i), Peer: l.b, Transport: l.transport, Dial: u, Emulation: &e})
		cfgs[l.b].Links = append(cfgs[l.b].Links, broker.LinkConfig{ID: foLinkID(i), Peer: l.a, Transport: l.transport, Emulation: &e})
	}
	net := map[string]*broker.Broker{}
	for _, a := range foBrokers {
		b, err := startBroker(ctx, *cfgs[a])
		if err != nil {
			closeWAN(net)
			return nil, err
		}
		net[a] = b
	}
	return net, nil
}

func closeWAN(net map[string]*broker.Broker) { closeBrokers(slices.Collect(maps.Values(net))) }

// foPath returns a broker's path towards the subscriber.
func foPath(b *broker.Broker) string {
	routes, _ := b.RoutesFor("default")
	for _, r := range routes {
		if r.Destination == foSubscribe {
			return strings.Join(r.Path, " ")
		}
	}
	return ""
}

// foPrimary is the publisher's path over the busiest link, and foEdge
// the path of the broker at its near end.
const (
	foPrimary = "wan.na.c1.a wan.na.c1.b wan.eu.c1.a wan.eu.c1.b"
	foEdge    = "wan.na.c1.b wan.eu.c1.a wan.eu.c1.b"
)

// foStream publishes numbered messages at a steady rate and records when
// each arrives.
type foStream struct {
	sent     atomic.Uint64
	mu       sync.Mutex
	arrivals []foArrival
}

type foArrival struct {
	seq uint64
	at  time.Time
}

// RunFailover emulates the WAN, fails its busiest link under a steady
// stream Trials times, and reports the time from each failure to the first
// message delivered over the other path, split into detection,
// dissemination and recomputation, and the messages lost.
func RunFailover(ctx context.Context, w io.Writer, cfg FailoverConfig) ([]FailoverTrial, error) {
	if cfg.Trials <= 0 {
		cfg.Trials = 20
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 500
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 20 * time.Second
	}
	if cfg.Slowdowns <= 0 {
		cfg.Slowdowns = 5
	}
	net, err := startWAN(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeWAN(net)
	pubB, edge, far := net[foPublisher], net["wan.na.c1.b"], net["wan.eu.c1.a"]
	if err := foWait(ctx, "the stream's path through the busiest link", 20*time.Second, func() bool { return foPath(pubB) == foPrimary }); err != nil {
		return nil, err
	}
	stream, stop, err := foStartStream(ctx, net, cfg.Rate)
	if err != nil {
		return nil, err
	}
	defer stop()
	fmt.Fprintf(w, "failover benchmark: 6 brokers in 2 regions, stream %s -> %s at %d msg/s, probes every %v (WAN preset), %d trials\n",
		foPublisher, foSubscribe, cfg.Rate, cfg.Interval, cfg.Trials)
	fmt.Fprintf(w, "failing link: %s - %s (udp, 40 ms one way); the other path crosses %s - %s (udp, 45 ms)\n",
		foLinks[foBusiest].a, foLinks[foBusiest].b, foLinks[7].a, foLinks[7].b)
	var trials []FailoverTrial
	for i := 0; i < cfg.Trials && ctx.Err() == nil; i++ {
		if err := sleepCtx(ctx, cfg.Settle); err != nil {
			return trials, err
		}
		if err := foWait(ctx, "the stream on the busiest link", 60*time.Second, func() bool {
			return foPath(pubB) == foPrimary && foPath(edge) == foEdge
		}); err != nil {
			return trials, err
		}
		tr, err := foTrial(ctx, pubB, edge, far, stream)
		if err != nil {
			return trials, fmt.Errorf("trial %d: %w", i+1, err)
		}
		trials = append(trials, tr)
		fmt.Fprintf(w, "  trial %2d: first message after %v (detection %v, dissemination %v), %d lost, %d duplicated, %d out of order, first #%d\n",
			i+1, tr.FirstAfter.Round(time.Millisecond), tr.Detection.Round(time.Millisecond), tr.Dissemination.Round(time.Millisecond), tr.Lost, tr.Duplicates, tr.Inversions, tr.FirstSeq)
	}
	foReport(w, trials)
	return trials, foSlowdowns(ctx, w, cfg, pubB, edge)
}

// foSlowdowns doubles the busiest link's delay, times until the
// publisher's routes leave it, and puts the delay back, Slowdowns times.
func foSlowdowns(ctx context.Context, w io.Writer, cfg FailoverConfig, pubB, edge *broker.Broker) error {
	id := foLinkID(foBusiest)
	d := foLinks[foBusiest].delay
	fmt.Fprintf(w, "slowdowns: the busiest link's delay doubled (%v to %v) with the stream on it, %d times\n", d, 2*d, cfg.Slowdowns)
	var left []time.Duration
	for i := range cfg.Slowdowns {
		if err := sleepCtx(ctx, cfg.Settle/2); err != nil {
			return err
		}
		if err := foWait(ctx, "the stream on the busiest link", 60*time.Second, func() bool { return foPath(pubB) == foPrimary }); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := edge.SetEmulation(id, transports.EmulationSpec{Delay: ptrTo(transports.Quantity((2 * d).String()))}); err != nil {
			return err
		}
		if err := foWait(ctx, "the publisher's routes to leave the slow link", 30*time.Second, func() bool { return foPath(pubB) != foPrimary }); err != nil {
			return err
		}
		left = append(left, time.Since(t0))
		fmt.Fprintf(w, "  slowdown %d: left after %v\n", i+1, left[i].Round(time.Millisecond))
		if _, err := edge.SetEmulation(id, transports.EmulationSpec{Delay: ptrTo(transports.Quantity(d.String()))}); err != nil {
			return err
		}
	}
	slices.Sort(left)
	fmt.Fprintf(w, "%-28s p50 %8v  max %8v\n", "slow link left after", left[len(left)/2].Round(time.Millisecond), left[len(left)-1].Round(time.Millisecond))
	fmt.Fprintf(w, "slowdown_max_ms=%d\n", left[len(left)-1].Milliseconds())
	return nil
}

func foStartStream(ctx context.Context, net map[string]*broker.Broker, rate int) (*foStream, func(), error) {
	s := &foStream{}
	sub, err := nats.Connect(net[foSubscribe].ClientURL())
	if err != nil {
		return nil, nil, err
	}
	if _, err := sub.Subscribe("wan.stream", func(m *nats.Msg) {
		if len(m.Data) == 8 {
			s.mu.Lock()
			s.arrivals = append(s.arrivals, foArrival{seq: binary.BigEndian.Uint64(m.Data), at: time.Now()})
			s.mu.Unlock()
		}
	}); err != nil {
		sub.Close()
		return nil, nil, err
	}
	sub.Flush()
	pub, err := nats.Connect(net[foPublisher].ClientURL())
	if err != nil {
		sub.Close()
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		buf := make([]byte, 8)
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				binary.BigEndian.PutUint64(buf, s.sent.Add(1))
				_ = pub.Publish("wan.stream", buf)
			}
		}
	}()
	if err := foWait(ctx, "the stream to arrive", 10*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.arrivals) > 0
	}); err != nil {
		cancel()
		<-done
		return nil, nil, err
	}
	return s, func() { cancel(); <-done; pub.Close(); sub.Close() }, nil
}

// foTrial fails the busiest link, times the switch, and restores it.
func foTrial(ctx context.Context, pubB, edge, far *broker.Broker, s *foStream) (FailoverTrial, error) {
	var tr FailoverTrial
	id := foLinkID(foBusiest)
	s.mu.Lock()
	s.arrivals = s.arrivals[:0]
	s.mu.Unlock()
	firstSeq := s.sent.Load() + 1
	t0 := time.Now()
	if _, err := edge.SetEmulation(id, transports.EmulationSpec{Down: ptrTo(true)}); err != nil {
		return tr, err
	}
	err := foWait(ctx, "the publisher's routes to leave the failed link", 10*time.Second, func() bool { return foPath(pubB) != foPrimary })
	if err != nil {
		return tr, err
	}
	rerouted := time.Now()
	time.Sleep(time.Second) // let the stream settle on the other path
	lastSeq := s.sent.Load()
	// The messages sent last are still on their way (the other path takes
	// about 60 ms): they are not lost.
	time.Sleep(500 * time.Millisecond)
	s.mu.Lock()
	arrivals := slices.Clone(s.arrivals)
	s.mu.Unlock()
	// The first of the two ends to declare the link down detects it: the
	// link leaves every route as soon as one end announces it down.
	tr.Detection = 10 * time.Second
	for _, b := range []*broker.Broker{edge, far} {
		for _, l := range b.Links() {
			if l.ID == id && l.Metrics.State == "down" && l.Metrics.StateSince.After(t0) {
				tr.Detection = min(tr.Detection, l.Metrics.StateSince.Sub(t0))
			}
		}
	}
	tr.Dissemination = rerouted.Sub(t0) - tr.Detection
	tr.Recompute = time.Duration(pubB.Status().RecomputeUs * 1e3)
	got := map[uint64]bool{}
	var highest uint64
	for _, a := range arrivals {
		if a.seq >= firstSeq && tr.FirstAfter == 0 {
			tr.FirstAfter = a.at.Sub(t0)
			tr.FirstSeq = a.seq - firstSeq
		}
		if got[a.seq] {
			tr.Duplicates++
		}
		if a.seq < highest {
			tr.Inversions++
		}
		highest = max(highest, a.seq)
		got[a.seq] = true
	}
	for seq := firstSeq; seq <= lastSeq; seq++ {
		if !got[seq] {
			tr.Lost++
		}
	}
	if _, err := edge.SetEmulation(id, transports.EmulationSpec{Down: ptrTo(false)}); err != nil {
		return tr, err
	}
	err = foWait(ctx, "the stream back on the busiest link", 20*time.Second, func() bool { return foPath(pubB) == foPrimary })
	return tr, err
}

func ptrTo[T any](v T) *T { return &v }

func foWait(ctx context.Context, what string, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", d, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func foReport(w io.Writer, trials []FailoverTrial) {
	if len(trials) == 0 {
		fmt.Fprintln(w, "no trials")
		return
	}
	pick := func(f func(FailoverTrial) time.Duration) (p50, p99, maxv time.Duration) {
		v := make([]time.Duration, len(trials))
		for i, t := range trials {
			v[i] = f(t)
		}
		slices.Sort(v)
		return v[len(v)/2], v[min(len(v)-1, len(v)*99/100)], v[len(v)-1]
	}
	row := func(name string, f func(FailoverTrial) time.Duration) {
		p50, p99, mx := pick(f)
		fmt.Fprintf(w, "%-28s p50 %8v  p99 %8v  max %8v\n", name, p50.Round(time.Millisecond), p99.Round(time.Millisecond), mx.Round(time.Millisecond))
	}
	fmt.Fprintln(w, strings.Repeat("-", 78))
	row("detection", func(t FailoverTrial) time.Duration { return t.Detection })
	row("dissemination", func(t FailoverTrial) time.Duration { return t.Dissemination })
	p50, _, _ := pick(func(t FailoverTrial) time.Duration { return t.Recompute })
	fmt.Fprintf(w, "%-28s mean %v per computation\n", "recomputation", p50.Round(time.Microsecond))
	row("failure to first message", func(t FailoverTrial) time.Duration { return t.FirstAfter })
	var lost, worst, dups, inv int
	for _, t := range trials {
		lost += t.Lost
		worst = max(worst, t.Lost)
		dups += t.Duplicates
		inv += t.Inversions
	}
	fmt.Fprintf(w, "messages lost during the switch: mean %.1f, max %d; delivered twice: %d; out of order: %d (over %d trials)\n", float64(lost)/float64(len(trials)), worst, dups, inv, len(trials))
	fmt.Fprintln(w, "seed-era figure (Berkeley overlay): 3.3 s from failure to recovery (1.8 s detection + 0.7 s signalling + 0.45 s restoration + ...)")
	_, p99, _ := pick(func(t FailoverTrial) time.Duration { return t.FirstAfter })
	fmt.Fprintf(w, "failover_p99_ms=%d\n", p99.Milliseconds())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
