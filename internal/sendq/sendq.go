// Package sendq is the bounded send queue of one connection, filled by any
// number of goroutines and drained by the connection's single writer, and
// the kicker that wakes the writers a batch of input fed. The broker's
// leaf connections and the overlay's link sessions each send through one.
//
// The package knows nothing of what it queues: it holds bytes, already
// encoded, and never writes them anywhere. It does not count what its
// owner drops for reasons of its own (a link that is down).
package sendq

import (
	"sync"
	"sync/atomic"
)

// Queue is the send queue of one connection.
//
// Data is bounded in bytes: an append that would take the queue past its
// limit is dropped and counted (tail drop: the newest message loses, so
// what is already queued keeps its order). Control data is never dropped;
// it is small, and losing it would leave the network inconsistent.
type Queue struct {
	mu     sync.Mutex
	ctrl   []byte // sent before data
	data   []byte
	adds   int // data appends since the writer last took the data
	limit  int
	closed bool
	kick   chan struct{}

	dropped atomic.Uint64
}

// New returns a queue that holds at most limit bytes of data.
func New(limit int) *Queue {
	return &Queue{limit: limit, kick: make(chan struct{}, 1)}
}

// Add appends data produced by fn; it reports false when the queue is
// full, counting a drop, or closed. It does not wake the writer: the caller
// does, through a Kicker, once it has queued a whole batch.
func (o *Queue) Add(fn func([]byte) []byte) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	n := len(o.data)
	o.data = fn(o.data)
	if len(o.data) > o.limit && n > 0 {
		o.data = o.data[:n]
		o.mu.Unlock()
		o.dropped.Add(1)
		return false
	}
	o.adds++
	o.mu.Unlock()
	return true
}

// AddCtrl appends control data, which is never dropped, and wakes the
// writer.
func (o *Queue) AddCtrl(fn func([]byte) []byte) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.ctrl = fn(o.ctrl)
	o.mu.Unlock()
	o.Signal()
}

// Signal wakes the writer.
func (o *Queue) Signal() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Kick is where the writer waits to be woken.
func (o *Queue) Kick() <-chan struct{} { return o.kick }

// Take hands the writer everything queued, swapping in the writer's spare
// buffers so that neither side allocates in the steady state. Without
// withData it takes the control data alone.
func (o *Queue) Take(ctrlSpare, dataSpare []byte, withData bool) (ctrl, data []byte) {
	ctrl, data, _ = o.TakeCounted(ctrlSpare, dataSpare, withData)
	return ctrl, data
}

// TakeCounted is Take that also says how many appends (Add) the data
// holds: a writer whose callers append one record each knows how many
// records it takes without walking them.
func (o *Queue) TakeCounted(ctrlSpare, dataSpare []byte, withData bool) (ctrl, data []byte, adds int) {
	o.mu.Lock()
	ctrl, o.ctrl = o.ctrl, ctrlSpare[:0]
	if withData {
		data, o.data = o.data, dataSpare[:0]
		adds, o.adds = o.adds, 0
	} else {
		data = dataSpare[:0]
	}
	o.mu.Unlock()
	return ctrl, data, adds
}

// TakeData takes the data waiting, which will not be sent.
func (o *Queue) TakeData() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	data := o.data
	o.data, o.adds = nil, 0
	return data
}

// Queued is the number of data bytes waiting.
func (o *Queue) Queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.data)
}

// Dropped is the number of appends refused because the queue was full.
func (o *Queue) Dropped() uint64 { return o.dropped.Load() }

// Close refuses further appends and returns the data queued, which will
// not be sent.
func (o *Queue) Close() []byte {
	o.mu.Lock()
	data := o.data
	o.closed = true
	o.ctrl, o.data, o.adds = nil, nil, 0
	o.mu.Unlock()
	o.Signal()
	return data
}

// Kicker collects the queues a reader filled while handling one batch of
// input and wakes their writers once at the end of it, so that a writer
// sends what a whole batch produced in one go instead of waking for every
// message.
type Kicker struct{ bufs []*Queue }

// Add notes a queue to wake.
func (k *Kicker) Add(o *Queue) {
	for _, x := range k.bufs {
		if x == o {
			return
		}
	}
	k.bufs = append(k.bufs, o)
}

// Flush wakes the writers of every queue noted since the last Flush.
func (k *Kicker) Flush() {
	for _, o := range k.bufs {
		o.Signal()
	}
	clear(k.bufs)
	k.bufs = k.bufs[:0]
}
