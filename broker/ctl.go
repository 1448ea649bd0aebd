package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/wayline/wayline/transports"
)

// Control messages steer a broker over the network itself: an
// administrative client (the aggregator) publishes a JSON request on
// $WL.ctl.<address>, and the broker acts and answers on the reply subject.
//
//	{"op": "monitoring", "link": "<id>", "enabled": false}     one link; "link" left out: every link
//	{"op": "monitoring", "interval": "250ms", "adaptive": true}
//	{"op": "emulation", "link": "<id>", "emulation": {"down": true}}
//	{"op": "routing", "link": "<id>", "exclude": true}        take a link out of routing, or put it back
//
// The answer is {"ok": true, "broker": ..., "links": [...]} or {"ok": false,
// "error": "..."}: an unknown operation or link, an interval outside
// [10ms, 60s] and malformed JSON are all answered with an error.

// CtlSubject is the subject a broker takes control messages on.
func CtlSubject(address string) string { return reservedPrefix + "ctl." + address }

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

// errUnknownOp is returned for a control message with an unknown op.
var errUnknownOp = errors.New("unknown operation")

func (b *Broker) onControl(m internalMsg) {
	reply := CtlReply{OK: true, Broker: b.cfg.Address}
	links, err := b.control(m.Data)
	if err != nil {
		reply.OK, reply.Error = false, err.Error()
		b.log.Warn("control message refused", slog.String("from", m.Origin), slog.Any("err", err))
	} else {
		reply.Links = links
		b.log.Info("control message applied", slog.String("from", m.Origin), slog.String("request", string(m.Data)))
	}
	if m.Reply != "" {
		js, _ := json.Marshal(reply)
		b.publishInternal(m.Reply, "", js)
	}
}

// control carries out one control message and returns the links it
// concerned.
func (b *Broker) control(data []byte) ([]LinkInfo, error) {
	var req CtlRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	switch req.Op {
	case "monitoring":
		ch, err := req.change()
		if err != nil {
			return nil, err
		}
		if err := b.SetMonitoring(req.Link, ch); err != nil {
			return nil, err
		}
	case "emulation":
		if req.Emulation == nil {
			return nil, fmt.Errorf("%w: emulation: missing", errBadRequest)
		}
		if _, err := b.SetEmulation(req.Link, *req.Emulation); err != nil {
			return nil, err
		}
	case "routing":
		if req.Exclude == nil {
			return nil, fmt.Errorf("%w: routing: exclude (true or false) is required", errBadRequest)
		}
		if req.Link == "" {
			return nil, fmt.Errorf("%w: routing: link is required", errBadRequest)
		}
		if err := b.SetExcluded(req.Link, *req.Exclude); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w %q (want monitoring, emulation or routing)", errUnknownOp, req.Op)
	}
	var out []LinkInfo
	for _, l := range b.Links() {
		if req.Link == "" || l.ID == req.Link {
			out = append(out, l)
		}
	}
	return out, nil
}
