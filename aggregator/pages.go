package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/schema"
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
	out := make([]web.RuleText, len(p.a.cfg.Rules))
	for i, r := range p.a.cfg.Rules {
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
	ans := web.Answer{Truncated: res.Truncated}
	if res.Nodes == nil && res.Value != nil {
		ans.Value = valueText(res.Value)
		return ans, nil
	}
	for _, n := range res.Nodes {
		ans.Nodes = append(ans.Nodes, web.AnswerNode{Name: n.Name(), Value: n.Value(), Link: n.LinkID(), Attribute: n.IsAttribute()})
	}
	return ans, nil
}

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
