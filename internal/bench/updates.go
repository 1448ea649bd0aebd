package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/transports"
)

// UpdatesConfig sets up `wayline bench updates`.
type UpdatesConfig struct {
	// Duration is how long each network is observed, after Warmup.
	// Defaults 2 minutes and 30 s.
	Duration, Warmup time.Duration
	Logger           *slog.Logger
}

// UpdatesResult is one run: the cost update copies that crossed links per
// minute, over the whole network, and what one broker's map is made of.
type UpdatesResult struct {
	Threshold  bool
	PerMinute  float64
	Originated float64 // updates the brokers made, per minute, summaries included
	Summaries  float64 // unit summaries the brokers made, per minute
	// What a broker holds at the end, on average over the brokers: the
	// cost updates and unit summaries it heard, and the brokers the
	// summaries list.
	HeldUpdates, HeldSummaries, SummaryEntries float64
}

// upNet is the 100-broker network of the experiment: 4 super-clusters of
// 5 clusters of 5 brokers. Each cluster is a ring with a chord; the
// clusters of a super-cluster form a ring through gateway brokers, and so
// do the super-clusters. Links carry emulated wide-area conditions with
// normal jitter (10% of the delay) and some loss, so that measurements
// fluctuate: 1-5 ms inside a cluster, 5-20 ms between clusters, 30-80 ms
// between super-clusters (over udp, with 0.2% loss).
type upLink struct {
	a, b, transport string
	emu             transports.Emulation
}

func upNetwork(rng *rand.Rand) (brokers []string, links []upLink) {
	addr := func(sc, c, b int) string { return fmt.Sprintf("up.sc%d.c%d.b%d", sc, c, b) }
	delay := func(lo, hi int) time.Duration {
		return time.Duration(lo*1000+rng.IntN((hi-lo)*1000)) * time.Microsecond
	}
	add := func(a, b, transport string, d time.Duration, loss float64) {
		links = append(links, upLink{a: a, b: b, transport: transport,
			emu: transports.Emulation{Delay: d, Jitter: d / 10, JitterDist: transports.JitterNormal, Loss: loss}})
	}
	ring := func(n int, node func(i, side int) string, transport string, lo, hi int, loss float64) {
		for i := 0; i < n; i++ {
			add(node(i, 0), node((i+1)%n, 1), transport, delay(lo, hi), loss)
		}
		add(node(0, 0), node(n/2, 1), transport, delay(lo, hi), loss)
	}
	for sc := range 4 {
		for c := range 5 {
			for b := range 5 {
				brokers = append(brokers, addr(sc, c, b))
			}
			ring(5, func(i, _ int) string { return addr(sc, c, i) }, "tcp", 1, 5, 0)
		}
		ring(5, func(i, side int) string { return addr(sc, i, side) }, "tcp", 5, 20, 0)
	}
	ring(4, func(i, side int) string { return addr(i, 0, 2+side) }, "udp", 30, 80, 0.002)
	return brokers, links
}

// RunUpdates runs the 100-broker network twice, with the default update
// threshold (10%, with hold-down) and with none, and reports the cost
// update messages the network carries per minute in each.
func RunUpdates(ctx context.Context, w io.Writer, cfg UpdatesConfig) ([]UpdatesResult, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 2 * time.Minute
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	brokers, links := upNetwork(rand.New(rand.NewPCG(7, 11)))
	fmt.Fprintf(w, "cost updates: %d brokers, %d links with emulated jitter and loss, probes every 1 s, %v observed after %v warm-up\n",
		len(brokers), len(links), cfg.Duration, cfg.Warmup)
	var out []UpdatesResult
	for _, threshold := range []bool{true, false} {
		r, err := upRun(ctx, cfg, brokers, links, threshold)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		name := "threshold 10%, hold-down 1 s"
		if !threshold {
			name = "no threshold (every change)"
		}
		fmt.Fprintf(w, "%-30s %10.0f update copies carried per minute (%0.f updates made per minute, %.0f of them unit summaries)\n", name, r.PerMinute, r.Originated, r.Summaries)
		fmt.Fprintf(w, "%-30s a broker holds %.1f cost updates and %.1f unit summaries listing %.0f brokers (mean over the brokers)\n", "", r.HeldUpdates, r.HeldSummaries, r.SummaryEntries)
	}
	if len(out) == 2 && out[1].PerMinute > 0 {
		fmt.Fprintf(w, "updates_per_minute_threshold=%.0f\nupdates_per_minute_no_threshold=%.0f\nreduction=%.1fx\n",
			out[0].PerMinute, out[1].PerMinute, out[1].PerMinute/max(out[0].PerMinute, 1))
	}
	return out, nil
}

func upRun(ctx context.Context, cfg UpdatesConfig, brokers []string, links []upLink, threshold bool) (UpdatesResult, error) {
	r := UpdatesResult{Threshold: threshold}
	mon := monitor.DefaultWANConfig()
	cfgs := map[string]*broker.Config{}
	for _, a := range brokers {
		c := &broker.Config{Address: a, Client: "127.0.0.1:0", Monitor: mon, Logger: cfg.Logger}
		if !threshold {
			c.Routing.Threshold, c.Routing.MinChange, c.Routing.HoldDown = 1e-12, 1e-12, time.Nanosecond
		}
		cfgs[a] = c
	}
	listen := map[string]string{}
	for i, l := range links {
		key := l.b + "/" + l.transport
		u, ok := listen[key]
		if !ok {
			addr, err := freeAddr()
			if err != nil {
				return r, err
			}
			u = l.transport + "://" + addr
			listen[key] = u
			cfgs[l.b].Listen = append(cfgs[l.b].Listen, u)
		}
		e := l.emu
		id := fmt.Sprintf("0000abcd-0000-4000-8000-%012d", i)
		cfgs[l.a].Links = append(cfgs[l.a].Links, broker.LinkConfig{ID: id, Peer: l.b, Transport: l.transport, Dial: u, Emulation: &e})
		cfgs[l.b].Links = append(cfgs[l.b].Links, broker.LinkConfig{ID: id, Peer: l.a, Transport: l.transport, Emulation: &e})
	}
	net := map[string]*broker.Broker{}
	defer func() {
		var wg sync.WaitGroup
		for _, b := range net {
			wg.Go(b.Close)
		}
		wg.Wait()
	}()
	for _, a := range brokers {
		b, err := startBroker(ctx, *cfgs[a])
		if err != nil {
			return r, err
		}
		net[a] = b
	}
	if err := sleepCtx(ctx, cfg.Warmup); err != nil {
		return r, err
	}
	count := func() (carried, made, sums uint64) {
		for _, b := range net {
			s := b.Status()
			carried += s.UpdatesCarried
			made += s.UpdatesSent
			sums += s.SummariesSent
		}
		return
	}
	c0, m0, s0 := count()
	if err := sleepCtx(ctx, cfg.Duration); err != nil {
		return r, err
	}
	c1, m1, s1 := count()
	minutes := cfg.Duration.Minutes()
	r.PerMinute = float64(c1-c0) / minutes
	r.Originated = float64(m1-m0) / minutes
	r.Summaries = float64(s1-s0) / minutes
	for _, b := range net {
		s := b.Status()
		r.HeldUpdates += float64(s.LinkStatesHeld) / float64(len(net))
		r.HeldSummaries += float64(s.SummariesHeld) / float64(len(net))
		r.SummaryEntries += float64(s.SummaryEntries) / float64(len(net))
	}
	return r, nil
}
