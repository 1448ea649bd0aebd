package overlay

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// Failover without loss. A session keeps every message it sent until the
// peer acknowledges it, and when the link fails (its monitor declares it
// down, it is taken out of routing, or its connection ends) whatever was
// not acknowledged is routed again by the session's owner
// (Session.Unacknowledged), over the routes the failure leaves. The
// broker a message is for delivers it once however many copies come (see
// the broker's dedup.go), so a message that did arrive and whose
// acknowledgement did not is a duplicate, dropped there, not a second
// delivery.
//
// Acknowledgements are cumulative and cost nothing per message on the
// wire: on a reliable transport the n-th message record a session
// receives is the n-th its peer sent, so the receiver only says how many
// it has received (RecDataAck), every ackEvery records and every
// ackInterval while some are unacknowledged. The sender keeps the batches
// of records its writer sent, as they were (no copy), and frees each once
// every record in it is acknowledged. What it keeps is bounded by bytes
// and by age; what falls out of the bound is counted (it is no longer
// protected, not lost).

const (
	// ackEvery is how many message records a receiver takes before it
	// acknowledges them without waiting for the writer's tick.
	ackEvery = 1024
	// ackInterval is the longest a received record waits to be
	// acknowledged: the tick of a link's writer while it has some.
	ackInterval = 20 * time.Millisecond
)

// The buffers of acknowledged batches the retainer keeps for the writer
// to fill again: four larger ones, given out first (a burst fills them),
// and small ones (at most spareSmall bytes) up to spareMax. A link
// carrying a message at a time keeps each in a batch of its own until the
// acknowledgement (some 200 at 10,000 msg/s); without the small ones,
// every message took a new buffer.
const (
	spareMax   = 256
	spareSmall = 4 << 10
)

// retained is one batch of message records a writer sent.
type retained struct {
	buf   []byte
	last  uint64 // the number of its last record (records are numbered from 1 per session)
	count int    // its records
	at    time.Time
}

// retainer keeps a session's sent records until they are acknowledged.
type retainer struct {
	mu      sync.Mutex
	sent    uint64 // records kept to be sent: the writer keeps each batch before it sends it
	acked   uint64
	batches []retained // oldest first
	bytes   int
	spare   [][]byte // freed batches' buffers, for the writer to fill again
	small   [][]byte // and small ones, given out once spare is empty

	maxBytes int
	maxAge   time.Duration
	evicted  *atomic.Uint64 // records that fell out of the bound unacknowledged
}

func newRetainer(maxBytes int, maxAge time.Duration, evicted *atomic.Uint64) *retainer {
	return &retainer{maxBytes: maxBytes, maxAge: maxAge, evicted: evicted}
}

// keep takes a batch of message records the writer is about to send, and
// returns a buffer for the writer's next batch.
func (r *retainer) keep(data []byte, now time.Time) []byte {
	return r.keepCounted(data, CountRecords(data), now)
}

// keepCounted is keep for a batch of n records.
func (r *retainer) keepCounted(data []byte, n int, now time.Time) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent += uint64(n)
	if n == 0 {
		return data[:0]
	}
	r.batches = append(r.batches, retained{buf: data, last: r.sent, count: n, at: now})
	r.bytes += len(data)
	r.evictLocked(now)
	if buf := pop(&r.spare); buf != nil {
		return buf
	}
	return pop(&r.small)
}

// pop takes the last buffer of list, emptied, or returns nil.
func pop(list *[][]byte) []byte {
	k := len(*list) - 1
	if k < 0 {
		return nil
	}
	buf := (*list)[k]
	*list = (*list)[:k]
	return buf[:0]
}

// evictLocked drops the oldest batches past the bounds, counting their
// unacknowledged records.
func (r *retainer) evictLocked(now time.Time) {
	for len(r.batches) > 0 && (r.bytes > r.maxBytes || now.Sub(r.batches[0].at) > r.maxAge) {
		b := r.batches[0]
		first := b.last - uint64(b.count) + 1
		if r.acked < b.last {
			r.evicted.Add(b.last - max(r.acked+1, first) + 1)
		}
		r.freeLocked()
	}
}

// freeLocked forgets the oldest batch.
func (r *retainer) freeLocked() {
	b := r.batches[0]
	r.batches[0] = retained{}
	r.batches = r.batches[1:]
	r.bytes -= len(b.buf)
	switch {
	case cap(b.buf) <= spareSmall && len(r.small) < spareMax:
		r.small = append(r.small, b.buf)
	case len(r.spare) < 4:
		r.spare = append(r.spare, b.buf)
	}
}

// held is the bytes of records kept: on a lossy link, what is in flight.
func (r *retainer) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}

// oldest returns when the oldest batch still kept was sent, and whether
// any is.
func (r *retainer) oldest() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batches) == 0 {
		return time.Time{}, false
	}
	return r.batches[0].at, true
}

// next is the number the next record sent will have.
func (r *retainer) next() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent + 1
}

// ack takes the peer's count of records received.
func (r *retainer) ack(n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > r.sent || n <= r.acked {
		return // more than was sent can only be a peer's mistake
	}
	r.acked = n
	for len(r.batches) > 0 && r.batches[0].last <= n {
		r.freeLocked()
	}
}

// unacked takes out every record sent and not acknowledged, oldest first,
// as one run of records, and forgets them: they are routed again.
func (r *retainer) unacked() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []byte
	for _, b := range r.batches {
		first := b.last - uint64(b.count) + 1
		recs := b.buf
		for skip := max(r.acked+1, first) - first; skip > 0; skip-- {
			recs = recs[RecordHeader+int(binary.BigEndian.Uint32(recs[1:])):]
		}
		out = append(out, recs...)
	}
	for len(r.batches) > 0 {
		r.freeLocked()
	}
	r.acked = r.sent
	return out
}

// receipts counts the message records a session received, for its
// acknowledgements.
type receipts struct {
	received atomic.Uint64
	acked    atomic.Uint64 // the count last acknowledged
}

// due returns the count to acknowledge now, or 0: with force, any count
// not acknowledged yet; without, only once ackEvery have gathered.
func (c *receipts) due(force bool) uint64 {
	n, a := c.received.Load(), c.acked.Load()
	if n == a || !force && n-a < ackEvery {
		return 0
	}
	if !c.acked.CompareAndSwap(a, n) {
		return 0 // the other side acknowledged it
	}
	return n
}
