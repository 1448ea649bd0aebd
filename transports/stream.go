package transports

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Stream framing, shared by tcp and tls: every frame is a 4-byte big-endian
// length followed by that many bytes of payload.
//
// A peer that announces a frame over MaxFrame but at most
// absurdFactor*MaxFrame has its payload read and thrown away, and Receive
// returns ErrFrameTooLarge; the stream stays in step and the link stays up.
// A larger announcement is taken for a peer that is not speaking this
// protocol at all (an HTTP request read as a length is over 1 GB), so the
// link is closed instead of reading gigabytes of garbage.

const (
	streamHeader = 4
	// readBufferSize is the bufio.Reader size: one read syscall takes in
	// many small frames, and a frame that fits is returned without a copy.
	readBufferSize = 64 << 10
	// absurdFactor times MaxFrame is the largest announced length that is
	// discarded rather than treated as a protocol error.
	absurdFactor = 16
)

// errProtocol marks a peer that broke the framing; the link is closed.
var errProtocol = errors.New("protocol violation")

// frameReader decodes length-prefixed frames from a byte stream.
type frameReader struct {
	r        *bufio.Reader
	buf      []byte // holds frames larger than the bufio buffer
	maxFrame int
	hdr      [streamHeader]byte
}

func newFrameReader(r io.Reader, maxFrame int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, readBufferSize), maxFrame: maxFrame}
}

// next returns the next frame, valid until the following call, and the time
// its header was complete. Outcomes: a frame; ErrFrameTooLarge (payload
// discarded, call again); an error wrapping errProtocol (stream out of step);
// io.EOF at a clean end between frames; any other read error.
func (fr *frameReader) next() ([]byte, time.Time, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return nil, time.Time{}, err
	}
	at := time.Now()
	n := uint64(binary.BigEndian.Uint32(fr.hdr[:]))
	if n > uint64(fr.maxFrame) {
		return nil, at, fr.skip(n)
	}
	size := int(n)
	if size <= fr.r.Size() {
		// Zero copy: the bytes stay in the bufio buffer until the next read.
		data, err := fr.r.Peek(size)
		if err != nil {
			return nil, at, unexpected(err)
		}
		_, _ = fr.r.Discard(size)
		return data, at, nil
	}
	if cap(fr.buf) < size {
		fr.buf = make([]byte, size)
	}
	data := fr.buf[:size]
	if _, err := io.ReadFull(fr.r, data); err != nil {
		return nil, at, unexpected(err)
	}
	return data, at, nil
}

// skip throws away the payload of an oversized frame.
func (fr *frameReader) skip(n uint64) error {
	if n > uint64(fr.maxFrame)*absurdFactor {
		return fmt.Errorf("peer announced a %d-byte frame (limit %d): %w", n, fr.maxFrame, errProtocol)
	}
	if _, err := fr.r.Discard(int(n)); err != nil {
		return unexpected(err)
	}
	return fmt.Errorf("peer sent %d bytes (limit %d): %w", n, fr.maxFrame, ErrFrameTooLarge)
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF: only an
// end between frames is a clean close.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// streamConn is a Conn over a reliable byte stream.
type streamConn struct {
	conn     net.Conn
	scheme   string
	maxFrame int
	// copyMax is the largest frame copied into wbuf to go out in one Write;
	// larger frames go out as net.Buffers, which is one writev on TCP.
	copyMax int
	release func() // set by the listener that accepted the link

	wmu  sync.Mutex
	wbuf []byte
	hdr  [streamHeader]byte
	vec  [3][]byte
	bufs net.Buffers // a field, not a local, so writeVec does not allocate

	fr        *frameReader
	closed    atomic.Bool
	closeOnce sync.Once
}

var _ Conn = (*streamConn)(nil)

func newStreamConn(conn net.Conn, scheme string, cfg Config, copyMax int) *streamConn {
	return &streamConn{
		conn:     conn,
		scheme:   scheme,
		maxFrame: cfg.MaxFrame,
		copyMax:  copyMax,
		fr:       newFrameReader(conn, cfg.MaxFrame),
	}
}

var _ PartsSender = (*streamConn)(nil)

// Send writes the length prefix and the frame with one write call.
func (c *streamConn) Send(frame []byte) (time.Time, error) { return c.SendParts(frame, nil) }

// SendParts writes the length prefix and the two parts of a frame with one
// write call: small frames are copied behind the prefix, larger ones go out
// as a writev of the prefix and both parts.
func (c *streamConn) SendParts(head, tail []byte) (time.Time, error) {
	size := len(head) + len(tail)
	if size > c.maxFrame {
		return time.Time{}, fmt.Errorf("%s %s: send %d bytes (limit %d): %w",
			c.scheme, c.conn.RemoteAddr(), size, c.maxFrame, ErrFrameTooLarge)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if size <= c.copyMax {
		err = c.writeCopy(head, tail)
	} else {
		err = c.writeVec(head, tail)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %s: send: %w", c.scheme, c.conn.RemoteAddr(), c.linkError(err))
	}
	return time.Now(), nil
}

func (c *streamConn) writeCopy(head, tail []byte) error {
	n := streamHeader + len(head) + len(tail)
	if cap(c.wbuf) < n {
		c.wbuf = make([]byte, n)
	}
	b := c.wbuf[:n]
	binary.BigEndian.PutUint32(b, uint32(len(head)+len(tail)))
	copy(b[streamHeader+copy(b[streamHeader:], head):], tail)
	_, err := c.conn.Write(b)
	return err
}

func (c *streamConn) writeVec(head, tail []byte) error {
	binary.BigEndian.PutUint32(c.hdr[:], uint32(len(head)+len(tail)))
	c.vec = [3][]byte{c.hdr[:], head, tail}
	c.bufs = c.vec[:]
	if len(tail) == 0 {
		c.bufs = c.vec[:2]
	}
	_, err := c.bufs.WriteTo(c.conn)
	// Drop the caller's frame, even after a short write, so it is not retained.
	c.vec = [3][]byte{}
	return err
}

// Receive returns the next frame. A protocol violation closes the link.
func (c *streamConn) Receive() (Frame, error) {
	data, at, err := c.fr.next()
	if err != nil {
		err = c.linkError(err)
		if errors.Is(err, errProtocol) {
			c.Close()
		}
		return Frame{}, fmt.Errorf("%s %s: receive: %w", c.scheme, c.conn.RemoteAddr(), err)
	}
	return Frame{Data: data, Received: at}, nil
}

// linkError reports any failure after Close as net.ErrClosed, which tls
// does not do by itself.
func (c *streamConn) linkError(err error) error {
	if c.closed.Load() && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w (%v)", net.ErrClosed, err)
	}
	return err
}

func (c *streamConn) Info() Info {
	info := Info{
		Scheme:   c.scheme,
		Local:    c.conn.LocalAddr().String(),
		Remote:   c.conn.RemoteAddr().String(),
		Reliable: true,
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			info.PeerCert = certs[0]
		}
	}
	return info
}

