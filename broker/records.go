package broker

import (
	"errors"
	"fmt"
	"math"

	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
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
	Standby   bool      // down but connected (router.AnnouncedLink.Standby)
	Costs     []float64 // per profile; +Inf while down
	LatencyMs float64
	JitterMs  float64
	Loss      float64 // one way, 0..1
	// Delay is the one-way delay distribution of the monitor's window, at
	// most router.SentBuckets buckets; empty while none is measured.
	Delay router.Histogram
}

// delayScale is what a distribution's total is scaled to on the wire:
// masses travel as whole millionths.
const delayScale = 1e6

// appendDelay writes a delay distribution: its missing mass, then its
// buckets (index, as a step from the one before, and mass), the masses in
// whole millionths of the total, adding up to exactly a million (the
// largest takes what rounding leaves over), so that a distribution read
// and written again is written the same.
func appendDelay(b []byte, h router.Histogram) []byte {
	h = h.Compact(router.SentBuckets)
	total := h.Total()
	if total == 0 {
		return overlay.AppendUvarint(overlay.AppendUvarint(b, 0), 0)
	}
	masses := make([]uint64, len(h.Buckets))
	missing := uint64(math.Round(h.Missing / total * delayScale))
	sum, largest := missing, -1
	for i, k := range h.Buckets {
		masses[i] = max(1, uint64(math.Round(k.Count/total*delayScale)))
		sum += masses[i]
		if largest < 0 || masses[i] > masses[largest] {
			largest = i
		}
	}
	switch {
	case largest < 0:
		missing = delayScale
	case sum > delayScale:
		masses[largest] -= min(sum-delayScale, masses[largest]-1)
	default:
		masses[largest] += delayScale - sum
	}
	b = overlay.AppendUvarint(b, missing)
	b = overlay.AppendUvarint(b, uint64(len(h.Buckets)))
	prev := -1
	for i, k := range h.Buckets {
		b = overlay.AppendUvarint(b, uint64(k.Index-prev))
		b = overlay.AppendUvarint(b, masses[i])
		prev = k.Index
	}
	return b
}

// readDelay reads what appendDelay wrote, and fails r on a distribution
// that cannot be: more buckets than are sent, indices that do not rise or
// are out of range, an empty bucket, masses that do not add up to a
// million.
func readDelay(r *overlay.Reader) router.Histogram {
	missing := r.Uvarint()
	n := r.Count(2)
	if n > router.SentBuckets {
		r.Fail(fmt.Errorf("delay distribution of %d buckets, more than %d", n, router.SentBuckets))
		return router.Histogram{}
	}
	h := router.Histogram{Missing: float64(missing)}
	sum, prev := missing, -1
	for i := 0; i < n && r.Err() == nil; i++ {
		step, mass := r.Uvarint(), r.Uvarint()
		if step == 0 || step > router.NumBuckets || prev+int(step) >= router.NumBuckets || mass == 0 || mass > delayScale {
			r.Fail(errors.New("delay bucket empty, out of order or out of range"))
			return router.Histogram{}
		}
		prev += int(step)
		sum += mass
		h.Buckets = append(h.Buckets, router.Bucket{Index: prev, Count: float64(mass)})
	}
	if sum != 0 && sum != delayScale {
		r.Fail(fmt.Errorf("delay distribution's masses add up to %d millionths", sum))
		return router.Histogram{}
	}
	if sum == 0 {
		return router.Histogram{}
	}
	return h
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

// A link's state in a cost update.
const (
	linkDown    = 0
	linkUp      = 1
	linkStandby = 2 // down but connected
)

func upFlag(l lsLink) byte {
	switch {
	case l.Up:
		return linkUp
	case l.Standby:
		return linkStandby
	}
	return linkDown
}

func appendLinkState(b []byte, ls *linkState) []byte {
	b, s := overlay.BeginRecord(b, overlay.RecLinkState)
	b = appendPricedHeader(b, ls.Origin, ls.Unit, ls.Ver, ls.Time, ls.Profiles)
	b = overlay.AppendUvarint(b, uint64(len(ls.Links)))
	for _, l := range ls.Links {
		b = overlay.AppendStr(b, l.ID)
		b = overlay.AppendStr(b, l.Peer)
		b = append(b, upFlag(l))
		for i := range ls.Profiles {
			b = overlay.AppendF64(b, l.Costs[i])
		}
		b = overlay.AppendF64(b, l.LatencyMs)
		b = overlay.AppendF64(b, l.JitterMs)
		b = overlay.AppendF64(b, l.Loss)
		b = appendDelay(b, l.Delay)
	}
	return overlay.EndRecord(b, s)
}

func decodeLinkState(body []byte) (*linkState, error) {
	r := overlay.NewReader(body)
	ls := &linkState{}
	readPricedHeader(&r, &ls.Origin, &ls.Unit, &ls.Ver, &ls.Time, &ls.Profiles)
	np := len(ls.Profiles)
	n := r.Count(3 + 1 + 24 + 8*np + 2)
	for i := 0; i < n && r.Err() == nil; i++ {
		l := lsLink{ID: r.Str(), Peer: r.Str()}
		switch r.U8() {
		case linkDown:
		case linkUp:
			l.Up = true
		case linkStandby:
			l.Standby = true
		default:
			r.Fail(errors.New("bad up flag"))
		}
		l.Costs = make([]float64, np)
		for p := range np {
			l.Costs[p] = r.F64()
		}
		l.LatencyMs, l.JitterMs, l.Loss = r.F64(), r.F64(), r.F64()
		l.Delay = readDelay(&r)
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
