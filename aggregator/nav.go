package aggregator

import (
	"context"
	"time"

	"github.com/antchfx/xpath"

	"github.com/wayline/wayline/schema"
)

// A view is what XPath queries run on: the latest reports, or stored
// measurements over a time range, seen as a read-only XML tree in the
// shape of package schema's documents. The tree is never built: a
// navigator walks the reports themselves and formats an attribute only
// when a query reads it. Building a DOM of 16,000 links takes longer than
// answering a query on it, and a history of a thousand links over an hour
// is three quarters of a million samples.
//
//	<network time="…">                                   (latest)
//	<network from="…" to="…">                            (history)
//	  <broker address="…" domain="…" seq="…" time="…" interval_ms="…">
//	    <link id="…" a="…" b="…" transport="…" state="…" monitor="…"
//	          rtt="…" jitter="…" loss="…" dropped="…" [time="…"]>
//	      <latency min="…" mean="…" p50="…" p90="…" p99="…" max="…"/>
//	      <samples sent="…" received="…" lost="…" window="…" reordered="…" duplicated="…"/>
//	      <cost profile="…" value="…"/>…
//	      <histogram missing="…"><bucket le="…" count="…"/>…</histogram>
//	      <contract subject="…" origin="…" destination="…" status="…" loss="…"/>…   (latest)
//	      <sample time="…" id="…" …>…the link's children…</sample>…   (history)
//	    </link>
//	  </broker>
//	</network>
//
// In history a broker carries its address and domain, a link carries its
// latest figures in the range and their time, and each report in the
// range is a sample element with a time, the link's attributes and
// children. The histogram element is left out when it is empty, as in
// report documents. In the latest view a link holds a contract element
// for each delay contract's route that crosses it, as the route's origin
// broker last stated it (schema.Route): the contract's subject pattern,
// the route's destination, and the status and loss of its prediction; so
// that a rule can act on the links of a contract that is breached
// ("//link[contract/@status = 'breached']").
//
// A view serves one query at a time: its navigators share an allocator,
// and the query's context (see tick).
type view struct {
	attrs   []kv
	brokers []vBroker
	slab    []nav // where copies of navigators are made
	ctx     context.Context
	steps   uint
}

// tickEvery is how many navigator moves pass between two looks at the
// query's context: a few microseconds of work.
const tickEvery = 4096

// stopped is what a navigator panics with once its query's context has
// ended (its time is up, or its client went away): the XPath package's
// loops take no context, and a panic is the one way out of them.
// Evaluate recovers it.
type stopped struct{ err error }

// tick counts one move of a navigator and stops the query when its
// context has ended.
func (v *view) tick() {
	v.steps++
	if v.steps%tickEvery == 0 && v.ctx != nil {
		if err := v.ctx.Err(); err != nil {
			panic(stopped{err})
		}
	}
}

type kv struct{ name, value string }

type vBroker struct {
	attrs []kv
	links []vLink
}

type vLink struct {
	fig       *schema.Link // the latest figures
	contracts []vContract  // latest: the contract routes that cross it
	time      time.Time    // history: when they were reported
	ar        *arena       // history: where the samples are
	samples   []sampleRef
}

// kind is the kind of node a navigator is on.
type kind uint8

const (
	kDoc kind = iota
	kNetwork
	kBroker
	kLink
	kSample
	kLatency
	kSamples
	kCost
	kHistogram
	kBucket
	kContract
)

var kindNames = [...]string{kDoc: "", kNetwork: "network", kBroker: "broker", kLink: "link", kSample: "sample",
	kLatency: "latency", kSamples: "samples", kCost: "cost", kHistogram: "histogram", kBucket: "bucket", kContract: "contract"}

// linkAttrs are the attributes of a link element, and of a sample after
// its time.
var linkAttrs = [...]string{"id", "a", "b", "transport", "state", "monitor", "rtt", "jitter", "loss", "dropped"}

var (
	contractAttrs = [...]string{"subject", "origin", "destination", "status", "loss"}
	latencyAttrs  = [...]string{"min", "mean", "p50", "p90", "p99", "max"}
	samplesAttrs  = [...]string{"sent", "received", "lost", "window", "reordered", "duplicated"}
)

// nav is an xpath.NodeNavigator on a view.
type nav struct {
	v *view
	k kind
	b int32 // broker
	l int32 // link of the broker
	s int32 // sample of the link; -1 for the link's own figures
	c int32 // cost or bucket
	a int32 // attribute; -1 on the element itself
}

func newNav(v *view) *nav { return &nav{v: v, s: -1, a: -1} }

func (n *nav) link() *vLink { return &n.v.brokers[n.b].links[n.l] }

// LinkID is the id of the link the navigator is in, or "" above links.
func (n *nav) LinkID() string {
	if n.k < kLink {
		return ""
	}
	return n.link().fig.ID
}

