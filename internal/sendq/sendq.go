// Package sendq is the bounded send queue of one connection, filled by any
// number of goroutines and drained by the connection's single writer, and
// the kicker that wakes the writers a batch of input fed. The broker's
// leaf connections and the overlay's link sessions each send through one.
//
// The package knows nothing of what it queues: it holds bytes, already
// encoded, and never writes them anywhere. It knows only the priority
// class each append was given (class.go). It does not count what its
// owner drops for reasons of its own (a link that is down).
package sendq

import (
	"sync"
	"sync/atomic"
	"time"
)

// Queue is the send queue of one connection.
//
// Data is bounded in bytes, over all classes together. An append that
// would take the queue past its limit makes room by evicting the newest
// appends of lower classes, lowest class first, when they hold enough;
// otherwise it is dropped (tail drop: the newest message loses, so what is
// already queued keeps its order). Both are counted by class. Control
// data is never dropped; it is small, and losing it would leave the
// network inconsistent.
//
// A queue that has only ever been given the Normal class hands the writer
// everything at each take, as a plain FIFO would. Once it has been given
// another class it serves the classes in priority order, a bounded take
// at a time (see TakeCounted and class.go).
type Queue struct {
	mu     sync.Mutex
	ctrl   []byte // sent before data
	lanes  [NumClasses]lane
	queued int         // data bytes in all lanes
	classy atomic.Bool // some append had a class other than Normal
	limit  int
	closed bool
	kick   chan struct{}

	// How big a classed take is (class.go): the quantum, the bytes and
	// time of the window the link's rate is being measured over, those of
	// the last take and whether it left data behind; now is the clock.
	quantum  int
	fixed    bool // the quantum comes from the link's rate (TakeAtRate)
	winBytes int
	winTime  time.Duration
	lastTake int
	lastAt   time.Time
	backlog  bool
	now      func() time.Time

	dropped [NumClasses]atomic.Uint64

	// The writer lock and the direct send (SetDirect).
	wmu    sync.Mutex
	direct func() bool
}

// DirectMax is the most data a feeder sends in the writer's place
// (SetDirect): a message or a few. More than that is a burst, which the
// writer goroutine sends while the feeder goes on reading.
const DirectMax = 4 << 10

// lane is the data of one class: appends not yet taken, oldest first.
type lane struct {
	buf    []byte
	head   int   // bytes of buf already taken (classed takes copy them out)
	ends   []int // where each append not yet taken ends in buf, from first
	first  int   // index in ends of the oldest append not yet taken
	waited int   // consecutive classed takes that served others while this lane had data
}

func (l *lane) bytes() int   { return len(l.buf) - l.head }
func (l *lane) appends() int { return len(l.ends) - l.first }

func (l *lane) reset(buf []byte) {
	l.buf, l.head, l.ends, l.first = buf[:0], 0, l.ends[:0], 0
}

// New returns a queue that holds at most limit bytes of data.
func New(limit int) *Queue {
	return &Queue{limit: limit, kick: make(chan struct{}, 1), quantum: MinQuantum, now: time.Now}
}

// Evicted is what an append evicted to make room: appends and their
// bytes, by class.
type Evicted struct {
	Appends, Bytes [NumClasses]int
}

// Any reports whether anything was evicted.
func (e *Evicted) Any() bool { return e.Appends != [NumClasses]int{} }

// Add appends data of class Normal produced by fn; see AddClass. Normal
// data evicts only lower classes, which a queue fed by Add alone never
// holds.
func (o *Queue) Add(fn func([]byte) []byte) bool {
	ok, _ := o.AddClass(Normal, fn)
	return ok
}

