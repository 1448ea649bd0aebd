package transports

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The scheduler of an EmulatedConn hands frames to the inner conn at their
// due time, and the header that tells the receiver how late it was.

const (
	// emulationMarker starts every frame an EmulatedConn sends.
	emulationMarker = 0xEE
	// maxLateness bounds the lateness a receiver trusts, so that a corrupt
	// header cannot move Received by years.
	maxLateness = time.Minute
	// fineWait is how long before a frame's due time the scheduler stops
	// waiting on a Go timer and naps instead, in steps of napStep, so that
	// a new frame or Close is seen within a step.
	fineWait = 2 * time.Millisecond
	napStep  = 250 * time.Microsecond
)

// pending is one frame in the emulated network.
type pending struct {
	due  time.Time
	seq  uint64 // send order, which breaks ties between equal due times
	buf  []byte // EmulationOverhead bytes of room for the header, then the frame
	held bool   // sent during an outage on a reliable link: counted in heldBytes
}

func (p *pending) size() int { return len(p.buf) - EmulationOverhead }

// frameHeap is a min-heap of frames by due time, then send order.
type frameHeap []*pending

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(*pending)) }
func (h *frameHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

func (c *EmulatedConn) pushLocked(p *pending, due time.Time) {
	p.due = due
	p.seq = c.seq
	c.seq++
	heap.Push(&c.queue, p)
}

// run is the scheduler goroutine. It ends when the inner conn fails, or
// after Close once nothing is left to deliver before the linger deadline.
func (c *EmulatedConn) run() {
	defer close(c.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	naps := newNapper()
	defer naps.close()
	done := c.done // nil once Close is seen: takeDue then ends the loop
	var batch []*pending
	for {
		var next time.Time
		var stop bool
		batch, next, stop = c.takeDue(time.Now(), batch[:0])
		for i, p := range batch {
			if !c.handOff(p) {
				c.mu.Lock()
				c.handing -= len(batch) - i - 1 // never to be handed off
				c.mu.Unlock()
				return
			}
			batch[i] = nil
		}
		switch {
		case stop:
			return
		case len(batch) > 0:
			continue // handing off took time: more may be due
		}
		if c.sleep(timer, naps, next, done) {
			done = nil
		}
	}
}

// takeDue moves the frames due by now to batch. It returns the due time of
// the next frame (zero if none), and stop when Close has been called and
// nothing is left to deliver before the linger deadline.
func (c *EmulatedConn) takeDue(now time.Time, batch []*pending) ([]*pending, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.queue.Len() > 0 && !c.queue[0].due.After(now) {
		batch = append(batch, heap.Pop(&c.queue).(*pending))
		c.handing++
	}
	var next time.Time
	if c.queue.Len() > 0 {
		next = c.queue[0].due
	}
	if c.closed && len(batch) == 0 && (next.IsZero() || next.After(c.lingerEnd)) {
		c.queue = nil
		return batch, next, true
	}
	return batch, next, false
}

// sleep waits for next (if not zero), a kick, or done. It reports whether
// done was closed. A Go timer wakes up to a millisecond late, so it only
// brings the scheduler to within fineWait of next; from there the
// scheduler naps in steps of napStep, looking at the queue between them,
// and hands the frame off within tens of microseconds of its due time.
func (c *EmulatedConn) sleep(timer *time.Timer, naps *napper, next time.Time, done <-chan struct{}) bool {
	var due <-chan time.Time
	if !next.IsZero() {
		wait := time.Until(next)
		if wait <= fineWait {
			select {
			case <-done:
				return true
			default:
			}
			naps.nap(min(wait, napStep))
			return false
		}
		timer.Reset(wait - fineWait)
		due = timer.C
	}
	select {
	case <-due:
	case <-c.kick:
	case <-done:
		return true
	}
	return false
}

// handOff writes the header and sends one frame on the inner conn. It
// reports false when the inner conn has failed: the failure is kept for
// Send and Receive and the scheduler must stop. The inner conn is closed,
// which unblocks Receive, unless the failure is only that the peer closed:
// then Receive still delivers what the peer sent before, and io.EOF.
func (c *EmulatedConn) handOff(p *pending) bool {
	late := time.Since(p.due)
	putEmulationHeader(p.buf, late)
	_, err := c.inner.Send(p.buf)
	c.mu.Lock()
	c.handing--
	if p.held {
		c.heldBytes -= p.size()
		c.notifyLocked()
	}
	switch {
	case err == nil:
		c.stats.Delivered++
		c.late.add(late)
		c.mu.Unlock()
		return true
	case errors.Is(err, ErrFrameTooLarge):
		c.stats.Oversized++
		c.mu.Unlock()
		return true
	}
	failed := !c.closed && c.err == nil
	if failed {
		c.err = fmt.Errorf("%s: deliver: %w", c.name, err)
		c.notifyLocked()
	}
	c.mu.Unlock()
	if failed && !errors.Is(err, errPeerClosed) {
		c.inner.Close()
	}
	return false
}

// putEmulationHeader writes the marker and lateness into the first
// EmulationOverhead bytes of b.
func putEmulationHeader(b []byte, lateness time.Duration) {
	b[0] = emulationMarker
	binary.BigEndian.PutUint64(b[1:EmulationOverhead], uint64(lateness))
}

// stripEmulationHeader splits a received frame into its payload and the
// sender's lateness, clamped to 0..maxLateness. A frame without the marker,
// or too short to hold a header, is returned whole with ok false.
func stripEmulationHeader(data []byte) (payload []byte, lateness time.Duration, ok bool) {
	if len(data) < EmulationOverhead || data[0] != emulationMarker {
		return data, 0, false
	}
	return data[EmulationOverhead:], headerLateness(data), true
}

// headerLateness reads the lateness of an emulation header, frame or
// packet, clamped to 0..maxLateness.
func headerLateness(hdr []byte) time.Duration {
	late := time.Duration(binary.BigEndian.Uint64(hdr[1:EmulationOverhead]))
	return min(max(late, 0), maxLateness)
}

var _ LatenessReporter = (*EmulatedConn)(nil)

// LatenessSamples is how many hand-offs HandOffLateness covers.
const LatenessSamples = 512

// lateRing holds the lateness of the latest hand-offs.
type lateRing struct {
	d    []time.Duration
	next int
}

func (r *lateRing) add(d time.Duration) {
	if len(r.d) < LatenessSamples {
		r.d = append(r.d, d)
		return
	}
	r.d[r.next] = d
	r.next = (r.next + 1) % LatenessSamples
}

// HandOffLateness returns how late the scheduler handed the latest frames
// (up to LatenessSamples) to the inner conn, in no particular order. The
// receiver's Received leaves that lateness out, so that the link's monitor
// measures the emulated network; the frames themselves meet it, as the
// test bed's share of their delay, which contract predictions add back
// (see LatenessReporter).
func (c *EmulatedConn) HandOffLateness() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.late.d)
}
