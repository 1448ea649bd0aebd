package transports

import (
	"fmt"
	"net"
	"sync"
)

// backlog is how many inbound links may wait for Accept. Links beyond it wait
// (stream, ws, mem) or are refused (udp, whose reader must never block).
const backlog = 128

// inbound is the bookkeeping every Listener shares: the links set up but not
// yet accepted, and every link it handed out that is still open, so that
// Close can end them all. A listener owns its links because for udp they
// share its socket; the other transports do the same so that callers see one
// behaviour whatever the scheme.
type inbound struct {
	name  string // scheme and address, for errors
	ready chan Conn
	done  chan struct{}

	mu     sync.Mutex
	closed bool
	live   map[Conn]struct{}
}

func newInbound(name string) *inbound {
	return &inbound{
		name:  name,
		ready: make(chan Conn, backlog),
		done:  make(chan struct{}),
		live:  make(map[Conn]struct{}),
	}
}

// offer queues c for Accept. With wait it blocks while the backlog is full;
// without, it gives up at once. It returns false when c was not queued, and
// then the caller closes c. A link registered before the listener closed is
// closed by close even if it never reaches the backlog.
func (in *inbound) offer(c Conn, wait bool) bool {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return false
	}
	if !wait {
		defer in.mu.Unlock()
		select {
		case in.ready <- c:
			in.live[c] = struct{}{}
			return true
		default:
			return false
		}
	}
	in.live[c] = struct{}{}
	in.mu.Unlock()
	select {
	case in.ready <- c:
		return true
	case <-in.done:
		return false
	}
}

// forget drops c from the live set; links call it from their Close.
func (in *inbound) forget(c Conn) {
	in.mu.Lock()
	delete(in.live, c)
	in.mu.Unlock()
}

// accept returns the next queued link, or an error wrapping net.ErrClosed.
func (in *inbound) accept() (Conn, error) {
	select {
	case c := <-in.ready:
		select {
		case <-in.done:
			// close has already closed c; the listener is gone.
		default:
			return c, nil
		}
	case <-in.done:
	}
	return nil, fmt.Errorf("%s: accept: %w", in.name, net.ErrClosed)
}

// isClosed reports whether close has been called.
func (in *inbound) isClosed() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// close refuses further offers, unblocks accept and closes every live link.
// It is idempotent.
func (in *inbound) close() {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	close(in.done)
	live := make([]Conn, 0, len(in.live))
	for c := range in.live {
		live = append(live, c)
	}
	in.mu.Unlock()
	for _, c := range live {
		c.Close()
	}
}
