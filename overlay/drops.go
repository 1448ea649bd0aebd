package overlay

import (
	"sync/atomic"

	"github.com/wayline/wayline/internal/sendq"
)

// What is dropped on its way over a link, by reason: by the link's
// sessions (lost in transit, over the frame limit, left queued when the
// link went down) and by their owner (a full send queue, no session).
// Every message a broker itself discards is counted where users look: per
// link and reason in GET /api/links, in total by reason in GET
// /api/status, and in /metrics (wayline_link_dropped_total). Loss the
// network causes on a link is measured by the link's monitor; on a udp
// link the receiving end also counts the messages that never came
// (DropLost), whatever lost them: the network, a full receive queue, a
// fragment gone missing.
//
// Drops this side makes are also counted by the messages' priority class
// (ByClass): a message lost in transit never arrived, so its class is not
// known.

// DropReason says why a message was dropped.
type DropReason int

const (
	DropQueueFull  DropReason = iota // the link's send queue was full
	DropLinkDown                     // the link was down when the message was handed to it
	DropLost                         // sent over the link by the peer, never received (udp)
	DropFrameLimit                   // a record over the transport's frame limit
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"send_queue_full", "link_down", "lost_in_transit", "over_frame_limit"}

// Drops counts one link's drops.
type Drops struct {
	n     [numDropReasons]atomic.Uint64
	cls   [sendq.NumClasses][numDropReasons]atomic.Uint64
	bytes atomic.Uint64 // of the messages dropped on this side (not lost in transit)
}

// Add counts msgs messages of the given bytes, of a class not known,
// dropped for reason r.
func (d *Drops) Add(r DropReason, msgs, bytes uint64) {
	d.n[r].Add(msgs)
	d.bytes.Add(bytes)
}

// AddClass counts msgs messages of class c and of the given bytes dropped
// for reason r.
func (d *Drops) AddClass(r DropReason, c sendq.Class, msgs, bytes uint64) {
	d.Add(r, msgs, bytes)
	d.cls[c][r].Add(msgs)
}

// AddRecords counts the message records of a run, by class, dropped for
// reason r.
func (d *Drops) AddRecords(r DropReason, recs []byte) {
	var n, b [sendq.NumClasses]uint64
	_ = EachRecord(recs, func(_ RecordType, body []byte) error {
		c := RecordClass(recs[:RecordHeader+len(body)])
		n[c]++
		b[c] += uint64(RecordHeader + len(body))
		recs = recs[RecordHeader+len(body):]
		return nil
	})
	for c := range sendq.NumClasses {
		if n[c] > 0 {
			d.AddClass(r, c, n[c], b[c])
		}
	}
}

// Total is the messages dropped for any reason.
func (d *Drops) Total() uint64 {
	var t uint64
	for i := range d.n {
		t += d.n[i].Load()
	}
	return t
}

// Bytes is the bytes of the messages dropped on this side of the link
// (those lost in transit are not known).
func (d *Drops) Bytes() uint64 { return d.bytes.Load() }

// ByClass lists the counts by class and reason name, every class and
// every reason whose class is known included.
func (d *Drops) ByClass() map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64, sendq.NumClasses)
	for c := range sendq.NumClasses {
		m := make(map[string]uint64, numDropReasons-1)
		for r, name := range dropReasonNames {
			if DropReason(r) != DropLost {
				m[name] = d.cls[c][r].Load()
			}
		}
		out[c.String()] = m
	}
	return out
}

// ByReason lists the counts by reason name, every reason included.
func (d *Drops) ByReason() map[string]uint64 {
	out := make(map[string]uint64, numDropReasons)
	for i, name := range dropReasonNames {
		out[name] = d.n[i].Load()
	}
	return out
}
