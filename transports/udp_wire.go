package transports

import (
	"encoding/binary"
	"errors"
	"fmt"
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
