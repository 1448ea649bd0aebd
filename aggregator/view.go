package aggregator

import (
	"context"
	"maps"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
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
	case v == math.Trunc(v) && math.Abs(v) < 1<<53 && (v != 0 || !math.Signbit(v)):
		// Whole numbers (counts, most figures of histograms) the
		// quick way: the same text, and none made for those below 100.
		return strconv.FormatInt(int64(v), 10)
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

// vContract is a contract element: its attributes' values, in the order
// of contractAttrs.
type vContract struct{ attrs [len(contractAttrs)]string }

// contractLinks lists, for a broker's state, the links each of its
// delay contract routes crosses, with the route: the first link and the
// links of its exits (a contract's route pins its whole path in exits).
func contractLinks(st schema.State) []linkContract {
	var out []linkContract
	for _, r := range st.Routes {
		if r.Contract == "" || r.Prediction == nil {
			continue
		}
		c := vContract{[...]string{r.Contract, st.Broker, r.Destination, r.Prediction.Status, num(r.Prediction.Loss)}}
		ids := []string{r.Link}
		for _, e := range r.Exits {
			ids = append(ids, e.Link)
		}
		for i, id := range ids {
			if id != "" && !slices.Contains(ids[:i], id) {
				out = append(out, linkContract{id, c})
			}
		}
	}
	return out
}

type linkContract struct {
	link string
	c    vContract
}

// setContractsLocked replaces the contract routes of a broker in the
// index by link with those of its new state. The index's slices are
// replaced, never modified, so that views may keep them.
func (a *Aggregator) setContractsLocked(st schema.State) {
	now := contractLinks(st)
	if len(now) == 0 && len(a.contracts[st.Broker]) == 0 {
		return
	}
	touched := map[string]bool{}
	for _, lc := range a.contracts[st.Broker] {
		touched[lc.link] = true
	}
	for _, lc := range now {
		touched[lc.link] = true
	}
	for id := range touched {
		var cs []vContract
		for _, c := range a.contractsOn[id] {
			if c.attrs[1] != st.Broker {
				cs = append(cs, c)
			}
		}
		for _, lc := range now {
			if lc.link == id {
				cs = append(cs, lc.c)
			}
		}
		if len(cs) == 0 {
			delete(a.contractsOn, id)
		} else {
			a.contractsOn[id] = cs
		}
	}
	if len(now) == 0 {
		delete(a.contracts, st.Broker)
	} else {
		a.contracts[st.Broker] = now
	}
}

// withContracts gives every link of v the delay contract routes that
// cross it, as their brokers last stated them.
func (v *view) withContracts(a *Aggregator) *view {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.contractsOn) == 0 {
		return v
	}
	for i := range v.brokers {
		for j := range v.brokers[i].links {
			l := &v.brokers[i].links[j]
			l.contracts = a.contractsOn[l.fig.ID]
		}
	}
	return v
}

// Latest returns every broker's last report, sorted by address.
func (a *Aggregator) Latest() []schema.Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	return byAddress(a.latest)
}

