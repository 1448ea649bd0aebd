// Package transports carries framed, bidirectional links between brokers.
//
// One small interface, Conn, is implemented over tcp://, tls://, udp://, ws://
// (WebSocket), quic:// and mem:// (in-process, for tests). The URL scheme
// picks the implementation; no other package knows which transport a link
// runs on. What sets one transport apart is offered through small optional
// interfaces that callers check for with a type assertion: DatagramConn (an
// unreliable path beside a reliable one) and PacketEmulator (emulation
// under the transport's own packets).
//
// A frame is an opaque byte slice of at most Config.MaxFrame bytes. Stream
// transports (tcp, tls) prefix every frame with its length, and quic does
// the same on one QUIC stream; ws sends one binary message per frame; udp
// sends one datagram per frame and fragments frames larger than one
// datagram (if any fragment is lost the whole frame is lost); mem passes
// frames over channels.
//
// Emulate wraps any Conn in an emulated link that adds delay, jitter, loss,
// duplication, reordering, outages and a bandwidth cap to the frames it
// sends, so that one machine can behave like a wide-area network (see
// emulated.go).
//
// The package does not retransmit, order or acknowledge anything on its own:
// a Conn whose Info().Reliable is false (udp) may lose frames, and callers
// that need reliability on such a link provide it themselves. quic's
// reliability is QUIC's.
package transports

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// DefaultMaxFrame is the largest frame a link accepts unless configured otherwise.
const DefaultMaxFrame = 1 << 20

// ErrFrameTooLarge is returned by Send for a frame over the limit (nothing is
// sent) and by Receive when the peer sent one (the frame is discarded). In
// both cases the link stays up and the next call works normally.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrDatagramTooLarge is returned by DatagramConn.SendDatagram for a
// datagram over the transport's current limit; nothing is sent and the link
// stays up.
var ErrDatagramTooLarge = errors.New("datagram too large")

// ErrUnknownScheme is returned by Dial and Listen for a URL whose scheme has
// no transport.
var ErrUnknownScheme = errors.New("unknown transport scheme")

// Frame is one received frame.
type Frame struct {
	// Data is valid until the next call to Receive on the same Conn.
	Data []byte
	// Received is taken as close to the actual receipt as the transport
	// allows, so that round-trip measurement is accurate.
	Received time.Time
}

// Info describes a link.
type Info struct {
	Scheme string // "tcp", "tls", "udp", "ws", "quic" or "mem"
	Local  string // local address, transport specific
	Remote string // remote address, transport specific
	// Reliable is true when frames arrive complete, once and in order, or
	// the link fails.
	Reliable bool
	// FrameHint is the largest frame that crosses the link without being
	// fragmented; 0 means the transport has no preference. Callers that
	// batch small messages keep batches within it.
	FrameHint int
	// Paced is true when a Send may wait for the transport's own
	// congestion control however little the peer has yet to acknowledge
	// (quic: a stream write waits for the congestion window). On the
	// others a Send waits only when the buffers below are full.
	Paced bool
	// PeerCert is the certificate the peer presented and the CA bundle
	// verified (tls); nil on transports without certificates. Whose
	// certificate it is, is for the caller to check.
	PeerCert *x509.Certificate
}

// Conn is one framed, bidirectional link.
//
// Send may be called from several goroutines at once. Receive is called from
// one goroutine only. Close unblocks both; after Close, Send and Receive
// return errors wrapping net.ErrClosed or io.EOF.
type Conn interface {
	// Send writes one frame and returns the time it was handed to the
	// operating system. Outcomes: nil; ErrFrameTooLarge (nothing sent, link
	// still up); any other error means the link has failed.
	Send(frame []byte) (time.Time, error)
	// Receive blocks for the next frame. Outcomes: a frame; ErrFrameTooLarge
	// (an oversized frame was discarded, call again); io.EOF when the peer
	// closed the link; any other error means the link has failed.
	Receive() (Frame, error)
	Info() Info
	Close() error
}

// DatagramConn is implemented by a reliable Conn that also carries
// unreliable datagrams beside its frames: quic, whose datagrams are RFC 9221
// DATAGRAM frames on the same connection, under the same keys. A datagram
// arrives once or not at all; nothing retransmits it, and it may overtake
// frames and other datagrams or fall behind them. Its loss and delay are
// therefore those of the network under the link, which is what a link
// monitor measures with it. Datagrams are never returned by Receive.
type DatagramConn interface {
	Conn
	// SendDatagram sends b as one datagram and returns the time it was
	// handed to the transport. It may be called from several goroutines at
	// once. Outcomes: nil (the datagram may still be lost on the way);
	// ErrDatagramTooLarge (nothing sent, link still up); an error wrapping
	// net.ErrClosed after Close; io.EOF when the peer closed the link; any
	// other error means the link has failed.
	SendDatagram(b []byte) (time.Time, error)
	// ReceiveDatagram blocks for the next datagram. It is called from one
	// goroutine only, which need not be Receive's. Outcomes: a datagram,
	// as a Frame with Data valid until the next call and Received taken as
	// for Receive; io.EOF when the peer closed the link; an error wrapping
	// net.ErrClosed after Close; any other error means the link has failed.
	ReceiveDatagram() (Frame, error)
}

// LatenessReporter is implemented by a Conn whose frames, or packets,
// an emulation's scheduler hands on (EmulatedConn, and quic under
// EmulatePackets). A scheduler wakes tens of microseconds after a frame is
// due on a quiet machine and up to a millisecond on a busy one; the
// receiver's Received leaves that out, so that the link's monitor
// measures the network as emulated, but the messages on the link meet it.
type LatenessReporter interface {
	// HandOffLateness returns how late the latest frames or packets (up
	// to LatenessSamples) were handed on, nil when none were emulated.
	HandOffLateness() []time.Duration
}

