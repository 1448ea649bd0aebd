package broker

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/overlay"
)

// A publisher's order across a change of route. When a broker's routes
// change, the messages it sends on the new route can overtake those still
// on the old one: the old route is slower, or it failed and what it held
// comes back the long way round (reroute.go). Two things keep the order:
//
//   - Streams. The broker where messages enter the network numbers them,
//     per publishing connection, cost profile, priority class and
//     destination, from 1 without gaps (overlay.Dest.Stream and Num), so
//     that a destination can tell a message that is missing from one that
//     went elsewhere. (Profiles take routes of their own, and a congested
//     link serves classes out of turn on purpose: order is kept within
//     each.)
//   - Fences. For fenceWindow after its routes changed, a broker marks the
//     messages it sends or passes on as fenced (overlay.Message.Fenced). A
//     destination delivers a fenced message only after every message
//     before it in its stream, holding it and what follows until they have
//     come, or until orderWait has passed: then it stops waiting, and
//     counts it, so that a message the network lost stalls the ones after
//     it no longer than that.
//
// A message that is not fenced is delivered as it comes: a gap before it
// is a message lost or late, and one that comes late is delivered and
// counted (delivered_out_of_order), never hidden.

const (
	// fenceWindow is how long after its routes changed a broker fences
	// the messages it sends: long enough for what the old routes held to
	// arrive or be routed again.
	fenceWindow = time.Second
	// orderWait is the longest a destination holds a fenced message for
	// the ones before it.
	orderWait = 500 * time.Millisecond
	// maxHeldPerStream bounds what a destination holds for one stream;
	// past it, it stops waiting.
	maxHeldPerStream = 16384
	// maxStreams bounds the streams one stripe of the order buffer
	// follows, and the destinations one publishing connection numbers
	// messages for; past it, they start over.
	maxStreams = 1 << 14
)

// streams numbers the messages one publishing connection sends into the
// network. It is owned by the connection's reader.
type streams struct {
	id uint64 // the connection's stream, never 0
	// last holds, per cost profile and class, then destination, the
	// number of the last message sent there.
	last []map[string]*uint64
}

func newStreams() *streams {
	s := &streams{}
	for s.id == 0 {
		s.id = uint64(rand.Uint32())
	}
	return s
}

// number gives the destinations of a message entering the network, as
// grouped by next hop, their places in their streams.
func (s *streams) number(m *overlay.Message, groups []hopGroup) {
	k := int(m.Profile)*int(sendq.NumClasses) + int(m.Class)
	for k >= len(s.last) {
		s.last = append(s.last, nil)
	}
	last := s.last[k]
	if last == nil || len(last) >= maxStreams {
		last = make(map[string]*uint64)
		s.last[k] = last
	}
	for i := range groups {
		for j := range groups[i].dests {
			d := &groups[i].dests[j]
			n := last[string(d.Broker)]
			if n == nil {
				n = new(uint64)
				last[string(d.Broker)] = n
			}
			*n++
			d.Stream, d.Num = s.id, *n
		}
	}
}

// fencing reports whether messages sent on rt are fenced: its ways moved
// less than fenceWindow ago. Once that has passed it no longer reads the
// clock.
func (rt *routeTable) fencing() bool {
	until := rt.fenceUntil.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() < until {
		return true
	}
	rt.fenceUntil.CompareAndSwap(until, 0)
	return false
}

// orderBuffer follows, per origin and stream, the messages for this
// broker, and holds the fenced ones that came before their turn. Its
// stripes, like the dedup table's, let the readers of several links
// deliver at once; each delivers what it releases under the stripe's lock,
// so that a stream's messages leave it in order.
type orderBuffer struct {
	held    atomic.Int64 // streams with messages held, in every stripe
	stripes [dedupStripes]orderStripe
}

type orderStripe struct {
	mu      sync.Mutex
	streams map[string]map[uint64]*streamState // by origin, then stream, profile and class
	count   int
	// What delivering a released message needs, owned under mu.
	plan  plan
	cache matchCache
	msg   overlay.Message
}

type streamState struct {
	next uint64    // the number the stream's next message should have
	held []heldMsg // by number, all past next
}

type heldMsg struct {
	num    uint64
	fenced bool
	at     time.Time
	body   []byte // the message record's body, copied
}

// state returns the state of a stream, and false when it is new.
func (s *orderStripe) state(origin []byte, key uint64) (*streamState, bool) {
	byKey := s.streams[string(origin)]
	if st := byKey[key]; st != nil {
		return st, true
	}
	if s.streams == nil || s.count >= maxStreams {
		s.forgetIdle()
	}
	if byKey == nil {
		byKey = make(map[uint64]*streamState)
		s.streams[string(origin)] = byKey
	}
	st := &streamState{}
	byKey[key] = st
	s.count++
	return st, false
}

