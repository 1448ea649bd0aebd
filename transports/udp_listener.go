package transports

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// udpQueueDepth bounds the datagrams waiting for one accepted link's
// Receive: room for two of the largest frames, fragmented, and never less
// than 512, so that a burst of fragments is not dropped while the reader
// is busy.
func udpQueueDepth(cfg Config) int {
	perFrame := (cfg.MaxFrame + cfg.Datagram - 1) / max(cfg.Datagram-udpFragHeader, 1)
	return max(512, 2*perFrame+16)
}

// udpQueueBytes bounds the bytes of the datagrams waiting in all the
// queues of one listener together: what a flood from many source addresses
// can make it hold however many links it opens.
func udpQueueBytes(cfg Config) int {
	return max(16<<20, 2*udpQueueDepth(cfg)*cfg.Datagram)
}

// udpListener owns one socket. Its reader goroutine demultiplexes datagrams
// by source address: a valid HELLO from a new address creates a link, and
// DATA and FRAG go to the link of their address.
type udpListener struct {
	sock  *net.UDPConn
	cfg   Config
	url   string
	in    *inbound
	drops *dropLog
	pool  sync.Pool // *[]byte of at least cfg.Datagram bytes, for queued datagrams
	// queued counts the bytes waiting in every link's queue, against
	// udpQueueBytes; reasm is the links' shared reassembly budget.
	queued atomic.Int64
	reasm  *reassemblyBudget
	wg     sync.WaitGroup

	mu    sync.Mutex
	peers map[netip.AddrPort]*udpPeer
}

var _ Listener = (*udpListener)(nil)

// udpPeer is the listener's side of one link.
type udpPeer struct {
	conn    *udpConn
	queue   *peerQueue
	session uint32
}

// listenUDP binds udp://host:port and starts the reader.
func listenUDP(u *url.URL, cfg Config) (Listener, error) {
	if err := checkUDPConfig(cfg); err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("udp: missing host:port")
	}
	addr, err := net.ResolveUDPAddr("udp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	sock, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	_ = sock.SetReadBuffer(udpSocketBuffer)
	l := &udpListener{
		sock:  sock,
		cfg:   cfg,
		url:   "udp://" + sock.LocalAddr().String(),
		in:    newInbound("udp " + sock.LocalAddr().String()),
		drops: &dropLog{logger: cfg.Logger},
		reasm: newReassemblyBudget(cfg.ReassemblyBudget),
		peers: make(map[netip.AddrPort]*udpPeer),
	}
	l.pool.New = func() any {
		b := make([]byte, cfg.Datagram)
		return &b
	}
	l.wg.Add(1)
	go l.readLoop()
	return l, nil
}

func (l *udpListener) readLoop() {
	defer l.wg.Done()
	buf := make([]byte, udpMaxDatagram)
	in := newStampedReader(l.sock)
	for {
		n, from, at, err := in.read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Some systems report ICMP errors for earlier sends here.
			l.drops.drop(l.url, err)
			continue
		}
		l.handle(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), at)
	}
}

// handle routes one datagram. Anything unexpected is counted and dropped.
func (l *udpListener) handle(b []byte, from netip.AddrPort, at time.Time) {
	d, err := parseDatagram(b)
	if err != nil {
		l.drops.drop(from.String(), err)
		return
	}
	l.mu.Lock()
	p := l.peers[from]
	l.mu.Unlock()
	switch {
	case d.typ == udpHello:
		l.hello(p, from, d.session)
	case p == nil && d.typ == udpClose:
		// Both ends closed at once; ours is already gone.
	case p == nil:
		l.drops.drop(from.String(), fmt.Errorf("type %d from an unknown peer: %w", d.typ, errBadDatagram))
	case d.typ == udpData || d.typ == udpFrag:
		if !p.queue.push(b, at) {
			l.drops.drop(from.String(), errors.New("receive queue full"))
		}
	case d.typ == udpClose:
		l.forget(from, p)
		p.queue.peerClosed()
	default:
		l.drops.drop(from.String(), fmt.Errorf("unexpected type %d: %w", d.typ, errBadDatagram))
	}
}

// hello answers a HELLO, creating a link unless it is a retry of one
// already created.
func (l *udpListener) hello(p *udpPeer, from netip.AddrPort, session uint32) {
	if p != nil && p.session == session {
		l.ack(from, session) // our first ack was lost
		return
	}
	if p != nil {
		// The dialer restarted on the same address: its old link is over.
		l.forget(from, p)
		p.queue.peerClosed()
	}
	np := l.newPeer(from, session)
	l.mu.Lock()
	ok := l.in.offer(np.conn, false)
	if ok {
		l.peers[from] = np
	}
	l.mu.Unlock()
	if !ok {
		l.drops.drop(from.String(), errors.New("HELLO refused: listener closed or backlog full"))
		return
	}
	l.ack(from, session)
}