// ReportedBy is the broker that reported the link the navigator is in,
// and when: the sample's time inside a sample, else the time of the
// link's latest figures; "" above links.
func (n *nav) ReportedBy() (broker, at string) {
	if n.k < kLink {
		return "", ""
	}
	l := n.link()
	switch {
	case n.s >= 0:
		s, _ := l.ar.get(l.samples[n.s])
		return l.fig.A, stamp(time.Unix(0, s.time))
	case !l.time.IsZero():
		return l.fig.A, stamp(l.time)
	}
	for _, a := range n.v.brokers[n.b].attrs {
		if a.name == "time" {
			at = a.value
		}
	}
	return l.fig.A, at
}

func (n *nav) NodeType() xpath.NodeType {
	switch {
	case n.a >= 0:
		return xpath.AttributeNode
	case n.k == kDoc:
		return xpath.RootNode
	}
	return xpath.ElementNode
}

func (n *nav) LocalName() string {
	if n.a >= 0 {
		return n.attrName()
	}
	return kindNames[n.k]
}

func (n *nav) Prefix() string { return "" }

// Value is an attribute's value; elements hold no text.
func (n *nav) Value() string {
	if n.a < 0 {
		return ""
	}
	return n.attrValue()
}

// Copy is called for most nodes a query visits; copies come from slabs,
// so that a query of 16,000 links makes a few hundred allocations rather
// than a hundred thousand.
func (n *nav) Copy() xpath.NodeNavigator {
	v := n.v
	if len(v.slab) == cap(v.slab) {
		v.slab = make([]nav, 0, 1024)
	}
	v.slab = append(v.slab, *n)
	return &v.slab[len(v.slab)-1]
}

func (n *nav) MoveToRoot() { *n = nav{v: n.v, s: -1, a: -1} }

func (n *nav) MoveTo(other xpath.NodeNavigator) bool {
	o, ok := other.(*nav)
	if !ok || o.v != n.v {
		return false
	}
	*n = *o
	return true
}

func (n *nav) attrCount() int {
	switch n.k {
	case kNetwork:
		return len(n.v.attrs)
	case kBroker:
		return len(n.v.brokers[n.b].attrs)
	case kLink:
		if !n.link().time.IsZero() {
			return len(linkAttrs) + 1
		}
		return len(linkAttrs)
	case kSample:
		return len(linkAttrs) + 1
	case kLatency:
		return len(latencyAttrs)
	case kSamples:
		return len(samplesAttrs)
	case kCost, kBucket:
		return 2
	case kHistogram:
		return 1
	case kContract:
		return len(contractAttrs)
	}
	return 0
}

func (n *nav) attrName() string {
	i := int(n.a)
	switch n.k {
	case kNetwork:
		return n.v.attrs[i].name
	case kBroker:
		return n.v.brokers[n.b].attrs[i].name
	case kLink:
		if i == len(linkAttrs) {
			return "time"
		}
		return linkAttrs[i]
	case kSample:
		if i == 0 {
			return "time"
		}
		return linkAttrs[i-1]
	case kLatency:
		return latencyAttrs[i]
	case kSamples:
		return samplesAttrs[i]
	case kCost:
		return [...]string{"profile", "value"}[i]
	case kBucket:
		return [...]string{"le", "count"}[i]
	case kContract:
		return contractAttrs[i]
	}
	return "missing"
}

func (n *nav) attrValue() string {
	i := int(n.a)
	switch n.k {
	case kNetwork:
		return n.v.attrs[i].value
	case kBroker:
		return n.v.brokers[n.b].attrs[i].value
	case kLink:
		if i == len(linkAttrs) {
			return stamp(n.link().time)
		}
		return n.figs().attr(i)
	case kSample:
		if i == 0 {
			s, _ := n.link().ar.get(n.link().samples[n.s])
			return stamp(time.Unix(0, s.time))
		}
		return n.figs().attr(i - 1)
	case kLatency:
		return num(n.figs().latency(i))
	case kSamples:
		return n.figs().count(i)
	case kCost:
		profile, value := n.figs().cost(int(n.c))
		if i == 0 {
			return profile
		}
		return num(value)
	case kBucket:
		bk := n.figs().bucket(int(n.c))
		if i == 0 {
			return num(bk.LE)
		}
		return num(bk.Count)
	case kHistogram:
		return num(n.figs().missing())
	case kContract:
		return n.link().contracts[n.c].attrs[i]
	}
	return ""
}

func (n *nav) MoveToNextAttribute() bool {
	n.v.tick()
	if int(n.a)+1 >= n.attrCount() {
		return false
	}
	n.a++
	return true
}