// forgetIdle forgets the streams that hold nothing: their next messages
// are taken as they come.
func (s *orderStripe) forgetIdle() {
	if s.streams == nil {
		s.streams = make(map[string]map[uint64]*streamState)
		return
	}
	for origin, byKey := range s.streams {
		for k, st := range byKey {
			if len(st.held) == 0 {
				delete(byKey, k)
				s.count--
			}
		}
		if len(byKey) == 0 {
			delete(s.streams, origin)
		}
	}
}

// takeForOrder decides on a message for this broker (dest d of m, whose
// record is body) that passed the dedup: it reports false when the message
// is to be delivered at once, the usual case, and true when the order
// buffer took it, to hold it or to deliver it in its turn.
func (b *Broker) takeForOrder(m *overlay.Message, d *overlay.Dest, body []byte) bool {
	if d.Stream == 0 {
		return false
	}
	s := &b.order.stripes[originStripe(m.Origin)]
	s.mu.Lock()
	defer s.mu.Unlock()
	st, known := s.state(m.Origin, d.Stream<<16|uint64(m.Profile)<<8|uint64(m.Class))
	switch {
	case !known:
		st.next = d.Num + 1
		return false
	case d.Num < st.next:
		// Later than a message after it, which went first.
		b.stats.outOfOrder.Add(1)
		return false
	case len(st.held) == 0 && d.Num == st.next:
		st.next++
		return false
	case len(st.held) == 0 && !m.Fenced:
		// What it skips is lost, or late.
		st.next = d.Num + 1
		return false
	case len(st.held) == 0:
		b.order.held.Add(1)
	}
	h := heldMsg{num: d.Num, fenced: m.Fenced, at: time.Now(), body: bytes.Clone(body)}
	i, _ := slices.BinarySearchFunc(st.held, h.num, func(x heldMsg, n uint64) int {
		switch {
		case x.num < n:
			return -1
		case x.num > n:
			return 1
		}
		return 0
	})
	st.held = slices.Insert(st.held, i, h)
	if len(st.held) > maxHeldPerStream {
		b.giveUpLocked(m.Origin, st, "more held than the order buffer keeps")
	}
	if n := b.releaseLocked(s, st); i >= n {
		b.stats.heldForOrder.Add(1)
	}
	return true
}

// releaseLocked delivers, in order, the held messages of a stream whose
// turn has come: the next in the stream, and any that is not fenced (what
// it skips is lost or late, as for one that comes when nothing is held).
// It returns how many it delivered.
func (b *Broker) releaseLocked(s *orderStripe, st *streamState) int {
	n := 0
	for n < len(st.held) && (st.held[n].num == st.next || !st.held[n].fenced) {
		b.deliverHeldLocked(s, st.held[n].body)
		st.next = st.held[n].num + 1
		n++
	}
	clear(st.held[:n])
	st.held = st.held[n:]
	if n > 0 && len(st.held) == 0 {
		st.held = nil
		b.order.held.Add(-1)
	}
	return n
}

// giveUpLocked stops waiting for the messages before the first one a
// stream holds, and counts it.
func (b *Broker) giveUpLocked(origin []byte, st *streamState, why string) {
	missing := st.held[0].num - st.next
	st.next = st.held[0].num
	b.stats.orderGaveUp.Add(1)
	b.log.Warn("delivering messages without those before them", slog.String("origin", string(origin)), slog.Uint64("missing", missing), slog.String("reason", why))
}

// deliverHeldLocked delivers a released message to this broker's own
// subscribers.
func (b *Broker) deliverHeldLocked(s *orderStripe, body []byte) {
	m := &s.msg
	if err := m.Decode(body); err != nil {
		return // it decoded when it arrived
	}
	p := &s.plan
	p.reset()
	for i := range m.Dests {
		if d := &m.Dests[i]; bytes.Equal(d.Broker, b.addr) {
			b.deliverHere(p, &s.cache, m, d)
		}
	}
	b.executeOn(b.routes.Load(), p, m, 0, false)
	p.kick.Flush()
}

// orderSweep stops waiting for the messages fenced ones have waited
// orderWait for, until the broker stops.
func (b *Broker) orderSweep() {
	tick := time.NewTicker(orderWait / 10)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-tick.C:
			if b.order.held.Load() == 0 {
				continue
			}
			for i := range b.order.stripes {
				s := &b.order.stripes[i]
				s.mu.Lock()
				for origin, byKey := range s.streams {
					for _, st := range byKey {
						for len(st.held) > 0 && now.Sub(st.held[0].at) >= orderWait {
							b.giveUpLocked([]byte(origin), st, "waited too long")
							b.releaseLocked(s, st)
						}
					}
				}
				s.mu.Unlock()
			}
		}
	}
}
