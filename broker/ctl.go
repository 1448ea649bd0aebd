package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/wayline/wayline/netapi"
)

// Control messages (netapi.CtlRequest) steer a broker over the network
// itself; see package netapi for their forms and answers.

// errUnknownOp is returned for a control message with an unknown op.
var errUnknownOp = errors.New("unknown operation")

func (b *Broker) onControl(m internalMsg) {
	reply := netapi.CtlReply{OK: true, Broker: b.cfg.Address}
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
func (b *Broker) control(data []byte) ([]netapi.LinkInfo, error) {
	var req netapi.CtlRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	if req.Link != "" {
		id, err := b.LinkID(req.Link)
		if err != nil {
			return nil, err
		}
		req.Link = id
	}
	switch req.Op {
	case "monitoring":
		ch, err := monitoringChange(req.MonitoringRequest)
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
	var out []netapi.LinkInfo
	for _, l := range b.Links() {
		if req.Link == "" || l.ID == req.Link {
			out = append(out, l)
		}
	}
	return out, nil
}
