package overlay

import "sync/atomic"

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
	bytes atomic.Uint64 // of the messages dropped on this side (not lost in transit)
}

// Add counts msgs messages of the given bytes dropped for reason r.
func (d *Drops) Add(r DropReason, msgs, bytes uint64) {
	d.n[r].Add(msgs)
	d.bytes.Add(bytes)
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

// ByReason lists the counts by reason name, every reason included.
func (d *Drops) ByReason() map[string]uint64 {
	out := make(map[string]uint64, numDropReasons)
	for i, name := range dropReasonNames {
		out[name] = d.n[i].Load()
	}
	return out
}
