package monitor

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// Simulations drive a real Link against a synthetic network on a fake
// clock, so that minutes of probing run in milliseconds. The network: each
// frame, in each direction, takes delay plus an extra delay drawn uniformly
// from [-jitter, jitter] (clamped at zero), and is lost with probability
// loss; the peer is a Link that answers after 50 µs, with its clock 1.5 s
// ahead of ours (which measurement must not notice). An outage loses every
// frame sent from its start on.

const (
	simPeerHold   = 50 * time.Microsecond
	simPeerOffset = 1500 * time.Millisecond
	// simWarmup lets the window and the RTT estimators settle before an
	// outage: 30 s is 300 probes at 100 ms, more than a default window.
	simWarmup = 30 * time.Second
	// simGiveUp ends a detection trial whose outage was never detected; the
	// trial reports simGiveUp.
	simGiveUp = 60 * time.Second
)

// SimulateDetection measures how long a Link with cfg takes to call a link
// down after a full outage begins, over trials independent trials. Each
// trial warms up for 30 s, starts the outage at a random phase of the
// probe interval, and reports the time from the outage to the down event
// (60 s if none came). The results are in trial order; the same seed gives
// the same results.
func SimulateDetection(cfg Config, delay, jitter time.Duration, loss float64, trials int, seed int64) []time.Duration {
	out := make([]time.Duration, trials)
	for i := range out {
		out[i] = newSimulation(cfg, delay, jitter, loss, seed+int64(i)).detect()
	}
	return out
}

// detect runs one detection trial (see SimulateDetection).
func (s *simulation) detect() time.Duration {
	s.run(s.start.Add(simWarmup), nil)
	phase := time.Duration(s.rng.Float64() * float64(s.link.cfg.Interval))
	s.outage = s.now.Add(phase)
	s.run(s.outage.Add(simGiveUp), func() bool { return s.link.State() == StateDown })
	return s.now.Sub(s.outage)
}

// SimulateFalseDowns counts how often a Link with cfg calls a link down
// over duration of simulated time on a link that never fails.
func SimulateFalseDowns(cfg Config, delay, jitter time.Duration, loss float64, duration time.Duration, seed int64) int {
	return newSimulation(cfg, delay, jitter, loss, seed).falseDowns(duration)
}

// falseDowns counts the down events over duration (see
// SimulateFalseDowns).
func (s *simulation) falseDowns(duration time.Duration) int {
	downs, prev := 0, s.link.State()
	s.run(s.start.Add(duration), func() bool {
		st := s.link.State()
		if st == StateDown && prev != StateDown {
			downs++
		}
		prev = st
		return false
	})
	return downs
}

// simulation is one Link, its peer and the network between them.
type simulation struct {
	rng           *rand.Rand
	delay, jitter time.Duration
	loss          float64
	// extra draws a frame's extra delay; uniform in [-jitter, jitter]
	// unless a test replaces it.
	extra  func() time.Duration
	start  time.Time
	now    time.Time
	outage time.Time // zero: none
	// stream, when set, makes the network one ordered stream each way, as
	// tcp is: a frame the network loses is sent again after stream.rto
	// instead, and no frame arrives before the one sent ahead of it.
	stream *simStream
	link   *Link
	peer   *Link
	queue  arrivals
	next   time.Time // when link wants its next Tick
}

func newSimulation(cfg Config, delay, jitter time.Duration, loss float64, seed int64) *simulation {
	s := &simulation{
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x6d6f6e69746f72)),
		delay:  delay,
		jitter: jitter,
		loss:   loss,
		start:  time.Unix(1_700_000_000, 0),
	}
	s.extra = func() time.Duration { return time.Duration((2*s.rng.Float64() - 1) * float64(s.jitter)) }
	s.now = s.start
	clock := func() time.Time { return s.now }
	s.link = NewLink("sim", cfg, s.sendRequest, clock)
	s.peer = NewLink("sim-peer", cfg, func([]byte) error { return nil }, clock)
	s.peer.SetEnabled(false) // a pure responder
	s.next = s.now
	return s
}

