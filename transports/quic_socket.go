package transports

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The UDP socket under a quic endpoint: the emulation of its packets, and
// when its peers' packets arrived.
//
// quic-go takes a net.PacketConn; quicSocket is the one it gets. A write to
// a peer whose link is emulated goes through an EmulatedConn of its own,
// over an unreliable inner conn that writes to the socket, so the packets
// meet the same delay, jitter, loss and outage model as udp frames do, and
// QUIC's own loss recovery, congestion control and timers are what repair
// them.
//
// An emulated packet goes out behind a header of packetHeader bytes: a
// marker that no QUIC packet starts with (QUIC version 1 sets the second
// bit of every packet's first byte), the lateness of the emulation's
// scheduler, as in a frame's emulation header, and the number of the
// datagram the packet carries (0 for none; see quic_datagram.go). The
// receiving socket takes the header off before quic-go sees the packet and
// notes when it arrived less that lateness: the moment the emulated
// network meant to deliver it. quic-go does not say which packet brought a
// datagram, so the number is how a datagram finds its packet's arrival, and
// with it the receive time a link monitor sees: the emulated network, as
// on the other transports, without the scheduler's lateness (Go timers
// wake up 0.1-1 ms late) or quic-go's receive path. Only Wayline reads the
// header: another QUIC stack would drop a marked packet.
//
// On Linux the arrival is the kernel's receive timestamp (SO_TIMESTAMPNS),
// emulated or not, so that neither the wake-up of quic-go's reader nor its
// work on the packets ahead of this one counts as network delay; quic-go
// handles each packet it reads before the next, which on a busy machine
// would otherwise add a fraction of a millisecond behind a burst.
//
// quicSocket does not expose the socket's SyscallConn, so quic-go reads
// and writes one packet per system call through these methods rather than
// in batches (recvmmsg, GSO): the price of being able to emulate any link
// at run time. It does expose SetReadBuffer and SetWriteBuffer, through
// which quic-go sizes the socket buffers.

const (
	// emulatedPacketMarker starts every emulated packet. Its second bit is
	// clear, so it cannot start a QUIC version 1 packet.
	emulatedPacketMarker = 0x1E
	// packetHeader is the size of an emulated packet's header: the
	// emulation header, then a datagram number.
	packetHeader = EmulationOverhead + datagramNumber
	// arrivalRing is how many numbered datagrams' arrivals a peer keeps:
	// far more than can wait in quic-go between a packet's arrival and its
	// datagram's delivery.
	arrivalRing = 32
)

// quicSocket is a UDP socket whose writes may be emulated per peer. A
// dialer's socket is connected to its one peer; a listener's is shared by
// every link it accepted.
type quicSocket struct {
	udp       *net.UDPConn
	connected bool           // writes go out with Write: the kernel knows the peer
	in        *stampedReader // ReadFrom's; quic-go reads from one goroutine

	mu     sync.RWMutex
	peers  map[netip.AddrPort]*quicPeer // the peers of links; strangers leave no state
	closed bool
}

var _ net.PacketConn = (*quicSocket)(nil)

// quicPeer is what a socket keeps for the peer of its links (one, unless
// a link ends and another from the same address begins).
type quicPeer struct {
	addr  net.Addr
	links int                          // guarded by the socket's mu
	emu   atomic.Pointer[EmulatedConn] // nil while the link is not emulated
	// tag is the number of the datagram the next packet to the peer
	// carries, 0 for none.
	tag atomic.Uint32

	mu     sync.Mutex
	last   time.Time // when the last packet arrived, less its lateness
	ring   [arrivalRing]numbered
	cursor int
}

// numbered is the arrival of the packet that carried datagram n.
type numbered struct {
	n  uint32
	at time.Time
}

func newQUICSocket(udp *net.UDPConn, connected bool) *quicSocket {
	_ = udp.SetReadBuffer(udpSocketBuffer)
	return &quicSocket{udp: udp, connected: connected, in: newStampedReader(udp), peers: make(map[netip.AddrPort]*quicPeer)}
}

func peerKey(addr net.Addr) netip.AddrPort {
	if u, ok := addr.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(addr.String())
	return ap
}

func (s *quicSocket) peer(addr net.Addr) *quicPeer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.peers[peerKey(addr)]
}

