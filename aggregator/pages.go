package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/schema"
	"github.com/wayline/wayline/transports"
	"github.com/wayline/wayline/web"
)

// pages is the aggregator as the web pages see it.
type pages struct{ a *Aggregator }

var _ web.Source = pages{}

func (p pages) Latest() []schema.Report { return p.a.Latest() }

func (p pages) Measurements(ctx context.Context, link string, from, to time.Time) ([]store.Measurement, error) {
	var out []store.Measurement
	err := p.a.store.Measurements(ctx, store.MeasurementQuery{From: from, To: to, Links: []string{link}}, func(m store.Measurement) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

func (p pages) Actions(ctx context.Context, limit int) ([]store.Action, error) {
	return p.a.store.Actions(ctx, time.Time{}, time.Time{}, limit)
}

func (p pages) Rules() []web.RuleText {
	rules := p.a.Rules()
	out := make([]web.RuleText, len(rules))
	for i, r := range rules {
		out[i] = web.RuleText{Name: r.Name, When: r.When, Do: r.Do.String(), Undo: r.Undo}
	}
	return out
}

func (p pages) States() []schema.State { return p.a.States() }

func (p pages) RouteChanges(limit int) []schema.RouteChange { return p.a.RouteChanges(limit) }

func (p pages) Route(subject, from string) (schema.SubjectRoute, error) {
	return RouteOf(p.a.States(), subject, from)
}

func (p pages) Query(ctx context.Context, q, fromText, toText string) (web.Answer, error) {
	from, err := parseTime(fromText)
	if err != nil {
		return web.Answer{}, fmt.Errorf("from: %w", err)
	}
	to, err := parseTime(toText)
	if err != nil {
		return web.Answer{}, fmt.Errorf("to: %w", err)
	}
	res, err := p.a.Query(ctx, q, from, to)
	if err != nil {
		return web.Answer{}, err
	}
	ans := web.Answer{Truncated: res.Truncated, NodeSet: res.Nodes != nil || res.Value == nil}
	if !ans.NodeSet {
		ans.Value = valueText(res.Value)
		return ans, nil
	}
	for _, n := range res.Nodes {
		an := web.AnswerNode{Name: n.Name(), Value: n.Value(), Link: n.LinkID(), Attribute: n.IsAttribute()}
		an.Broker, an.Time = n.ReportedBy()
		ans.Nodes = append(ans.Nodes, an)
	}
	return ans, nil
}

var _ web.Admin = pages{}

// SetEmulation sends the change to a broker at one end of the link (one
// that reports it, or else one whose routing state has it), which tells
// the other end, and records it as an action of rule "admin".
func (p pages) SetEmulation(ctx context.Context, link string, e web.Emulation) error {
	at := p.linkEnd(link)
	if at == "" {
		return fmt.Errorf("no broker reports link %q", link)
	}
	spec := transports.EmulationSpec{Down: e.Down}
	for _, f := range []struct {
		v   string
		dst **transports.Quantity
	}{{e.Delay, &spec.Delay}, {e.Jitter, &spec.Jitter}, {e.Loss, &spec.Loss}} {
		if f.v != "" {
			q := transports.Quantity(f.v)
			*f.dst = &q
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	rec := store.Action{Rule: "admin", Broker: at, Link: link, Action: describeEmulation(e)}
	return p.a.control(ctx, rec, map[string]any{"op": "emulation", "link": link, "emulation": spec})
}

// linkEnd is a broker at one end of link: one that reports it, or else
// one whose routing state has it; "" when none does.
func (p pages) linkEnd(link string) string {
	for _, r := range p.a.Latest() {
		for _, l := range r.Links {
			if l.ID == link {
				return r.Broker
			}
		}
	}
	for _, st := range p.a.States() {
		for _, l := range st.Links {
			if l.ID == link {
				return st.Broker
			}
		}
	}
	return ""
}

// describeEmulation says what an emulation change does, for the actions'
// record.
func describeEmulation(e web.Emulation) string {
	var parts []string
	if e.Down != nil {
		parts = append(parts, web.UpDown(!*e.Down))
	}
	for _, f := range [][2]string{{"delay", e.Delay}, {"jitter", e.Jitter}, {"loss", e.Loss}} {
		if f[1] != "" {
			parts = append(parts, f[0]+" "+f[1])
		}
	}
	return "emulation " + strings.Join(parts, ", ")
}

func (p pages) AddRule(_ context.Context, rt web.RuleText) error {
	return p.a.AddRuleText(rt.Name, rt.When, rt.Do, rt.Undo)
}

func (p pages) RemoveRule(ctx context.Context, name string) error { return p.a.RemoveRule(ctx, name) }

// liveEvent is a live update for the pages: what happened, at which
// broker.
func liveEvent(kind, broker string, seq uint64) []byte {
	js, _ := json.Marshal(struct {
		Kind   string `json:"kind"`
		Broker string `json:"broker"`
		Seq    uint64 `json:"seq,omitempty"`
	}{kind, broker, seq})
	return js
}
