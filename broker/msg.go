package broker

import (
	"errors"
	"fmt"
	"slices"

	"github.com/wayline/wayline/router"
)

// Message flags.
const (
	msgHasReply  = 1 << 0
	msgHasHeader = 1 << 1
	msgHasExits  = 1 << 2 // destinations carry the exits they are steered through
)

// message is a NATS message on its way through the overlay. Origin and Seq
// identify it network-wide (the dedup window keys on them); Dests lists the
// brokers this copy is responsible for. At every hop the destinations are
// grouped by next hop and each group travels in its own copy, so every
// destination appears in exactly one copy and a message is never duplicated
// by forwarding, whatever the topology.
//
// A decoded message aliases the frame it came from.
type message struct {
	Origin  []byte
	Seq     uint64
	Hops    byte // hops left before the message is dropped as looping
	Profile byte // the cost profile it is routed on (index, 0: default)
	Dests   []dest
	Subject []byte
	Reply   []byte
	HasHdr  bool
	HdrLen  int
	Data    []byte // NATS headers (HdrLen bytes, when HasHdr) then the payload
}

// dest is one broker a message is for. Queues lists the queue groups whose
// member at that broker gets the message; plain subscribers there always do.
// Exits is the stack of exits the message is steered through on its way
// there, the next one last (see router.Steer).
type dest struct {
	Broker []byte
	Queues [][]byte
	Exits  []router.Exit
}

// appendMsg encodes m with the given hop budget and destinations.
func appendMsg(b []byte, m *message, hops byte, dests []dest) []byte {
	b, s := beginRecord(b, recMsg)
	var flags byte
	if len(m.Reply) > 0 {
		flags |= msgHasReply
	}
	if m.HasHdr {
		flags |= msgHasHeader
	}
	for _, d := range dests {
		if len(d.Exits) > 0 {
			flags |= msgHasExits
			break
		}
	}
	b = append(b, flags, hops, m.Profile)
	b = appendBytes(b, m.Origin)
	b = appendU64(b, m.Seq)
	b = appendUvarint(b, uint64(len(dests)))
	for _, d := range dests {
		b = appendBytes(b, d.Broker)
		b = appendUvarint(b, uint64(len(d.Queues)))
		for _, q := range d.Queues {
			b = appendBytes(b, q)
		}
		if flags&msgHasExits != 0 {
			b = appendUvarint(b, uint64(len(d.Exits)))
			for _, e := range d.Exits {
				b = appendStr(b, string(e.Broker))
				b = appendStr(b, e.Link)
			}
		}
	}
	b = appendBytes(b, m.Subject)
	if flags&msgHasReply != 0 {
		b = appendBytes(b, m.Reply)
	}
	if flags&msgHasHeader != 0 {
		b = appendUvarint(b, uint64(m.HdrLen))
	}
	b = append(b, m.Data...)
	return endRecord(b, s)
}

// decode fills m from a record body, reusing m's slices.
func (m *message) decode(body []byte) error {
	r := reader{b: body}
	flags := r.u8()
	if flags&^(msgHasReply|msgHasHeader|msgHasExits) != 0 {
		return fmt.Errorf("unknown message flags %#x", flags)
	}
	m.Hops = r.u8()
	m.Profile = r.u8()
	m.Origin = r.bytes()
	m.Seq = r.u64()
	n := r.count(2)
	m.Dests = m.Dests[:0]
	for i := 0; i < n && r.err() == nil; i++ {
		var d *dest
		m.Dests, d = grow(m.Dests)
		d.Broker = r.bytes()
		d.Queues = d.Queues[:0]
		nq := r.count(1)
		for j := 0; j < nq && r.err() == nil; j++ {
			d.Queues = append(d.Queues, r.bytes())
		}
		d.Exits = d.Exits[:0]
		if flags&msgHasExits == 0 {
			continue
		}
		ne := r.count(2)
		if ne > router.MaxExits {
			return fmt.Errorf("%d exits, more than %d", ne, router.MaxExits)
		}
		for j := 0; j < ne && r.err() == nil; j++ {
			d.Exits = append(d.Exits, router.Exit{Broker: router.Address(r.str()), Link: r.str()})
		}
	}
	if flags&msgHasExits != 0 && !slices.ContainsFunc(m.Dests, func(d dest) bool { return len(d.Exits) > 0 }) {
		return errors.New("exits flag set, but no destination has exits")
	}
	m.Subject = r.bytes()
	m.Reply = nil
	if flags&msgHasReply != 0 {
		m.Reply = r.bytes()
	}
	m.HasHdr = flags&msgHasHeader != 0
	m.HdrLen = 0
	if m.HasHdr {
		m.HdrLen = int(r.uvarint())
	}
	m.Data = r.rest()
	if err := r.err(); err != nil {
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

// validate checks the subjects before the message is handed to a leaf,
// where a malformed one would break the protocol stream. Brokers that only
// pass a message on leave the check to the broker that delivers it.
func (m *message) validate() error {
	if !validLiteralSubject(m.Subject) {
		return fmt.Errorf("invalid subject %q", m.Subject)
	}
	if m.Reply != nil && !validLiteralSubject(m.Reply) {
		return fmt.Errorf("invalid reply subject %q", m.Reply)
	}
	return nil
}

// hopsOffset is where a message record's body keeps its hop budget, so
// that a broker passing a message on unchanged can copy the record and
// patch that one byte.
const hopsOffset = 1

// appendForward copies a message record body received from a link,
// spending one hop.
func appendForward(b, body []byte, hops byte) []byte {
	b, s := beginRecord(b, recMsg)
	b = append(b, body...)
	b[s+recordHeader+hopsOffset] = hops
	return endRecord(b, s)
}
