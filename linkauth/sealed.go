package linkauth

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/wayline/wayline/transports"
)

// Overhead is what protection adds to every frame of a secret-mode link:
// its sequence number (8 bytes) and its AES-GCM tag (16 bytes).
const Overhead = seqSize + tagSize

const (
	seqSize = 8
	tagSize = 16
	// replayWindow is how far behind the newest frame an older one may
	// still arrive on an unreliable transport: frames further back, and
	// frames seen before, are replays.
	replayWindow = 1024
)

// sealedConn protects the frames of one session. A frame goes out as
//
//	payload | sequence u64 | tag [16]
//
// where the tag is AES-GCM's over the payload, with no plaintext (GMAC),
// and the sequence number as the nonce: the frame is authenticated, not
// encrypted, and its sequence number is bound to it. The sequence number
// counts the frames sent in one direction of one session; each direction
// has its own key, fresh for the session, so a nonce is never used twice
// under one key. The receiver checks the tag and that the sequence number
// is new: on a reliable transport it must be the next one, on an
// unreliable one it must be within the window and unseen. Over a
// transports.PartsSender the payload is sent as it is, followed by the
// trailer; otherwise the two are copied together first.
type sealedConn struct {
	inner transports.Conn
	parts transports.PartsSender // inner, when it is one
	seal  cipher.AEAD
	open  cipher.AEAD

	smu     sync.Mutex
	sseq    uint64
	sbuf    []byte
	trailer [Overhead]byte

	// The receiving side, owned by the reader.
	reliable bool
	next     uint64 // reliable: the sequence number expected
	win      window // unreliable
	scratch  [0]byte
	pending  *transports.Frame // taken during the handshake, delivered first
}

var _ transports.Conn = (*sealedConn)(nil)

func newSealed(inner transports.Conn, sendKey, recvKey []byte) (*sealedConn, error) {
	seal, err := newGCM(sendKey)
	if err != nil {
		return nil, err
	}
	open, err := newGCM(recvKey)
	if err != nil {
		return nil, err
	}
	parts, _ := inner.(transports.PartsSender)
	return &sealedConn{inner: inner, parts: parts, seal: seal, open: open, reliable: inner.Info().Reliable}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("frame key: %w", err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("frame key: %w", err)
	}
	return g, nil
}

func nonceFor(seq uint64) [12]byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n
}

// Send protects and sends one frame. A frame the transport refuses as too
// large does not use up its sequence number.
func (c *sealedConn) Send(frame []byte) (time.Time, error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	binary.BigEndian.PutUint64(c.trailer[:seqSize], c.sseq)
	nonce := nonceFor(c.sseq)
	trailer := c.seal.Seal(c.trailer[:seqSize], nonce[:], nil, frame)
	var at time.Time
	var err error
	if c.parts != nil {
		at, err = c.parts.SendParts(frame, trailer)
	} else {
		c.sbuf = append(append(c.sbuf[:0], frame...), trailer...)
		at, err = c.inner.Send(c.sbuf)
	}
	if err == nil {
		c.sseq++
	}
	return at, err
}

// Receive returns the next authentic frame. Outcomes: those of the inner
// Conn, and ErrForged for a frame that failed authentication (dropped;
// call again). A repeated handshake message, which crossed the answer to
// it on an unreliable transport, is dropped without a word.
func (c *sealedConn) Receive() (transports.Frame, error) {
	if f := c.pending; f != nil {
		c.pending = nil
		return *f, nil
	}
	for {
		f, err := c.inner.Receive()
		if err != nil {
			return f, err
		}
		data, err := c.verify(f.Data)
		if err == nil {
			f.Data = data
			return f, nil
		}
		if t, _, ok := splitRecord(f.Data); ok && IsHandshakeRecord(t) {
			continue
		}
		return transports.Frame{}, fmt.Errorf("%s: %w", c.inner.Info().Remote, err)
	}
}

// verify checks a protected frame and returns its payload.
func (c *sealedConn) verify(b []byte) ([]byte, error) {
	if len(b) < Overhead {
		return nil, fmt.Errorf("%w: a frame of %d bytes", ErrForged, len(b))
	}
	n := len(b) - Overhead
	seq := binary.BigEndian.Uint64(b[n : n+seqSize])
	if !c.fresh(seq) {
		return nil, fmt.Errorf("%w: frame %d replayed or out of order", ErrForged, seq)
	}
	nonce := nonceFor(seq)
	if _, err := c.open.Open(c.scratch[:0], nonce[:], b[n+seqSize:], b[:n]); err != nil {
		return nil, fmt.Errorf("%w: frame %d: bad tag", ErrForged, seq)
	}
	if c.reliable {
		c.next++
	} else {
		c.win.mark(seq)
	}
	return b[:n:n], nil
}

func (c *sealedConn) fresh(seq uint64) bool {
	if c.reliable {
		return seq == c.next
	}
	return c.win.fresh(seq)
}

// Info is the inner Conn's, with room left for the protection.
func (c *sealedConn) Info() transports.Info {
	info := c.inner.Info()
	if info.FrameHint > 0 {
		info.FrameHint = max(info.FrameHint-Overhead, 1)
	}
	return info
}

func (c *sealedConn) Close() error { return c.inner.Close() }

// window remembers which of the last replayWindow sequence numbers were
// received.
type window struct {
	started bool
	max     uint64
	bits    [replayWindow / 64]uint64
}

func (w *window) fresh(seq uint64) bool {
	switch {
	case !w.started || seq > w.max:
		return true
	case w.max-seq >= replayWindow:
		return false
	}
	return !w.has(seq)
}

func (w *window) mark(seq uint64) {
	switch {
	case !w.started:
		w.started, w.max = true, seq
	case seq > w.max && seq-w.max >= replayWindow:
		w.bits, w.max = [replayWindow / 64]uint64{}, seq
	case seq > w.max:
		for s := w.max + 1; s < seq; s++ {
			w.bits[(s/64)%(replayWindow/64)] &^= 1 << (s % 64)
		}
		w.max = seq
	}
	w.bits[(seq/64)%(replayWindow/64)] |= 1 << (seq % 64)
}

func (w *window) has(seq uint64) bool {
	return w.bits[(seq/64)%(replayWindow/64)]&(1<<(seq%64)) != 0
}

// pendingConn hands out one frame taken during the handshake before the
// frames of its Conn: on an unreliable transport the acceptance may be lost
// and the acceptor's first frame of the session prove it instead.
type pendingConn struct {
	transports.Conn
	first *transports.Frame
}

func (c *pendingConn) Receive() (transports.Frame, error) {
	if f := c.first; f != nil {
		c.first = nil
		return *f, nil
	}
	return c.Conn.Receive()
}

// keep copies a frame that must outlive the next Receive.
func keep(f transports.Frame) *transports.Frame {
	f.Data = append([]byte(nil), f.Data...)
	return &f
}
