package transports

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The UDP socket under a quic endpoint, the emulation of its packets, and
// the arrival times of its peers' packets.
//
// quic-go takes a net.PacketConn; quicSocket is the one it gets. A write to
// a peer whose link is emulated goes through an EmulatedConn of its own,
// over an unreliable inner conn that writes to the socket, so the packets
// meet the same delay, jitter, loss and outage model as udp frames do, and
// QUIC's own loss recovery, congestion control and timers are what repair
// them.
//
// An emulated packet goes out behind the emulation's header, as a frame
// does, with a marker that no QUIC packet starts with (QUIC version 1 sets
// the second bit of every packet's first byte), and the lateness of the
// emulation's scheduler. The receiving socket takes the header off before
// quic-go sees the packet, and notes when the packet arrived less that
// lateness: the moment the emulated network meant to deliver it. quic-go
// does not say which packet carried a datagram, so a datagram's receive
// time is the noted arrival of the last packet from its peer. That is its
// own packet unless another arrived in the tens of microseconds before
// quic-go handed the datagram on, as when a scheduler that woke up late
// sends several packets at once; the datagram then takes that packet's
// time, which is off by the difference of their due times. A link monitor
// thus sees the emulated network much as it does on the other transports,
// without the scheduler's lateness (Go timers wake up 0.1-1 ms late) or
// quic-go's receive path. Only Wayline reads the header: another QUIC
// stack would drop a marked packet.
//
// quicSocket does not expose the socket's SyscallConn, so quic-go reads
// and writes one packet per system call through these methods rather than
// in batches (recvmmsg, GSO): the price of being able to emulate any link
// at run time. It does expose SetReadBuffer and SetWriteBuffer, through
// which quic-go sizes the socket buffers.

// emulatedPacketMarker starts every emulated packet. Its second bit is
// clear, so it cannot start a QUIC version 1 packet.
const emulatedPacketMarker = 0x1E

// quicSocket is a UDP socket whose writes may be emulated per peer. A
// dialer's socket is connected to its one peer; a listener's is shared by
// every link it accepted.
type quicSocket struct {
	udp       *net.UDPConn
	connected bool // writes go out with Write: the kernel knows the peer

	mu     sync.Mutex
	peers  map[string]*EmulatedConn // by remote address
	closed bool

	amu sync.Mutex
	// arrived holds, for each peer of a link, when its last packet arrived
	// (less its emulation's lateness). Only peers of links have entries:
	// a stranger's packets leave no state behind.
	arrived map[netip.AddrPort]time.Time
}

var _ net.PacketConn = (*quicSocket)(nil)

func newQUICSocket(udp *net.UDPConn, connected bool) *quicSocket {
	_ = udp.SetReadBuffer(udpSocketBuffer)
	return &quicSocket{udp: udp, connected: connected,
		peers: make(map[string]*EmulatedConn), arrived: make(map[netip.AddrPort]time.Time)}
}

// ReadFrom reads one packet, takes off its emulation header if it has one,
// and notes its arrival for its peer.
func (s *quicSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := s.udp.ReadFrom(b)
	if err != nil {
		return n, addr, err
	}
	at := time.Now()
	if payload, late, ok := stripPacketHeader(b[:n]); ok {
		n = copy(b, payload)
		at = at.Add(-late)
	}
	key := peerKey(addr)
	s.amu.Lock()
	if _, ok := s.arrived[key]; ok {
		s.arrived[key] = at
	}
	s.amu.Unlock()
	return n, addr, nil
}

// stripPacketHeader splits an emulated packet into the QUIC packet and
// its sender's lateness; ok is false for a packet without the header.
func stripPacketHeader(b []byte) (packet []byte, lateness time.Duration, ok bool) {
	if len(b) < EmulationOverhead || b[0] != emulatedPacketMarker {
		return b, 0, false
	}
	return b[EmulationOverhead:], headerLateness(b), true
}

// watch starts noting the arrivals of addr's packets, for a link with it.
func (s *quicSocket) watch(addr net.Addr) {
	s.amu.Lock()
	s.arrived[peerKey(addr)] = time.Time{}
	s.amu.Unlock()
}

// arrival returns when addr's last packet arrived, or zero when none has
// since watch.
func (s *quicSocket) arrival(addr net.Addr) time.Time {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.arrived[peerKey(addr)]
}

func peerKey(addr net.Addr) netip.AddrPort {
	if u, ok := addr.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(addr.String())
	return ap
}

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

// forget ends what the socket keeps for addr once its link has ended;
// packets already in its emulation are still delivered, for up to
// closeLinger.
func (s *quicSocket) forget(addr net.Addr) {
	s.amu.Lock()
	delete(s.arrived, peerKey(addr))
	s.amu.Unlock()
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
// unreliable conn whose Send writes one packet, behind the emulation's
// header with the packet marker in place of the frame marker.
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
	b[0] = emulatedPacketMarker
	_, err := p.sock.write(b, p.addr)
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