// PacketEmulator is implemented by a Conn that carries its frames in
// packets of its own and can emulate the network under them: quic. Emulate
// wraps any Conn and models a reliable transport's recovery on its frames;
// EmulatePackets instead loses, delays and reorders the transport's own
// packets, so that its real recovery (retransmission, congestion control)
// is what the link's users and monitor see. Frames then carry no emulation
// header; the packets do, and the receive times of datagrams are corrected
// by it, while those of frames are not. A caller that emulates links checks
// for it and prefers it to Emulate.
type PacketEmulator interface {
	// EmulatePackets applies e to the packets this end of the link sends
	// from now on; packets already scheduled keep their fate. Outcomes:
	// nil; an invalid e (nothing changed); an error wrapping net.ErrClosed
	// after Close.
	EmulatePackets(e Emulation) error
}

// PartsSender is a Conn that sends one frame given in two parts, written
// back to back without being copied together first: a wrapper that adds a
// trailer to every frame (package linkauth) saves copying each frame. The
// stream transports, tcp and tls, are PartsSenders.
type PartsSender interface {
	// SendParts sends head then tail as one frame, with Send's outcomes.
	SendParts(head, tail []byte) (time.Time, error)
}

// Listener accepts links.
type Listener interface {
	// Accept blocks for the next inbound link. It returns an error wrapping
	// net.ErrClosed after Close.
	Accept() (Conn, error)
	// URL is the address actually bound, with any port 0 resolved, in the
	// form a peer passes to Dial.
	URL() string
	// Close stops accepting and closes every link accepted through the
	// listener that is still open: udp links share its socket, and the
	// other transports behave the same way.
	Close() error
}

// Config holds the settings shared by every transport. The zero value is
// usable: zero fields take their defaults.
type Config struct {
	// MaxFrame is the largest frame in bytes, sent or received. Default
	// DefaultMaxFrame (1 MiB).
	MaxFrame int
	// TLS is used by tls:// on both sides: as a server it presents
	// Certificates and checks client certificates against ClientCAs; as a
	// client it checks the server against RootCAs and presents Certificates.
	// See LoadTLSConfig. Required for tls://. quic:// uses it the same way
	// when it is set, and ephemeral certificates when not (see
	// quic_tls.go): both ends of a quic link must agree.
	TLS *tls.Config
	// Datagram is the largest UDP payload sent in one datagram, header
	// included. Frames larger than that are fragmented. Default 1400 bytes,
	// which crosses a 1500-byte Ethernet path without IP fragmentation.
	Datagram int
	// ReassemblyTimeout is how long a partly received fragmented UDP frame is
	// kept before it counts as lost. Default 2s.
	ReassemblyTimeout time.Duration
	// ReassemblyBudget bounds the bytes that partly received fragmented UDP
	// frames hold: all the links of one listener together, or one dialed
	// link. Default 16 MiB, and never less than twice MaxFrame plus room
	// for the bookkeeping, so that a frame of MaxFrame always fits.
	ReassemblyBudget int
	// HandshakeTimeout bounds connection set-up (TLS, WebSocket upgrade, UDP
	// hello, QUIC handshake). Default 5s.
	HandshakeTimeout time.Duration
	// Logger receives transport-level warnings (garbage datagrams, failed
	// upgrades). Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.Datagram <= 0 {
		c.Datagram = 1400
	}
	if c.ReassemblyTimeout <= 0 {
		c.ReassemblyTimeout = 2 * time.Second
	}
	if c.ReassemblyBudget <= 0 {
		c.ReassemblyBudget = 16 << 20
	}
	c.ReassemblyBudget = max(c.ReassemblyBudget, 2*c.MaxFrame+2*udpMaxDatagram)
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Schemes lists the URL schemes that Dial and Listen understand.
var Schemes = []string{"tcp", "tls", "udp", "ws", "quic", "mem"}

// Dial opens a link to rawURL, for example "tcp://127.0.0.1:7101" or
// "ws://127.0.0.1:7102/overlay".
func Dial(ctx context.Context, rawURL string, cfg Config) (Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	cfg = cfg.withDefaults()
	var c Conn
	switch u.Scheme {
	case "tcp":
		c, err = dialTCP(ctx, u, cfg)
	case "tls":
		c, err = dialTLS(ctx, u, cfg)
	case "udp":
		c, err = dialUDP(ctx, u, cfg)
	case "ws":
		c, err = dialWS(ctx, u, cfg)
	case "quic":
		c, err = dialQUIC(ctx, u, cfg)
	case "mem":
		c, err = dialMem(ctx, u, cfg)
	default:
		err = fmt.Errorf("%w %q", ErrUnknownScheme, u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	return c, nil
}

// Listen binds rawURL and returns a Listener for inbound links.
func Listen(rawURL string, cfg Config) (Listener, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", rawURL, err)
	}
	cfg = cfg.withDefaults()
	var l Listener
	switch u.Scheme {
	case "tcp":
		l, err = listenTCP(u, cfg)
	case "tls":
		l, err = listenTLS(u, cfg)
	case "udp":
		l, err = listenUDP(u, cfg)
	case "ws":
		l, err = listenWS(u, cfg)
	case "quic":
		l, err = listenQUIC(u, cfg)
	case "mem":
		l, err = listenMem(u, cfg)
	default:
		err = fmt.Errorf("%w %q", ErrUnknownScheme, u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", rawURL, err)
	}
	return l, nil
}
