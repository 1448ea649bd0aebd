package netapi

import (
	"time"

	"github.com/wayline/wayline/transports"
)

// A broker's links as its HTTP API (GET /api/links) and its control
// replies list them. Field names are a contract; fields may be added.

// LinkInfo is one entry of GET /api/links.
type LinkInfo struct {
	ID         string    `json:"id"`
	Peer       string    `json:"peer"`
	Transport  string    `json:"transport"`
	State      string    `json:"state"` // "up" or "down"
	Since      time.Time `json:"since"`
	Dialer     bool      `json:"dialer"` // this broker dials the link
	LastError  string    `json:"last_error,omitempty"`
	MsgsSent   uint64    `json:"msgs_sent"`
	MsgsRecv   uint64    `json:"msgs_received"`
	BytesSent  uint64    `json:"bytes_sent"`
	BytesRecv  uint64    `json:"bytes_received"`
	QueueBytes int       `json:"queue_bytes"`
	// Dropped counts the messages dropped on their way over the link, in
	// all, and Drops by reason: send_queue_full, link_down,
	// lost_in_transit (sent by the peer over udp and never received),
	// over_frame_limit. DroppedBytes is the payload dropped on this side.
	Dropped      uint64            `json:"dropped"`
	Drops        map[string]uint64 `json:"drops"`
	DroppedBytes uint64            `json:"dropped_bytes"`
	// DropsByClass counts the drops of Drops by the messages' priority
	// class (high, normal, low) and reason; lost_in_transit is left out,
	// its messages' class not being known.
	DropsByClass map[string]map[string]uint64 `json:"drops_by_class"`
	// Rerouted counts the messages the link failed to deliver that went
	// another way; Unprotected those that fell out of the bound on what a
	// link keeps for that while it waited for their acknowledgement
	// (they were not lost, only no longer kept).
	Rerouted    uint64 `json:"rerouted"`
	Unprotected uint64 `json:"unprotected"`
	Ups         uint64 `json:"ups"`
	Excluded    bool   `json:"excluded"` // taken out of routing by a control action
	// Standby: down, but its connection is open, so routes take it where
	// no link that is up reaches.
	Standby bool `json:"standby"`
	// Metrics are the link's measurements (see package monitor).
	Metrics LinkMetrics `json:"metrics"`
	// Emulation is the link's emulated conditions, or null.
	Emulation *transports.EmulationSpec `json:"emulation"`
}

// LinkMetrics is a link's measurements over the monitor's sliding window.
// Delays are in milliseconds; loss is a fraction.
type LinkMetrics struct {
	RTT     float64        `json:"rtt_ms"`
	Latency LatencySummary `json:"latency_ms"`
	// Jitter is the mean absolute difference of one-way delay between
	// consecutive probes: the value RFC 3550's interarrival jitter
	// estimates, with less sampling noise.
	Jitter        float64 `json:"jitter_ms"`
	JitterRFC3550 float64 `json:"jitter_rfc3550_ms"`
	// JitterIPDV is P95-P50 of one-way delay, as OWAMP reports it.
	JitterIPDV float64 `json:"jitter_ipdv_ms"`
	// Loss is the fraction of messages lost one way, the mean of the two
	// directions: what an emulated loss of p declares. It is the loss of
	// the link while up; probes lost while it was declared down are its
	// outage (Outage), not loss.
	Loss float64 `json:"loss"`
	// LossForward and LossReverse split it by direction (forward: what
	// this broker sends), and LossRoundTrip is the fraction of probes that
	// got no answer, outage aside.
	LossForward   float64 `json:"loss_forward"`
	LossReverse   float64 `json:"loss_reverse"`
	LossRoundTrip float64 `json:"loss_round_trip"`
	// Outage is the fraction of the monitor's window of probes lost while
	// the link was declared down.
	Outage     float64 `json:"outage"`
	Reordered  uint64  `json:"reordered"`
	Duplicated uint64  `json:"duplicated"`
	Samples    int     `json:"samples"`
	Interval   float64 `json:"interval_ms"`
	State      string  `json:"state"` // unknown, up, suspect, down or disabled
	// StateSince is when the monitor reached its current verdict.
	StateSince  time.Time `json:"state_since"`
	ProbesSent  uint64    `json:"probes_sent"`
	ProbesRecvd uint64    `json:"probes_received"`
	ProbesLost  uint64    `json:"probes_lost"`
}

// LatencySummary summarises one-way latency in milliseconds.
type LatencySummary struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}
