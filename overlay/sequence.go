package overlay

import (
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
	"time"
)

// Messages over a lossy link (udp). The transport loses, duplicates and
// reorders frames as the network does; the link keeps order and counts
// what it loses, and its sender keeps within what the receiver can take:
//
//   - Every frame of message records begins with RecDataSeq, the number of
//     its first record (records are numbered from 1 per session, as on a
//     reliable link, see retain.go).
//   - The receiver hands records on in their order. A frame that comes
//     early waits, at most reorderWait or until maxHeld frames wait, for
//     the ones before it; those that have not come by then are lost, and
//     counted (lost_in_transit). A frame that comes late, or twice, is
//     dropped (its records were handed on or counted lost already). The
//     last frames of a burst have no later frame to show they are
//     missing, so the sender, while records stay unacknowledged, sends a
//     frame of none headed by the next number (a tail mark, writer.go).
//   - The receiver acknowledges the records it has handed on or given up,
//     as on a reliable link, so that what the sender keeps for failover
//     follows, and the sender never has more than lossyWindow bytes of
//     records unacknowledged: a burst waits in the sender's queue (bounded,
//     and counted when full) rather than overflowing the receiver's.
//
// Lost messages are not sent again: loss on a lossy link is the network's,
// measured by the link's monitor. Use quic for a link that must lose
// nothing.

const (
	// reorderWait is how long a frame that came early waits for the ones
	// before it: above the reordering that jitter causes on a wide-area
	// path, short enough not to hold a stream up for long behind a loss.
	reorderWait = 25 * time.Millisecond
	// maxHeld bounds the frames waiting for earlier ones.
	maxHeld = 1024
	// lossyWindow bounds the bytes of records a lossy link's sender has
	// unacknowledged: about 370 full datagrams, well within the depth of
	// a udp link's receive queue (see transports.udpQueueDepth).
	lossyWindow = 512 << 10
)

// ackEcho repeats a lossy link's latest acknowledgement. An
// acknowledgement is a datagram like any other and may be lost; a sender
// whose window is full would then wait for the next one for ever, since
// it sends nothing new that could be acknowledged. So the receiver's
// writer sends its count again every ackEchoEvery for ackEchoFor after the
// count last moved: a few small records per second, only while messages
// flow.
type ackEcho struct {
	count uint64    // the count last seen
	moved time.Time // when it changed
	sent  time.Time // when it was last repeated
}

const (
	ackEchoEvery = 50 * time.Millisecond
	ackEchoFor   = 2 * time.Second
)

// repeat appends the acknowledgement of acked records to frames when it
// is due again.
func (e *ackEcho) repeat(frames []byte, acked uint64, now time.Time) []byte {
	if acked != e.count {
		e.count, e.moved = acked, now
	}
	if acked == 0 || now.Sub(e.moved) > ackEchoFor || now.Sub(e.sent) < ackEchoEvery {
		return frames
	}
	e.sent = now
	return AppendU64Record(frames, RecDataAck, acked)
}

// resequencer puts a lossy link's message frames back in order. It is
// owned by the session's reader.
type resequencer struct {
	next uint64 // the number of the next record to hand on
	held []heldFrame
}

type heldFrame struct {
	first uint64
	recs  []byte // a copy: the frame's buffer is reused
	at    time.Time
}

func newResequencer() *resequencer { return &resequencer{next: 1} }

// push takes a frame of records numbered from first, received at at, and
// hands every record that is now in order to deliver. It returns the
// records given up as lost.
func (q *resequencer) push(first uint64, recs []byte, at time.Time, deliver func([]byte)) uint64 {
	switch {
	case first < q.next:
		return 0 // late, or a copy
	case first > q.next:
		i, dup := slices.BinarySearchFunc(q.held, first, func(h heldFrame, n uint64) int { return cmp.Compare(h.first, n) })
		if !dup {
			q.held = slices.Insert(q.held, i, heldFrame{first: first, recs: append([]byte(nil), recs...), at: at})
		}
		return q.expire(at, deliver)
	}
	deliver(recs)
	q.next += uint64(CountRecords(recs))
	q.drain(deliver)
	return 0
}

// expire gives up on the records missing before the frames that have
// waited too long, or before the oldest when too many wait, and hands on
// what follows. It returns the records given up.
func (q *resequencer) expire(now time.Time, deliver func([]byte)) uint64 {
	var lost uint64
	for len(q.held) > 0 && (len(q.held) > maxHeld || q.overdue(now)) {
		lost += q.held[0].first - q.next
		q.next = q.held[0].first
		q.drain(deliver)
	}
	return lost
}

// overdue reports whether a frame has waited past reorderWait.
func (q *resequencer) overdue(now time.Time) bool {
	for _, h := range q.held {
		if now.Sub(h.at) > reorderWait {
			return true
		}
	}
	return false
}

// drain hands on the held frames that are next in order.
func (q *resequencer) drain(deliver func([]byte)) {
	for len(q.held) > 0 && q.held[0].first <= q.next {
		h := q.held[0]
		q.held = q.held[1:]
		if h.first == q.next {
			deliver(h.recs)
			q.next += uint64(CountRecords(h.recs))
		}
	}
}

// handedOn is how many records the resequencer has handed on or given
// up: what the receiver acknowledges.
func (q *resequencer) handedOn() uint64 { return q.next - 1 }

// appendDataSeq encodes the number of a frame's first message record.
func appendDataSeq(b []byte, first uint64) []byte {
	return AppendU64Record(b, RecDataSeq, first)
}

// dataSeqSize is the size of a RecDataSeq record.
const dataSeqSize = RecordHeader + 8

// splitDataSeq reports whether frame begins with RecDataSeq, and returns
// its number and the records after it.
func splitDataSeq(frame []byte) (uint64, []byte, bool) {
	if len(frame) < dataSeqSize || RecordType(frame[0]) != RecDataSeq || binary.BigEndian.Uint32(frame[1:]) != 8 {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(frame[RecordHeader:]), frame[dataSeqSize:], true
}

// lossySender holds a lossy link's message records until its window has
// room for them. The session's writer fills and empties it; when the link
// fails, what waits is taken out to be routed again.
type lossySender struct {
	mu   sync.Mutex
	pend []byte // records taken from the queue, not sent yet
	off  int    // pend[off:] is what waits
}

// add takes records from the send queue.
func (w *lossySender) add(recs []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off > 0 && w.off >= len(w.pend)/2 {
		w.pend = append(w.pend[:0], w.pend[w.off:]...)
		w.off = 0
	}
	w.pend = append(w.pend, recs...)
}

// waiting is how many bytes of records wait.
func (w *lossySender) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pend) - w.off
}

// takeAll takes out every record waiting.
func (w *lossySender) takeAll() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.pend[w.off:]
	w.pend, w.off = nil, 0
	return out
}

// next takes out, as a buffer of its own, the waiting records that fit in
// room bytes (at least one, when any waits and room is positive).
func (w *lossySender) next(room int) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	recs := w.pend[w.off:]
	n := 0
	if room > 0 {
		n = fitRecords(recs, room)
	}
	w.off += n
	return append([]byte(nil), recs[:n]...)
}
