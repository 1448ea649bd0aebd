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

	"github.com/quic-go/quic-go"
)

// quic:// is the reliable transport for the wide area, on quic-go. Frames
// travel on one bidirectional QUIC stream with the length prefix of tcp and
// tls: in order, retransmitted when lost, congestion-controlled, encrypted
// with TLS 1.3 (see quic_tls.go for the certificates). Beside them travel
// unreliable QUIC datagrams (RFC 9221), offered through DatagramConn, and
// emulation applies to the UDP packets under both (PacketEmulator, see
// quic_socket.go).
//
// Set-up: Dial completes the QUIC handshake, opens the stream and writes an
// empty frame, which makes the stream known to the acceptor; the acceptor
// answers with an empty frame, and Dial returns once it arrives, so that an
// acceptor that refuses the dialer's certificate makes Dial fail. Both
// frames are part of set-up and never reach Receive.
//
// Close is orderly, as a socket's is: the frames already sent are
// delivered. It ends the stream's sending side after them (FIN) and stops
// its receiving side (STOP_SENDING), which unblocks Receive, and returns.
// The connection stays open in the background until the peer, having read
// the last frame and met the end of the stream, closes it with the orderly
// code; or, when the peer has closed its side already or does not read,
// for up to quicLinger. A peer that closes the connection with the orderly
// code is io.EOF to Receive and ReceiveDatagram.

const (
	// quicOrderly is the application error code of an orderly close.
	quicOrderly quic.ApplicationErrorCode = 0
	// quicRefused closes a connection that failed set-up.
	quicRefused quic.ApplicationErrorCode = 1
	// quicLinger bounds how long a closed link waits for the peer to take
	// the last frames before its connection is closed.
	quicLinger = time.Second
	// quicIdleTimeout ends a connection that has heard nothing for this
	// long; quicKeepAlive keeps an idle but healthy link well inside it.
	quicIdleTimeout = 30 * time.Second
	quicKeepAlive   = 10 * time.Second
	// quicCopyMax is the largest frame copied behind its length prefix to
	// make one stream write.
	quicCopyMax = 64 << 10
)

// quicConfig is the QUIC configuration of either end. A dialer lets its
// peer open no stream; a listener lets each dialer open one.
func quicConfig(cfg Config, listener bool) *quic.Config {
	qc := &quic.Config{
		HandshakeIdleTimeout:    cfg.HandshakeTimeout,
		MaxIdleTimeout:          quicIdleTimeout,
		KeepAlivePeriod:         quicKeepAlive,
		MaxIncomingStreams:      -1,
		MaxIncomingUniStreams:   -1,
		EnableDatagrams:         true,
		DisablePathMTUDiscovery: true, // quicSocket cannot set the DF bit it needs
	}
	if listener {
		qc.MaxIncomingStreams = 1
	}
	return qc
}

// quicConn is one quic link: the stream framing over its stream, and its
// datagrams (quic_datagram.go).
type quicConn struct {
	*streamConn
	link     *quicLink
	datagram atomic.Uint32 // the number of the last datagram sent
}

var (
	_ DatagramConn   = (*quicConn)(nil)
	_ PacketEmulator = (*quicConn)(nil)
)

func newQUICConn(link *quicLink, cfg Config) *quicConn {
	link.datagrams, link.stopDatagrams = context.WithCancel(context.Background())
	link.peer = link.sock.watch(link.qc.RemoteAddr())
	return &quicConn{streamConn: newStreamConn(link, "quic", cfg, quicCopyMax), link: link}
}

// Info is the stream's, paced by QUIC's congestion control.
func (c *quicConn) Info() Info {
	info := c.streamConn.Info()
	info.Paced = true
	return info
}

// Receive returns the next frame. When the peer has closed the link and
// every frame it sent has been read, the connection is closed at once: the
// peer is waiting for that.
func (c *quicConn) Receive() (Frame, error) {
	f, err := c.streamConn.Receive()
	if err == nil {
		return f, nil
	}
	if errors.Is(err, io.EOF) {
		_ = c.link.qc.CloseWithError(quicOrderly, "")
	}
	return Frame{}, c.orderly(err)
}

