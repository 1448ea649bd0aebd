package transports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// udp:// is best effort: frames may be lost, and nothing is retransmitted.
// UDP fragments frames larger than one datagram and reassembles them; if any
// fragment is lost the whole frame is lost. The datagram format is in
// udp_wire.go.
//
// A dialer uses a connected socket and reads it in Receive, so it needs no
// goroutine. A listener owns one socket, read by one goroutine that hands
// each peer's datagrams to that peer's Conn through a bounded queue: when a
// consumer falls behind its datagrams are dropped, as the network would.

const (
	// udpSocketBuffer is asked of the kernel for each socket, so that a
	// burst of fragments is not dropped before the reader wakes up. The
	// kernel may grant less.
	udpSocketBuffer = 4 << 20
	// udpHelloTries is how many HELLOs Dial sends at least within
	// HandshakeTimeout, since any of them or their answers may be lost.
	udpHelloTries = 5
)

// datagramSource yields the datagrams addressed to one link. A datagram is
// valid until the next call. After the peer's CLOSE, next returns io.EOF.
type datagramSource interface {
	next() ([]byte, time.Time, error)
}

// udpConn is one udp link, on either side.
type udpConn struct {
	src      datagramSource
	write    func([]byte) (int, error)
	shutdown func() error // stops src
	local    string
	remote   string
	maxFrame int
	datagram int
	drops    *dropLog
	release  func() // set by the listener that accepted the link

	wmu    sync.Mutex
	wbuf   []byte
	nextID uint32

	reasm *reassembler // Receive only

	peerClosed atomic.Bool
	closed     atomic.Bool
	once       sync.Once
}

var _ Conn = (*udpConn)(nil)

// Send writes the frame as one DATA datagram, or as FRAG datagrams when it
// does not fit.
func (c *udpConn) Send(frame []byte) (time.Time, error) {
	if len(frame) > c.maxFrame {
		return time.Time{}, fmt.Errorf("udp %s: send %d bytes (limit %d): %w",
			c.remote, len(frame), c.maxFrame, ErrFrameTooLarge)
	}
	if c.closed.Load() {
		return time.Time{}, fmt.Errorf("udp %s: send: %w", c.remote, net.ErrClosed)
	}
	if c.peerClosed.Load() {
		return time.Time{}, fmt.Errorf("udp %s: send: %w", c.remote, errPeerClosed)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if udpDataHeader+len(frame) <= c.datagram {
		c.wbuf = append(append(c.wbuf[:0], udpData), frame...)
		_, err = c.write(c.wbuf)
	} else {
		err = c.sendFragments(frame)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("udp %s: send: %w", c.remote, c.linkError(err))
	}
	return time.Now(), nil
}

func (c *udpConn) sendFragments(frame []byte) error {
	chunk := c.datagram - udpFragHeader
	count := (len(frame) + chunk - 1) / chunk
	id := c.nextID
	c.nextID++
	for i := range count {
		part := frame[i*chunk : min((i+1)*chunk, len(frame))]
		c.wbuf = append(appendFragHeader(c.wbuf[:0], id, uint16(i), uint16(count)), part...)
		if _, err := c.write(c.wbuf); err != nil {
			return err
		}
	}
	return nil
}

// Receive returns the next DATA frame or reassembled frame.
func (c *udpConn) Receive() (Frame, error) {
	for {
		if c.peerClosed.Load() && !c.closed.Load() {
			return Frame{}, fmt.Errorf("udp %s: receive: %w", c.remote, io.EOF)
		}
		b, at, err := c.src.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				c.peerClosed.Store(true)
			}
			return Frame{}, fmt.Errorf("udp %s: receive: %w", c.remote, c.linkError(err))
		}
		frame, err := c.decode(b, at)
		if err != nil || frame != nil {
			return Frame{Data: frame, Received: at}, err
		}
	}
}

// decode handles one datagram. It returns a frame, an error for Receive, or
// neither when the datagram carries no frame.
func (c *udpConn) decode(b []byte, at time.Time) ([]byte, error) {
	d, err := parseDatagram(b)
	if err != nil {
		c.drops.drop(c.remote, err)
		return nil, nil
	}
	switch d.typ {
	case udpData:
		if len(d.payload) > c.maxFrame {
			return nil, fmt.Errorf("udp %s: receive: peer sent %d bytes (limit %d): %w",
				c.remote, len(d.payload), c.maxFrame, ErrFrameTooLarge)
		}
		// A non-nil empty slice: an empty frame is still a frame.
		return d.payload[:len(d.payload):len(d.payload)], nil
	case udpFrag:
		frame, err := c.reasm.add(d, at)
		if errors.Is(err, ErrFrameTooLarge) {
			return nil, fmt.Errorf("udp %s: receive: %w", c.remote, err)
		}
		if err != nil {
			c.drops.drop(c.remote, err)
		}
		return frame, nil
	case udpClose:
		c.peerClosed.Store(true)
		return nil, fmt.Errorf("udp %s: receive: peer closed: %w", c.remote, io.EOF)
	case udpHelloAck:
		return nil, nil // a retried HELLO was answered twice
	default:
		c.drops.drop(c.remote, fmt.Errorf("unexpected type %d: %w", d.typ, errBadDatagram))
		return nil, nil
	}
}

