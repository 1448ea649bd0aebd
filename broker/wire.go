package broker

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

// protoVersion is exchanged in the link handshake (package linkauth).
// Brokers speaking different versions refuse each other with an error on
// both sides.
// Version 2: message destinations may carry exits (msgHasExits), which a
// version 1 broker refuses.
// Version 3: links are authenticated (a challenge and response, and
// protected frames, or certificates that name the brokers); message
// dedup is kept per session.
// Version 4: borders announce unit summaries (recSummary), without which
// an older broker's map would miss the units beside its own.
// Version 5: message records are acknowledged (recDataAck), and message
// dedup is the broker's, whichever link a copy comes by.
const protoVersion = 5

// recordHeader is the size of a record's type and length.
const recordHeader = 5

type recType byte

const (
	recHello     recType = 1  // handshake (package linkauth), as are 14-16
	recRefuse    recType = 2  // handshake or link refused; the sender closes the link
	recPing      recType = 3  // keepalive request
	recPong      recType = 4  // keepalive answer
	recBye       recType = 5  // orderly shutdown of the link
	recLinkState recType = 6  // a broker's links (flooded)
	recInterest  recType = 7  // a broker's subscription interest (flooded)
	recSyncReq   recType = 8  // "send me your full state of this origin"
	recMsg       recType = 9  // a NATS message on its way to some brokers
	recCtl       recType = 10 // reliable envelope for control records on lossy links
	recAck       recType = 11 // cumulative acknowledgement of recCtl envelopes
	recEmulation recType = 12 // the emulated conditions the peer must apply (JSON)
	recProbe     recType = 13 // a performance packet (see package monitor)
	recSummary   recType = 17 // a border's summary of its unit (flooded, see summaries.go)
	recDataAck   recType = 18 // how many message records the sender of it has received (retain.go)
	recDataSeq   recType = 19 // the number of the first message record of a frame on a lossy link (sequence.go)
)

func (t recType) String() string {
	switch t {
	case recHello:
		return "hello"
	case recRefuse:
		return "refuse"
	case recPing:
		return "ping"
	case recPong:
		return "pong"
	case recBye:
		return "bye"
	case recLinkState:
		return "link-state"
	case recInterest:
		return "interest"
	case recSyncReq:
		return "sync-request"
	case recMsg:
		return "msg"
	case recCtl:
		return "ctl"
	case recAck:
		return "ack"
	case recEmulation:
		return "emulation"
	case recProbe:
		return "probe"
	case recSummary:
		return "summary"
	case recDataAck:
		return "data-ack"
	case recDataSeq:
		return "data-seq"
	}
	return fmt.Sprintf("record-%d", byte(t))
}

// isControl reports whether a record belongs to the control plane, whose
// records must not be lost and are therefore sent reliably on lossy links.
func (t recType) isControl() bool {
	switch t {
	case recLinkState, recInterest, recSyncReq, recBye, recEmulation, recSummary:
		return true
	}
	return false
}

var errBadRecord = errors.New("malformed record")

// beginRecord appends a record header whose length endRecord patches.
func beginRecord(b []byte, t recType) ([]byte, int) {
	start := len(b)
	return append(b, byte(t), 0, 0, 0, 0), start
}

func endRecord(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-recordHeader))
	return b
}

// eachRecord calls fn for every record in a frame. It stops at the first
// error, from the framing or from fn.
func eachRecord(frame []byte, fn func(t recType, body []byte) error) error {
	for len(frame) > 0 {
		if len(frame) < recordHeader {
			return fmt.Errorf("%w: %d stray bytes", errBadRecord, len(frame))
		}
		t := recType(frame[0])
		n := binary.BigEndian.Uint32(frame[1:])
		if uint64(n) > uint64(len(frame)-recordHeader) {
			return fmt.Errorf("%w: %s record of %d bytes in %d", errBadRecord, t, n, len(frame)-recordHeader)
		}
		body := frame[recordHeader : recordHeader+int(n)]
		frame = frame[recordHeader+int(n):]
		if err := fn(t, body); err != nil {
			return err
		}
	}
	return nil
}

