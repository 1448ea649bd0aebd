package broker

import (
	"log/slog"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wayline/wayline/overlay"
)

// The broker is itself a client of the network: it subscribes to subjects
// meant for it (control messages on $WL.ctl.<address>) and publishes
// (replies, and in time cost updates and performance reports). Its
// subscriptions are part of the interest it announces, like a leaf's, and
// messages for them are handed to one dispatcher goroutine, so that a slow
// handler never holds up a reader.

// internalMsg is a message delivered to one of the broker's own
// subscriptions. Its slices are its own.
type internalMsg struct {
	Subject string
	Reply   string
	Origin  string // the broker the message was published at
	Data    []byte // payload, without NATS headers
}

// internalQueue bounds the messages waiting for the dispatcher; past it
// they are dropped and counted.
const internalQueue = 1024

// internal holds the broker's own subscriptions and publisher state.
type internal struct {
	mu       sync.Mutex // guards handlers
	handlers map[string]func(internalMsg)
	ch       chan internalMsg

	pubMu sync.Mutex // serialises publishers; guards cache and plan
	cache matchCache
	plan  plan
	msg   overlay.Message
}

func newInternal() *internal {
	return &internal{handlers: make(map[string]func(internalMsg)), ch: make(chan internalMsg, internalQueue)}
}

// subscribeInternal makes the broker a subscriber of subject: messages on
// it, from anywhere in the network, are handed to fn on the dispatcher
// goroutine.
func (b *Broker) subscribeInternal(subject string, fn func(internalMsg)) {
	b.internal.mu.Lock()
	b.internal.handlers[subject] = fn
	b.internal.mu.Unlock()
	b.mu.Lock()
	b.interest.set(&b.interest.core, subject, "", 1)
	b.announceLocalLocked()
	b.mu.Unlock()
}

// deliverInternal queues a copy of m for each of the broker's matching
// subscriptions.
func (b *Broker) deliverInternal(m *overlay.Message, subs []*entry) {
	data := m.Data
	if m.HasHdr {
		data = data[m.HdrLen:]
	}
	im := internalMsg{Subject: string(m.Subject), Reply: string(m.Reply), Origin: string(m.Origin), Data: append([]byte(nil), data...)}
	for _, e := range subs {
		select {
		case b.internal.ch <- im:
		default:
			b.stats.internalDrops.Add(1)
			b.noteDrop("internal", e.subject, "dispatcher queue full")
		}
	}
}

// dispatch runs the broker's subscription handlers until the broker stops.
func (b *Broker) dispatch() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case m := <-b.internal.ch:
			b.handleInternal(m)
		}
	}
}

func (b *Broker) handleInternal(m internalMsg) {
	b.internal.mu.Lock()
	var fns []func(internalMsg)
	for subject, fn := range b.internal.handlers {
		if server.SubjectMatchesFilter(m.Subject, subject) {
			fns = append(fns, fn)
		}
	}
	b.internal.mu.Unlock()
	if len(fns) == 0 {
		b.log.Debug("internal message without a handler", slog.String("subject", m.Subject))
	}
	for _, fn := range fns {
		fn(m)
	}
}

// publishInternal sends a message from the broker itself to every
// subscriber in the network, as a client publishing here would.
func (b *Broker) publishInternal(subject, reply string, data []byte) {
	in := b.internal
	in.pubMu.Lock()
	defer in.pubMu.Unlock()
	m := &in.msg
	*m = overlay.Message{Origin: b.addr, Seq: b.seq.Add(1), Subject: []byte(subject), Data: data, Dests: m.Dests[:0]}
	if reply != "" {
		m.Reply = []byte(reply)
	}
	r := in.cache.get(b.interest, m.Subject)
	m.Profile, m.Class = r.profile, r.class
	p := &in.plan
	p.reset()
	for _, x := range r.leaves {
		p.addLeaf(x, nil)
	}
	for _, br := range r.brokers {
		p.addBroker(br)
	}
	if origin, ok := b.replies.lookup(m.Subject); ok {
		p.addBroker(origin)
	}
	if len(r.core) > 0 {
		b.deliverInternal(m, r.core)
	}
	b.execute(p, m, byte(b.cfg.MaxHops), true)
	p.kick.Flush()
}

// publishLocal delivers a message from the broker itself to this broker's
// own subscribers only (its leaves): for what other brokers learn another
// way, such as cost updates, which are flooded.
func (b *Broker) publishLocal(subject string, data []byte) {
	in := b.internal
	in.pubMu.Lock()
	defer in.pubMu.Unlock()
	m := &in.msg
	*m = overlay.Message{Origin: b.addr, Seq: b.seq.Add(1), Subject: []byte(subject), Data: data, Dests: m.Dests[:0]}
	r := in.cache.get(b.interest, m.Subject)
	p := &in.plan
	p.reset()
	for _, x := range r.leaves {
		p.addLeaf(x, nil)
	}
	b.execute(p, m, 0, true)
	p.kick.Flush()
}
