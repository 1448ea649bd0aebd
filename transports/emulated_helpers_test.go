package transports

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn is one end of an in-process link that, unlike mem, may be
// unreliable and has no frame limit of its own that Emulate knows. It
// stamps Received when the frame is sent, so the link has no transit time
// at all: what a receiver sees is exactly when the scheduler handed off.
type fakeConn struct {
	reliable bool
	in, out  chan Frame
	done     chan struct{}
	once     sync.Once
	// limit, when not zero, makes Send refuse longer frames with
	// ErrFrameTooLarge.
	limit int
	// failAfter, when positive, makes every Send after that many fail.
	failAfter atomic.Int64
	sends     atomic.Int64
}

var _ Conn = (*fakeConn)(nil)

var errFakeBroken = errors.New("fake link broken")

// fakeLink returns two connected fakeConns.
func fakeLink(reliable bool) (a, b *fakeConn) {
	ab, ba := make(chan Frame, 1<<14), make(chan Frame, 1<<14)
	a = &fakeConn{reliable: reliable, in: ba, out: ab, done: make(chan struct{})}
	b = &fakeConn{reliable: reliable, in: ab, out: ba, done: make(chan struct{})}
	return a, b
}

func (c *fakeConn) Send(frame []byte) (time.Time, error) {
	if c.limit > 0 && len(frame) > c.limit {
		return time.Time{}, fmt.Errorf("fake: %d bytes: %w", len(frame), ErrFrameTooLarge)
	}
	if n := c.failAfter.Load(); n > 0 && c.sends.Add(1) > n {
		return time.Time{}, errFakeBroken
	}
	now := time.Now()
	select {
	case c.out <- Frame{Data: bytes.Clone(frame), Received: now}:
		return now, nil
	case <-c.done:
		return time.Time{}, fmt.Errorf("fake: send: %w", net.ErrClosed)
	}
}

func (c *fakeConn) Receive() (Frame, error) {
	select {
	case f := <-c.in:
		return f, nil
	case <-c.done:
		return Frame{}, fmt.Errorf("fake: receive: %w", net.ErrClosed)
	}
}

func (c *fakeConn) Info() Info {
	return Info{Scheme: "fake", Local: "a", Remote: "b", Reliable: c.reliable}
}

func (c *fakeConn) Close() error {
	err := fmt.Errorf("fake: close: %w", net.ErrClosed)
	c.once.Do(func() {
		close(c.done)
		err = nil
	})
	return err
}

func mustEmulate(t testing.TB, c Conn, e Emulation) *EmulatedConn {
	t.Helper()
	ec, err := Emulate(c, e)
	if err != nil {
		t.Fatalf("Emulate: %v", err)
	}
	t.Cleanup(func() { ec.Close() })
	return ec
}

func mustSetEmulation(t testing.TB, c *EmulatedConn, e Emulation) {
	t.Helper()
	if err := c.SetEmulation(e); err != nil {
		t.Fatalf("SetEmulation: %v", err)
	}
}

// emulatedLink opens a link over scheme ("fake" for an unreliable fakeLink,
// "fake-reliable" for a reliable one) and emulates both ends: the client
// with em, the server with nothing.
func emulatedLink(t testing.TB, scheme string, em Emulation) (client, server *EmulatedConn) {
	t.Helper()
	var c, s Conn
	switch scheme {
	case "fake", "fake-reliable":
		c, s = fakeLink(scheme == "fake-reliable")
	default:
		l := newLink(t, scheme, testConfig(t))
		c, s = l.client, l.server
	}
	return mustEmulate(t, c, em), mustEmulate(t, s, Emulation{})
}

// indexed is a frame of size bytes (at least 4) carrying i.
func indexed(i, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// arrival is one received frame: its index and its Received time.
type arrival struct {
	index int
	at    time.Time
}

// collect receives frames from c in a goroutine, which ends when c fails or
// closes, and passes on their indices.
func collect(c Conn) <-chan arrival {
	ch := make(chan arrival, 1<<14)
	go func() {
		defer close(ch)
		for {
			f, err := c.Receive()
			if err != nil {
				return
			}
			ch <- arrival{index: int(binary.BigEndian.Uint32(f.Data)), at: f.Received}
		}
	}()
	return ch
}

// take returns the next n arrivals, failing t after waitLimit.
func take(t testing.TB, ch <-chan arrival, n int) []arrival {
	t.Helper()
	got := make([]arrival, 0, n)
	deadline := time.After(waitLimit)
	for len(got) < n {
		select {
		case a, ok := <-ch:
			if !ok {
				t.Fatalf("link closed after %d of %d frames", len(got), n)
			}
			got = append(got, a)
		case <-deadline:
			t.Fatalf("received %d of %d frames within %v", len(got), n, waitLimit)
		}
	}
	return got
}

// drain returns the arrivals until none comes for quiet.
func drain(ch <-chan arrival, quiet time.Duration) []arrival {
	var got []arrival
	for {
		select {
		case a, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, a)
		case <-time.After(quiet):
			return got
		}
	}
}

// settle waits until c has handed every scheduled frame to its inner conn.
func settle(t testing.TB, c *EmulatedConn) EmulatedStats {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := c.Stats()
		if s.Pending == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d frames still pending after %v: %+v", s.Pending, waitLimit, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// indices lists the indices of arrivals in arrival order.
func indices(as []arrival) []int {
	out := make([]int, len(as))
	for i, a := range as {
		out[i] = a.index
	}
	return out
}

// overtaken counts the frames that arrived after a frame sent later.
func overtaken(as []arrival) int {
	n, highest := 0, -1
	for _, a := range as {
		if a.index < highest {
			n++
		}
		highest = max(highest, a.index)
	}
	return n
}

func checkInOrder(t testing.TB, as []arrival) {
	t.Helper()
	for i, a := range as {
		if a.index != i {
			t.Fatalf("arrival %d is frame %d; order %v", i, a.index, indices(as))
		}
	}
}