func (n *nav) MoveToParent() bool {
	n.v.tick()
	switch {
	case n.a >= 0:
		n.a = -1
	case n.k == kDoc:
		return false
	case n.k == kNetwork:
		n.k = kDoc
	case n.k == kBroker:
		n.k, n.b = kNetwork, 0
	case n.k == kLink:
		n.k, n.l = kBroker, 0
	case n.k == kSample:
		n.k, n.s = kLink, -1
	case n.k == kBucket:
		n.k, n.c = kHistogram, 0
	default: // a child of a link or a sample
		n.c = 0
		n.k = kLink
		if n.s >= 0 {
			n.k = kSample
		}
	}
	return true
}

func (n *nav) MoveToChild() bool {
	n.v.tick()
	if n.a >= 0 {
		return false
	}
	switch n.k {
	case kDoc:
		n.k = kNetwork
	case kNetwork:
		if len(n.v.brokers) == 0 {
			return false
		}
		n.k, n.b = kBroker, 0
	case kBroker:
		if len(n.v.brokers[n.b].links) == 0 {
			return false
		}
		n.k, n.l = kLink, 0
	case kLink, kSample:
		n.k = kLatency
	case kHistogram:
		if n.figs().bucketLen() == 0 {
			return false
		}
		n.k, n.c = kBucket, 0
	default:
		return false
	}
	return true
}

// figChildAfter moves to the child of a link or sample that follows the
// one the navigator is on, or reports that there is none.
func (n *nav) figChildAfter() bool {
	f := n.figs()
	switch n.k {
	case kLatency:
		n.k = kSamples
		return true
	case kSamples:
		if f.costLen() > 0 {
			n.k, n.c = kCost, 0
			return true
		}
	case kCost:
		if int(n.c)+1 < f.costLen() {
			n.c++
			return true
		}
	case kContract:
		if int(n.c)+1 < len(n.link().contracts) {
			n.c++
			return true
		}
	}
	if (n.k == kSamples || n.k == kCost) && f.hasHistogram() {
		n.k, n.c = kHistogram, 0
		return true
	}
	// A link's contracts, then its samples, follow its own figures.
	if n.s < 0 && n.k != kContract && len(n.link().contracts) > 0 {
		n.k, n.c = kContract, 0
		return true
	}
	if n.s < 0 && len(n.link().samples) > 0 {
		n.k, n.c, n.s = kSample, 0, 0
		return true
	}
	return false
}

// lastFigChild moves to the last of the figures' children (the
// histogram, the last cost, or the sample counts).
func (n *nav) lastFigChild() {
	f := n.figs()
	switch {
	case f.hasHistogram():
		n.k, n.c = kHistogram, 0
	case f.costLen() > 0:
		n.k, n.c = kCost, int32(f.costLen()-1)
	default:
		n.k, n.c = kSamples, 0
	}
}

// figChildBefore is figChildAfter backwards.
func (n *nav) figChildBefore() bool {
	switch n.k {
	case kLatency:
		return false
	case kSamples:
		n.k = kLatency
	case kCost:
		if n.c > 0 {
			n.c--
		} else {
			n.k = kSamples
		}
	case kHistogram:
		if f := n.figs(); f.costLen() > 0 {
			n.k, n.c = kCost, int32(f.costLen()-1)
		} else {
			n.k, n.c = kSamples, 0
		}
	case kContract:
		if n.c > 0 {
			n.c--
		} else {
			n.lastFigChild()
		}
	}
	return true
}

func (n *nav) MoveToNext() bool {
	n.v.tick()
	if n.a >= 0 {
		return false
	}
	switch n.k {
	case kDoc, kNetwork:
		return false
	case kBroker:
		if int(n.b)+1 >= len(n.v.brokers) {
			return false
		}
		n.b++
	case kLink:
		if int(n.l)+1 >= len(n.v.brokers[n.b].links) {
			return false
		}
		n.l++
	case kSample:
		if int(n.s)+1 >= len(n.link().samples) {
			return false
		}
		n.s++
	case kBucket:
		if int(n.c)+1 >= n.figs().bucketLen() {
			return false
		}
		n.c++
	default:
		m := *n
		if !m.figChildAfter() {
			return false
		}
		*n = m
	}
	return true
}

func (n *nav) MoveToPrevious() bool {
	if n.a >= 0 {
		return false
	}
	switch n.k {
	case kDoc, kNetwork:
		return false
	case kBroker:
		if n.b == 0 {
			return false
		}
		n.b--
	case kLink:
		if n.l == 0 {
			return false
		}
		n.l--
	case kSample:
		if n.s > 0 {
			n.s--
			return true
		}
		// Back to the last of the link's own children.
		n.s = -1
		if k := len(n.link().contracts); k > 0 {
			n.k, n.c = kContract, int32(k-1)
		} else {
			n.lastFigChild()
		}
	case kBucket:
		if n.c == 0 {
			return false
		}
		n.c--
	default:
		return n.figChildBefore()
	}
	return true
}

func (n *nav) MoveToFirst() bool {
	if n.a >= 0 || !n.MoveToPrevious() {
		return false
	}
	for n.MoveToPrevious() {
	}
	return true
}
