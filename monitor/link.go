package monitor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// ErrUnmatched is wrapped by Receive errors for a response that answers no
// probe this Link sent: a Seq never sent, or a T1 that differs from the one
// sent. It is counted nowhere and changes nothing.
var ErrUnmatched = errors.New("response matches no probe")

// Link is the measurement state of one link: its probes in flight, its
// window of samples and its failure detector. It is safe for concurrent
// use. It owns no goroutine unless Run is called; its owner delivers
// packets to Receive and calls Tick when asked to.
type Link struct {
	id     string
	send   func(pkt []byte) error
	now    func() time.Time
	log    *slog.Logger
	wake   chan struct{} // tells Run that the schedule changed
	events hub

	mu        sync.Mutex
	cfg       Config
	enabled   bool
	interval  time.Duration // current; differs from cfg.Interval when adaptive
	steady    int           // unsurprising responses in a row, for Adaptive
	lastProbe time.Time     // zero: a probe is due now
	gapScale  float64       // the next probe is due gapScale intervals after lastProbe (see ProbeSpread)
	rng       *rand.Rand    // draws gapScale
	seq       uint64        // last Seq sent
	pending   []probe       // in flight, in Seq order
	win       *window
	mem       *transits // the answered probes Metrics.Forward is drawn from
	losses    lossRing
	det       detector
	reqCount  uint32 // requests received from the peer, echoed as Count
	peerIvl   time.Duration
	c         counters
}

type counters struct {
	sent, received, lost, late, reordered, duplicated uint64
}

// NewLink returns a Link that measures link id, enabled and in state
// Unknown. send transmits one encoded request to the peer; it is called
// without locks held, from Tick. now is the clock (nil: time.Now). cfg is
// completed with defaults and clamped into range (see Config.Validate).
func NewLink(id string, cfg Config, send func(pkt []byte) error, now func() time.Time) *Link {
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	// The gaps' draws differ from link to link and run to run, and repeat
	// under a simulated clock.
	h := fnv.New64a()
	h.Write([]byte(id))
	return &Link{
		gapScale: 1,
		rng:      rand.New(rand.NewPCG(h.Sum64(), uint64(now().UnixNano()))),
		id:       id,
		send:     send,
		now:      now,
		log:      cfg.Logger.With(slog.String("link", id)),
		wake:     make(chan struct{}, 1),
		cfg:      cfg,
		enabled:  true,
		interval: cfg.Interval,
		win:      newWindow(cfg.Window),
		mem:      newTransits(cfg.DistWindow),
		det:      newDetector(cfg.Detector, now()),
	}
}

// ID returns the link's id.
func (l *Link) ID() string { return l.id }

// State returns the failure detector's current verdict.
func (l *Link) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.det.state
}

// Subscribe returns a channel of the link's state changes and a function
// that ends the subscription and closes the channel. The channel holds 16
// events; a subscriber that falls further behind loses the oldest ones, so
// a slow reader never stalls probing.
func (l *Link) Subscribe() (<-chan Event, func()) { return l.events.subscribe() }

// Tick does what is due at now: counts probes older than ProbeTimeout as
// lost, sends a probe if the interval has passed, and lets the detector
// judge the silence. It returns when it next wants to be called; calling it
// earlier or more often is harmless. A send error is logged and the probe
// left to time out, so a failed transport reads as loss and then as down.
func (l *Link) Tick(now time.Time) time.Time {
	l.mu.Lock()
	l.expire(now)
	var pkt []byte
	if l.enabled && !now.Before(l.probeDue()) {
		pkt = l.startProbe(now)
	}
	if to, reason, ok := l.det.judge(now, l.pending); ok {
		l.setState(to, now, reason)
	}
	next := l.nextTick(now)
	l.mu.Unlock()
	if pkt != nil {
		if err := l.send(pkt); err != nil {
			l.log.Debug("probe send failed", slog.Any("err", err))
		}
	}
	return next
}

// expire moves the probes whose time is up from pending to the window, as
// lost.
func (l *Link) expire(now time.Time) {
	n := 0
	for _, p := range l.pending {
		if now.Sub(p.sent) < l.cfg.ProbeTimeout {
			break
		}
		n++
		l.c.lost++
		s := sample{seq: p.seq, lost: true, outage: p.outage || l.det.state == StateDown}
		l.win.add(s)
		l.losses.add(s)
		l.det.timedOut(p)
	}
	l.pending = slices.Delete(l.pending, 0, n)
}

// startProbe registers a new probe sent at now and returns its encoding.
// While the link is suspect or down, an adaptive interval halves first.
func (l *Link) startProbe(now time.Time) []byte {
	if st := l.det.state; st == StateSuspect || st == StateDown {
		l.adapt(true)
	}
	l.seq++
	l.c.sent++
	l.lastProbe = now
	l.gapScale = GapScale(l.rng)
	l.pending = append(l.pending, probe{seq: l.seq, sent: now, outage: l.det.state == StateDown})
	p := Packet{
		Type:     PacketProbe,
		Seq:      l.seq,
		T1:       now.UnixNano(),
		Interval: uint32(l.interval / time.Millisecond),
		Pad:      l.cfg.Pad,
	}
	return p.Append(make([]byte, 0, p.Len()))
}