// Close closes the connection, which unblocks Send and Receive.
func (c *streamConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.conn.Close()
		if c.release != nil {
			c.release()
		}
	})
	if err != nil {
		return fmt.Errorf("%s %s: close: %w", c.scheme, c.conn.RemoteAddr(), err)
	}
	return nil
}

// streamListener accepts stream links. One goroutine accepts; when the
// transport has a handshake, each connection gets its own goroutine so a
// slow or hostile peer cannot hold up the others.
type streamListener struct {
	ln     net.Listener
	scheme string
	cfg    Config
	// setup turns an accepted connection into a link (a TLS handshake);
	// nil means none is needed. Its context ends when the listener closes.
	setup   func(context.Context, net.Conn) (*streamConn, error)
	copyMax int
	in      *inbound
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ Listener = (*streamListener)(nil)

func newStreamListener(ln net.Listener, scheme string, cfg Config, copyMax int,
	setup func(context.Context, net.Conn) (*streamConn, error)) *streamListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &streamListener{
		ctx:     ctx,
		cancel:  cancel,
		ln:      ln,
		scheme:  scheme,
		cfg:     cfg,
		setup:   setup,
		copyMax: copyMax,
		in:      newInbound(scheme + " " + ln.Addr().String()),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *streamListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if l.in.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.cfg.Logger.Warn("accept failed", "listener", l.URL(), "err", err, "retry", delay)
			select {
			case <-time.After(delay):
			case <-l.in.done:
				return
			}
			continue
		}
		delay = 0
		if l.setup == nil {
			l.register(newStreamConn(nc, l.scheme, l.cfg, l.copyMax))
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c, err := l.setup(l.ctx, nc)
			if err != nil {
				nc.Close()
				if l.ctx.Err() != nil {
					return // closing: the handshake was cut short on purpose
				}
				l.cfg.Logger.Warn("inbound handshake failed", "listener", l.URL(),
					"remote", nc.RemoteAddr().String(), "err", err)
				return
			}
			l.register(c)
		}()
	}
}

// register hands c to Accept, waiting for room in the backlog.
func (l *streamListener) register(c *streamConn) {
	c.release = func() { l.in.forget(c) }
	if !l.in.offer(c, true) {
		c.Close()
	}
}

func (l *streamListener) Accept() (Conn, error) { return l.in.accept() }

func (l *streamListener) URL() string { return l.scheme + "://" + l.ln.Addr().String() }

// Close stops accepting, closes every link accepted through l and waits for
// its goroutines.
func (l *streamListener) Close() error {
	l.cancel()
	l.in.close()
	err := l.ln.Close()
	l.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%s: close: %w", l.URL(), err)
	}
	return nil
}
