// Package monitor measures one overlay link at a time: latency, jitter,
// loss, reordering and the delay distribution, and decides whether the link
// is alive.
//
// A Link sends small performance packets (Packet) to its peer over the link
// itself and turns the peer's responses into samples. Probes double as
// heartbeats: a loss-aware phi accrual detector (or a plain timeout) moves
// the link between up, suspect and down, and publishes every change as an
// Event.
//
// The package is pure: it owns no sockets and, unless Link.Run is used, no
// goroutines. Its owner hands it a send function, passes received packets
// to Link.Receive and calls Link.Tick when Tick asked to be called, so tests
// and simulations drive it with a fake clock.
//
// What it deliberately does not do: it knows links, not brokers, routes or
// costs; it does not frame, batch or transmit packets (the caller embeds
// them in its own frames); it does not synchronise clocks, so one-way
// latency is estimated as half the round trip.
package monitor

import (
	"sync"
	"time"
)

// State is what the failure detector believes about a link.
type State uint8

// The states of a link. A link starts Unknown, goes Up at the first
// response, Suspect and then Down as silence grows, and Up again at the next
// response. Disabled means measurement is switched off: no probes, no
// verdict.
const (
	StateUnknown State = iota
	StateUp
	StateSuspect
	StateDown
	StateDisabled
)

var stateNames = [...]string{"unknown", "up", "suspect", "down", "disabled"}

// String returns the lower-case name of s, as used in APIs and logs.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Event is one state change of one link.
type Event struct {
	LinkID   string
	From, To State
	At       time.Time
	// Reason says why, for logs: "response", "phi 6.2 >= 6", "disabled"...
	Reason string
}

// eventBuffer is the capacity of a subscriber's channel. State changes are
// rare (a few per outage), so 16 covers any burst a reader can fall behind
// by; past that the oldest events are dropped, since the newest is the
// current truth.
const eventBuffer = 16

// hub fans events out to subscribers without ever blocking the sender.
type hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// subscribe returns a new buffered channel and the function that removes
// and closes it.
func (h *hub) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, eventBuffer)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[chan Event]struct{})
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
			close(ch)
		})
	}
}

// publish delivers ev to every subscriber. A full channel loses its oldest
// event to make room. Only publish sends on the channels, under h.mu, so
// after one receive there is room for the send.
func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
			continue
		default:
		}
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- ev:
		default:
		}
	}
}