// orderly turns an orderly close of the connection, by the peer or after
// its end of stream, into io.EOF; after Close it is net.ErrClosed.
func (c *quicConn) orderly(err error) error {
	var ae *quic.ApplicationError
	if !c.closed.Load() && errors.As(err, &ae) && ae.ErrorCode == quicOrderly {
		return fmt.Errorf("%w (%v)", io.EOF, err)
	}
	return c.linkError(err)
}

// EmulatePackets applies e to the UDP packets this end sends to the peer.
func (c *quicConn) EmulatePackets(e Emulation) error {
	if c.closed.Load() {
		return fmt.Errorf("quic %s: emulate: %w", c.link.RemoteAddr(), net.ErrClosed)
	}
	return c.link.sock.emulate(c.link.peer, e)
}

var _ LatenessReporter = (*quicConn)(nil)

// HandOffLateness is that of the emulation of the packets to the peer,
// nil while they are not emulated.
func (c *quicConn) HandOffLateness() []time.Duration {
	if ec := c.link.peer.emu.Load(); ec != nil {
		return ec.HandOffLateness()
	}
	return nil
}

// quicLink is a QUIC connection and its stream, as the net.Conn under the
// stream framing. Its Close is the orderly close of the whole link.
type quicLink struct {
	*quic.Stream
	qc   *quic.Conn
	sock *quicSocket
	peer *quicPeer // what sock keeps for the other end
	// abort, when closed, makes Close end the connection at once: the
	// listener is closing.
	abort <-chan struct{}
	// ended runs once the connection is closed, to free what it used.
	ended func()

	datagrams     context.Context // ends with Close, to unblock ReceiveDatagram
	stopDatagrams context.CancelFunc

	wmu sync.Mutex // Write and Close of the stream must not overlap
}

var _ net.Conn = (*quicLink)(nil)

func (l *quicLink) LocalAddr() net.Addr  { return l.qc.LocalAddr() }
func (l *quicLink) RemoteAddr() net.Addr { return l.qc.RemoteAddr() }

func (l *quicLink) Write(b []byte) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.Stream.Write(b)
}

// Close ends the link in order; see the top of this file. A Send blocked
// on flow control is cut short first, so its frame may arrive truncated.
func (l *quicLink) Close() error {
	l.stopDatagrams()
	var se *quic.StreamError
	peerDone := errors.As(context.Cause(l.Stream.Context()), &se) && se.Remote
	_ = l.Stream.SetWriteDeadline(time.Unix(1, 0))
	l.wmu.Lock()
	_ = l.Stream.Close() // fails only when the peer has stopped reading
	l.wmu.Unlock()
	l.Stream.CancelRead(quic.StreamErrorCode(quicOrderly))
	select {
	case <-l.abort:
		_ = l.qc.CloseWithError(quicOrderly, "")
		go l.ended()
	default:
		go l.linger(!peerDone)
	}
	return nil
}

// linger waits, if asked, for the peer to close the connection, then
// closes it and frees what it used.
func (l *quicLink) linger(wait bool) {
	if wait {
		t := time.NewTimer(quicLinger)
		defer t.Stop()
		select {
		case <-l.qc.Context().Done():
		case <-t.C:
		case <-l.abort:
		}
	}
	_ = l.qc.CloseWithError(quicOrderly, "")
	l.ended()
}

// dialQUIC connects to quic://host:port from a socket of its own and sets
// the link up within HandshakeTimeout.
func dialQUIC(ctx context.Context, u *url.URL, cfg Config) (Conn, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("quic: missing host:port")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "udp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	sock := newQUICSocket(nc.(*net.UDPConn), true)
	tr := &quic.Transport{Conn: sock}
	shutdown := func() {
		tr.Close()
		sock.Close()
	}
	qc, err := tr.Dial(ctx, nc.RemoteAddr(), quicClientTLS(cfg, u.Hostname()), quicConfig(cfg, false))
	if err != nil {
		shutdown()
		return nil, fmt.Errorf("quic %s: handshake: %w", u.Host, helloError(err))
	}
	stream, err := openQUICStream(ctx, qc)
	if err != nil {
		_ = qc.CloseWithError(quicRefused, "")
		shutdown()
		return nil, fmt.Errorf("quic %s: handshake: %w", u.Host, err)
	}
	return newQUICConn(&quicLink{Stream: stream, qc: qc, sock: sock, ended: shutdown}, cfg), nil
}

