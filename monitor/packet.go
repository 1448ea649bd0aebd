package monitor

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Packet types. Type leaves room for other performance packets (a
// throughput test, a path trace) without a new framing.
const (
	// PacketProbe is a round-trip probe: a request and the peer's response.
	PacketProbe byte = 1
)

// flagResponse marks a response. The other flag bits are reserved and must
// be zero, so that a later version can use them and be rejected cleanly by
// this one.
const flagResponse byte = 1

// PacketSize is the encoded size of a Packet without padding.
//
// Layout, big endian:
//
//	0      type
//	1      flags (bit 0: response)
//	2..9   Seq
//	10..17 T1
//	18..25 T2
//	26..33 T3
//	34..37 Interval (ms)
//	38..41 Count
//	42..43 Pad (length)
//	44..   Pad zero bytes
//
// Budget: "probe traffic stays under 1% of a 1 Mbit/s link at the default
// 1 s interval", that is under 10 kbit/s in each direction. Each second a
// broker sends one request of its own and one response to its peer's
// request: 2 packets. Each is 44 bytes, plus 5-9 bytes of overlay record and
// frame header, plus 40-60 bytes of transport header (IPv4+TCP 40,
// IPv6+TCP 60, IPv4+UDP 28 plus the udp transport's own header, TLS or
// WebSocket framing a few more): at most 44+9+60 = 113 bytes = 904 bits.
// 2 x 904 = 1808 bit/s, 0.18% of 1 Mbit/s, so the budget holds down to a
// 200 ms interval (9 kbit/s); the 100 ms interval of a fast detector costs
// 1.8%, and MinInterval (10 ms) 18%.
const PacketSize = 44

// ErrBadPacket is wrapped by every DecodePacket error.
var ErrBadPacket = errors.New("bad performance packet")

// Packet is one performance packet. A request carries the sender's Seq and
// T1; the response echoes them and adds the responder's T2, T3 and Count.
type Packet struct {
	Type     byte   // PacketProbe
	Response bool   // false: request; true: response
	Seq      uint64 // per link and direction, from 1; echoed in the response
	T1       int64  // requester's clock (unix ns) at send; echoed
	T2       int64  // responder's clock at receipt of the request; 0 in a request
	T3       int64  // responder's clock at send of the response; 0 in a request
	Interval uint32 // the sender's current probe interval in ms; 0 = not said
	// Count is the number of requests the responder has received on this
	// link so far (wrapping at 2^32); it lets the requester tell forward
	// loss from reverse loss. 0 in a request.
	Count uint32
	// Pad is the number of zero bytes appended, to test the effect of
	// packet size; a response pads as much as its request.
	Pad uint16
}

// Len is the encoded length of p.
func (p *Packet) Len() int { return PacketSize + int(p.Pad) }

// Append appends the encoding of p to b and returns the extended slice.
func (p *Packet) Append(b []byte) []byte {
	var flags byte
	if p.Response {
		flags |= flagResponse
	}
	b = append(b, p.Type, flags)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(p.T1))
	b = binary.BigEndian.AppendUint64(b, uint64(p.T2))
	b = binary.BigEndian.AppendUint64(b, uint64(p.T3))
	b = binary.BigEndian.AppendUint32(b, p.Interval)
	b = binary.BigEndian.AppendUint32(b, p.Count)
	b = binary.BigEndian.AppendUint16(b, p.Pad)
	return append(b, make([]byte, p.Pad)...)
}

// DecodePacket decodes exactly one packet from b. It is strict, so that
// every packet it accepts re-encodes to the same bytes. Outcomes: a packet;
// or an error wrapping ErrBadPacket when b is shorter or longer than the
// packet it holds, the type is unknown, a reserved flag is set, Seq is 0,
// a request carries responder fields, or the padding is not zeros.
func DecodePacket(b []byte) (Packet, error) {
	if len(b) < PacketSize {
		return Packet{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadPacket, len(b), PacketSize)
	}
	p := Packet{
		Type:     b[0],
		Response: b[1]&flagResponse != 0,
		Seq:      binary.BigEndian.Uint64(b[2:]),
		T1:       int64(binary.BigEndian.Uint64(b[10:])),
		T2:       int64(binary.BigEndian.Uint64(b[18:])),
		T3:       int64(binary.BigEndian.Uint64(b[26:])),
		Interval: binary.BigEndian.Uint32(b[34:]),
		Count:    binary.BigEndian.Uint32(b[38:]),
		Pad:      binary.BigEndian.Uint16(b[42:]),
	}
	if len(b) != p.Len() {
		return Packet{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadPacket, len(b), p.Len())
	}
	if err := p.check(b[1], b[PacketSize:]); err != nil {
		return Packet{}, fmt.Errorf("%w: %w", ErrBadPacket, err)
	}
	return p, nil
}

// check validates the decoded fields, the raw flags and the padding.
func (p *Packet) check(flags byte, pad []byte) error {
	switch {
	case p.Type != PacketProbe:
		return fmt.Errorf("unknown type %d", p.Type)
	case flags&^flagResponse != 0:
		return fmt.Errorf("reserved flags %#02x", flags&^flagResponse)
	case p.Seq == 0:
		return errors.New("sequence number 0")
	case !p.Response && (p.T2 != 0 || p.T3 != 0 || p.Count != 0):
		return errors.New("request with responder fields")
	}
	for _, c := range pad {
		if c != 0 {
			return errors.New("non-zero padding")
		}
	}
	return nil
}
