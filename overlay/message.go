package overlay

import (
	"errors"
	"fmt"
	"slices"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/router"
)

// Message flags.
const (
	msgHasReply  = 1 << 0
	msgHasHeader = 1 << 1
	msgHasExits  = 1 << 2 // destinations carry the exits they are steered through
	// Bits 3 and 4 hold the message's priority class (sendq.Class; 0 is
	// normal, so a normal message's record is what it was before classes).
	msgClassShift = 3
	msgClassMask  = 3 << msgClassShift
	// msgHasStreams: destinations carry the message's place in its
	// stream (Dest.Stream, Dest.Num); msgFenced: the message was sent
	// soon after a change of route (see Message.Fenced).
	msgHasStreams = 1 << 5
	msgFenced     = 1 << 6
	msgFlags      = msgHasReply | msgHasHeader | msgHasExits | msgClassMask | msgHasStreams | msgFenced
)

// Message is a NATS message on its way through the overlay. Origin and Seq
// identify it network-wide (the broker's dedup keys on them); Dests lists the
// brokers this copy is responsible for. At every hop the destinations are
// grouped by next hop and each group travels in its own copy, so every
// destination appears in exactly one copy and a message is never duplicated
// by forwarding, whatever the topology.
//
// A decoded message aliases the frame it came from.
type Message struct {
	Origin  []byte
	Seq     uint64
	Hops    byte // hops left before the message is dropped as looping
	Profile byte // the cost profile it is routed on (index, 0: default)
	// Class is its priority class on congested links, set where it
	// enters the network and kept at every hop.
	Class sendq.Class
	// Fenced says the message left its origin, or a broker on its way,
	// soon after that broker's routes changed: it may overtake messages
	// still on the old route, so its destinations deliver it only after
	// the ones before it in its stream (see the broker's order.go).
	Fenced  bool
	Dests   []Dest
	Subject []byte
	Reply   []byte
	HasHdr  bool
	HdrLen  int
	Data    []byte // NATS headers (HdrLen bytes, when HasHdr) then the payload
}

// Dest is one broker a message is for. Queues lists the queue groups whose
// member at that broker gets the message; plain subscribers there always do.
// Exits is the stack of exits the message is steered through on its way
// there, the next one last (see router.Steer).
//
// Stream and Num, when Stream is not 0, place the message in the stream of
// messages one publishing connection of the origin sent this destination
// on one cost profile: Num counts from 1 without gaps, so that the
// destination can tell a message that is missing from one that went
// elsewhere.
type Dest struct {
	Broker []byte
	Queues [][]byte
	Exits  []router.Exit
	Stream uint64
	Num    uint64
}

// AppendMsg encodes m with the given hop budget and destinations.
func AppendMsg(b []byte, m *Message, hops byte, dests []Dest) []byte {
	b, s := BeginRecord(b, RecMsg)
	flags := byte(m.Class) << msgClassShift
	if len(m.Reply) > 0 {
		flags |= msgHasReply
	}
	if m.HasHdr {
		flags |= msgHasHeader
	}
	for _, d := range dests {
		if len(d.Exits) > 0 {
			flags |= msgHasExits
		}
		if d.Stream != 0 {
			flags |= msgHasStreams
		}
	}
	if m.Fenced && flags&msgHasStreams != 0 {
		flags |= msgFenced
	}
	b = append(b, flags, hops, m.Profile)
	b = AppendBytes(b, m.Origin)
	b = AppendU64(b, m.Seq)
	b = AppendUvarint(b, uint64(len(dests)))
	for _, d := range dests {
		b = AppendBytes(b, d.Broker)
		b = AppendUvarint(b, uint64(len(d.Queues)))
		for _, q := range d.Queues {
			b = AppendBytes(b, q)
		}
		if flags&msgHasExits != 0 {
			b = AppendUvarint(b, uint64(len(d.Exits)))
			for _, e := range d.Exits {
				b = AppendStr(b, string(e.Broker))
				b = AppendStr(b, e.Link)
			}
		}
		if flags&msgHasStreams != 0 {
			b = AppendUvarint(b, d.Stream)
			if d.Stream != 0 {
				b = AppendUvarint(b, d.Num)
			}
		}
	}
	b = AppendBytes(b, m.Subject)
	if flags&msgHasReply != 0 {
		b = AppendBytes(b, m.Reply)
	}
	if flags&msgHasHeader != 0 {
		b = AppendUvarint(b, uint64(m.HdrLen))
	}
	b = append(b, m.Data...)
	return EndRecord(b, s)
}

