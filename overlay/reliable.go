package overlay

import (
	"encoding/binary"
	"sync"
	"time"
)

// Control records (interest, link state) must arrive, once and in order,
// or brokers disagree about the network. Stream transports guarantee that;
// on a lossy transport (udp) each control record travels in a numbered
// envelope that the receiver acknowledges, and the sender repeats what is
// not acknowledged. Data messages are never repeated: loss on a lossy link
// is real.

const (
	// relTick is how often the writer looks for envelopes to resend.
	relTick = 50 * time.Millisecond
	// relTimeout is how long an envelope waits for its acknowledgement
	// before it is sent again. It is above a trans-oceanic round trip, so
	// that a healthy link does not resend.
	relTimeout = 400 * time.Millisecond
	// relWindow bounds the envelopes a receiver holds out of order.
	relWindow = 4096
)

// relSend numbers outgoing control records and keeps them until acked.
type relSend struct {
	mu      sync.Mutex
	next    uint64
	unacked []relPending
	buf     []byte
}

type relPending struct {
	seq  uint64
	rec  []byte
	sent time.Time
}

// wrap puts each record of ctrl in an envelope and returns the envelopes to
// send now: the new ones, and old ones whose acknowledgement is overdue.
// The result is valid until the next call.
func (r *relSend) wrap(ctrl []byte, now time.Time) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.buf[:0]
	for i := range r.unacked {
		p := &r.unacked[i]
		if now.Sub(p.sent) >= relTimeout {
			out = append(out, p.rec...)
			p.sent = now
		}
	}
	for len(ctrl) > 0 {
		n := RecordHeader + int(binary.BigEndian.Uint32(ctrl[1:]))
		env := appendCtl(nil, r.next, ctrl[:n])
		r.unacked = append(r.unacked, relPending{seq: r.next, rec: env, sent: now})
		r.next++
		out = append(out, env...)
		ctrl = ctrl[n:]
	}
	r.buf = out
	return out
}

// ack forgets every envelope up to and including seq.
func (r *relSend) ack(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.unacked) && r.unacked[i].seq <= seq {
		i++
	}
	r.unacked = append(r.unacked[:0], r.unacked[i:]...)
}

// relRecv delivers envelopes in order, once.
type relRecv struct {
	expected uint64
	pending  map[uint64][]byte
}

func newRelRecv() *relRecv {
	return &relRecv{expected: 1, pending: make(map[uint64][]byte)}
}

// receive takes one envelope and calls deliver for every record that is now
// in order. It returns the cumulative acknowledgement to send back.
func (r *relRecv) receive(seq uint64, rec []byte, deliver func([]byte) error) (uint64, error) {
	switch {
	case seq < r.expected:
		return r.expected - 1, nil // a repeat; our ack was lost
	case seq > r.expected:
		if seq-r.expected < relWindow {
			if _, ok := r.pending[seq]; !ok {
				r.pending[seq] = append([]byte(nil), rec...)
			}
		}
		return r.expected - 1, nil
	}
	if err := deliver(rec); err != nil {
		return r.expected - 1, err
	}
	r.expected++
	for {
		next, ok := r.pending[r.expected]
		if !ok {
			break
		}
		delete(r.pending, r.expected)
		if err := deliver(next); err != nil {
			return r.expected - 1, err
		}
		r.expected++
	}
	return r.expected - 1, nil
}

// appendCtl wraps an encoded control record in a reliable envelope.
func appendCtl(b []byte, seq uint64, record []byte) []byte {
	b, s := BeginRecord(b, RecCtl)
	b = AppendU64(b, seq)
	b = append(b, record...)
	return EndRecord(b, s)
}

// decodeCtl reads an envelope: its number and the record in it.
func decodeCtl(body []byte) (uint64, []byte, error) {
	r := NewReader(body)
	seq := r.U64()
	return seq, r.Rest(), r.Err()
}