// ProbeSpread is how far each gap between two probes is drawn from the
// interval, either way: a gap is uniform in [0.9, 1.1] intervals. Probes on
// an exact timer keep one phase against traffic that is periodic too
// (a publisher on a timer, another link's probes), and on an ordered link
// a probe that always follows a message a fixed time later meets that
// message's delays rather than the link's: the chain model of `wayline
// bench contracts` showed lossless heavy-tailed hops predicted up to 0.076
// off in KS distance with exact gaps against 0.027 with these. BFD jitters
// its packets for the same reason (RFC 5880, 6.8.7). The mean interval,
// and so the probe traffic, stays; a failure is declared at most a tenth
// of an interval a probe later.
const ProbeSpread = 0.1

// GapScale draws the gap before a probe, in intervals: uniform within
// ProbeSpread of 1.
func GapScale(r *rand.Rand) float64 { return 1 + ProbeSpread*(2*r.Float64()-1) }

// probeDue is when the next probe is due.
func (l *Link) probeDue() time.Time {
	return l.lastProbe.Add(time.Duration(float64(l.interval) * l.gapScale))
}

// nextTick is the earliest of the next probe, the next timeout and the
// detector's next check; MaxInterval from now if none is due.
func (l *Link) nextTick(now time.Time) time.Time {
	next := now.Add(MaxInterval)
	if l.enabled {
		next = l.probeDue()
	}
	if len(l.pending) > 0 {
		next = earlier(next, l.pending[0].sent.Add(l.cfg.ProbeTimeout))
	}
	if t := l.det.nextCheck(now, l.pending); !t.IsZero() {
		next = earlier(next, t)
	}
	return next
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Receive handles one performance packet from the peer, received at
// received (transports.Frame.Received). Outcomes:
//
//   - a request: reply is the response, with T2 = received and T3 unset.
//     Always answered, even while measurement is disabled, so the peer can
//     measure. Set reply.T3 to the clock as close to the actual send as
//     possible, just before handing it to the transport, then Append it:
//     T3-T2 is the responder's time that the requester subtracts from its
//     RTT, so any delay after T3 counts as network delay.
//   - a response to a probe in flight: recorded as a sample; reply nil.
//   - a duplicate or late response: counted; reply and error nil.
//   - a response to no probe sent: an error wrapping ErrUnmatched.
//   - a packet of unknown type: an error wrapping ErrBadPacket.
func (l *Link) Receive(pkt Packet, received time.Time) (reply *Packet, err error) {
	if pkt.Type != PacketProbe {
		return nil, fmt.Errorf("link %s: %w: unknown type %d", l.id, ErrBadPacket, pkt.Type)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if pkt.Interval != 0 {
		l.peerIvl = time.Duration(pkt.Interval) * time.Millisecond
	}
	if !pkt.Response {
		l.reqCount++
		return &Packet{
			Type:     PacketProbe,
			Response: true,
			Seq:      pkt.Seq,
			T1:       pkt.T1,
			T2:       received.UnixNano(),
			Interval: uint32(l.interval / time.Millisecond),
			Count:    l.reqCount,
			Pad:      pkt.Pad,
		}, nil
	}
	return nil, l.record(pkt, received)
}

// record takes a response into the statistics and the detector.
func (l *Link) record(pkt Packet, received time.Time) error {
	i, found := slices.BinarySearchFunc(l.pending, pkt.Seq, func(p probe, seq uint64) int { return cmpU64(p.seq, seq) })
	if !found {
		if pkt.Seq > l.seq {
			return fmt.Errorf("link %s: %w: probe %d was never sent", l.id, ErrUnmatched, pkt.Seq)
		}
		if s, ok := l.win.find(pkt.Seq); ok && !s.lost {
			l.c.duplicated++
		} else {
			l.c.late++
		}
		return nil
	}
	p := l.pending[i]
	if pkt.T1 != p.sent.UnixNano() {
		return fmt.Errorf("link %s: %w: probe %d was sent at %d, not %d", l.id, ErrUnmatched, pkt.Seq, p.sent.UnixNano(), pkt.T1)
	}
	l.pending = slices.Delete(l.pending, i, i+1)
	total := received.Sub(p.sent)
	// The responder's time, measured on its clock alone; clamped so that a
	// clock step at the responder cannot make the RTT negative.
	held := min(max(time.Duration(pkt.T3-pkt.T2), 0), total)
	rtt := total - held
	if pkt.Seq < l.det.acked {
		l.c.reordered++
	}
	l.c.received++
	s := sample{
		seq:   pkt.Seq,
		rtt:   rtt,
		fwd:   pkt.T2 - pkt.T1,
		rev:   received.UnixNano() - pkt.T3,
		count: pkt.Count,
	}
	if l.win.n == len(l.win.buf) {
		l.mem.add(s) // see transits.go: not the link's first window
	}
	l.win.add(s)
	l.losses.add(s)
	surprise := l.det.answered(pkt.Seq, rtt, received, l.win.everydayLoss(), p.outage)
	l.adapt(surprise)
	if st := l.det.state; st != StateUp && st != StateDisabled {
		l.setState(StateUp, received, "response")
	}
	return nil
}

// adapt moves an adaptive interval: halved on trouble, doubled after
// AdaptiveSteady calm responses, within [AdaptiveMin, AdaptiveMax]
// widened to include Interval.
func (l *Link) adapt(trouble bool) {
	if !l.cfg.Adaptive {
		return
	}
	lo := min(l.cfg.AdaptiveMin, l.cfg.Interval)
	hi := max(l.cfg.AdaptiveMax, l.cfg.Interval)
	old := l.interval
	if trouble {
		l.steady = 0
		l.interval = max(l.interval/2, lo)
	} else if l.steady++; l.steady >= l.cfg.AdaptiveSteady {
		l.steady = 0
		l.interval = min(l.interval*2, hi)
	}
	if l.interval != old {
		l.poke()
	}
}

// setState changes the state and publishes the change.
func (l *Link) setState(to State, at time.Time, reason string) {
	from := l.det.state
	l.det.state = to
	if to == StateDown {
		for i := range l.pending {
			l.pending[i].outage = true
		}
	}
	l.events.publish(Event{LinkID: l.id, From: from, To: to, At: at, Reason: reason})
}

// poke wakes Run to recompute its timer.
func (l *Link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// SetEnabled starts or stops measurement. Disabled, the link sends no
// probes, forgets the ones in flight (they count neither as answered nor
// as lost), and its state is Disabled; it still answers the peer's
// requests. Enabled again, it probes at once and is Unknown until the first
// response, or suspect and down if none comes. The window is kept.
func (l *Link) SetEnabled(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on == l.enabled {
		return
	}
	l.enabled = on
	now := l.now()
	if on {
		l.det.restart(now, l.seq)
		l.lastProbe = time.Time{}
		l.setState(StateUnknown, now, "enabled")
	} else {
		l.pending = nil
		l.setState(StateDisabled, now, "disabled")
	}
	l.poke()
}

// SetInterval sets the probe interval, and the starting point of the
// adaptive interval. Outcomes: nil; an error wrapping ErrBadConfig when d
// is outside [MinInterval, MaxInterval], and nothing changes.
func (l *Link) SetInterval(d time.Duration) error {
	if !inBounds(d) {
		return fmt.Errorf("link %s: %w: interval %v outside [%v, %v]", l.id, ErrBadConfig, d, MinInterval, MaxInterval)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.Interval, l.interval, l.steady = d, d, 0
	l.poke()
	return nil
}

// SetAdaptive switches the adaptive interval on or off; off, the interval
// goes back to the configured one.
func (l *Link) SetAdaptive(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.Adaptive, l.steady = on, 0
	if !on && l.interval != l.cfg.Interval {
		l.interval = l.cfg.Interval
		l.poke()
	}
}

// Snapshot returns the link's current measurements. The statistics are
// computed on a copy of the window and the delay memory, outside the lock.
func (l *Link) Snapshot() Metrics {
	l.mu.Lock()
	m := Metrics{
		Reordered:    l.c.reordered,
		Duplicated:   l.c.duplicated,
		Late:         l.c.late,
		Sent:         l.c.sent,
		Received:     l.c.received,
		Lost:         l.c.lost,
		Interval:     l.interval,
		PeerInterval: l.peerIvl,
		State:        l.det.state,
	}
	w := *l.win
	w.buf = slices.Clone(w.buf[:w.n]) // a window not yet full holds its samples at [0, n)
	mem := l.mem.counted()
	l.mu.Unlock()
	if seq := windowStats(&w, mem, &m); seq != 0 {
		l.mu.Lock()
		l.mem.restart(seq)
		l.mu.Unlock()
	}
	return m
}

// LossOver returns the one-way loss of the latest n resolved probes (at
// most LossHistory, and all of them while there are fewer), without the
// probes lost while the link was down or before it first answered: a
// loss estimate as steady as n allows, for a link's routing cost.
func (l *Link) LossOver(n int) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.losses.over(n)
}

// Run calls Tick whenever it asks to be called, and as soon as the
// schedule changes, until ctx ends. It is the goroutine a broker gives each
// link; tests and simulations call Tick themselves.
func (l *Link) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-l.wake:
		}
		next := l.Tick(l.now())
		timer.Reset(next.Sub(l.now()))
	}
}