func (l *udpListener) newPeer(from netip.AddrPort, session uint32) *udpPeer {
	q := &peerQueue{
		depth:    udpQueueDepth(l.cfg),
		maxBytes: int64(udpQueueBytes(l.cfg)),
		total:    &l.queued,
		ready:    make(chan struct{}, 1),
		closed:   make(chan struct{}),
		eof:      make(chan struct{}),
		pool:     &l.pool,
	}
	p := &udpPeer{queue: q, session: session}
	p.conn = &udpConn{
		src: q,
		write: func(b []byte) (int, error) {
			return l.sock.WriteToUDPAddrPort(b, from)
		},
		shutdown: q.close,
		local:    l.sock.LocalAddr().String(),
		remote:   from.String(),
		maxFrame: l.cfg.MaxFrame,
		datagram: l.cfg.Datagram,
		drops:    l.drops,
		reasm:    newReassembler(l.cfg.MaxFrame, l.cfg.ReassemblyTimeout, l.reasm),
	}
	p.conn.release = func() {
		l.forget(from, p)
		l.in.forget(p.conn)
	}
	return p
}

func (l *udpListener) ack(to netip.AddrPort, session uint32) {
	var b [udpHelloSize]byte
	if _, err := l.sock.WriteToUDPAddrPort(appendHello(b[:0], udpHelloAck, session), to); err != nil {
		l.drops.drop(to.String(), fmt.Errorf("HELLO_ACK: %w", err))
	}
}

// forget removes p from the peers if it is still the link of its address.
func (l *udpListener) forget(from netip.AddrPort, p *udpPeer) {
	l.mu.Lock()
	if l.peers[from] == p {
		delete(l.peers, from)
	}
	l.mu.Unlock()
}

func (l *udpListener) Accept() (Conn, error) { return l.in.accept() }

func (l *udpListener) URL() string { return l.url }

// Close closes every link of the listener (each sends CLOSE to its peer),
// then the socket, and waits for the reader.
func (l *udpListener) Close() error {
	l.in.close()
	err := l.sock.Close()
	l.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%s: close: %w", l.url, err)
	}
	return nil
}

// packet is one queued datagram in a pooled buffer.
type packet struct {
	buf *[]byte
	n   int
	at  time.Time
}

// peerQueue carries one link's datagrams from the listener's reader to the
// link's Receive. It grows with the datagrams actually waiting, up to depth
// of them, and every queue of the listener together holds at most maxBytes.
type peerQueue struct {
	depth    int
	maxBytes int64
	total    *atomic.Int64 // bytes waiting in every queue of the listener

	mu      sync.Mutex
	packets []packet // waiting, from head on
	head    int
	ended   bool // closed: nothing more is queued

	ready     chan struct{} // signalled when a datagram is queued
	closed    chan struct{} // closed by the link's Close
	eof       chan struct{} // closed when the peer sent CLOSE
	closeOnce sync.Once
	eofOnce   sync.Once
	pool      *sync.Pool
	held      *[]byte // the buffer of the datagram last returned by next
}

var _ datagramSource = (*peerQueue)(nil)

// push copies b into a pooled buffer and queues it, or reports false when
// the queue, or the listener's queues together, are full. It never blocks:
// the reader serves every link.
func (q *peerQueue) push(b []byte, at time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended || len(q.packets)-q.head >= q.depth {
		return false
	}
	buf := q.pool.Get().(*[]byte)
	if cap(*buf) < len(b) {
		// The peer sends datagrams larger than ours.
		q.pool.Put(buf)
		nb := make([]byte, len(b))
		buf = &nb
	}
	if size := int64(cap(*buf)); q.total.Add(size) > q.maxBytes {
		q.total.Add(-size)
		q.pool.Put(buf)
		return false
	}
	n := copy((*buf)[:cap(*buf)], b)
	q.packets = append(q.packets, packet{buf: buf, n: n, at: at})
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest waiting datagram.
func (q *peerQueue) pop() (packet, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.packets) {
		return packet{}, false
	}
	p := q.packets[q.head]
	q.packets[q.head] = packet{}
	q.head++
	if q.head == len(q.packets) {
		q.packets, q.head = q.packets[:0], 0
	}
	return p, true
}

func (q *peerQueue) next() ([]byte, time.Time, error) {
	q.recycle()
	for {
		select {
		case <-q.closed:
			return nil, time.Time{}, net.ErrClosed
		default:
		}
		if p, ok := q.pop(); ok {
			return q.hold(p)
		}
		select {
		case <-q.ready:
		case <-q.closed:
			return nil, time.Time{}, net.ErrClosed
		case <-q.eof:
			// Deliver what came before the CLOSE first.
			if p, ok := q.pop(); ok {
				return q.hold(p)
			}
			return nil, time.Time{}, io.EOF
		}
	}
}

func (q *peerQueue) hold(p packet) ([]byte, time.Time, error) {
	q.held = p.buf
	return (*p.buf)[:p.n], p.at, nil
}

// recycle returns the previous datagram's buffer, which the caller no longer
// uses, to the pool.
func (q *peerQueue) recycle() {
	if q.held != nil {
		q.total.Add(-int64(cap(*q.held)))
		q.pool.Put(q.held)
		q.held = nil
	}
}

func (q *peerQueue) peerClosed() { q.eofOnce.Do(func() { close(q.eof) }) }

// close stops the queue and gives back the datagrams still waiting.
func (q *peerQueue) close() error {
	q.closeOnce.Do(func() {
		close(q.closed)
		q.mu.Lock()
		q.ended = true
		waiting := q.packets[q.head:]
		q.packets, q.head = nil, 0
		q.mu.Unlock()
		for _, p := range waiting {
			q.total.Add(-int64(cap(*p.buf)))
			q.pool.Put(p.buf)
		}
	})
	return nil
}
