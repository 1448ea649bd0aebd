package transports

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// EmulatedConn is a Conn whose sent frames cross an emulated network; see
// Emulation and the comment at the top of emulated.go. It owns the inner
// Conn: Close closes it.
type EmulatedConn struct {
	inner    Conn
	reliable bool
	maxFrame int    // largest frame Send accepts; -1 when the inner limit is unknown
	name     string // for errors

	mu        sync.Mutex
	em        Emulation
	epoch     time.Time // when em was set; scheduled outages count from it
	rng       *rand.Rand
	gilbert   gilbertState
	queue     frameHeap
	seq       uint64
	order     inOrder    // reliable: the schedule frames keep
	txFree    time.Time  // when the bandwidth cap has sent everything queued
	held      []*pending // reliable: frames waiting for Down to end
	handing   int        // frames taken from the queue, not yet handed off
	heldBytes int        // bytes sent during outages and not yet handed off
	stats     EmulatedStats
	late      lateRing // how late the scheduler handed on the latest frames
	err       error    // the first failure of the inner conn
	closed    bool
	lingerEnd time.Time     // set by Close: frames due later are discarded
	changed   chan struct{} // closed and replaced when a blocked Send may proceed

	kick    chan struct{} // tells the scheduler the queue changed
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when the scheduler returns
}

var _ Conn = (*EmulatedConn)(nil)

// EmulatedStats counts what an EmulatedConn did to the frames it sent.
type EmulatedStats struct {
	Sent          uint64 // frames accepted by Send, whatever their fate
	Delivered     uint64 // frames handed to the inner conn, duplicates included
	Lost          uint64 // dropped by the loss model (unreliable inner)
	Retransmitted uint64 // drawn as lost on a reliable inner: delivered one RTO late
	Duplicated    uint64 // extra copies sent (unreliable inner)
	Reordered     uint64 // held back by ReorderDelay (unreliable inner)
	QueueDrops    uint64 // dropped because the bandwidth queue was full (unreliable inner)
	OutageDrops   uint64 // dropped because they were sent during an outage (unreliable inner)
	Oversized     uint64 // refused as too large by an inner conn whose limit is unknown
	Pending       int    // frames scheduled or held, not yet handed to the inner conn
	Down          bool   // an outage, Down or scheduled, is in effect now
}

// closeLinger bounds how long Close keeps delivering the frames already in
// the emulated network.
const closeLinger = time.Second

// Emulate wraps c in an emulation and starts its scheduler. Outcomes: the
// EmulatedConn, which owns c from then on; or an invalid e, and then c is
// left as it was.
func Emulate(c Conn, e Emulation) (*EmulatedConn, error) {
	info := c.Info()
	name := "emulated " + info.Scheme + " " + info.Remote
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ec := &EmulatedConn{
		inner:    c,
		reliable: info.Reliable,
		maxFrame: -1,
		name:     name,
		changed:  make(chan struct{}),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	if limit, ok := maxFrameOf(c); ok {
		ec.maxFrame = max(limit-EmulationOverhead, 0)
	}
	ec.setLocked(e, time.Now())
	go ec.run()
	return ec, nil
}

// maxFrameOf returns the frame limit of the package's own transports, which
// the Conn interface does not expose.
func maxFrameOf(c Conn) (int, bool) {
	switch c := c.(type) {
	case *streamConn:
		return c.maxFrame, true
	case *memConn:
		return c.maxFrame, true
	case *udpConn:
		return c.maxFrame, true
	case *wsConn:
		return c.maxFrame, true
	case *quicConn:
		return c.maxFrame, true
	case *EmulatedConn:
		return c.maxFrame, c.maxFrame >= 0
	}
	return 0, false
}

// SetEmulation changes the emulation at run time; it is safe concurrently
// with Send and Receive. Frames already scheduled keep their fate; scheduled
// outages count from now; the random source is reseeded from e.Seed and the
// Gilbert-Elliott chain restarts in the good state. On a reliable link,
// frames held by Down are released when e is not down. Outcomes: nil; an
// invalid e (nothing changed); an error wrapping net.ErrClosed.
func (c *EmulatedConn) SetEmulation(e Emulation) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%s: set emulation: %w", c.name, net.ErrClosed)
	}
	now := time.Now()
	c.setLocked(e, now)
	c.releaseLocked(now)
	c.notifyLocked()
	c.wake()
	return nil
}

func (c *EmulatedConn) setLocked(e Emulation, now time.Time) {
	e.Outages = slices.Clone(e.Outages) // the caller may reuse its slice
	c.em = e
	c.epoch = now
	c.rng = newRand(e.Seed)
	c.gilbert = gilbertState{}
}

