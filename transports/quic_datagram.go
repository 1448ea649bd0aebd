package transports

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// A quic link's datagrams. Each starts with its number, datagramNumber
// bytes, big-endian, counting from 1 per link and direction (0 is never
// used; the count wraps). When the link is emulated, the packet that
// carries a datagram carries its number too, in the packet header (see
// quic_socket.go), so that the receiver can tell when that packet
// arrived. The sender cannot see into the packets quic-go writes: it
// gives the number to the next packet written to the peer after the
// datagram was handed to quic-go, which is the datagram's own or one that
// left a few microseconds before it.

// datagramNumber is the size of a datagram's number.
const datagramNumber = 4

// SendDatagram sends b as one QUIC datagram, behind its number.
func (c *quicConn) SendDatagram(b []byte) (time.Time, error) {
	if c.closed.Load() {
		return time.Time{}, fmt.Errorf("quic %s: send datagram: %w", c.link.RemoteAddr(), net.ErrClosed)
	}
	n := c.datagram.Add(1)
	if n == 0 {
		n = c.datagram.Add(1)
	}
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, datagramNumber+len(b)), n)
	msg = append(msg, b...)
	c.link.peer.tag.Store(n)
	err := c.link.qc.SendDatagram(msg)
	var tooLarge *quic.DatagramTooLargeError
	switch {
	case err == nil:
		return time.Now(), nil
	case errors.As(err, &tooLarge):
		return time.Time{}, fmt.Errorf("quic %s: datagram of %d bytes (limit %d now): %w",
			c.link.RemoteAddr(), len(b), tooLarge.MaxDatagramPayloadSize-datagramNumber, ErrDatagramTooLarge)
	}
	return time.Time{}, fmt.Errorf("quic %s: send datagram: %w", c.link.RemoteAddr(), c.orderly(err))
}

// ReceiveDatagram returns the next QUIC datagram, received when the
// packet that carried it arrived. A datagram too short to hold its number
// is dropped.
func (c *quicConn) ReceiveDatagram() (Frame, error) {
	for {
		b, err := c.link.qc.ReceiveDatagram(c.link.datagrams)
		if err != nil {
			return Frame{}, fmt.Errorf("quic %s: receive datagram: %w", c.link.RemoteAddr(), c.orderly(err))
		}
		if len(b) < datagramNumber {
			continue
		}
		at := c.link.peer.arrival(binary.BigEndian.Uint32(b))
		if at.IsZero() {
			at = time.Now()
		}
		return Frame{Data: b[datagramNumber:], Received: at}, nil
	}
}