// Decode fills m from a record body, reusing m's slices. The result
// aliases body.
func (m *Message) Decode(body []byte) error {
	r := NewReader(body)
	flags := r.U8()
	if flags&^msgFlags != 0 {
		return fmt.Errorf("unknown message flags %#x", flags)
	}
	m.Class = sendq.Class(flags&msgClassMask) >> msgClassShift
	if m.Class >= sendq.NumClasses {
		return fmt.Errorf("unknown priority class %d", m.Class)
	}
	m.Hops = r.U8()
	m.Profile = r.U8()
	m.Origin = r.Bytes()
	m.Seq = r.U64()
	n := r.Count(2)
	m.Dests = m.Dests[:0]
	for i := 0; i < n && r.Err() == nil; i++ {
		var d *Dest
		m.Dests, d = Grow(m.Dests)
		d.Broker = r.Bytes()
		d.Queues = d.Queues[:0]
		nq := r.Count(1)
		for j := 0; j < nq && r.Err() == nil; j++ {
			d.Queues = append(d.Queues, r.Bytes())
		}
		d.Exits = d.Exits[:0]
		if flags&msgHasExits != 0 {
			ne := r.Count(2)
			if ne > router.MaxExits {
				return fmt.Errorf("%d exits, more than %d", ne, router.MaxExits)
			}
			for j := 0; j < ne && r.Err() == nil; j++ {
				d.Exits = append(d.Exits, router.Exit{Broker: router.Address(r.Str()), Link: r.Str()})
			}
		}
		d.Stream, d.Num = 0, 0
		if flags&msgHasStreams != 0 {
			if d.Stream = r.Uvarint(); d.Stream != 0 {
				if d.Num = r.Uvarint(); d.Num == 0 && r.Err() == nil {
					return errors.New("message numbered 0 in its stream")
				}
			}
		}
	}
	if flags&msgHasExits != 0 && !slices.ContainsFunc(m.Dests, func(d Dest) bool { return len(d.Exits) > 0 }) {
		return errors.New("exits flag set, but no destination has exits")
	}
	if flags&msgHasStreams != 0 && !slices.ContainsFunc(m.Dests, func(d Dest) bool { return d.Stream != 0 }) {
		return errors.New("streams flag set, but no destination has a stream")
	}
	if flags&msgFenced != 0 && flags&msgHasStreams == 0 {
		return errors.New("fenced, but no destination has a stream")
	}
	m.Fenced = flags&msgFenced != 0
	m.Subject = r.Bytes()
	m.Reply = nil
	if flags&msgHasReply != 0 {
		m.Reply = r.Bytes()
	}
	m.HasHdr = flags&msgHasHeader != 0
	m.HdrLen = 0
	if m.HasHdr {
		m.HdrLen = int(r.Uvarint())
	}
	m.Data = r.Rest()
	if err := r.Err(); err != nil {
		return err
	}
	if m.HdrLen < 0 || m.HdrLen > len(m.Data) {
		return fmt.Errorf("header length %d exceeds message of %d bytes", m.HdrLen, len(m.Data))
	}
	if len(m.Subject) == 0 || (flags&msgHasReply != 0 && len(m.Reply) == 0) {
		return errors.New("empty subject")
	}
	return nil
}

// RecordClass is the priority class of a message record (header
// included), read without decoding it: a session counts what it drops by
// class.
func RecordClass(rec []byte) sendq.Class {
	if len(rec) <= RecordHeader || RecordType(rec[0]) != RecMsg {
		return sendq.Normal
	}
	if c := sendq.Class(rec[RecordHeader]&msgClassMask) >> msgClassShift; c < sendq.NumClasses {
		return c
	}
	return sendq.Normal
}

// hopsOffset is where a message record's body keeps its hop budget, so
// that a broker passing a message on unchanged can copy the record and
// patch that one byte.
const hopsOffset = 1

// AppendForward copies a message record body received from a link,
// spending one hop, and fencing it when fence is set (see Message.Fenced;
// a message without streams has nothing to fence).
func AppendForward(b, body []byte, hops byte, fence bool) []byte {
	b, s := BeginRecord(b, RecMsg)
	b = append(b, body...)
	b[s+RecordHeader+hopsOffset] = hops
	if f := &b[s+RecordHeader]; fence && *f&msgHasStreams != 0 {
		*f |= msgFenced
	}
	return EndRecord(b, s)
}
