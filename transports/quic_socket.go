package transports

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// The UDP socket under a quic endpoint, and the emulation of its packets.
//
// quic-go takes a net.PacketConn; quicSocket is the one it gets. Reads pass
// straight through. A write to a peer whose link is emulated goes through
// an EmulatedConn of its own, over an unreliable inner conn that writes to
// the socket, so the packets meet the same delay, jitter, loss and outage
// model as udp frames do, and QUIC's own loss recovery, congestion control
// and timers are what repair them.
//
// Unlike a frame, a packet carries no emulation header to its receiver:
// QUIC has nowhere to put it, and its receiver is quic-go. The receive
// times a monitor sees on a quic link therefore include the emulation
// scheduler's lateness (Go timers wake up about 0.1-0.25 ms late) and
// quic-go's own processing; measured delays run that much above the
// emulated ones.
//
// quicSocket does not expose the socket's SyscallConn, so quic-go reads
// and writes one packet per system call through these methods rather than
// in batches (recvmmsg, GSO): the price of being able to emulate any link
// at run time. It does expose SetReadBuffer and SetWriteBuffer, through
// which quic-go sizes the socket buffers.

// quicSocket is a UDP socket whose writes may be emulated per peer. A
// dialer's socket is connected to its one peer; a listener's is shared by
// every link it accepted.
type quicSocket struct {
	udp       *net.UDPConn
	connected bool // writes go out with Write: the kernel knows the peer

	mu     sync.Mutex
	peers  map[string]*EmulatedConn // by remote address
	closed bool
}

var _ net.PacketConn = (*quicSocket)(nil)

func newQUICSocket(udp *net.UDPConn, connected bool) *quicSocket {
	_ = udp.SetReadBuffer(udpSocketBuffer)
	return &quicSocket{udp: udp, connected: connected, peers: make(map[string]*EmulatedConn)}
}

func (s *quicSocket) ReadFrom(b []byte) (int, net.Addr, error) { return s.udp.ReadFrom(b) }

// WriteTo sends b to addr, through addr's emulation when it has one. An
// emulated packet is copied and scheduled; what becomes of it is the
// emulation's business, as on a real network.
func (s *quicSocket) WriteTo(b []byte, addr net.Addr) (int, error) {
	s.mu.Lock()
	ec := s.peers[addr.String()]
	s.mu.Unlock()
	if ec == nil {
		return s.write(b, addr)
	}
	if _, err := ec.Send(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *quicSocket) write(b []byte, addr net.Addr) (int, error) {
	if s.connected {
		return s.udp.Write(b)
	}
	return s.udp.WriteTo(b, addr)
}

// emulate applies e to the packets sent to addr from now on. Outcomes: nil;
// an invalid e (nothing changed); an error wrapping net.ErrClosed once the
// socket is closed.
func (s *quicSocket) emulate(addr net.Addr, e Emulation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("quic %s: emulate: %w", addr, net.ErrClosed)
	}
	key := addr.String()
	if ec := s.peers[key]; ec != nil {
		return ec.SetEmulation(e)
	}
	ec, err := Emulate(&packetPeer{sock: s, addr: addr, done: make(chan struct{})}, e)
	if err != nil {
		return err
	}
	s.peers[key] = ec
	return nil
}

// forget ends addr's emulation once its link has ended; packets already
// in it are still delivered, for up to closeLinger.
func (s *quicSocket) forget(addr net.Addr) {
	s.mu.Lock()
	ec := s.peers[addr.String()]
	delete(s.peers, addr.String())
	s.mu.Unlock()
	if ec != nil {
		ec.Close()
	}
}

// Close ends every emulation, delivering what is due within closeLinger,
// then closes the socket.
func (s *quicSocket) Close() error {
	s.mu.Lock()
	s.closed = true
	peers := s.peers
	s.peers = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, ec := range peers {
		wg.Go(func() { ec.Close() })
	}
	wg.Wait()
	return s.udp.Close()
}

func (s *quicSocket) LocalAddr() net.Addr                { return s.udp.LocalAddr() }
func (s *quicSocket) SetDeadline(t time.Time) error      { return s.udp.SetDeadline(t) }
func (s *quicSocket) SetReadDeadline(t time.Time) error  { return s.udp.SetReadDeadline(t) }
func (s *quicSocket) SetWriteDeadline(t time.Time) error { return s.udp.SetWriteDeadline(t) }
func (s *quicSocket) SetReadBuffer(n int) error          { return s.udp.SetReadBuffer(n) }
func (s *quicSocket) SetWriteBuffer(n int) error         { return s.udp.SetWriteBuffer(n) }

// packetPeer is the inner conn of one peer's packet emulation: an
// unreliable conn whose Send writes one packet to the peer. The emulation
// schedules packets with its header in front, which packetPeer leaves off:
// the receiver is quic-go, which knows nothing of it.
type packetPeer struct {
	sock *quicSocket
	addr net.Addr
	done chan struct{}
	once sync.Once
}

var _ Conn = (*packetPeer)(nil)

// Send writes one packet. A failed write is a lost packet, which QUIC
// recovers from, except on a closed socket.
func (p *packetPeer) Send(b []byte) (time.Time, error) {
	_, err := p.sock.write(b[EmulationOverhead:], p.addr)
	if errors.Is(err, net.ErrClosed) {
		return time.Time{}, fmt.Errorf("quic %s: %w", p.addr, net.ErrClosed)
	}
	return time.Now(), nil
}

// Receive waits for Close: packets from the peer arrive through the
// socket, not here.
func (p *packetPeer) Receive() (Frame, error) {
	<-p.done
	return Frame{}, fmt.Errorf("quic %s: receive: %w", p.addr, net.ErrClosed)
}

func (p *packetPeer) Info() Info {
	return Info{Scheme: "quic", Local: p.sock.LocalAddr().String(), Remote: p.addr.String()}
}

func (p *packetPeer) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}
