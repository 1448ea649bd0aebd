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
	"github.com/wayline/wayline/transports"
)

// BurstConfig sets up `wayline bench burst`.
type BurstConfig struct {
	// Messages is the size of each burst. Default 100,000.
	Messages int
	// Size is each message's payload in bytes, at least 8. Default 128.
	Size int
	// Transports are the transports the trans-Atlantic link is measured
	// on, each in its own network. Default udp, quic, tcp.
	Transports []string
	// Rounds is how many bursts each transport gets, each in a fresh
	// network; the median is reported with the range. Default 3.
	Rounds int
	// Atlantic is the emulated condition of the trans-Atlantic link.
	// Default the demo's: 45 ms one way, 3 ms jitter, 1% loss.
	Atlantic *transports.Emulation
	Logger   *slog.Logger
}

func (c *BurstConfig) defaults() {
	if c.Messages <= 0 {
		c.Messages = 100000
	}
	if c.Size < 8 {
		c.Size = 128
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{"udp", "quic", "tcp"}
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.Atlantic == nil {
		c.Atlantic = &transports.Emulation{Delay: 45 * time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.01}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// BurstRound is one burst across the network.
type BurstRound struct {
	Transport  string
	Sent       int
	Delivered  int
	Duplicates int // delivered more than once
	Inversions int // delivered after a later message
	// Counted is what the brokers counted as dropped during the burst,
	// CountedBy the same by reason (lost_in_transit, send_queue_full, ...).
	Counted   uint64
	CountedBy map[string]uint64
	// ClientDropped is what the subscribing client's library dropped.
	ClientDropped int
	// Elapsed runs from the first message published to the last one
	// delivered.
	Elapsed time.Duration
}

// Missing is what was sent and never delivered.
func (r BurstRound) Missing() int { return r.Sent - r.Delivered }

// Uncounted is what went missing beyond the drops anyone counted.
func (r BurstRound) Uncounted() int {
	return max(0, r.Missing()-int(r.Counted)-r.ClientDropped)
}

// DeliveredPct is the share of the burst delivered, in percent.
func (r BurstRound) DeliveredPct() float64 { return 100 * float64(r.Delivered) / float64(r.Sent) }

// Rate is messages delivered per second.
func (r BurstRound) Rate() float64 { return float64(r.Delivered) / r.Elapsed.Seconds() }

// burstNames are the brokers: a cluster on each side of the ocean, and the
// burst crossing from na.c1.a to eu.c1.b.
var burstNames = []string{"burst.na.c1.a", "burst.na.c1.b", "burst.eu.c1.a", "burst.eu.c1.b"}

// RunBurst publishes Messages as fast as the client can at one end of a
// 4-broker chain, na.c1.a -tcp- na.c1.b -X- eu.c1.a -tcp- eu.c1.b, whose
// trans-Atlantic link X runs each of Transports in turn under the
// emulated Atlantic, and reports what arrived at a subscriber at the far
// end against what the brokers counted as dropped.
func RunBurst(ctx context.Context, w io.Writer, cfg BurstConfig) ([]BurstRound, error) {
	cfg.defaults()
	for _, t := range cfg.Transports {
		if !slices.Contains(accuracySchemes, t) {
			return nil, fmt.Errorf("burst: unknown transport %q (one of %s)", t, strings.Join(accuracySchemes, ", "))
		}
	}
	a := cfg.Atlantic
	fmt.Fprintf(w, "burst benchmark: %d messages of %d bytes, published as fast as the client can at %s, subscribed at %s\n",
		cfg.Messages, cfg.Size, burstNames[0], burstNames[3])
	fmt.Fprintf(w, "path: %s -tcp- %s -X- %s -tcp- %s; X emulates %v one way, %v jitter, %.3g%% loss; %d rounds per transport\n",
		burstNames[0], burstNames[1], burstNames[2], burstNames[3], a.Delay, a.Jitter, a.Loss*100, cfg.Rounds)
	var all []BurstRound
	for _, t := range cfg.Transports {
		var rounds []BurstRound
		for i := range cfg.Rounds {
			if err := ctx.Err(); err != nil {
				return all, err
			}
			r, err := burstRound(ctx, cfg, t)
			if err != nil {
				return all, fmt.Errorf("burst over %s, round %d: %w", t, i+1, err)
			}
			fmt.Fprintf(w, "  %-4s round %d: %d/%d delivered (%.3f%%), %d missing, %d counted by the brokers %s, %d uncounted, %d duplicated, %d out of order, %.0f msg/s\n",
				t, i+1, r.Delivered, r.Sent, r.DeliveredPct(), r.Missing(), r.Counted, reasons(r.CountedBy), r.Uncounted(), r.Duplicates, r.Inversions, r.Rate())
			rounds = append(rounds, r)
		}
		all = append(all, rounds...)
		burstSummary(w, t, rounds)
	}
	return all, nil
}

func reasons(by map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		if by[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, by[k]))
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// burstSummary prints a transport's median round and range, and the
// machine-readable lines.
func burstSummary(w io.Writer, t string, rounds []BurstRound) {
	pct := func(r BurstRound) float64 { return r.DeliveredPct() }
	rate := func(r BurstRound) float64 { return r.Rate() }
	unc := func(r BurstRound) float64 { return float64(r.Uncounted()) }
	med := func(f func(BurstRound) float64) (m, lo, hi float64) {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2], v[0], v[len(v)-1]
	}
	p, plo, phi := med(pct)
	r, rlo, rhi := med(rate)
	u, ulo, uhi := med(unc)
	var dups, inv int
	for _, x := range rounds {
		dups += x.Duplicates
		inv += x.Inversions
	}
	fmt.Fprintf(w, "%-4s delivered %.3f%% (%.3f-%.3f), uncounted missing %.0f (%.0f-%.0f), %.0f msg/s (%.0f-%.0f), duplicates %d, out of order %d in %d rounds\n",
		t, p, plo, phi, u, ulo, uhi, r, rlo, rhi, dups, inv, len(rounds))
	fmt.Fprintf(w, "burst_%s_delivered_pct=%.3f\nburst_%s_uncounted=%.0f\n", t, p, t, uhi)
}

// burstNet starts the four brokers with the trans-Atlantic link on
// transport t.
func burstNet(ctx context.Context, cfg BurstConfig, t string) ([]*broker.Broker, error) {
	cfgs := make([]broker.Config, len(burstNames))
	for i, n := range burstNames {
		cfgs[i] = broker.Config{Address: n, Client: "127.0.0.1:0", Logger: cfg.Logger}
	}
	if err := linkChain(cfgs, "0000b0b0", func(i int) (string, *transports.Emulation) {
		if i == 2 {
			return t, cfg.Atlantic
		}
		return "tcp", nil
	}); err != nil {
		return nil, err
	}
	return startAll(ctx, cfgs)
}

// brokerDrops sums what the brokers counted as dropped, as /api/status
// gives it: on their links by reason, and at the brokers themselves (no
// route, hop limit, a leaf's queue full).
func brokerDrops(bs []*broker.Broker) (uint64, map[string]uint64) {
	by := map[string]uint64{}
	for _, b := range bs {
		s := b.Status()
		for k, v := range s.LinkDrops {
			by[k] += v
		}
		by["no_route"] += s.NoRoute
		by["leaf_queue_full"] += s.LeafDrops
		by["hop_limit"] += s.HopLimit
	}
	var n uint64
	for _, v := range by {
		n += v
	}
	return n, by
}

// burstArrivals tracks what the subscriber received, by sequence number.
type burstArrivals struct {
	mu         sync.Mutex
	seen       []bool
	delivered  int
	dups       int
	inversions int
	maxSeq     uint64
	last       time.Time
	probes     atomic.Uint64
}

func (a *burstArrivals) add(m *nats.Msg) {
	if len(m.Data) < 8 {
		return
	}
	seq := binary.BigEndian.Uint64(m.Data)
	if seq == 0 {
		a.probes.Add(1)
		return
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq >= uint64(len(a.seen)) {
		return
	}
	a.last = now
	if a.seen[seq] {
		a.dups++
		return
	}
	a.seen[seq] = true
	a.delivered++
	if seq < a.maxSeq {
		a.inversions++
	} else {
		a.maxSeq = seq
	}
}

func (a *burstArrivals) state() (int, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.delivered, a.last
}

// burstRound runs one burst in a fresh network.
func burstRound(ctx context.Context, cfg BurstConfig, t string) (BurstRound, error) {
	r := BurstRound{Transport: t, Sent: cfg.Messages}
	net, err := burstNet(ctx, cfg, t)
	if err != nil {
		return r, err
	}
	defer closeBrokers(net)
	dst := burstNames[len(burstNames)-1]
	if err := foWait(ctx, "the route across the ocean", 30*time.Second, func() bool {
		routes, _ := net[0].RoutesFor("default")
		for _, rt := range routes {
			if rt.Destination == dst {
				return true
			}
		}
		return false
	}); err != nil {
		return r, err
	}
	pub, err := nats.Connect(net[0].ClientURL())
	if err != nil {
		return r, err
	}
	defer pub.Close()
	sub, err := nats.Connect(net[len(net)-1].ClientURL())
	if err != nil {
		return r, err
	}
	defer sub.Close()
	arr := &burstArrivals{seen: make([]bool, cfg.Messages+1)}
	const subject = "bench.burst"
	s, err := subscribeReady(pub, sub, subject, &arr.probes, arr.add)
	if err != nil {
		return r, err
	}
	defer s.Unsubscribe()
	// Probes still in flight must not count as the burst's drops.
	time.Sleep(200 * time.Millisecond)
	before, beforeBy := brokerDrops(net)

	payload := make([]byte, cfg.Size)
	start := time.Now()
	for i := 1; i <= cfg.Messages; i++ {
		binary.BigEndian.PutUint64(payload, uint64(i))
		if err := pub.Publish(subject, payload); err != nil {
			return r, fmt.Errorf("publish #%d: %w", i, err)
		}
	}
	if err := pub.Flush(); err != nil {
		return r, fmt.Errorf("flush: %w", err)
	}
	// Wait until everything arrived, or nothing more has for a while: the
	// link's loss timers and the brokers' queues have settled by then.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, last := arr.state()
		if n >= cfg.Messages || time.Now().After(deadline) {
			break
		}
		if !last.IsZero() && time.Since(last) > 5*time.Second || last.IsZero() && time.Since(start) > 30*time.Second {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return r, err
		}
	}
	after, afterBy := brokerDrops(net)
	r.Counted = after - before
	r.CountedBy = map[string]uint64{}
	for k, v := range afterBy {
		if d := v - beforeBy[k]; d > 0 {
			r.CountedBy[k] = d
		}
	}
	if d, err := s.Dropped(); err == nil {
		r.ClientDropped = d
	}
	arr.mu.Lock()
	r.Delivered, r.Duplicates, r.Inversions = arr.delivered, arr.dups, arr.inversions
	r.Elapsed = arr.last.Sub(start)
	arr.mu.Unlock()
	if r.Elapsed <= 0 {
		r.Elapsed = time.Since(start)
	}
	return r, nil
}
