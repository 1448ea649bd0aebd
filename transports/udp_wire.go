package transports

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The udp:// datagram format. Every datagram starts with one type byte;
// integers are big-endian:
//
//	HELLO      1 | version(1) | session(4)   dialer -> listener, opens a link
//	HELLO_ACK  2 | version(1) | session(4)   listener -> dialer, same session
//	DATA       3 | frame                     a whole frame
//	FRAG       4 | id(4) | index(2) | count(2) | chunk
//	CLOSE      5                             the sender closed the link
//
// The session is a random number chosen by the dialer. A repeated HELLO with
// the same session is a retry and is answered again; a HELLO with a new
// session from a known address is a restarted dialer, which replaces the
// old link.
//
// A frame larger than one datagram is cut into count >= 2 FRAG chunks of
// equal size (the last may be shorter) that share an id, numbered by index.
// The receiver reassembles them; if any chunk is lost the whole frame is
// lost.

const (
	udpHello    byte = 1
	udpHelloAck byte = 2
	udpData     byte = 3
	udpFrag     byte = 4
	udpClose    byte = 5

	udpVersion = 1

	udpHelloSize  = 6
	udpDataHeader = 1
	udpFragHeader = 9

	// udpMinDatagram keeps the fragment count of any sane MaxFrame small.
	udpMinDatagram = 64
	// udpMaxDatagram is the largest UDP payload over IPv4.
	udpMaxDatagram = 65507
	// udpMaxPartial bounds the frames being reassembled per link.
	udpMaxPartial = 64
)

// errBadDatagram marks a datagram that does not follow the format.
var errBadDatagram = errors.New("malformed datagram")

// datagram is one parsed datagram; payload aliases the input.
type datagram struct {
	typ     byte
	session uint32 // HELLO, HELLO_ACK
	id      uint32 // FRAG
	index   uint16 // FRAG
	count   uint16 // FRAG
	payload []byte // DATA, FRAG
}

// parseDatagram checks the header of b. Outcomes: a datagram, or an error
// wrapping errBadDatagram.
func parseDatagram(b []byte) (datagram, error) {
	if len(b) == 0 {
		return datagram{}, fmt.Errorf("empty: %w", errBadDatagram)
	}
	d := datagram{typ: b[0]}
	switch d.typ {
	case udpHello, udpHelloAck:
		if len(b) != udpHelloSize {
			return d, fmt.Errorf("hello of %d bytes: %w", len(b), errBadDatagram)
		}
		if b[1] != udpVersion {
			return d, fmt.Errorf("hello version %d: %w", b[1], errBadDatagram)
		}
		d.session = binary.BigEndian.Uint32(b[2:])
	case udpData:
		d.payload = b[udpDataHeader:]
	case udpFrag:
		if len(b) <= udpFragHeader {
			return d, fmt.Errorf("fragment of %d bytes: %w", len(b), errBadDatagram)
		}
		d.id = binary.BigEndian.Uint32(b[1:])
		d.index = binary.BigEndian.Uint16(b[5:])
		d.count = binary.BigEndian.Uint16(b[7:])
		if d.count < 2 || d.index >= d.count {
			return d, fmt.Errorf("fragment %d of %d: %w", d.index, d.count, errBadDatagram)
		}
		d.payload = b[udpFragHeader:]
	case udpClose:
		if len(b) != 1 {
			return d, fmt.Errorf("close of %d bytes: %w", len(b), errBadDatagram)
		}
	default:
		return d, fmt.Errorf("type %d: %w", d.typ, errBadDatagram)
	}
	return d, nil
}

func appendHello(b []byte, typ byte, session uint32) []byte {
	b = append(b, typ, udpVersion)
	return binary.BigEndian.AppendUint32(b, session)
}

func appendFragHeader(b []byte, id uint32, index, count uint16) []byte {
	b = append(b, udpFrag)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint16(b, index)
	return binary.BigEndian.AppendUint16(b, count)
}

// checkUDPConfig rejects a datagram size that is not sendable or that would
// need more than 65535 fragments for one frame.
func checkUDPConfig(cfg Config) error {
	if cfg.Datagram < udpMinDatagram || cfg.Datagram > udpMaxDatagram {
		return fmt.Errorf("Datagram %d is outside [%d, %d]", cfg.Datagram, udpMinDatagram, udpMaxDatagram)
	}
	chunk := cfg.Datagram - udpFragHeader
	if n := (cfg.MaxFrame + chunk - 1) / chunk; n > 1<<16-1 {
		return fmt.Errorf("MaxFrame %d needs %d fragments of %d bytes, over 65535", cfg.MaxFrame, n, chunk)
	}
	return nil
}

// partialFrame is a fragmented frame being reassembled. Chunks are copied
// straight to their place in buf, which needs the chunk size: it is known
// from the first non-last fragment, and a last fragment that comes earlier
// waits in last.
type partialFrame struct {
	count    int
	chunk    int      // size of every fragment but the last; 0 until known
	buf      []byte   // (count-1)*chunk + room for the last fragment
	last     []byte   // an early last fragment, until chunk is known
	lastLen  int      // size of the last fragment; -1 until it arrives
	got      []uint64 // bitmap of the fragments received
	have     int
	started  time.Time
	tooLarge bool // reported once; later fragments are ignored
}

func (p *partialFrame) size() int {
	return cap(p.buf) + len(p.last) + 8*len(p.got)
}

// reassembler rebuilds fragmented frames for one link. It holds at most
// udpMaxPartial frames and budget bytes; beyond either the oldest frame is
// dropped, as is any frame older than timeout. It is used by one goroutine.
type reassembler struct {
	maxFrame int
	timeout  time.Duration
	budget   int
	held     int
	partial  map[uint32]*partialFrame
}

