package broker

import "sync/atomic"

// What a broker drops on its way over one of its links, by reason. Every
// message the broker itself discards is counted where users look: per
// link and reason in GET /api/links, in total by reason in GET
// /api/status, and in /metrics (wayline_link_dropped_total). Loss the
// network causes on a link is measured by the link's monitor; on a udp
// link the receiving end also counts the messages that never came
// (lostInTransit), whatever lost them: the network, a full receive
// queue, a fragment gone missing.

type dropReason int

const (
	dropQueueFull  dropReason = iota // the link's send queue was full
	dropLinkDown                     // the link was down when the message was handed to it
	dropLost                         // sent over the link by the peer, never received (udp)
	dropFrameLimit                   // a record over the transport's frame limit
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"send_queue_full", "link_down", "lost_in_transit", "over_frame_limit"}

// linkDrops counts one link's drops.
type linkDrops struct {
	n     [numDropReasons]atomic.Uint64
	bytes atomic.Uint64 // of the messages dropped on this side (not lost in transit)
}

func (d *linkDrops) add(r dropReason, msgs, bytes uint64) {
	d.n[r].Add(msgs)
	d.bytes.Add(bytes)
}

func (d *linkDrops) total() uint64 {
	var t uint64
	for i := range d.n {
		t += d.n[i].Load()
	}
	return t
}

// byReason lists the counts by reason name, every reason included.
func (d *linkDrops) byReason() map[string]uint64 {
	out := make(map[string]uint64, numDropReasons)
	for i, name := range dropReasonNames {
		out[name] = d.n[i].Load()
	}
	return out
}