// appendStrRecord encodes a record whose body is one string: a refusal's
// reason, a sync request's origin.
func appendStrRecord(b []byte, t recType, v string) []byte {
	b, s := beginRecord(b, t)
	b = appendStr(b, v)
	return endRecord(b, s)
}

func decodeStrRecord(body []byte) (string, error) {
	r := reader{b: body}
	v := r.str()
	return v, r.done()
}

func appendPing(b []byte, t recType, nonce uint64) []byte {
	b, s := beginRecord(b, t)
	b = appendU64(b, nonce)
	return endRecord(b, s)
}

func decodePing(body []byte) (uint64, error) {
	r := reader{b: body}
	v := r.u64()
	return v, r.done()
}

func appendBye(b []byte) []byte {
	b, s := beginRecord(b, recBye)
	return endRecord(b, s)
}

// version orders the states a broker announces about itself: a restart
// (a later epoch) supersedes everything from before it.
type version struct {
	Epoch, Seq uint64
}

func (v version) newer(than version) bool {
	if v.Epoch != than.Epoch {
		return v.Epoch > than.Epoch
	}
	return v.Seq > than.Seq
}

// linkState is what one broker says about its links within one unit: a
// cost update. It is announced within that unit only (see
// router.CommonUnit), flooded from broker to broker, and delivered to local
// subscribers of $WL.cost.<unit>. A newer version from the same origin and
// unit replaces it whole.
type linkState struct {
	Origin   string
	Unit     string
	Ver      version
	Time     int64    // unix ns when the origin priced its links
	Profiles []string // the cost profiles, in the order of each link's Costs
	Links    []lsLink
}

// lsLink is one link as its owner sees it.
type lsLink struct {
	ID        string
	Peer      string
	Up        bool
	Costs     []float64 // per profile; +Inf while down
	LatencyMs float64
	JitterMs  float64
	Loss      float64 // one way, 0..1
}

// appendPricedHeader writes what cost updates and summaries begin with:
// their origin and unit, version, time, and the profiles their costs are
// given in.
func appendPricedHeader(b []byte, origin, unit string, ver version, at int64, profiles []string) []byte {
	b = appendStr(b, origin)
	b = appendStr(b, unit)
	b = appendU64(b, ver.Epoch)
	b = appendU64(b, ver.Seq)
	b = appendU64(b, uint64(at))
	b = appendUvarint(b, uint64(len(profiles)))
	for _, p := range profiles {
		b = appendStr(b, p)
	}
	return b
}

// pricedHeader reads what appendPricedHeader wrote.
func (r *reader) pricedHeader(origin, unit *string, ver *version, at *int64, profiles *[]string) {
	*origin, *unit = r.str(), r.str()
	*ver = version{Epoch: r.u64(), Seq: r.u64()}
	*at = int64(r.u64())
	np := r.count(1)
	for i := 0; i < np && r.err() == nil; i++ {
		*profiles = append(*profiles, r.str())
	}
}

func appendLinkState(b []byte, ls *linkState) []byte {
	b, s := beginRecord(b, recLinkState)
	b = appendPricedHeader(b, ls.Origin, ls.Unit, ls.Ver, ls.Time, ls.Profiles)
	b = appendUvarint(b, uint64(len(ls.Links)))
	for _, l := range ls.Links {
		b = appendStr(b, l.ID)
		b = appendStr(b, l.Peer)
		var up byte
		if l.Up {
			up = 1
		}
		b = append(b, up)
		for i := range ls.Profiles {
			b = appendF64(b, l.Costs[i])
		}
		b = appendF64(b, l.LatencyMs)
		b = appendF64(b, l.JitterMs)
		b = appendF64(b, l.Loss)
	}
	return endRecord(b, s)
}

