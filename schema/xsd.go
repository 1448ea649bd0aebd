package schema

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// XSD is perf-report.xsd, the XML Schema (1.0) of the report and network
// documents, for validators outside Go and for the aggregator to serve.
//
//go:embed perf-report.xsd
var XSD []byte

// The enumerations of perf-report.xsd.
var (
	transportNames    = []string{"tcp", "tls", "udp", "ws", "quic", "mem"}
	linkStateNames    = []string{"up", "down"}
	monitorStateNames = []string{"unknown", "up", "suspect", "down", "disabled"}
)

// Limits of an address, as in perf-report.xsd (and the router's).
const (
	maxAddressLen = 253
	maxLabelLen   = 63
)

// Validate checks r against everything perf-report.xsd says, and what XSD
// 1.0 cannot say: each link's A is r.Broker, link ids are unique, cost
// profiles are unique within a link, histogram buckets ascend by LE, and
// r.Time is set. It returns nil, or an error wrapping ErrInvalid that names
// the first fault (by link index and id where there is one).
//
// A report that passes encodes (AppendXML) to a document that passes
// perf-report.xsd and that DecodeReport turns back into r.
func (r *Report) Validate() error {
	if err := r.validateHeader(); err != nil {
		return err
	}
	for i := range r.Links {
		if err := r.Links[i].validate(); err != nil {
			return fmt.Errorf("%w: link %d (%s): %w", ErrInvalid, i, r.Links[i].ID, err)
		}
	}
	return r.validateAcross()
}

func (r *Report) validateHeader() error {
	for _, f := range [...]struct{ name, v string }{{"broker", r.Broker}, {"domain", r.Domain}} {
		if err := checkAddress(f.v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, f.name, err)
		}
	}
	if r.Seq == 0 {
		return fmt.Errorf("%w: seq is 0 (reports count from 1)", ErrInvalid)
	}
	if err := checkTime(r.Time); err != nil {
		return fmt.Errorf("%w: time: %w", ErrInvalid, err)
	}
	if r.Interval <= 0 {
		return fmt.Errorf("%w: interval %v is not positive", ErrInvalid, r.Interval)
	}
	return nil
}