func newReassembler(maxFrame int, timeout time.Duration) *reassembler {
	return &reassembler{
		maxFrame: maxFrame,
		timeout:  timeout,
		budget:   4*maxFrame + 2*udpMaxDatagram,
		partial:  make(map[uint32]*partialFrame),
	}
}

// add files one fragment. Outcomes: the complete frame when d was its last
// missing fragment; nil, nil while the frame is incomplete (or d was a
// duplicate); an error wrapping ErrFrameTooLarge, once per frame, when the
// frame turns out to exceed maxFrame; an error wrapping errBadDatagram when
// the fragments of one id contradict each other (the frame is dropped).
func (r *reassembler) add(d datagram, now time.Time) ([]byte, error) {
	p := r.partial[d.id]
	if p != nil && (now.Sub(p.started) > r.timeout || p.count != int(d.count)) {
		// A stale frame, or a new frame that reuses its id.
		r.drop(d.id)
		p = nil
	}
	if p == nil {
		p = r.start(d, now)
	}
	if p.tooLarge || p.got[d.index/64]&(1<<(d.index%64)) != 0 {
		return nil, nil
	}
	before := p.size()
	err := p.place(int(d.index), d.payload, r.maxFrame)
	r.held += p.size() - before
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) {
			r.held -= p.size()
			p.tooLarge, p.buf, p.last = true, nil, nil
			r.held += p.size()
		} else {
			r.drop(d.id)
		}
		return nil, err
	}
	p.got[d.index/64] |= 1 << (d.index % 64)
	p.have++
	if p.have < p.count {
		r.shrink(d.id)
		return nil, nil
	}
	frame := p.buf[:(p.count-1)*p.chunk+p.lastLen]
	r.drop(d.id)
	return frame, nil
}

// start opens a partial frame for d, first making room for it.
func (r *reassembler) start(d datagram, now time.Time) *partialFrame {
	for id, p := range r.partial {
		if now.Sub(p.started) > r.timeout {
			r.drop(id)
		}
	}
	if len(r.partial) >= udpMaxPartial {
		r.drop(r.oldest(d.id))
	}
	p := &partialFrame{
		count:   int(d.count),
		lastLen: -1,
		got:     make([]uint64, (int(d.count)+63)/64),
		started: now,
	}
	r.partial[d.id] = p
	r.held += p.size()
	return p
}

// place copies one new fragment into p.
func (p *partialFrame) place(index int, chunk []byte, maxFrame int) error {
	if index == p.count-1 {
		return p.placeLast(chunk, maxFrame)
	}
	if p.chunk == 0 {
		if err := p.setChunk(len(chunk), maxFrame); err != nil {
			return err
		}
	}
	if len(chunk) != p.chunk {
		return fmt.Errorf("fragment of %d bytes, others have %d: %w", len(chunk), p.chunk, errBadDatagram)
	}
	copy(p.buf[index*p.chunk:], chunk)
	return nil
}

func (p *partialFrame) placeLast(chunk []byte, maxFrame int) error {
	p.lastLen = len(chunk)
	if p.chunk == 0 {
		// Every other fragment is at least as large as the last one.
		if p.count*len(chunk) > maxFrame {
			return tooLargeFragments(p.count, len(chunk), maxFrame)
		}
		p.last = append([]byte(nil), chunk...)
		return nil
	}
	if err := p.checkLast(maxFrame); err != nil {
		return err
	}
	p.buf = p.buf[:cap(p.buf)]
	copy(p.buf[(p.count-1)*p.chunk:], chunk)
	return nil
}

// setChunk learns the chunk size and allocates buf, moving in an early last
// fragment.
func (p *partialFrame) setChunk(chunk, maxFrame int) error {
	if (p.count-1)*chunk+1 > maxFrame {
		return tooLargeFragments(p.count, chunk, maxFrame)
	}
	p.chunk = chunk
	if err := p.checkLast(maxFrame); err != nil {
		return err
	}
	room := chunk
	if p.lastLen >= 0 {
		room = p.lastLen
	}
	p.buf = make([]byte, (p.count-1)*chunk+room)
	copy(p.buf[(p.count-1)*chunk:], p.last)
	p.last = nil
	return nil
}

// checkLast validates the last fragment against the chunk size, once both
// are known.
func (p *partialFrame) checkLast(maxFrame int) error {
	if p.lastLen < 0 {
		return nil
	}
	if p.lastLen > p.chunk {
		return fmt.Errorf("last fragment of %d bytes, others have %d: %w", p.lastLen, p.chunk, errBadDatagram)
	}
	if size := (p.count-1)*p.chunk + p.lastLen; size > maxFrame {
		return fmt.Errorf("peer sent %d bytes in fragments (limit %d): %w", size, maxFrame, ErrFrameTooLarge)
	}
	return nil
}

func tooLargeFragments(count, chunk, maxFrame int) error {
	return fmt.Errorf("peer sent %d fragments of %d bytes (limit %d): %w", count, chunk, maxFrame, ErrFrameTooLarge)
}

// shrink drops the oldest other frames while over budget.
func (r *reassembler) shrink(keep uint32) {
	for r.held > r.budget && len(r.partial) > 1 {
		r.drop(r.oldest(keep))
	}
}

// oldest returns the id of the oldest partial frame other than keep.
func (r *reassembler) oldest(keep uint32) uint32 {
	var id uint32
	var at time.Time
	found := false
	for i, p := range r.partial {
		if i != keep && (!found || p.started.Before(at)) {
			id, at, found = i, p.started, true
		}
	}
	return id
}

func (r *reassembler) drop(id uint32) {
	if p := r.partial[id]; p != nil {
		r.held -= p.size()
		delete(r.partial, id)
	}
}