// openQUICStream opens the link's stream, announces it with an empty frame
// and waits for the acceptor's.
func openQUICStream(ctx context.Context, qc *quic.Conn) (*quic.Stream, error) {
	stream, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if err := writeEmptyFrame(ctx, stream); err != nil {
		return nil, err
	}
	if err := awaitAccepted(ctx, stream); err != nil {
		return nil, err
	}
	return stream, nil
}

// writeEmptyFrame writes the empty frame of set-up before ctx ends.
func writeEmptyFrame(ctx context.Context, stream *quic.Stream) error {
	deadline, _ := ctx.Deadline()
	_ = stream.SetWriteDeadline(deadline)
	if _, err := stream.Write(make([]byte, streamHeader)); err != nil {
		return fmt.Errorf("empty frame: %w", err)
	}
	return stream.SetWriteDeadline(time.Time{})
}

// quicListener accepts quic links on one socket. One goroutine accepts
// QUIC connections; each then sets its link up in a goroutine of its own,
// so that a slow or hostile dialer cannot hold up the others.
type quicListener struct {
	sock   *quicSocket
	tr     *quic.Transport
	ln     *quic.Listener
	cfg    Config
	in     *inbound
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Listener = (*quicListener)(nil)

// listenQUIC binds quic://host:port; port 0 picks a free port.
func listenQUIC(u *url.URL, cfg Config) (Listener, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("quic: missing host:port")
	}
	tlsConf, err := quicServerTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	pc, err := net.ListenPacket("udp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	sock := newQUICSocket(pc.(*net.UDPConn), false)
	tr := &quic.Transport{Conn: sock}
	ln, err := tr.Listen(tlsConf, quicConfig(cfg, true))
	if err != nil {
		tr.Close()
		sock.Close()
		return nil, fmt.Errorf("quic: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &quicListener{sock: sock, tr: tr, ln: ln, cfg: cfg, ctx: ctx, cancel: cancel,
		in: newInbound("quic " + sock.LocalAddr().String())}
	l.wg.Go(l.acceptLoop)
	return l, nil
}

func (l *quicListener) acceptLoop() {
	for {
		qc, err := l.ln.Accept(l.ctx)
		if err != nil {
			return // the listener is closing
		}
		l.wg.Go(func() { l.setup(qc) })
	}
}

// setup accepts the dialer's stream, confirms it and hands the link to
// Accept.
func (l *quicListener) setup(qc *quic.Conn) {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	defer cancel()
	stream, err := acceptQUICStream(ctx, qc)
	if err != nil {
		_ = qc.CloseWithError(quicRefused, "")
		if l.ctx.Err() == nil {
			l.cfg.Logger.Warn("inbound handshake failed", "listener", l.URL(),
				"remote", qc.RemoteAddr().String(), "err", err)
		}
		return
	}
	link := &quicLink{Stream: stream, qc: qc, sock: l.sock, abort: l.ctx.Done()}
	link.ended = func() { l.sock.forget(link.peer) }
	c := newQUICConn(link, l.cfg)
	c.release = func() { l.in.forget(c) }
	if !l.in.offer(c, true) {
		c.Close()
	}
}

// acceptQUICStream takes the dialer's stream and its empty frame, and
// confirms with one of its own.
func acceptQUICStream(ctx context.Context, qc *quic.Conn) (*quic.Stream, error) {
	stream, err := qc.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("accept stream: %w", err)
	}
	if err := readEmptyFrame(ctx, stream); err != nil {
		return nil, fmt.Errorf("waiting for the dialer's empty frame: %w", err)
	}
	if err := writeEmptyFrame(ctx, stream); err != nil {
		return nil, err
	}
	return stream, nil
}

func (l *quicListener) Accept() (Conn, error) { return l.in.accept() }

func (l *quicListener) URL() string { return "quic://" + l.sock.LocalAddr().String() }

// Close stops accepting, closes every link accepted through l (each peer
// is told at once), waits for l's goroutines, then closes the socket.
func (l *quicListener) Close() error {
	l.cancel()
	l.in.close()
	err := l.ln.Close()
	l.wg.Wait()
	l.tr.Close()
	if serr := l.sock.Close(); err == nil && !errors.Is(serr, net.ErrClosed) {
		err = serr
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, quic.ErrServerClosed) {
		return fmt.Errorf("%s: close: %w", l.URL(), err)
	}
	return nil
}