// validate checks l's values one by one.
func (l *Link) validate() error {
	if !isUUID(l.ID) {
		return fmt.Errorf("id %q is not a lower-case UUID", l.ID)
	}
	for _, f := range [...]struct{ name, v string }{{"a", l.A}, {"b", l.B}} {
		if err := checkAddress(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	for _, f := range [...]struct {
		name, v string
		set     []string
	}{{"transport", l.Transport, transportNames}, {"state", l.State, linkStateNames}, {"monitor", l.Monitor, monitorStateNames}} {
		if _, ok := enum(f.v, f.set); !ok {
			return fmt.Errorf("%s %q is not one of %q", f.name, f.v, f.set)
		}
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{{"rtt", l.RTT}, {"jitter", l.Jitter}, {"latency min", l.Latency.Min}, {"latency mean", l.Latency.Mean},
		{"latency p50", l.Latency.P50}, {"latency p90", l.Latency.P90}, {"latency p99", l.Latency.P99}, {"latency max", l.Latency.Max}} {
		if err := checkFigure(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := checkFraction(l.Loss); err != nil {
		return fmt.Errorf("loss: %w", err)
	}
	if err := checkWindow(int64(l.Samples.Window)); err != nil {
		return fmt.Errorf("samples window: %w", err)
	}
	for i, c := range l.Costs {
		if err := c.validate(); err != nil {
			return fmt.Errorf("cost %d: %w", i, err)
		}
	}
	return l.Histogram.validate()
}

func (c Cost) validate() error {
	if err := checkText(c.Profile); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if c.Profile == "" {
		return errors.New("profile is empty")
	}
	if err := checkFigure(c.Value); err != nil {
		return fmt.Errorf("profile %q: %w", c.Profile, err)
	}
	return nil
}

func (h *Histogram) validate() error {
	if err := checkMass(h.Missing); err != nil {
		return fmt.Errorf("histogram missing: %w", err)
	}
	for i, b := range h.Buckets {
		if err := checkFigure(b.LE); err != nil {
			return fmt.Errorf("histogram bucket %d le: %w", i, err)
		}
		if err := checkMass(b.Count); err != nil {
			return fmt.Errorf("histogram bucket %d count: %w", i, err)
		}
	}
	return checkAscending(h.Buckets)
}

// checkAscending fails unless the buckets' upper bounds strictly ascend, so
// that each bucket of a histogram is a distinct interval.
func checkAscending(bs []Bucket) error {
	for i := 1; i < len(bs); i++ {
		if !(bs[i].LE > bs[i-1].LE) {
			return fmt.Errorf("histogram bucket %d: le %v does not follow le %v in ascending order", i, bs[i].LE, bs[i-1].LE)
		}
	}
	return nil
}

// validateAcross checks what involves more than one value: links' A, and
// unique link ids and cost profiles.
func (r *Report) validateAcross() error {
	for i := range r.Links {
		l := &r.Links[i]
		if l.A != r.Broker {
			return fmt.Errorf("%w: link %d (%s): a %q is not the reporting broker %q", ErrInvalid, i, l.ID, l.A, r.Broker)
		}
		if j, k := repeat(len(l.Costs), func(k int) string { return l.Costs[k].Profile }); k >= 0 {
			return fmt.Errorf("%w: link %d (%s): cost %d repeats profile %q of cost %d", ErrInvalid, i, l.ID, k, l.Costs[k].Profile, j)
		}
	}
	if j, i := repeat(len(r.Links), func(i int) string { return r.Links[i].ID }); i >= 0 {
		return fmt.Errorf("%w: link %d repeats id %s of link %d", ErrInvalid, i, r.Links[i].ID, j)
	}
	return nil
}

// repeat returns the first i whose key(i) equals an earlier key(j), and j;
// or -1, -1. Small sets are compared pairwise, larger ones through a map, so
// that a hostile report costs linear time.
func repeat(n int, key func(int) string) (j, i int) {
	if n <= 8 {
		for i := 1; i < n; i++ {
			for j := range i {
				if key(i) == key(j) {
					return j, i
				}
			}
		}
		return -1, -1
	}
	seen := make(map[string]int, n)
	for i := range n {
		k := key(i)
		if j, ok := seen[k]; ok {
			return j, i
		}
		seen[k] = i
	}
	return -1, -1
}

// enum returns the element of set equal to v (a constant, so that decoded
// reports share it rather than hold a copy) and whether there is one.
func enum(v string, set []string) (string, bool) {
	for _, s := range set {
		if s == v {
			return s, true
		}
	}
	return "", false
}

// checkAddress checks a broker address or unit: dot-separated labels of
// 1 to 63 bytes of a-z, 0-9, '_' and '-', at most 253 bytes in all.
func checkAddress(s string) error {
	if s == "" {
		return errors.New("address is empty")
	}
	if len(s) > maxAddressLen {
		return fmt.Errorf("address %.20q... is %d bytes long, more than %d", s, len(s), maxAddressLen)
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return fmt.Errorf("address %q has an empty label", s)
			}
			label = 0
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-':
			if label++; label > maxLabelLen {
				return fmt.Errorf("address %q has a label longer than %d bytes", s, maxLabelLen)
			}
		default:
			return fmt.Errorf("address %q holds %q (want a-z, 0-9, '_', '-' and dots)", s, c)
		}
	}
	if label == 0 {
		return fmt.Errorf("address %q has an empty label", s)
	}
	return nil
}

// isUUID reports whether s is a UUID as 8-4-4-4-12 lower-case hexadecimal
// digits, the one spelling link ids have (any version).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// checkFigure checks a delay or cost: not negative and not NaN; +Inf is
// allowed (a down link's cost).
func checkFigure(v float64) error {
	if !(v >= 0) {
		return fmt.Errorf("%v is negative or NaN", v)
	}
	return nil
}

// checkFraction checks a ratio: in [0, 1].
func checkFraction(v float64) error {
	if !(v >= 0 && v <= 1) {
		return fmt.Errorf("%v is outside [0, 1]", v)
	}
	return nil
}

// checkMass checks a histogram mass: finite and not negative.
func checkMass(v float64) error {
	if !(v >= 0 && v <= math.MaxFloat64) {
		return fmt.Errorf("%v is negative, infinite or NaN", v)
	}
	return nil
}

// checkWindow checks a window size, which XSD types as a non-negative
// xs:int so that it fits an int everywhere.
func checkWindow(v int64) error {
	if v < 0 || v > math.MaxInt32 {
		return fmt.Errorf("%d is outside [0, %d]", v, math.MaxInt32)
	}
	return nil
}

// checkTime checks a report time: set, and in years 1 to 9999 in UTC, the
// years xs:dateTime and RFC 3339 share.
func checkTime(t time.Time) error {
	if t.IsZero() {
		return errors.New("not set")
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("year %d is outside 1 to 9999", y)
	}
	return nil
}

// checkText fails unless s is UTF-8 holding only characters XML 1.0 can
// carry: no control characters other than tab, newline and carriage return,
// and neither U+FFFE nor U+FFFF.
func checkText(s string) error {
	for i, r := range s {
		if !isXMLChar(r) || r == utf8.RuneError && isBadRune(s[i:]) {
			return fmt.Errorf("%q holds a character XML cannot carry at byte %d", s, i)
		}
	}
	return nil
}

// isBadRune reports whether s begins with a byte sequence that is not UTF-8
// (rather than an encoded U+FFFD).
func isBadRune(s string) bool {
	_, n := utf8.DecodeRuneInString(s)
	return n <= 1
}

// isXMLChar reports whether r matches XML 1.0's Char production.
func isXMLChar(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	default:
		return r >= 0x10000 && r <= 0x10FFFF
	}
}

// builder turns the elements of a report document into a Report, enforcing
// perf-report.xsd's content model: which element goes where, in what
// order, with which attributes of which types. The scanner (decoder) feeds
// it; tests feed it from encoding/xml as well, to cross-check the scanner.
type builder struct {
	limits Limits
	size   int // the document's, in bytes
	r      Report
	open   [4]elem // the open elements; leaves hold no children, so 4 is the deepest
	depth  int
	rooted bool // the root element has begun
	stage  elem // in a link, the next child allowed: latency, samples, cost (or histogram), histogram+1
	prevLE float64
	costs  []Cost   // every link's costs, each link's a span of them
	bucket []Bucket // likewise for buckets
	spans  []span   // per link
	// profiles interns cost profile names, which repeat on every link.
	profiles map[string]string
}

type span struct{ costs, buckets [2]int }

type elem uint8

const (
	noElem elem = iota
	reportElem
	linkElem
	latencyElem
	samplesElem
	costElem
	histogramElem
	bucketElem
)

var elemNames = [...]string{"", "report", "link", "latency", "samples", "cost", "histogram", "bucket"}

// The attributes of each element, all required.
var (
	reportAttrs    = []string{"broker", "domain", "seq", "time", "interval_ms"}
	linkAttrs      = []string{"id", "a", "b", "transport", "state", "monitor", "rtt", "jitter", "loss", "dropped"}
	latencyAttrs   = []string{"min", "mean", "p50", "p90", "p99", "max"}
	samplesAttrs   = []string{"sent", "received", "lost", "window", "reordered", "duplicated"}
	costAttrs      = []string{"profile", "value"}
	histogramAttrs = []string{"missing"}
	bucketAttrs    = []string{"le", "count"}
)

// The smallest link and bucket elements, bounds on how many a document of
// a given size holds.
const (
	minLinkBytes   = 250
	minBucketBytes = len(`<bucket le="0" count="1"/>`)
)

// newBuilder returns a builder expecting about links links in a document
// of size bytes.
func newBuilder(limits Limits, links, size int) builder {
	links = min(links, limits.MaxLinks)
	return builder{
		limits:   limits,
		size:     size,
		r:        Report{Links: make([]Link, 0, links)},
		spans:    make([]span, 0, links),
		profiles: make(map[string]string),
	}
}

// reserve sizes the shared cost and bucket slices after the first link, on
// the guess that the others are like it, within what the document can hold.
func (b *builder) reserve() {
	n := cap(b.r.Links)
	b.costs = slices.Grow(b.costs, min(len(b.costs)*n, b.size/minBucketBytes))
	b.bucket = slices.Grow(b.bucket, min(len(b.bucket)*n, b.size/minBucketBytes))
}

func (b *builder) top() elem {
	if b.depth == 0 {
		return noElem
	}
	return b.open[b.depth-1]
}

// start takes a start tag; the attributes are only borrowed.
func (b *builder) start(name string, attrs []attr) error {
	var e elem
	var err error
	switch parent := b.top(); {
	case parent == noElem && b.rooted:
		return fmt.Errorf("%w: a second root element <%.40s>", ErrMalformed, name)
	case parent == noElem && name == "report":
		b.rooted = true
		e, err = reportElem, b.report(attrs)
	case parent == reportElem && name == "link":
		e, err = linkElem, b.link(attrs)
	case parent == linkElem && name == "latency" && b.stage == latencyElem:
		e, err = latencyElem, b.latency(attrs)
	case parent == linkElem && name == "samples" && b.stage == samplesElem:
		e, err = samplesElem, b.samples(attrs)
	case parent == linkElem && name == "cost" && b.stage == costElem:
		e, err = costElem, b.cost(attrs)
	case parent == linkElem && name == "histogram" && b.stage == costElem:
		e, err = histogramElem, b.histogram(attrs)
	case parent == histogramElem && name == "bucket":
		e, err = bucketElem, b.addBucket(attrs)
	case parent == noElem:
		return fmt.Errorf("%w: root element <%.40s>, want <report>", ErrInvalid, name)
	case parent == linkElem:
		return fmt.Errorf("%w: <%.40s> out of place in <link> (want latency, samples, costs, histogram)", ErrInvalid, name)
	default:
		return fmt.Errorf("%w: <%.40s> in <%s>", ErrInvalid, name, elemNames[parent])
	}
	if err != nil {
		return err
	}
	if e == linkElem || e == latencyElem || e == samplesElem || e == histogramElem {
		b.stage = e + 1
	}
	b.open[b.depth] = e
	b.depth++
	return nil
}

// end takes an end tag, or the end of an empty-element tag.
func (b *builder) end(name string) error {
	e := b.top()
	if e == noElem || elemNames[e] != name {
		return fmt.Errorf("%w: end tag </%.40s> does not close <%s>", ErrMalformed, name, elemNames[e])
	}
	if e == linkElem {
		if b.stage < costElem {
			return fmt.Errorf("%w: <link> lacks <%s>", ErrInvalid, elemNames[b.stage])
		}
		sp := &b.spans[len(b.spans)-1]
		sp.costs[1], sp.buckets[1] = len(b.costs), len(b.bucket)
		if len(b.spans) == 1 {
			b.reserve()
		}
	}
	b.depth--
	return nil
}

// space takes whitespace between tags, which only elements with element
// content may hold.
func (b *builder) space() error {
	switch e := b.top(); e {
	case noElem, reportElem, linkElem, histogramElem:
		return nil
	default:
		return fmt.Errorf("%w: whitespace in <%s>, which must be empty", ErrInvalid, elemNames[e])
	}
}

// text takes other character data, which no report element holds.
func (b *builder) text() error {
	if b.depth == 0 {
		return fmt.Errorf("%w: text outside the root element", ErrMalformed)
	}
	return fmt.Errorf("%w: text in <%s>, which holds only elements", ErrInvalid, elemNames[b.top()])
}

// finish completes the Report: it gathers the strings it keeps out of the
// document into one allocation, points each link at its costs and buckets,
// and checks what spans links.
func (b *builder) finish() error {
	if b.depth > 0 || !b.rooted {
		return fmt.Errorf("%w: incomplete document", ErrMalformed)
	}
	links := b.r.Links
	if len(links) == 0 {
		b.r.Links = nil
	}
	n := 0
	for i := range links {
		n += len(links[i].ID) + len(links[i].B)
	}
	var sb strings.Builder
	sb.Grow(n)
	for i := range links {
		sb.WriteString(links[i].ID)
		sb.WriteString(links[i].B)
	}
	all, off := sb.String(), 0
	for i := range links {
		l, sp := &links[i], b.spans[i]
		l.ID, off = all[off:off+len(l.ID)], off+len(l.ID)
		l.B, off = all[off:off+len(l.B)], off+len(l.B)
		if sp.costs[1] > sp.costs[0] {
			l.Costs = b.costs[sp.costs[0]:sp.costs[1]:sp.costs[1]]
		}
		if sp.buckets[1] > sp.buckets[0] {
			l.Histogram.Buckets = b.bucket[sp.buckets[0]:sp.buckets[1]:sp.buckets[1]]
		}
	}
	return b.r.validateAcross()
}

// eachAttr calls set with each attribute's index in names and its value,
// and checks that every name appears exactly once.
func eachAttr(e elem, names []string, attrs []attr, set func(i int, v string) error) error {
	var seen uint32
	next := 0 // AppendXML's order, tried first
	for _, a := range attrs {
		i := next
		if i >= len(names) || names[i] != a.name {
			for i = 0; i < len(names) && names[i] != a.name; i++ {
			}
		}
		next = i + 1
		switch {
		case i == len(names):
			return fmt.Errorf("%w: <%s> has no attribute %.40s", ErrInvalid, elemNames[e], a.name)
		case seen&(1<<i) != 0:
			return fmt.Errorf("%w: <%s> repeats attribute %s", ErrMalformed, elemNames[e], a.name)
		}
		seen |= 1 << i
		if err := set(i, a.value); err != nil {
			return fmt.Errorf("%w: <%s %s=%.40q>: %w", ErrInvalid, elemNames[e], a.name, a.value, err)
		}
	}
	if all := uint32(1)<<len(names) - 1; seen != all {
		return fmt.Errorf("%w: <%s> lacks attribute %s", ErrInvalid, elemNames[e], names[bits.TrailingZeros32(^seen)])
	}
	return nil
}

func (b *builder) report(attrs []attr) error {
	r := &b.r
	return eachAttr(reportElem, reportAttrs, attrs, func(i int, v string) (err error) {
		switch i {
		case 0:
			r.Broker, err = strings.Clone(v), checkAddress(v)
		case 1:
			r.Domain, err = strings.Clone(v), checkAddress(v)
		case 2:
			if r.Seq, err = parseCount(v); err == nil && r.Seq == 0 {
				err = errors.New("reports count from 1")
			}
		case 3:
			r.Time, err = parseTime(v)
		default:
			r.Interval, err = parseIntervalMs(v)
		}
		return err
	})
}

func (b *builder) link(attrs []attr) error {
	if len(b.r.Links) == b.limits.MaxLinks {
		return fmt.Errorf("%w: more than %d links", ErrTooLarge, b.limits.MaxLinks)
	}
	b.r.Links = append(b.r.Links, Link{})
	b.spans = append(b.spans, span{costs: [2]int{len(b.costs)}, buckets: [2]int{len(b.bucket)}})
	l := &b.r.Links[len(b.r.Links)-1]
	return eachAttr(linkElem, linkAttrs, attrs, func(i int, v string) (err error) {
		ok := true
		switch i {
		case 0:
			l.ID, ok = v, isUUID(v) // copied out by finish
		case 1:
			if l.A, err = v, checkAddress(v); v == b.r.Broker {
				l.A = b.r.Broker
			}
		case 2:
			l.B, err = v, checkAddress(v) // copied out by finish
		case 3:
			l.Transport, ok = enum(v, transportNames)
		case 4:
			l.State, ok = enum(v, linkStateNames)
		case 5:
			l.Monitor, ok = enum(v, monitorStateNames)
		case 6:
			l.RTT, err = figure(v)
		case 7:
			l.Jitter, err = figure(v)
		case 8:
			if l.Loss, err = parseDouble(v); err == nil {
				err = checkFraction(l.Loss)
			}
		default:
			l.Dropped, err = parseCount(v)
		}
		if !ok {
			return errors.New("not one of the allowed values")
		}
		return err
	})
}

func (b *builder) latency(attrs []attr) error {
	s := &b.r.Links[len(b.r.Links)-1].Latency
	fields := [...]*float64{&s.Min, &s.Mean, &s.P50, &s.P90, &s.P99, &s.Max}
	return eachAttr(latencyElem, latencyAttrs, attrs, func(i int, v string) (err error) {
		*fields[i], err = figure(v)
		return err
	})
}

func (b *builder) samples(attrs []attr) error {
	s := &b.r.Links[len(b.r.Links)-1].Samples
	counts := [...]*uint64{&s.Sent, &s.Received, &s.Lost, nil, &s.Reordered, &s.Duplicated}
	return eachAttr(samplesElem, samplesAttrs, attrs, func(i int, v string) (err error) {
		if counts[i] != nil {
			*counts[i], err = parseCount(v)
			return err
		}
		n, err := parseCount(v)
		if err == nil {
			if err = checkWindow(int64(min(n, math.MaxInt64))); err == nil {
				s.Window = int(n)
			}
		}
		return err
	})
}

func (b *builder) cost(attrs []attr) error {
	var c Cost
	err := eachAttr(costElem, costAttrs, attrs, func(i int, v string) (err error) {
		if i == 1 {
			c.Value, err = figure(v)
			return err
		}
		if v == "" {
			return errors.New("empty")
		}
		c.Profile = b.profiles[v]
		if c.Profile == "" {
			c.Profile = strings.Clone(v)
			b.profiles[c.Profile] = c.Profile
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.costs = append(b.costs, c)
	return nil
}

func (b *builder) histogram(attrs []attr) error {
	h := &b.r.Links[len(b.r.Links)-1].Histogram
	b.prevLE = math.Inf(-1)
	return eachAttr(histogramElem, histogramAttrs, attrs, func(_ int, v string) (err error) {
		if h.Missing, err = parseDouble(v); err == nil {
			err = checkMass(h.Missing)
		}
		return err
	})
}

// addBucket keeps a bucket unless it is empty; all must ascend.
func (b *builder) addBucket(attrs []attr) error {
	var k Bucket
	err := eachAttr(bucketElem, bucketAttrs, attrs, func(i int, v string) (err error) {
		if i == 0 {
			k.LE, err = figure(v)
			return err
		}
		if k.Count, err = parseDouble(v); err == nil {
			err = checkMass(k.Count)
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case !(k.LE > b.prevLE):
		return fmt.Errorf("%w: bucket le %v does not follow le %v in ascending order", ErrInvalid, k.LE, b.prevLE)
	}
	b.prevLE = k.LE
	if k.Count != 0 {
		b.bucket = append(b.bucket, k)
	}
	return nil
}

// figure parses a delay or cost.
func figure(v string) (float64, error) {
	f, err := parseDouble(v)
	if err == nil {
		err = checkFigure(f)
	}
	return f, err
}
