// Package overlay is the link layer between Wayline brokers: the records
// that travel in a link's frames, the message record, and the session that
// carries a link over one connection.
//
// A session has one reader and one writer goroutine, and a reader of
// datagrams where the transport has an unreliable path beside its stream.
// It cuts what is queued into frames, keeps the link alive with pings and
// ends it when the peer falls silent, sends control records reliably on
// lossy links (numbered envelopes, acknowledged and repeated), and
// acknowledges the message records it receives. It keeps the message
// records it sent until the peer acknowledges them, so that its owner can
// route them again when the link fails. On a lossy link it puts message
// records back in order, counts what never came, and sends no more than
// the receiver can take. What it drops it counts, by reason.
//
// What the package deliberately does not do: it does not know who the
// peer is (package linkauth authenticates the connection before a session
// starts), what control records say (link state, interest and summaries
// are the broker's control plane; a session carries them), where a
// message goes (routing and delivery are the broker's), or what a probe
// measures (package monitor). It never dials, accepts or redials, and it
// never routes anything: what a session did not deliver it hands back to
// its owner.
package overlay

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The overlay protocol. A transport frame carries one or more records; a
// record never spans frames. Each record is
//
//	type u8 | body length u32 (big endian) | body
//
// Bodies are built from fixed-width big-endian integers, uvarints, and
// uvarint-length-prefixed strings (see codec.go).

// ProtoVersion is exchanged in the link handshake (package linkauth).
// Brokers speaking different versions refuse each other with an error on
// both sides.
// Version 2: message destinations may carry exits (msgHasExits), which a
// version 1 broker refuses.
// Version 3: links are authenticated (a challenge and response, and
// protected frames, or certificates that name the brokers); message
// dedup is kept per session.
// Version 4: borders announce unit summaries (RecSummary), without which
// an older broker's map would miss the units beside its own.
// Version 5: message records are acknowledged (RecDataAck), and message
// dedup is the broker's, whichever link a copy comes by.
// Version 6: a message record's flags carry its priority class, which a
// version 5 broker refuses as unknown flags.
// Version 7: message destinations may carry their place in a stream
// (msgHasStreams), and messages a fence (msgFenced), which keep a
// publisher's order across a change of route.
const ProtoVersion = 7

// RecordHeader is the size of a record's type and length.
const RecordHeader = 5

// RecordType says what a record is.
type RecordType byte

const (
	RecHello     RecordType = 1  // handshake (package linkauth), as are 14-16
	RecRefuse    RecordType = 2  // handshake or link refused; the sender closes the link
	RecPing      RecordType = 3  // keepalive request
	RecPong      RecordType = 4  // keepalive answer
	RecBye       RecordType = 5  // orderly shutdown of the link
	RecLinkState RecordType = 6  // a broker's links (flooded)
	RecInterest  RecordType = 7  // a broker's subscription interest (flooded)
	RecSyncReq   RecordType = 8  // "send me your full state of this origin"
	RecMsg       RecordType = 9  // a NATS message on its way to some brokers
	RecCtl       RecordType = 10 // reliable envelope for control records on lossy links
	RecAck       RecordType = 11 // cumulative acknowledgement of RecCtl envelopes
	RecEmulation RecordType = 12 // the emulated conditions the peer must apply (JSON)
	RecProbe     RecordType = 13 // a performance packet (see package monitor)
	RecSummary   RecordType = 17 // a border's summary of its unit (flooded, see broker's summaries.go)
	RecDataAck   RecordType = 18 // how many message records the sender of it has received (retain.go)
	RecDataSeq   RecordType = 19 // the number of the first message record of a frame on a lossy link (sequence.go)
)

func (t RecordType) String() string {
	switch t {
	case RecHello:
		return "hello"
	case RecRefuse:
		return "refuse"
	case RecPing:
		return "ping"
	case RecPong:
		return "pong"
	case RecBye:
		return "bye"
	case RecLinkState:
		return "link-state"
	case RecInterest:
		return "interest"
	case RecSyncReq:
		return "sync-request"
	case RecMsg:
		return "msg"
	case RecCtl:
		return "ctl"
	case RecAck:
		return "ack"
	case RecEmulation:
		return "emulation"
	case RecProbe:
		return "probe"
	case RecSummary:
		return "summary"
	case RecDataAck:
		return "data-ack"
	case RecDataSeq:
		return "data-seq"
	}
	return fmt.Sprintf("record-%d", byte(t))
}

// IsControl reports whether a record belongs to the control plane, whose
// records must not be lost and are therefore sent reliably on lossy links.
func (t RecordType) IsControl() bool {
	switch t {
	case RecLinkState, RecInterest, RecSyncReq, RecBye, RecEmulation, RecSummary:
		return true
	}
	return false
}

// ErrBadRecord is what a malformed record is refused with.
var ErrBadRecord = errors.New("malformed record")

// BeginRecord appends a record header whose length EndRecord patches.
func BeginRecord(b []byte, t RecordType) ([]byte, int) {
	start := len(b)
	return append(b, byte(t), 0, 0, 0, 0), start
}

// EndRecord patches the length of the record BeginRecord began at start.
func EndRecord(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-RecordHeader))
	return b
}

// AppendRecord encodes a record whose body is given whole: a probe's
// performance packet, an emulation's JSON.
func AppendRecord(b []byte, t RecordType, body []byte) []byte {
	b, s := BeginRecord(b, t)
	b = append(b, body...)
	return EndRecord(b, s)
}

// EachRecord calls fn for every record in a frame. It stops at the first
// error, from the framing or from fn.
func EachRecord(frame []byte, fn func(t RecordType, body []byte) error) error {
	for len(frame) > 0 {
		if len(frame) < RecordHeader {
			return fmt.Errorf("%w: %d stray bytes", ErrBadRecord, len(frame))
		}
		t := RecordType(frame[0])
		n := binary.BigEndian.Uint32(frame[1:])
		if uint64(n) > uint64(len(frame)-RecordHeader) {
			return fmt.Errorf("%w: %s record of %d bytes in %d", ErrBadRecord, t, n, len(frame)-RecordHeader)
		}
		body := frame[RecordHeader : RecordHeader+int(n)]
		frame = frame[RecordHeader+int(n):]
		if err := fn(t, body); err != nil {
			return err
		}
	}
	return nil
}

// CountRecords counts the records in a run of them.
func CountRecords(buf []byte) int {
	n := 0
	for len(buf) >= RecordHeader {
		buf = buf[RecordHeader+int(binary.BigEndian.Uint32(buf[1:])):]
		n++
	}
	return n
}

// AppendStrRecord encodes a record whose body is one string: a refusal's
// reason, a sync request's origin.
func AppendStrRecord(b []byte, t RecordType, v string) []byte {
	b, s := BeginRecord(b, t)
	b = AppendStr(b, v)
	return EndRecord(b, s)
}

// DecodeStrRecord reads what AppendStrRecord wrote.
func DecodeStrRecord(body []byte) (string, error) {
	r := NewReader(body)
	v := r.Str()
	return v, r.Done()
}

// AppendU64Record encodes a record whose body is one number: a ping's or
// pong's nonce, an acknowledgement, the number of a frame's first record.
func AppendU64Record(b []byte, t RecordType, v uint64) []byte {
	b, s := BeginRecord(b, t)
	b = AppendU64(b, v)
	return EndRecord(b, s)
}

// DecodeU64Record reads what AppendU64Record wrote.
func DecodeU64Record(body []byte) (uint64, error) {
	r := NewReader(body)
	v := r.U64()
	return v, r.Done()
}
