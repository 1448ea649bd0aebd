package aggregator

import (
	"context"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/schema"
)

func num(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "INF"
	case math.IsInf(v, -1):
		return "-INF"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func unum(v uint64) string { return strconv.FormatUint(v, 10) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// latestView is the view of reports, in the order given.
func latestView(reports []schema.Report, at time.Time) *view {
	v := &view{attrs: []kv{{"time", stamp(at)}}, brokers: make([]vBroker, len(reports))}
	for i := range reports {
		r := &reports[i]
		b := &v.brokers[i]
		b.attrs = []kv{{"address", r.Broker}, {"domain", r.Domain}, {"seq", unum(r.Seq)}, {"time", stamp(r.Time)}, {"interval_ms", schema.FormatMs(r.Interval)}}
		b.links = make([]vLink, len(r.Links))
		for j := range r.Links {
			b.links[j].fig = &r.Links[j]
		}
	}
	return v
}

// Latest returns every broker's last report, sorted by address.
func (a *Aggregator) Latest() []schema.Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]schema.Report, 0, len(a.latest))
	for _, r := range a.latest {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Broker < out[j].Broker })
	return out
}

// historyView is the view of stored measurements in [from, to).
func (a *Aggregator) historyView(ctx context.Context, from, to time.Time) (*view, error) {
	brokers, err := a.store.Brokers(ctx)
	if err != nil {
		return nil, err
	}
	domains := make(map[string]string, len(brokers))
	for _, b := range brokers {
		domains[b.Address] = b.Domain
	}
	// Rows come by link, then time; the two ends of a link report it
	// under the same id, so rows of two brokers interleave.
	type key struct{ broker, link string }
	links := map[key]*vLink{}
	byBroker := map[string][]*vLink{}
	err = a.store.Measurements(ctx, store.MeasurementQuery{From: from, To: to}, func(m store.Measurement) error {
		k := key{m.Broker, m.Link.ID}
		l, ok := links[k]
		if !ok {
			l = &vLink{}
			links[k] = l
			byBroker[m.Broker] = append(byBroker[m.Broker], l)
		}
		f := m.Link
		l.samples = append(l.samples, vSample{time: m.Time, fig: &f})
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	v := &view{attrs: []kv{{"from", stamp(from)}, {"to", stamp(to)}}}
	names := make([]string, 0, len(byBroker))
	for name := range byBroker {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := vBroker{attrs: []kv{{"address", name}, {"domain", domains[name]}}}
		for _, l := range byBroker[name] {
			last := l.samples[len(l.samples)-1]
			l.fig, l.time = last.fig, last.time
			b.links = append(b.links, *l)
		}
		v.brokers = append(v.brokers, b)
	}
	return v, nil
}
