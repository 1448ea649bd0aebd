package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/topology"
	"github.com/wayline/wayline/transports"
)

// PriorityConfig sets up `wayline bench priority`.
type PriorityConfig struct {
	// Bandwidth caps the congested link in bits per second. Default
	// 1,000,000.
	Bandwidth int64
	// Offered is the load offered across it in bits per second of
	// payload, HighShare of it on the high-class subject and the rest on
	// the low-class one. Defaults 2,000,000 and 0.25.
	Offered   int64
	HighShare float64
	// Size is each message's payload in bytes, at least 16. Default 500.
	Size int
	// Duration is how long each round offers the load. Default 5 s.
	Duration time.Duration
	// Rounds is how many rounds each mode gets, in turn: with the
	// classes, the baseline with both subjects in one class, and the high
	// subject alone (its latency on the link when nothing competes).
	// Default 5.
	Rounds int
	// QueueBytes bounds the link's send queue (broker.Config.LinkQueueBytes)
	// and QueueLimit what the emulated link holds below it. Defaults
	// 64 KiB (half a second at 1 Mbit/s) and 8 KiB.
	QueueBytes int
	QueueLimit int
	Logger     *slog.Logger
}

func (c *PriorityConfig) defaults() {
	if c.Bandwidth <= 0 {
		c.Bandwidth = 1_000_000
	}
	if c.Offered <= 0 {
		c.Offered = 2_000_000
	}
	if c.HighShare <= 0 || c.HighShare >= 1 {
		c.HighShare = 0.25
	}
	if c.Size < 16 {
		c.Size = 500
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 64 << 10
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = 8 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// PriorityFlow is what one subject's messages did in a round.
type PriorityFlow struct {
	Subject   string
	Sent      int
	Delivered int
	P50, P99  time.Duration // one-way latency of the delivered messages
}

// Lost is what was sent and not delivered.
func (f PriorityFlow) Lost() int { return f.Sent - f.Delivered }

// DeliveredPct is the share delivered, in percent.
func (f PriorityFlow) DeliveredPct() float64 { return 100 * float64(f.Delivered) / float64(f.Sent) }

// PriorityRound is one round: the high and the low subject's flows, and
// what the brokers counted as dropped, by class and in all.
type PriorityRound struct {
	Mode      string // one of priorityModes
	High, Low PriorityFlow
	ByClass   map[string]uint64 // drops counted by class (send queue full)
	Counted   uint64            // drops counted for any reason
	// Held counts the messages the subscriber's broker held for their
	// stream's order, and WaitsExpired the waits it gave up (order.go).
	Held, WaitsExpired uint64
}

// priorityNames are the brokers: the load enters at a and crosses a-b,
// then the capped link b-c, to a subscriber at c.
var priorityNames = []string{"prio.c1.a", "prio.c1.b", "prio.c1.c"}

const (
	prioHigh = "alerts.load"
	prioLow  = "metrics.load"
)

// priorityModes are the rounds' modes: the subjects in their classes; in
// their classes with the capped link's rate set to its bandwidth (paced,
// so that its queue builds in the broker, not in the emulated link's
// buffer); both normal (the baseline); and the high subject's load alone.
var priorityModes = []string{"classes", "paced", "baseline", "alone"}

// RunPriority offers a load past a capped link's bandwidth on two
// subjects, with the high and low classes and then with both normal, and
// the high subject's share alone, in turn, each round in a fresh network,
// and reports each class's delivery, latency and drops beside the
// baseline's.
func RunPriority(ctx context.Context, w io.Writer, cfg PriorityConfig) ([]PriorityRound, error) {
	cfg.defaults()
	fmt.Fprintf(w, "priority benchmark: %s -tcp- %s -tcp capped at %.3g Mbit/s- %s; %.3g Mbit/s of %d-byte payloads offered for %v, %.0f%% on %s (high), the rest on %s (low)\n",
		priorityNames[0], priorityNames[1], float64(cfg.Bandwidth)/1e6, priorityNames[2], float64(cfg.Offered)/1e6, cfg.Size, cfg.Duration, cfg.HighShare*100, prioHigh, prioLow)
	fmt.Fprintf(w, "link send queue %d KiB, emulated queue %d KiB; paced: the capped link's rate set to its bandwidth; baseline: both subjects normal; alone: the high subject's load only; %d rounds each, in turn\n",
		cfg.QueueBytes>>10, cfg.QueueLimit>>10, cfg.Rounds)
	var all []PriorityRound
	for i := range len(priorityModes) * cfg.Rounds {
		if err := ctx.Err(); err != nil {
			return all, err
		}
		mode := priorityModes[i%len(priorityModes)]
		r, err := priorityRound(ctx, cfg, mode)
		if err != nil {
			return all, fmt.Errorf("priority round %d: %w", i+1, err)
		}
		fmt.Fprintf(w, "  %-8s round %d: high %d/%d p50 %v p99 %v; low %d/%d p50 %v p99 %v; counted drops %d %v; held for order %d, waits expired %d\n",
			mode, i/len(priorityModes)+1, r.High.Delivered, r.High.Sent, msText(r.High.P50), msText(r.High.P99),
			r.Low.Delivered, r.Low.Sent, msText(r.Low.P50), msText(r.Low.P99), r.Counted, r.ByClass, r.Held, r.WaitsExpired)
		all = append(all, r)
	}
	prioritySummary(w, all)
	return all, nil
}

func msText(d time.Duration) string { return fmt.Sprintf("%.0fms", ms(d)) }

// prioritySummary prints, for each mode and subject, the median of the
// rounds and their range, and the machine-readable lines.
func prioritySummary(w io.Writer, rounds []PriorityRound) {
	fmt.Fprintf(w, "%-9s %-6s %-22s %-22s %-22s %-18s\n", "mode", "class", "delivered % (range)", "p50 ms (range)", "p99 ms (range)", "lost (range)")
	var lines []string
	for _, mode := range priorityModes {
		for _, high := range []bool{true, false} {
			var pct, p50, p99, lost []float64
			for _, r := range rounds {
				f := r.Low
				if high {
					f = r.High
				}
				if r.Mode != mode || f.Sent == 0 {
					continue
				}
				pct = append(pct, f.DeliveredPct())
				p50 = append(p50, float64(f.P50)/1e6)
				p99 = append(p99, float64(f.P99)/1e6)
				lost = append(lost, float64(f.Lost()))
			}
			if len(pct) == 0 {
				continue
			}
			class, mark := "low", ""
			if high {
				class = "high"
			}
			if mode == "baseline" {
				mark = "*"
			}
			fmt.Fprintf(w, "%-9s %-6s %-22s %-22s %-22s %-18s\n", mode, class+mark,
				medRange(pct, "%.1f"), medRange(p50, "%.0f"), medRange(p99, "%.0f"), medRange(lost, "%.0f"))
			lines = append(lines, fmt.Sprintf("priority_%s_%s_delivered_pct=%.1f\npriority_%s_%s_p99_ms=%.0f",
				mode, class, medianOf(pct), mode, class, medianOf(p99)))
		}
	}
	fmt.Fprintln(w, "* in the baseline both subjects are normal; high and low name the subjects the classes give them")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func medRange(v []float64, f string) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf(f+" ("+f+"-"+f+")", s[len(s)/2], s[0], s[len(s)-1])
}

// priorityNet starts the chain, with the subjects' classes on every
// broker unless in the baseline.
func priorityNet(ctx context.Context, cfg PriorityConfig, mode string) ([]*broker.Broker, error) {
	cfgs := make([]broker.Config, len(priorityNames))
	for i, n := range priorityNames {
		cfgs[i] = broker.Config{Address: n, Client: "127.0.0.1:0", Logger: cfg.Logger, LinkQueueBytes: cfg.QueueBytes, DeadAfter: 5 * time.Second}
		if mode != "baseline" {
			cfgs[i].Routing.Priorities = []topology.SubjectClass{{Subject: "alerts.>", Class: sendq.High}, {Subject: "metrics.>", Class: sendq.Low}}
		}
	}
	capped := &transports.Emulation{Bandwidth: cfg.Bandwidth, QueueLimit: cfg.QueueLimit}
	if err := linkChain(cfgs, "00000b10", func(i int) (string, *transports.Emulation) {
		if i == 2 {
			return "tcp", capped
		}
		return "tcp", nil
	}); err != nil {
		return nil, err
	}
	if mode == "paced" {
		for i := range cfgs[1].Links {
			if cfgs[1].Links[i].Peer == priorityNames[2] {
				cfgs[1].Links[i].Rate = cfg.Bandwidth
			}
		}
	}
	return startAll(ctx, cfgs)
}

// priorityArrivals keeps each subject's latencies.
type priorityArrivals struct {
	mu     sync.Mutex
	lat    map[string][]time.Duration
	probes atomic.Uint64
}

func (a *priorityArrivals) add(m *nats.Msg) {
	at := time.Now()
	if len(m.Data) < 16 {
		a.probes.Add(1) // subscribeReady's
		return
	}
	sent := int64(binary.BigEndian.Uint64(m.Data))
	a.mu.Lock()
	a.lat[m.Subject] = append(a.lat[m.Subject], at.Sub(time.Unix(0, sent)))
	a.mu.Unlock()
}

func (a *priorityArrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.lat[prioHigh]) + len(a.lat[prioLow])
}

// priorityRound runs one round in a fresh network.
func priorityRound(ctx context.Context, cfg PriorityConfig, mode string) (PriorityRound, error) {
	r := PriorityRound{Mode: mode, High: PriorityFlow{Subject: prioHigh}, Low: PriorityFlow{Subject: prioLow}}
	net, err := priorityNet(ctx, cfg, mode)
	if err != nil {
		return r, err
	}
	defer closeBrokers(net)
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
	arr := &priorityArrivals{lat: map[string][]time.Duration{}}
	for _, subject := range []string{prioHigh, prioLow} {
		arr.probes.Store(0)
		s, err := subscribeReady(pub, sub, subject, &arr.probes, arr.add)
		if err != nil {
			return r, err
		}
		defer s.Unsubscribe()
	}
	before, _ := brokerDrops(net)
	beforeBy := classDrops(net)

	// Each subject is paced on a 5 ms tick to its share of the load.
	rates := map[string]float64{
		prioHigh: float64(cfg.Offered) * cfg.HighShare / float64(8*cfg.Size),
		prioLow:  float64(cfg.Offered) * (1 - cfg.HighShare) / float64(8*cfg.Size),
	}
	if mode == "alone" {
		rates[prioLow] = 0
	}
	sent := map[string]int{}
	payload := make([]byte, cfg.Size)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for time.Since(start) < cfg.Duration {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
		elapsed := time.Since(start).Seconds()
		for _, subject := range []string{prioHigh, prioLow} {
			for sent[subject] < int(elapsed*rates[subject]) {
				sent[subject]++
				binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
				binary.BigEndian.PutUint64(payload[8:], uint64(sent[subject]))
				if err := pub.Publish(subject, payload); err != nil {
					return r, fmt.Errorf("publish: %w", err)
				}
			}
		}
	}
	if err := pub.Flush(); err != nil {
		return r, fmt.Errorf("flush: %w", err)
	}
	// The queues drain within a second or so; wait until every message is
	// delivered or counted dropped, or nothing more comes.
	total := sent[prioHigh] + sent[prioLow]
	last, lastN := time.Now(), -1
	for {
		n := arr.count()
		counted, _ := brokerDrops(net)
		if n+int(counted-before) >= total || time.Since(last) > 3*time.Second {
			break
		}
		if n != lastN {
			last, lastN = time.Now(), n
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return r, err
		}
	}
	after, _ := brokerDrops(net)
	r.Counted = after - before
	st := net[len(net)-1].Status()
	r.Held, r.WaitsExpired = st.HeldForOrder, st.OrderWaitsExpired
	r.ByClass = map[string]uint64{}
	for class, n := range classDrops(net) {
		if d := n - beforeBy[class]; d > 0 {
			r.ByClass[class] = d
		}
	}
	arr.mu.Lock()
	defer arr.mu.Unlock()
	for _, f := range []*PriorityFlow{&r.High, &r.Low} {
		lat := slices.Clone(arr.lat[f.Subject])
		slices.Sort(lat)
		f.Sent, f.Delivered = sent[f.Subject], len(lat)
		if len(lat) > 0 {
			f.P50, f.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
		}
	}
	return r, nil
}

// classDrops sums the brokers' send queue drops by class, as /api/status
// gives them.
func classDrops(bs []*broker.Broker) map[string]uint64 {
	out := map[string]uint64{}
	for _, b := range bs {
		for class, by := range b.Status().LinkDropsByClass {
			out[class] += by["send_queue_full"]
		}
	}
	return out
}