// Emulation returns the emulation in effect, as it was set.
func (c *EmulatedConn) Emulation() Emulation {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.em
	e.Outages = slices.Clone(e.Outages)
	return e
}

// Inner returns the wrapped conn, for frames that must bypass the
// emulation. A frame sent on it reaches the peer's EmulatedConn unchanged
// unless it starts with the marker byte 0xEE.
func (c *EmulatedConn) Inner() Conn { return c.inner }

// Stats returns the counters so far.
func (c *EmulatedConn) Stats() EmulatedStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Pending = c.queue.Len() + len(c.held) + c.handing
	s.Down, _ = c.em.outageAt(c.epoch, time.Now())
	return s
}

// Info is the inner conn's, with FrameHint reduced by EmulationOverhead.
func (c *EmulatedConn) Info() Info {
	info := c.inner.Info()
	if info.FrameHint > 0 {
		info.FrameHint = max(info.FrameHint-EmulationOverhead, 1)
	}
	return info
}

// Send schedules frame and returns the time it entered the emulated
// network. It returns at once, whether the frame is delayed or dropped,
// except on a reliable link whose bandwidth queue or outage hold is full:
// then it blocks until there is room or the conn is closed. Outcomes: nil;
// ErrFrameTooLarge for a frame over the inner limit minus EmulationOverhead
// (nothing sent, link still up); an error wrapping net.ErrClosed after
// Close; the inner conn's failure, after which the conn is closed.
func (c *EmulatedConn) Send(frame []byte) (time.Time, error) {
	if c.maxFrame >= 0 && len(frame) > c.maxFrame {
		return time.Time{}, fmt.Errorf("%s: send %d bytes (limit %d with the emulation header): %w",
			c.name, len(frame), c.maxFrame, ErrFrameTooLarge)
	}
	buf := make([]byte, EmulationOverhead+len(frame))
	copy(buf[EmulationOverhead:], frame)
	c.mu.Lock()
	for {
		if err := c.sendErrLocked(); err != nil {
			c.mu.Unlock()
			return time.Time{}, err
		}
		now := time.Now()
		blocked, until := c.admitLocked(now, buf)
		if !blocked {
			c.mu.Unlock()
			c.wake()
			return now, nil
		}
		changed := c.changed
		c.mu.Unlock()
		c.waitRoom(changed, until)
		c.mu.Lock()
	}
}

func (c *EmulatedConn) sendErrLocked() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return fmt.Errorf("%s: send: %w", c.name, net.ErrClosed)
	}
	return nil
}

// waitRoom blocks until changed is closed, until has passed (unless zero),
// or the conn is closed.
func (c *EmulatedConn) waitRoom(changed <-chan struct{}, until time.Time) {
	var expired <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-changed:
	case <-expired:
	case <-c.done:
	}
}

// admitLocked decides the fate of one frame sent at now. It reports blocked
// when a reliable link has no room for it; until is then when the bandwidth
// queue will have drained enough, or zero to wait for a change.
func (c *EmulatedConn) admitLocked(now time.Time, buf []byte) (blocked bool, until time.Time) {
	size := len(buf) - EmulationOverhead
	down, end := c.em.outageAt(c.epoch, now)
	if !c.reliable {
		c.admitUnreliableLocked(now, buf, down)
		return false, time.Time{}
	}
	if down {
		if c.heldBytes > 0 && c.heldBytes+size > c.em.queueLimit() {
			return true, time.Time{}
		}
		c.stats.Sent++
		c.heldBytes += size
		p := &pending{buf: buf, held: true}
		if end.IsZero() {
			c.held = append(c.held, p)
		} else {
			c.scheduleReliableLocked(p, end)
		}
		return false, time.Time{}
	}
	if until, full := c.queueFullLocked(now, size); full {
		return true, until
	}
	c.stats.Sent++
	c.scheduleReliableLocked(&pending{buf: buf}, now)
	return false, time.Time{}
}

// admitUnreliableLocked drops the frame or schedules it, possibly late and
// possibly twice.
func (c *EmulatedConn) admitUnreliableLocked(now time.Time, buf []byte, down bool) {
	c.stats.Sent++
	size := len(buf) - EmulationOverhead
	if down {
		c.stats.OutageDrops++
		return
	}
	if _, full := c.queueFullLocked(now, size); full {
		c.stats.QueueDrops++
		return
	}
	if c.loseLocked() {
		c.stats.Lost++
		return
	}
	due := c.serializeLocked(now, size).Add(c.delayLocked())
	if chance(c.rng, c.em.Reorder) {
		due = due.Add(c.em.reorderDelay())
		c.stats.Reordered++
	}
	c.pushLocked(&pending{buf: buf}, due)
	if chance(c.rng, c.em.Duplicate) {
		c.pushLocked(&pending{buf: buf}, due)
		c.stats.Duplicated++
	}
}

