package transports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// mem:// links live inside one process, for unit tests and the one-process
// demo. Listeners register under a name; a link is a pair of bounded channels
// of copied frames. A full channel blocks Send, as a full TCP window would.

// memDepth is how many frames one direction of a mem link buffers.
const memDepth = 1024

// errPeerClosed is returned by Send once the other end has closed the link.
var errPeerClosed = errors.New("peer closed the link")

var memRegistry = struct {
	sync.Mutex
	listeners map[string]*memListener
	links     atomic.Uint64 // numbers links so that Info tells them apart
}{listeners: make(map[string]*memListener)}

func memName(u *url.URL) (string, error) {
	name := u.Host + u.Path
	if name == "" {
		return "", fmt.Errorf("mem: missing name")
	}
	return name, nil
}

// memPipe is the shared state of one link; side 0 is the dialer.
type memPipe struct {
	frames [2]chan []byte   // frames[i] carries frames to side i
	done   [2]chan struct{} // done[i] is closed when side i closes
	addr   [2]string
}

// memConn is one end of a memPipe.
type memConn struct {
	p        *memPipe
	me       int
	maxFrame int
	once     sync.Once
	release  func() // set by the listener that accepted the link
}

var _ Conn = (*memConn)(nil)

func (c *memConn) peer() int { return 1 - c.me }

// Send copies the frame onto the peer's channel, blocking while it is full.
func (c *memConn) Send(frame []byte) (time.Time, error) {
	if len(frame) > c.maxFrame {
		return time.Time{}, fmt.Errorf("mem %s: send %d bytes (limit %d): %w",
			c.p.addr[c.peer()], len(frame), c.maxFrame, ErrFrameTooLarge)
	}
	if err := c.closedErr(); err != nil {
		return time.Time{}, err
	}
	data := append([]byte(nil), frame...)
	select {
	case c.p.frames[c.peer()] <- data:
		return time.Now(), nil
	case <-c.p.done[c.me]:
	case <-c.p.done[c.peer()]:
	}
	return time.Time{}, c.closedErr()
}

// closedErr reports a closed link, this end first.
func (c *memConn) closedErr() error {
	select {
	case <-c.p.done[c.me]:
		return fmt.Errorf("mem %s: %w", c.p.addr[c.peer()], net.ErrClosed)
	default:
	}
	select {
	case <-c.p.done[c.peer()]:
		return fmt.Errorf("mem %s: send: %w", c.p.addr[c.peer()], errPeerClosed)
	default:
	}
	return nil
}

// Receive returns the next frame; frames sent before the peer closed are
// delivered before io.EOF.
func (c *memConn) Receive() (Frame, error) {
	select {
	case <-c.p.done[c.me]:
		return Frame{}, fmt.Errorf("mem %s: receive: %w", c.p.addr[c.peer()], net.ErrClosed)
	default:
	}
	select {
	case data := <-c.p.frames[c.me]:
		return Frame{Data: data, Received: time.Now()}, nil
	case <-c.p.done[c.me]:
		return Frame{}, fmt.Errorf("mem %s: receive: %w", c.p.addr[c.peer()], net.ErrClosed)
	case <-c.p.done[c.peer()]:
		select {
		case data := <-c.p.frames[c.me]:
			return Frame{Data: data, Received: time.Now()}, nil
		default:
			return Frame{}, fmt.Errorf("mem %s: receive: %w", c.p.addr[c.peer()], io.EOF)
		}
	}
}

func (c *memConn) Info() Info {
	return Info{Scheme: "mem", Local: c.p.addr[c.me], Remote: c.p.addr[c.peer()], Reliable: true}
}

func (c *memConn) Close() error {
	err := fmt.Errorf("mem %s: close: %w", c.p.addr[c.peer()], net.ErrClosed)
	c.once.Do(func() {
		close(c.p.done[c.me])
		if c.release != nil {
			c.release()
		}
		err = nil
	})
	return err
}

// dialMem connects to the listener registered as mem://name.
func dialMem(_ context.Context, u *url.URL, cfg Config) (Conn, error) {
	name, err := memName(u)
	if err != nil {
		return nil, err
	}
	memRegistry.Lock()
	l := memRegistry.listeners[name]
	memRegistry.Unlock()
	if l == nil {
		return nil, fmt.Errorf("mem: nobody listens on %q", name)
	}
	n := memRegistry.links.Add(1)
	p := &memPipe{addr: [2]string{fmt.Sprintf("%s#%d", name, n), name}}
	for i := range 2 {
		p.frames[i] = make(chan []byte, memDepth)
		p.done[i] = make(chan struct{})
	}
	srv := &memConn{p: p, me: 1, maxFrame: cfg.MaxFrame}
	srv.release = func() { l.in.forget(srv) }
	if !l.in.offer(srv, false) {
		srv.Close()
		return nil, fmt.Errorf("mem: %q is closed or its backlog is full", name)
	}
	return &memConn{p: p, me: 0, maxFrame: cfg.MaxFrame}, nil
}

// memListener accepts links dialed to its name.
type memListener struct {
	name string
	in   *inbound
}

var _ Listener = (*memListener)(nil)

// listenMem registers mem://name; the name must be free.
func listenMem(u *url.URL, _ Config) (Listener, error) {
	name, err := memName(u)
	if err != nil {
		return nil, err
	}
	memRegistry.Lock()
	defer memRegistry.Unlock()
	if memRegistry.listeners[name] != nil {
		return nil, fmt.Errorf("mem: %q is already in use", name)
	}
	l := &memListener{name: name, in: newInbound("mem " + name)}
	memRegistry.listeners[name] = l
	return l, nil
}

func (l *memListener) Accept() (Conn, error) { return l.in.accept() }

func (l *memListener) URL() string { return "mem://" + l.name }

// Close frees the name and closes the links accepted through l.
func (l *memListener) Close() error {
	memRegistry.Lock()
	if memRegistry.listeners[l.name] == l {
		delete(memRegistry.listeners, l.name)
	}
	memRegistry.Unlock()
	l.in.close()
	return nil
}