// byAddress is the values of a map keyed by broker address, in address
// order.
func byAddress[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// historyParts is how many parts of the links a history view reads at
// once.
var historyParts = runtime.GOMAXPROCS(0)

// historyView is the view of stored measurements in [from, to), with what
// rd says of them: without the detail, what it holds (see
// store.MeasurementQuery) is left out, and so are the figure columns that
// rd does not name; the view is then right only for queries that do not
// look at them (see queryReads).
func (a *Aggregator) historyView(ctx context.Context, from, to time.Time, rd reads) (*view, error) {
	brokers, err := a.store.Brokers(ctx)
	if err != nil {
		return nil, err
	}
	domains := make(map[string]string, len(brokers))
	for _, b := range brokers {
		domains[b.Address] = b.Domain
	}
	// Rows come by link, then time; the two ends of a link report it
	// under the same id, so rows of two brokers interleave: the current
	// link's ends are looked up first. The links are read in parts at
	// once (a part on each core: converting rows is most of a read's
	// cost), each part into its own maps, merged after.
	type key struct{ broker, link string }
	type part struct {
		links    map[key]*vLink
		byBroker map[string][]*vLink
		ar       arena
	}
	parts := make([]part, historyParts)
	q := store.MeasurementQuery{From: from, To: to, NoDetail: !rd.detail && !rd.costs && !rd.summary,
		SummaryOnly: !rd.detail && !rd.costs && rd.summary, NoHistogram: !rd.detail && rd.costs}
	if !rd.detail {
		q.Figures = rd.figures
	}
	err = a.store.MeasurementsInParts(ctx, q, historyParts, func(i int) func(store.Measurement) error {
		p := &parts[i]
		p.links, p.byBroker = map[key]*vLink{}, map[string][]*vLink{}
		var (
			curLink string
			ends    []*vLink
			endOf   []string
		)
		return func(m store.Measurement) error {
			if m.Link.ID != curLink {
				curLink, ends, endOf = m.Link.ID, ends[:0], endOf[:0]
			}
			var l *vLink
			for i, b := range endOf {
				if b == m.Broker {
					l = ends[i]
					break
				}
			}
			if l == nil {
				k := key{m.Broker, m.Link.ID}
				if l = p.links[k]; l == nil {
					// fig holds the link's id, ends and transport
					// until the latest figures replace it.
					l = &vLink{ar: &p.ar, fig: &schema.Link{ID: m.Link.ID, A: m.Link.A, B: m.Link.B, Transport: m.Link.Transport}}
					p.links[k] = l
					p.byBroker[m.Broker] = append(p.byBroker[m.Broker], l)
				}
				ends, endOf = append(ends, l), append(endOf, m.Broker)
			}
			l.samples = append(l.samples, p.ar.add(m.Time, &m.Link))
			return ctx.Err()
		}
	})
	if err != nil {
		return nil, err
	}
	byBroker := map[string][]*vLink{}
	for _, p := range parts {
		for b, ls := range p.byBroker {
			byBroker[b] = append(byBroker[b], ls...)
		}
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
			l.setLatest()
			b.links = append(b.links, *l)
		}
		sort.Slice(b.links, func(i, j int) bool { return b.links[i].fig.ID < b.links[j].fig.ID })
		v.brokers = append(v.brokers, b)
	}
	return v, nil
}

// setLatest makes the link's figures those of its latest sample.
func (l *vLink) setLatest() {
	last := l.samples[len(l.samples)-1]
	s, _ := l.ar.get(last)
	l.fig, l.time = l.ar.link(last, l.fig), time.Unix(0, s.time).UTC()
}

// detailNames are the names that reach the histogram, the last part of
// what a measurement's detail holds.
var detailNames = map[string]bool{
	"histogram": true, "bucket": true, "missing": true, "le": true, "count": true,
}

// costNames are the names that reach the detail's costs, which come
// before the histogram.
var costNames = map[string]bool{"cost": true, "profile": true, "value": true}

// summaryNames are the names that reach the detail's summary part, which
// comes first: the latency percentiles, the sample counts and the drops.
var summaryNames = map[string]bool{
	"samples": true, "dropped": true, "min": true, "p50": true, "p90": true, "p99": true, "max": true,
	"sent": true, "received": true, "lost": true, "window": true, "reordered": true, "duplicated": true,
}

// figureNames are the attributes read from a measurement's figure
// columns, and the columns.
var figureNames = map[string]string{
	"state": "state", "monitor": "monitor", "rtt": "rtt", "mean": "lat_mean", "jitter": "jitter", "loss": "loss",
}

// reads is what a query on history may read of the measurements: their
// detail, and which figure columns (nil for all).
type reads struct {
	detail  bool // everything
	costs   bool // the detail but its histogram (see store.MeasurementQuery)
	summary bool // the detail's summary part
	figures []string
}

// allReads is everything.
var allReads = reads{detail: true}

// queryReads works out what query q may read of the measurements from
// the names it uses: detailNames need all of the detail, costNames all
// but its histogram, summaryNames its summary part, figureNames their
// columns, and a wildcard or a node() test, which reach everything, or a
// string left open need it all. Names of functions and axes do not count.
// It errs towards reading more; and since a query's answer writes the
// elements it selects whole, Query reads everything anyway when elements
// come back.
func queryReads(q string) reads {
	r := reads{figures: []string{}}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(q[i+1:], c)
			if end < 0 {
				return allReads
			}
			i += end + 2
		case c == '*':
			return allReads
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] == '-' || q[j] == '.' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			name := q[i:j]
			rest := strings.TrimLeft(q[j:], " \t\r\n")
			switch {
			case strings.HasPrefix(rest, "::"): // an axis
			case strings.HasPrefix(rest, "("): // a function, or a node test
				if name == "node" || name == "text" {
					return allReads
				}
			case detailNames[name]:
				return allReads
			case costNames[name]:
				r.costs = true
			case summaryNames[name]:
				r.summary = true
			case figureNames[name] != "":
				if !slices.Contains(r.figures, figureNames[name]) {
					r.figures = append(r.figures, figureNames[name])
				}
			}
			i = j
		default:
			i++
		}
	}
	return r
}