// watch returns what the socket keeps for addr, the peer of a new link.
func (s *quicSocket) watch(addr net.Addr) *quicPeer {
	key := peerKey(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[key]
	if p == nil {
		p = &quicPeer{addr: addr}
		s.peers[key] = p
	}
	p.links++
	return p
}

// forget drops p once its last link has ended; packets already in its
// emulation are still delivered, for up to closeLinger.
func (s *quicSocket) forget(p *quicPeer) {
	key := peerKey(p.addr)
	s.mu.Lock()
	if p.links--; p.links > 0 || s.peers[key] != p {
		s.mu.Unlock()
		return
	}
	delete(s.peers, key)
	s.mu.Unlock()
	if ec := p.emu.Load(); ec != nil {
		ec.Close()
	}
}

// ReadFrom reads one packet, takes off its header if it has one, and notes
// its arrival for its peer: when the kernel received it, where the kernel
// says, and when the read returned otherwise.
func (s *quicSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, at, err := s.read(b)
	if err != nil {
		return n, addr, err
	}
	var tag uint32
	if packet, late, t, ok := stripPacketHeader(b[:n]); ok {
		n = copy(b, packet)
		at, tag = at.Add(-late), t
	}
	if p := s.peer(addr); p != nil {
		p.arrived(at, tag)
	}
	return n, addr, nil
}

func (s *quicSocket) read(b []byte) (int, net.Addr, time.Time, error) {
	n, from, at, err := s.in.read(b)
	if err != nil {
		return n, nil, time.Time{}, err
	}
	return n, net.UDPAddrFromAddrPort(from), at, nil
}

// stripPacketHeader splits an emulated packet into the QUIC packet, its
// sender's lateness and the number of the datagram it carries; ok is
// false for a packet without the header.
func stripPacketHeader(b []byte) (packet []byte, lateness time.Duration, tag uint32, ok bool) {
	if len(b) < packetHeader || b[0] != emulatedPacketMarker {
		return b, 0, 0, false
	}
	return b[packetHeader:], headerLateness(b), binary.BigEndian.Uint32(b[EmulationOverhead:]), true
}

func (p *quicPeer) arrived(at time.Time, tag uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = at
	if tag != 0 {
		p.ring[p.cursor] = numbered{n: tag, at: at}
		p.cursor = (p.cursor + 1) % arrivalRing
	}
}

// arrival returns when the packet that carried datagram n arrived; when
// that is not known, when the last packet arrived; zero when none has.
func (p *quicPeer) arrival(n uint32) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.ring {
		if a.n == n && n != 0 {
			return a.at
		}
	}
	return p.last
}

// WriteTo sends b to addr, through addr's emulation when it has one. An
// emulated packet is copied and scheduled; what becomes of it is the
// emulation's business, as on a real network.
func (s *quicSocket) WriteTo(b []byte, addr net.Addr) (int, error) {
	p := s.peer(addr)
	var ec *EmulatedConn
	if p != nil {
		ec = p.emu.Load()
	}
	if ec == nil {
		return s.write(b, addr)
	}
	frame := make([]byte, datagramNumber+len(b))
	binary.BigEndian.PutUint32(frame, p.tag.Swap(0))
	copy(frame[datagramNumber:], b)
	if _, err := ec.Send(frame); err != nil {
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

// emulate applies e to the packets sent to p from now on. Outcomes: nil;
// an invalid e (nothing changed); an error wrapping net.ErrClosed once the
// socket is closed or p forgotten.
func (s *quicSocket) emulate(p *quicPeer, e Emulation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.peers[peerKey(p.addr)] != p {
		return fmt.Errorf("quic %s: emulate: %w", p.addr, net.ErrClosed)
	}
	if ec := p.emu.Load(); ec != nil {
		return ec.SetEmulation(e)
	}
	ec, err := Emulate(&packetPeer{sock: s, addr: p.addr, done: make(chan struct{})}, e)
	if err != nil {
		return err
	}
	p.emu.Store(ec)
	return nil
}

// Close ends every emulation, delivering what is due within closeLinger,
// then closes the socket.
func (s *quicSocket) Close() error {
	s.mu.Lock()
	s.closed = true
	peers := s.peers
	s.peers = map[netip.AddrPort]*quicPeer{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range peers {
		if ec := p.emu.Load(); ec != nil {
			wg.Go(func() { ec.Close() })
		}
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
// unreliable conn whose Send writes one packet, which the emulation has
// put behind its header, with the packet marker in place of the frame
// marker.
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