// simStream is the state of an ordered stream each way (simulation.stream).
type simStream struct {
	rto          time.Duration
	toPeer, back time.Time // when the last frame each way arrives
}

// lost draws the fate of a frame sent at t; on an ordered stream only an
// outage loses it (the network's losses are resent).
func (s *simulation) lost(t time.Time) bool {
	if !s.outage.IsZero() && !t.Before(s.outage) {
		return true
	}
	return s.stream == nil && s.rng.Float64() < s.loss
}

// transit draws the one-way delay of a frame.
func (s *simulation) transit() time.Duration { return max(s.delay+s.extra(), 0) }

// sendRequest carries a request to the peer and queues the peer's response
// for arrival; the whole round trip is drawn at send time.
func (s *simulation) sendRequest(b []byte) error {
	sent := s.now
	if s.lost(sent) {
		return nil
	}
	req, err := DecodePacket(b)
	if err != nil {
		return err
	}
	atPeer := sent.Add(s.transit())
	if st := s.stream; st != nil {
		atPeer = st.arrive(atPeer, s.rng.Float64() < s.loss, &st.toPeer)
	}
	reply, err := s.peer.Receive(req, atPeer.Add(simPeerOffset))
	if err != nil {
		return err
	}
	back := atPeer.Add(simPeerHold)
	reply.T3 = back.Add(simPeerOffset).UnixNano()
	at := back.Add(s.transit())
	if st := s.stream; st != nil {
		if !s.outage.IsZero() && !back.Before(s.outage) {
			return nil
		}
		at = st.arrive(at, s.rng.Float64() < s.loss, &st.back)
	} else if s.lost(back) {
		return nil
	}
	heap.Push(&s.queue, arrival{at: at, departed: back, pkt: reply.Append(nil)})
	return nil
}

// arrive returns when a frame due at at arrives on the stream whose last
// arrival is *last: a retransmission later when resent, and never before
// the frame ahead of it.
func (st *simStream) arrive(at time.Time, resent bool, last *time.Time) time.Time {
	if resent {
		at = at.Add(st.rto)
	}
	if at.Before(*last) {
		at = *last
	}
	*last = at
	return at
}

// run advances the clock to until, delivering arrivals and ticking the
// link in time order. stop, if not nil, is asked after every step and ends
// the run early when it returns true.
func (s *simulation) run(until time.Time, stop func() bool) {
	for {
		if len(s.queue) > 0 && s.queue[0].at.Before(s.next) {
			a := heap.Pop(&s.queue).(arrival)
			if a.at.After(until) {
				heap.Push(&s.queue, a)
				s.now = until
				return
			}
			s.now = a.at
			// An outage set after the response was drawn still catches it.
			caught := !s.outage.IsZero() && !a.departed.Before(s.outage)
			if p, err := DecodePacket(a.pkt); err == nil && !caught {
				_, _ = s.link.Receive(p, a.at)
			}
		} else {
			if s.next.After(until) {
				s.now = until
				return
			}
			s.now = s.next
		}
		// Tick after every step, as Run does after a change: early calls
		// are harmless and keep the schedule current.
		s.next = s.link.Tick(s.now)
		if stop != nil && stop() {
			return
		}
	}
}

// arrival is a response on its way back.
type arrival struct {
	at, departed time.Time
	pkt          []byte
}

// arrivals is a min-heap of arrivals by time.
type arrivals []arrival

func (a arrivals) Len() int           { return len(a) }
func (a arrivals) Less(i, j int) bool { return a[i].at.Before(a[j].at) }
func (a arrivals) Swap(i, j int)      { a[i], a[j] = a[j], a[i] }
func (a *arrivals) Push(x any)        { *a = append(*a, x.(arrival)) }
func (a *arrivals) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}