func decodeLinkState(body []byte) (*linkState, error) {
	r := reader{b: body}
	ls := &linkState{}
	r.pricedHeader(&ls.Origin, &ls.Unit, &ls.Ver, &ls.Time, &ls.Profiles)
	np := len(ls.Profiles)
	n := r.count(3 + 1 + 24 + 8*np)
	for i := 0; i < n && r.err() == nil; i++ {
		l := lsLink{ID: r.str(), Peer: r.str()}
		switch r.u8() {
		case 0:
		case 1:
			l.Up = true
		default:
			r.fail(errors.New("bad up flag"))
		}
		l.Costs = make([]float64, np)
		for p := range np {
			l.Costs[p] = r.f64()
		}
		l.LatencyMs, l.JitterMs, l.Loss = r.f64(), r.f64(), r.f64()
		ls.Links = append(ls.Links, l)
	}
	return ls, r.done()
}

// Interest update flags.
const (
	// interestFirst marks the first part of a snapshot: the receiver forgets
	// what it knew of the origin.
	interestFirst = 1 << 0
	// interestLast marks the last part of a snapshot; the snapshot applies
	// only once this part arrives.
	interestLast = 1 << 1
	// interestSnapshot marks the parts of a snapshot, as opposed to a delta.
	interestSnapshot = 1 << 2
)

// interestUpdate carries a broker's subscription interest: either a delta
// that applies on top of Seq-1, or a full snapshot at Seq, split into parts
// that each fit in a frame.
type interestUpdate struct {
	Origin string
	Ver    version
	Flags  byte
	Ops    []interestOp
}

// interestOp sets the weight of one (subject, queue) entry. Weight 0 removes
// it. Plain subscriptions have an empty queue and weight 1.
type interestOp struct {
	Subject string
	Queue   string
	Weight  uint32
}

func appendInterest(b []byte, u *interestUpdate) []byte {
	b, s := beginRecord(b, recInterest)
	b = appendStr(b, u.Origin)
	b = appendU64(b, u.Ver.Epoch)
	b = appendU64(b, u.Ver.Seq)
	b = append(b, u.Flags)
	b = appendUvarint(b, uint64(len(u.Ops)))
	for _, op := range u.Ops {
		b = appendStr(b, op.Subject)
		b = appendStr(b, op.Queue)
		b = appendUvarint(b, uint64(op.Weight))
	}
	return endRecord(b, s)
}

func decodeInterest(body []byte) (*interestUpdate, error) {
	r := reader{b: body}
	u := &interestUpdate{Origin: r.str(), Ver: version{Epoch: r.u64(), Seq: r.u64()}, Flags: r.u8()}
	n := r.count(3)
	if n > 0 {
		u.Ops = make([]interestOp, 0, n)
	}
	for i := 0; i < n && r.err() == nil; i++ {
		op := interestOp{Subject: r.str(), Queue: r.str()}
		w := r.uvarint()
		if w > 1<<31 {
			r.fail(fmt.Errorf("weight %d out of range", w))
		}
		op.Weight = uint32(w)
		if r.err() == nil && !validSubject(op.Subject) {
			r.fail(fmt.Errorf("invalid subject %q", op.Subject))
		}
		u.Ops = append(u.Ops, op)
	}
	return u, r.done()
}

func appendSyncReq(b []byte, origin string) []byte { return appendStrRecord(b, recSyncReq, origin) }

// appendCtl wraps an encoded control record in a reliable envelope.
func appendCtl(b []byte, seq uint64, record []byte) []byte {
	b, s := beginRecord(b, recCtl)
	b = appendU64(b, seq)
	b = append(b, record...)
	return endRecord(b, s)
}

func decodeCtl(body []byte) (uint64, []byte, error) {
	r := reader{b: body}
	seq := r.u64()
	return seq, r.rest(), r.err()
}

func appendAck(b []byte, seq uint64) []byte {
	b, s := beginRecord(b, recAck)
	b = appendU64(b, seq)
	return endRecord(b, s)
}