// linkError names the common ways a udp link fails.
func (c *udpConn) linkError(err error) error {
	switch {
	case c.closed.Load():
		return net.ErrClosed
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("peer unreachable: %w", err)
	}
	return err
}

func (c *udpConn) Info() Info {
	return Info{
		Scheme:    "udp",
		Local:     c.local,
		Remote:    c.remote,
		Reliable:  false,
		FrameHint: c.datagram - udpDataHeader,
	}
}

// Close tells the peer, best effort, and stops Receive.
func (c *udpConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.closed.Store(true)
		if !c.peerClosed.Load() {
			_, _ = c.write([]byte{udpClose})
		}
		err = c.shutdown()
		c.reasm.release()
		if c.release != nil {
			c.release()
		}
	})
	if err != nil {
		return fmt.Errorf("udp %s: close: %w", c.remote, err)
	}
	return nil
}

// socketSource reads a dialer's connected socket.
type socketSource struct {
	in  *stampedReader
	buf []byte
}

func (s *socketSource) next() ([]byte, time.Time, error) {
	n, _, at, err := s.in.read(s.buf)
	if err != nil {
		return nil, time.Time{}, err
	}
	return s.buf[:n], at, nil
}

// dialUDP opens a connected socket and completes the HELLO exchange within
// HandshakeTimeout.
func dialUDP(ctx context.Context, u *url.URL, cfg Config) (Conn, error) {
	if err := checkUDPConfig(cfg); err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("udp: missing host:port")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "udp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	sock := nc.(*net.UDPConn)
	_ = sock.SetReadBuffer(udpSocketBuffer)
	if err := udpHandshake(ctx, sock, cfg.HandshakeTimeout); err != nil {
		sock.Close()
		return nil, fmt.Errorf("udp %s: %w", u.Host, err)
	}
	return &udpConn{
		src:      &socketSource{in: newStampedReader(sock), buf: make([]byte, udpMaxDatagram)},
		write:    sock.Write,
		shutdown: sock.Close,
		local:    sock.LocalAddr().String(),
		remote:   sock.RemoteAddr().String(),
		maxFrame: cfg.MaxFrame,
		datagram: cfg.Datagram,
		drops:    &dropLog{logger: cfg.Logger},
		reasm:    newReassembler(cfg.MaxFrame, cfg.ReassemblyTimeout, newReassemblyBudget(dialBudget(cfg))),
	}, nil
}

// dialBudget is the reassembly budget of one dialed link: room for a few
// frames of MaxFrame at once, within Config.ReassemblyBudget.
func dialBudget(cfg Config) int {
	return min(cfg.ReassemblyBudget, 4*cfg.MaxFrame+2*udpMaxDatagram)
}

// udpHandshake sends HELLO until the matching HELLO_ACK arrives: at least
// udpHelloTries times before timeout or the end of ctx, and at least once a
// second. On loopback a missing listener shows at once as ECONNREFUSED;
// elsewhere ICMP may be filtered and the wait runs out.
func udpHandshake(ctx context.Context, sock *net.UDPConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { sock.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	session := rand.Uint32()
	hello := appendHello(nil, udpHello, session)
	deadline, _ := ctx.Deadline()
	interval := min(max(time.Until(deadline)/udpHelloTries, 10*time.Millisecond), time.Second)
	buf := make([]byte, udpHelloSize+1) // longer datagrams are not an ack
	for ctx.Err() == nil {
		if _, err := sock.Write(hello); err != nil {
			return fmt.Errorf("hello: %w", helloError(err))
		}
		sock.SetReadDeadline(time.Now().Add(interval))
		for {
			n, err := sock.Read(buf)
			if err != nil {
				if isTimeout(err) || ctx.Err() != nil {
					break // send HELLO again, or give up
				}
				return fmt.Errorf("hello: %w", helloError(err))
			}
			d, err := parseDatagram(buf[:n])
			if err == nil && d.typ == udpHelloAck && d.session == session {
				if !stop() {
					break // ctx ended meanwhile and has set a deadline
				}
				return sock.SetReadDeadline(time.Time{})
			}
		}
	}
	return fmt.Errorf("no HELLO_ACK: %w", ctx.Err())
}

func helloError(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("nobody listens there: %w", err)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// droppedDatagrams counts every datagram a udp link or listener of this
// process dropped.
var droppedDatagrams atomic.Uint64

// DroppedDatagrams returns how many datagrams the udp links and listeners
// of this process dropped: malformed or unexpected ones, those beyond a
// full queue, and fragments beyond the reassembly budget.
func DroppedDatagrams() uint64 { return droppedDatagrams.Load() }

// dropLog counts dropped datagrams and logs them at most once a second, so
// that a flood of garbage cannot flood the log too.
type dropLog struct {
	logger  *slog.Logger
	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (d *dropLog) drop(from string, reason error) {
	droppedDatagrams.Add(1)
	d.mu.Lock()
	d.dropped++
	now := time.Now()
	if now.Sub(d.last) < time.Second {
		d.mu.Unlock()
		return
	}
	n := d.dropped
	d.dropped, d.last = 0, now
	d.mu.Unlock()
	d.logger.Warn("udp: dropped datagrams", "from", from, "reason", reason.Error(), "count", n)
}