// AddClass appends data of class c produced by fn. It reports false when
// the queue is full, counting a drop, or closed, and what it evicted of
// lower classes to make room, counted as drops too, for the owner to
// count where it counts its own. It does not wake the writer: the caller
// does, through a Kicker, once it has queued a whole batch.
func (o *Queue) AddClass(c Class, fn func([]byte) []byte) (ok bool, ev Evicted) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false, ev
	}
	if c != Normal && !o.classy.Load() {
		o.classy.Store(true)
	}
	l := &o.lanes[c]
	n := len(l.buf)
	l.buf = fn(l.buf)
	size := len(l.buf) - n
	if over := o.queued + size - o.limit; over > 0 && o.queued > 0 && !o.evictBelow(c, over, &ev) {
		l.buf = l.buf[:n]
		o.mu.Unlock()
		o.dropped[c].Add(1)
		return false, ev
	}
	l.ends = append(l.ends, len(l.buf))
	o.queued += size
	o.mu.Unlock()
	return true, ev
}

// evictBelow frees at least need bytes by evicting the newest appends of
// the classes below c, lowest first, noting them in ev, and reports true;
// when those classes do not hold enough it evicts nothing and reports
// false.
func (o *Queue) evictBelow(c Class, need int, ev *Evicted) bool {
	below := c.below()
	have := 0
	for _, x := range below {
		have += o.lanes[x].bytes()
	}
	if have < need {
		return false
	}
	for _, x := range below {
		l := &o.lanes[x]
		n, freed := 0, 0
		for need > 0 && l.appends() > 0 {
			last := len(l.ends) - 1
			start := l.head
			if last > l.first {
				start = l.ends[last-1]
			}
			size := l.ends[last] - start
			l.buf, l.ends = l.buf[:start], l.ends[:last]
			need -= size
			freed += size
			n++
		}
		if n == 0 {
			continue
		}
		if l.appends() == 0 {
			l.reset(l.buf)
			l.waited = 0
		}
		o.queued -= freed
		o.dropped[x].Add(uint64(n))
		ev.Appends[x], ev.Bytes[x] = n, freed
		if need <= 0 {
			break
		}
	}
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

// SetDirect lets the goroutines that feed the queue send in its writer's
// place: when a Kicker's FlushDirect finds the writer idle (its lock free)
// and at most DirectMax bytes waiting, in one class, it calls send itself,
// holding the writer lock, instead of waking the writer. The message then
// leaves without waiting for the writer goroutine to be woken and
// scheduled: one wake-up less on each hop, which on a busy machine is
// much of a hop's latency. send takes what waits and sends it, as the
// writer would, or reports false, having taken nothing, when a send might
// block (the writer is then woken): a feeder must not wait on one
// connection while others wait on it. The writer holds the lock
// (LockWriter) whenever it takes and sends, so that the two never send at
// once and what one took goes out before what the other takes. Call it
// before the queue is used.
func (o *Queue) SetDirect(send func() bool) { o.direct = send }

// LockWriter and UnlockWriter bracket a take and its send by the writer.
func (o *Queue) LockWriter()   { o.wmu.Lock() }
func (o *Queue) UnlockWriter() { o.wmu.Unlock() }

// sendDirect sends in the writer's place, as SetDirect describes, and
// reports whether it did.
func (o *Queue) sendDirect() bool {
	if o.direct == nil || o.classy.Load() {
		return false
	}
	o.mu.Lock()
	small := !o.closed && o.queued+len(o.ctrl) <= DirectMax
	o.mu.Unlock()
	if !small || !o.wmu.TryLock() {
		return false
	}
	defer o.wmu.Unlock()
	return o.direct()
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

// Take hands the writer what TakeCounted does, without the count.
func (o *Queue) Take(ctrlSpare, dataSpare []byte, withData bool) (ctrl, data []byte) {
	ctrl, data, _ = o.TakeCounted(ctrlSpare, dataSpare, withData)
	return ctrl, data
}

// TakeCounted hands the writer the control data and, with withData, data
// to send, and says how many appends that data holds: a writer whose
// callers append one record each knows how many records it takes without
// walking them. Without withData it takes the control data alone.
//
// A queue given only the Normal class hands over all its data, swapping in
// the writer's spare buffers so that neither side allocates in the steady
// state. A queue given other classes hands over at most a quantum (whole
// appends, at least one) in the order of class.go, and wakes the writer
// again when data remains, so that a higher class arriving while the
// writer sends waits for about one take.
func (o *Queue) TakeCounted(ctrlSpare, dataSpare []byte, withData bool) (ctrl, data []byte, adds int) {
	o.mu.Lock()
	ctrl, o.ctrl = o.ctrl, ctrlSpare[:0]
	data = dataSpare[:0]
	more := false
	switch {
	case !withData:
	case !o.classy.Load():
		l := &o.lanes[Normal]
		data, adds = l.buf, l.appends()
		l.reset(dataSpare)
		o.queued = 0
	default:
		now := o.now()
		o.pace(now)
		data, adds = o.takeClassed(data)
		more = o.queued > 0
		o.lastTake, o.lastAt, o.backlog = len(data), now, more
	}
	o.mu.Unlock()
	if more {
		o.Signal()
	}
	return ctrl, data, adds
}

// TakeData takes all the data waiting, class by class from the highest,
// which will not be sent.
func (o *Queue) TakeData() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.takeAllLocked()
}

func (o *Queue) takeAllLocked() []byte {
	var data []byte
	for _, c := range serviceOrder {
		l := &o.lanes[c]
		switch {
		case l.appends() == 0:
		case data == nil:
			data = l.buf[l.head:] // the lane's buffer is given up below
		default:
			data = append(data, l.buf[l.head:]...)
		}
		l.buf, l.head, l.ends, l.first, l.waited = nil, 0, nil, 0, 0
	}
	o.queued, o.backlog = 0, false
	return data
}

// TakeAtRate makes the queue hand over its data a take at a time, as it
// does once given a class other than Normal, whatever classes it is
// given, for a writer that paces what it sends to rate bytes a second: a
// take is then what the link sends in PacedTakeTime (whole appends, at
// least one, at most MaxQuantum), fixed rather than measured, so that a
// higher class waits behind little more than the message on the wire.
func (o *Queue) TakeAtRate(rate int64) {
	o.mu.Lock()
	o.quantum = int(min(max(rate*int64(PacedTakeTime)/int64(time.Second), 1), MaxQuantum))
	o.fixed = true
	o.mu.Unlock()
	o.classy.Store(true)
}

// Classed reports whether the queue has been given a class other than
// Normal, or told to take in turns, and so serves its classes in order, a
// take at a time.
func (o *Queue) Classed() bool { return o.classy.Load() }

// Queued is the number of data bytes waiting.
func (o *Queue) Queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queued
}

// Dropped is the number of appends refused because the queue was full or
// evicted to make room, of every class.
func (o *Queue) Dropped() uint64 {
	var n uint64
	for i := range o.dropped {
		n += o.dropped[i].Load()
	}
	return n
}

// DroppedClass is the number of appends of class c refused or evicted.
func (o *Queue) DroppedClass(c Class) uint64 { return o.dropped[c].Load() }

// Close refuses further appends and returns the data queued, which will
// not be sent.
func (o *Queue) Close() []byte {
	o.mu.Lock()
	data := o.takeAllLocked()
	o.closed = true
	o.ctrl = nil
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

// FlushDirect is Flush for a reader on the data path: where a queue's
// writer lets it (Queue.SetDirect) and little waits, it sends in the
// writer's place; otherwise it wakes the writer. A caller holding a lock
// that others wait on calls Flush instead: a send may block for as long
// as the connection takes it.
func (k *Kicker) FlushDirect() {
	for _, o := range k.bufs {
		if !o.sendDirect() {
			o.Signal()
		}
	}
	clear(k.bufs)
	k.bufs = k.bufs[:0]
}
