package broker

import (
	"errors"
	"fmt"

	"github.com/wayline/wayline/overlay"
)

// The control plane's records, carried by the overlay's sessions: cost
// updates (link state), interest and sync requests. Unit summaries are in
// summaries.go; the emulation record is JSON (emulation.go).

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
	b = overlay.AppendStr(b, origin)
	b = overlay.AppendStr(b, unit)
	b = overlay.AppendU64(b, ver.Epoch)
	b = overlay.AppendU64(b, ver.Seq)
	b = overlay.AppendU64(b, uint64(at))
	b = overlay.AppendUvarint(b, uint64(len(profiles)))
	for _, p := range profiles {
		b = overlay.AppendStr(b, p)
	}
	return b
}

// readPricedHeader reads what appendPricedHeader wrote.
func readPricedHeader(r *overlay.Reader, origin, unit *string, ver *version, at *int64, profiles *[]string) {
	*origin, *unit = r.Str(), r.Str()
	*ver = version{Epoch: r.U64(), Seq: r.U64()}
	*at = int64(r.U64())
	np := r.Count(1)
	for i := 0; i < np && r.Err() == nil; i++ {
		*profiles = append(*profiles, r.Str())
	}
}

func appendLinkState(b []byte, ls *linkState) []byte {
	b, s := overlay.BeginRecord(b, overlay.RecLinkState)
	b = appendPricedHeader(b, ls.Origin, ls.Unit, ls.Ver, ls.Time, ls.Profiles)
	b = overlay.AppendUvarint(b, uint64(len(ls.Links)))
	for _, l := range ls.Links {
		b = overlay.AppendStr(b, l.ID)
		b = overlay.AppendStr(b, l.Peer)
		var up byte
		if l.Up {
			up = 1
		}
		b = append(b, up)
		for i := range ls.Profiles {
			b = overlay.AppendF64(b, l.Costs[i])
		}
		b = overlay.AppendF64(b, l.LatencyMs)
		b = overlay.AppendF64(b, l.JitterMs)
		b = overlay.AppendF64(b, l.Loss)
	}
	return overlay.EndRecord(b, s)
}

func decodeLinkState(body []byte) (*linkState, error) {
	r := overlay.NewReader(body)
	ls := &linkState{}
	readPricedHeader(&r, &ls.Origin, &ls.Unit, &ls.Ver, &ls.Time, &ls.Profiles)
	np := len(ls.Profiles)
	n := r.Count(3 + 1 + 24 + 8*np)
	for i := 0; i < n && r.Err() == nil; i++ {
		l := lsLink{ID: r.Str(), Peer: r.Str()}
		switch r.U8() {
		case 0:
		case 1:
			l.Up = true
		default:
			r.Fail(errors.New("bad up flag"))
		}
		l.Costs = make([]float64, np)
		for p := range np {
			l.Costs[p] = r.F64()
		}
		l.LatencyMs, l.JitterMs, l.Loss = r.F64(), r.F64(), r.F64()
		ls.Links = append(ls.Links, l)
	}
	return ls, r.Done()
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
	b, s := overlay.BeginRecord(b, overlay.RecInterest)
	b = overlay.AppendStr(b, u.Origin)
	b = overlay.AppendU64(b, u.Ver.Epoch)
	b = overlay.AppendU64(b, u.Ver.Seq)
	b = append(b, u.Flags)
	b = overlay.AppendUvarint(b, uint64(len(u.Ops)))
	for _, op := range u.Ops {
		b = overlay.AppendStr(b, op.Subject)
		b = overlay.AppendStr(b, op.Queue)
		b = overlay.AppendUvarint(b, uint64(op.Weight))
	}
	return overlay.EndRecord(b, s)
}

func decodeInterest(body []byte) (*interestUpdate, error) {
	r := overlay.NewReader(body)
	u := &interestUpdate{Origin: r.Str(), Ver: version{Epoch: r.U64(), Seq: r.U64()}, Flags: r.U8()}
	n := r.Count(3)
	if n > 0 {
		u.Ops = make([]interestOp, 0, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		op := interestOp{Subject: r.Str(), Queue: r.Str()}
		w := r.Uvarint()
		if w > 1<<31 {
			r.Fail(fmt.Errorf("weight %d out of range", w))
		}
		op.Weight = uint32(w)
		if r.Err() == nil && !validSubject(op.Subject) {
			r.Fail(fmt.Errorf("invalid subject %q", op.Subject))
		}
		u.Ops = append(u.Ops, op)
	}
	return u, r.Done()
}

func appendSyncReq(b []byte, origin string) []byte {
	return overlay.AppendStrRecord(b, overlay.RecSyncReq, origin)
}