// scheduleReliableLocked schedules a frame that enters the network at t0:
// late by one RTO if drawn as lost, never before the frame sent before it,
// and with the delay of the frames sent within togetherFor before it.
func (c *EmulatedConn) scheduleReliableLocked(p *pending, t0 time.Time) {
	lost := c.loseLocked()
	out := c.serializeLocked(t0, p.size())
	due := c.order.due(t0, out, lost, c.em.rto(), c.delayLocked)
	if lost {
		c.stats.Retransmitted++
	}
	c.pushLocked(p, due)
}

// releaseLocked schedules the frames a reliable link held during Down, in
// order, once the link is up or its remaining outage has a known end.
func (c *EmulatedConn) releaseLocked(now time.Time) {
	if len(c.held) == 0 {
		return
	}
	down, end := c.em.outageAt(c.epoch, now)
	if down && end.IsZero() {
		return
	}
	t0 := now
	if down {
		t0 = end
	}
	for _, p := range c.held {
		c.scheduleReliableLocked(p, t0)
	}
	c.held = nil
}

func (c *EmulatedConn) loseLocked() bool {
	if c.em.LossModel == LossGilbert {
		return c.gilbert.lose(c.rng, c.em.GE)
	}
	return chance(c.rng, c.em.Loss)
}

// delayLocked draws one frame's propagation delay, never negative.
func (c *EmulatedConn) delayLocked() time.Duration { return c.em.delay(c.rng) }

// serializeLocked puts size bytes that arrive at t0 through the bandwidth
// cap and returns when their last bit is out.
func (c *EmulatedConn) serializeLocked(t0 time.Time, size int) time.Time {
	if c.em.Bandwidth == 0 {
		return t0
	}
	if c.txFree.After(t0) {
		t0 = c.txFree
	}
	c.txFree = t0.Add(transmitTime(size, c.em.Bandwidth))
	return c.txFree
}

// queueFullLocked reports whether size more bytes would overfill the
// bandwidth queue at now and, if so, when enough will have drained.
func (c *EmulatedConn) queueFullLocked(now time.Time, size int) (time.Time, bool) {
	bw := c.em.Bandwidth
	if bw == 0 || !c.txFree.After(now) {
		return time.Time{}, false
	}
	limit := c.em.queueLimit()
	backlog := float64(c.txFree.Sub(now)) / float64(time.Second) * float64(bw) / 8
	if backlog+float64(size) <= float64(limit) {
		return time.Time{}, false
	}
	return c.txFree.Add(-transmitTime(max(limit-size, 0), bw)), true
}

// transmitTime is how long size bytes take at bw bits per second.
func transmitTime(size int, bw int64) time.Duration {
	return time.Duration(float64(size) * 8 / float64(bw) * float64(time.Second))
}

// notifyLocked wakes the Sends blocked for room.
func (c *EmulatedConn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// wake tells the scheduler to look at the queue again.
func (c *EmulatedConn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Receive returns the next frame from the inner conn, without the
// emulation header and with Received moved back by the sender's lateness,
// to when the emulated network delivered it. It applies no emulation of its
// own. Outcomes are the inner conn's, except that once the inner conn has
// failed under the scheduler (and been closed), Receive returns that
// failure instead of net.ErrClosed.
func (c *EmulatedConn) Receive() (Frame, error) {
	f, err := c.inner.Receive()
	if err != nil {
		if ferr := c.failure(); ferr != nil && !errors.Is(err, io.EOF) {
			return Frame{}, ferr
		}
		return Frame{}, err
	}
	if payload, lateness, ok := stripEmulationHeader(f.Data); ok {
		f.Data = payload
		f.Received = f.Received.Add(-lateness)
	}
	return f, nil
}

func (c *EmulatedConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close stops accepting frames, keeps delivering those already scheduled
// for up to closeLinger (frames held by Down, and frames due later, are
// discarded), then closes the inner conn and waits for the scheduler.
// Blocked Sends return. A second Close returns an error wrapping
// net.ErrClosed.
func (c *EmulatedConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("%s: close: %w", c.name, net.ErrClosed)
	}
	c.closed = true
	c.lingerEnd = time.Now().Add(closeLinger)
	c.held = nil
	failed := c.err != nil
	close(c.done)
	c.notifyLocked()
	c.mu.Unlock()

	linger := time.NewTimer(closeLinger)
	defer linger.Stop()
	select {
	case <-c.stopped:
	case <-linger.C: // an inner Send is stuck; closing the inner conn frees it
	}
	err := c.inner.Close()
	<-c.stopped
	if failed {
		return nil // the scheduler closed the inner conn when it failed
	}
	return err
}
