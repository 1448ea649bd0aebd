package broker

import (
	"sync"
	"sync/atomic"
)

// outbuf is the bounded send queue of one connection, filled by any number
// of goroutines and drained by the connection's single writer.
//
// Data is bounded in bytes: an append that would take the queue past its
// limit is dropped and counted (tail drop: the newest message loses, so
// what is already queued keeps its order). Control data is never dropped;
// it is small, and losing it would leave the network inconsistent.
type outbuf struct {
	mu     sync.Mutex
	ctrl   []byte // sent before data
	data   []byte
	limit  int
	closed bool
	kick   chan struct{}

	dropped      atomic.Uint64
	droppedBytes atomic.Uint64
}

func newOutbuf(limit int) *outbuf {
	return &outbuf{limit: limit, kick: make(chan struct{}, 1)}
}

// add appends data produced by fn; it reports false, and counts a drop,
// when the queue is full or closed. It does not wake the writer: the caller
// does, through a kicker, once it has queued a whole batch.
func (o *outbuf) add(fn func([]byte) []byte) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	n := len(o.data)
	o.data = fn(o.data)
	if len(o.data) > o.limit && n > 0 {
		size := len(o.data) - n
		o.data = o.data[:n]
		o.mu.Unlock()
		o.dropped.Add(1)
		o.droppedBytes.Add(uint64(size))
		return false
	}
	o.mu.Unlock()
	return true
}

// addCtrl appends control data, which is never dropped.
func (o *outbuf) addCtrl(fn func([]byte) []byte) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.ctrl = fn(o.ctrl)
	o.mu.Unlock()
	o.signal()
}

func (o *outbuf) signal() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// take hands the writer everything queued, swapping in the writer's spare
// buffers so that neither side allocates in the steady state. Without
// withData it takes the control data alone.
func (o *outbuf) take(ctrlSpare, dataSpare []byte, withData bool) (ctrl, data []byte) {
	o.mu.Lock()
	ctrl, o.ctrl = o.ctrl, ctrlSpare[:0]
	if withData {
		data, o.data = o.data, dataSpare[:0]
	} else {
		data = dataSpare[:0]
	}
	o.mu.Unlock()
	return ctrl, data
}

// takeData takes the data waiting, which will not be sent.
func (o *outbuf) takeData() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	data := o.data
	o.data = nil
	return data
}

// queued is the number of data bytes waiting.
func (o *outbuf) queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.data)
}

// close refuses further appends and returns the data queued, which will
// not be sent.
func (o *outbuf) close() []byte {
	o.mu.Lock()
	data := o.data
	o.closed = true
	o.ctrl, o.data = nil, nil
	o.mu.Unlock()
	o.signal()
	return data
}

// kicker collects the queues a reader filled while handling one batch of
// input and wakes their writers once at the end of it, so that a writer
// sends what a whole batch produced in one go instead of waking for every
// message.
type kicker struct{ bufs []*outbuf }

func (k *kicker) add(o *outbuf) {
	for _, x := range k.bufs {
		if x == o {
			return
		}
	}
	k.bufs = append(k.bufs, o)
}

func (k *kicker) flush() {
	for _, o := range k.bufs {
		o.signal()
	}
	clear(k.bufs)
	k.bufs = k.bufs[:0]
}
