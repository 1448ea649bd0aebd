package netapi

import "github.com/wayline/wayline/transports"

// Control messages steer a broker over the network itself: an
// administrative client publishes a JSON CtlRequest on CtlSubject(broker)
// and the broker acts and answers with a CtlReply on the reply subject.
//
//	{"op": "monitoring", "link": "<id>", "enabled": false}     one link; "link" left out: every link
//	{"op": "monitoring", "interval": "250ms", "adaptive": true}
//	{"op": "emulation", "link": "<id>", "emulation": {"down": true}}
//	{"op": "routing", "link": "<id>", "exclude": true}        take a link out of routing, or put it back
//
// The answer is {"ok": true, "broker": ..., "links": [...]} or {"ok": false,
// "error": "..."}: an unknown operation or link, an interval outside
// [10ms, 60s] and malformed JSON are all answered with an error.

// CtlRequest is a control message.
type CtlRequest struct {
	Op   string `json:"op"`
	Link string `json:"link,omitempty"`
	MonitoringRequest
	Emulation *transports.EmulationSpec `json:"emulation,omitempty"`
	Exclude   *bool                     `json:"exclude,omitempty"`
}

// CtlReply answers a control message.
type CtlReply struct {
	OK     bool       `json:"ok"`
	Broker string     `json:"broker"`
	Error  string     `json:"error,omitempty"`
	Links  []LinkInfo `json:"links,omitempty"`
}

// MonitoringRequest changes how links are measured: the body of a
// broker's PUT /api/links/{id}/monitoring and PUT /api/monitoring, and
// part of a "monitoring" control message. A field left out is left as it
// is.
type MonitoringRequest struct {
	Enabled  *bool   `json:"enabled,omitempty"`
	Interval *string `json:"interval,omitempty"` // a duration such as "250ms", within [10ms, 60s]
	Adaptive *bool   `json:"adaptive,omitempty"`
	// Reset puts back the configured interval and adaptive mode.
	Reset bool `json:"reset,omitempty"`
}
