package linkauth

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/wayline/wayline/transports"
)

// A transport that carries unreliable datagrams beside its frames (quic,
// whose link probes travel as datagrams) keeps them on a secret-mode
// link: they are protected as frames are, under the same keys, with
// nonces of their own (the first byte of a datagram's nonce is 1, a
// frame's 0), their own sequence numbers and their own replay window, as
// datagrams may be lost, reordered or repeated.

// sealedDatagrams is a sealedConn whose transport carries datagrams.
type sealedDatagrams struct {
	*sealedConn
	dg transports.DatagramConn

	dmu      sync.Mutex
	dseq     uint64
	dbuf     []byte
	dtrailer [Overhead]byte
	dwin     window // owned by the datagram reader
}

// sealedDatagramsEmu is a sealedDatagrams whose transport also emulates
// the network under its own packets.
type sealedDatagramsEmu struct {
	*sealedDatagrams
	pe transports.PacketEmulator
}

var (
	_ transports.DatagramConn   = (*sealedDatagrams)(nil)
	_ transports.PacketEmulator = (*sealedDatagramsEmu)(nil)
)

// withDatagrams returns out, the Conn a handshake over conn produced,
// keeping conn's datagrams and packet emulation when out protects conn's
// frames.
func withDatagrams(out, conn transports.Conn) transports.Conn {
	s, ok := out.(*sealedConn)
	dg, ok2 := conn.(transports.DatagramConn)
	if !ok || !ok2 {
		return out
	}
	sd := &sealedDatagrams{sealedConn: s, dg: dg}
	if pe, ok := conn.(transports.PacketEmulator); ok {
		return &sealedDatagramsEmu{sealedDatagrams: sd, pe: pe}
	}
	return sd
}

func datagramNonce(seq uint64) [12]byte {
	n := nonceFor(seq)
	n[0] = 1
	return n
}

// SendDatagram protects and sends one datagram, with the transport's
// outcomes.
func (c *sealedDatagrams) SendDatagram(b []byte) (time.Time, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	binary.BigEndian.PutUint64(c.dtrailer[:seqSize], c.dseq)
	nonce := datagramNonce(c.dseq)
	trailer := c.seal.Seal(c.dtrailer[:seqSize], nonce[:], nil, b)
	c.dbuf = append(append(c.dbuf[:0], b...), trailer...)
	at, err := c.dg.SendDatagram(c.dbuf)
	if err == nil {
		c.dseq++
	}
	return at, err
}

// ReceiveDatagram returns the next datagram. Outcomes: the transport's,
// and ErrForged for one that failed authentication or was seen before
// (dropped; call again).
func (c *sealedDatagrams) ReceiveDatagram() (transports.Frame, error) {
	f, err := c.dg.ReceiveDatagram()
	if err != nil {
		return f, err
	}
	b := f.Data
	if len(b) < Overhead {
		return transports.Frame{}, fmt.Errorf("%w: a datagram of %d bytes", ErrForged, len(b))
	}
	n := len(b) - Overhead
	seq := binary.BigEndian.Uint64(b[n : n+seqSize])
	if !c.dwin.fresh(seq) {
		return transports.Frame{}, fmt.Errorf("%w: datagram %d replayed", ErrForged, seq)
	}
	nonce := datagramNonce(seq)
	if _, err := c.open.Open(c.scratch[:0], nonce[:], b[n+seqSize:], b[:n]); err != nil {
		return transports.Frame{}, fmt.Errorf("%w: datagram %d: bad tag", ErrForged, seq)
	}
	c.dwin.mark(seq)
	f.Data = b[:n:n]
	return f, nil
}

// EmulatePackets applies e to the transport's own packets.
func (c *sealedDatagramsEmu) EmulatePackets(e transports.Emulation) error {
	return c.pe.EmulatePackets(e)
}
