package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wayline/wayline/schema"
)

// Times are stored as int64 nanoseconds since the Unix epoch (see
// schema/sql/mysql/0001_init.sql for why), with 0 for the zero time.

// dbTime is t as stored: 0 for the zero time, else Unix nanoseconds,
// clamped to the years 1678-2262 that they can express.
func dbTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return clampNanos(t)
}

// clampNanos is t in Unix nanoseconds, the earliest or latest that int64
// holds when t is beyond them.
func clampNanos(t time.Time) int64 {
	switch s := t.Unix(); {
	case s <= math.MinInt64/int64(time.Second):
		return math.MinInt64
	case s >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// goTime reads a stored time back, in UTC; 0 is the zero time.
func goTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// span is [from, to) in stored times for a query; a zero bound is
// unbounded.
func span(from, to time.Time) (int64, int64) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = clampNanos(from)
	}
	if !to.IsZero() {
		hi = clampNanos(to)
	}
	return lo, hi
}

// dbFloat is a figure as stored. Neither MySQL's DOUBLE nor SQLite's REAL
// keeps NaN, which becomes NULL, and MySQL refuses infinities, which become
// the largest double of their sign.
func dbFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return nil
	case math.IsInf(f, 1):
		return math.MaxFloat64
	case math.IsInf(f, -1):
		return -math.MaxFloat64
	}
	return f
}

// goFloat reads a stored figure back, undoing dbFloat's infinities.
func goFloat(f float64) float64 {
	switch f {
	case math.MaxFloat64:
		return math.Inf(1)
	case -math.MaxFloat64:
		return math.Inf(-1)
	}
	return f
}

// anyInt is an integer column's value as the driver gives it.
func anyInt(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case []byte:
		return strconv.ParseInt(string(v), 10, 64)
	}
	return 0, fmt.Errorf("not an integer: %T", v)
}

// anyFloat is a figure's column as the driver gives it, undoing dbFloat:
// NULL is NaN.
func anyFloat(v any) (float64, error) {
	switch v := v.(type) {
	case nil:
		return math.NaN(), nil
	case float64:
		return goFloat(v), nil
	case int64:
		return float64(v), nil
	case []byte:
		f, err := strconv.ParseFloat(string(v), 64)
		return goFloat(f), err
	}
	return 0, fmt.Errorf("not a number: %T", v)
}

// Counters are uint64 in Go and signed 64-bit integers in both databases;
// the 64 bits are stored as they are, so every value comes back.
func dbCount(n uint64) int64 { return int64(n) }

// A measurement's figures that queries select on (state, monitor, rtt,
// mean latency, jitter, loss) are columns of their own; the rest (the
// other latency percentiles, the sample counters, the costs and the delay
// histogram) is one binary value, its detail, which the store alone
// reads. A row is then ten values rather than twenty-three, which is most
// of what storing it costs the server.
//
// The detail, version 2:
//
//	byte      2
//	5 numbers latency min, p50, p90, p99, max
//	7 uvarint sent, received, lost, window (zig-zag), reordered, duplicated, dropped
//	uvarint   number of costs, then each: uvarint length, profile, number
//	number    histogram samples missing
//	uvarint   number of buckets, then each: number bound, number count
//
// A number is a whole number 0 <= n < 2^52 as the uvarint 2n (a count: one
// to seven bytes); a positive number of thousandths n/1000, n < 2^50, as
// the uvarint 4n+3 (a histogram bound in ms, which is whole microseconds:
// three bytes); or else the uvarint 1 and the float64's 8 bytes, little
// endian, so every value (NaN, infinities, -0) comes back exactly. Version
// 1, written before histogram bounds were whole microseconds, is the same
// without thousandths, and is read as ever.
const detailVersion = 2

// knownDetail reports whether v is a detail version this code reads.
func knownDetail(v byte) bool { return v == 1 || v == detailVersion }

// appendDetail appends l's detail.
func appendDetail(b []byte, l *schema.Link) []byte {
	b = append(b, detailVersion)
	for _, f := range [...]float64{l.Latency.Min, l.Latency.P50, l.Latency.P90, l.Latency.P99, l.Latency.Max} {
		b = appendNumber(b, f)
	}
	b = binary.AppendUvarint(b, l.Samples.Sent)
	b = binary.AppendUvarint(b, l.Samples.Received)
	b = binary.AppendUvarint(b, l.Samples.Lost)
	b = binary.AppendVarint(b, int64(l.Samples.Window))
	b = binary.AppendUvarint(b, l.Samples.Reordered)
	b = binary.AppendUvarint(b, l.Samples.Duplicated)
	b = binary.AppendUvarint(b, l.Dropped)
	b = binary.AppendUvarint(b, uint64(len(l.Costs)))
	for _, c := range l.Costs {
		b = binary.AppendUvarint(b, uint64(len(c.Profile)))
		b = append(b, c.Profile...)
		b = appendNumber(b, c.Value)
	}
	return appendHistogram(b, &l.Histogram)
}

func appendNumber(b []byte, f float64) []byte {
	if f >= 0 && f < 1<<52 && f == math.Trunc(f) && !math.Signbit(f) {
		return binary.AppendUvarint(b, uint64(f)<<1)
	}
	if n := math.Round(f * 1000); n > 0 && n < 1<<50 && n/1000 == f {
		return binary.AppendUvarint(b, uint64(n)<<2|3)
	}
	b = append(b, 1)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// detailReader reads a detail, remembering the first error.
type detailReader struct {
	b   []byte
	err error
}

func (r *detailReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("detail: bad %s", what)
	}
	r.b = nil
}

func (r *detailReader) uvarint(what string) uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 { // most are one byte
		v := r.b[0]
		r.b = r.b[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *detailReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *detailReader) number(what string) float64 {
	v := r.uvarint(what)
	switch {
	case r.err != nil:
		return 0
	case v&1 == 0:
		return float64(v >> 1)
	case v&3 == 3:
		return float64(v>>2) / 1000
	case v != 1 || len(r.b) < 8:
		r.fail(what)
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return f
}

// count reads a number of items that take at least two bytes each, so
// that a corrupt count cannot make a large allocation.
func (r *detailReader) count(what string) int {
	n := r.uvarint(what)
	if n > uint64(len(r.b)/2) {
		r.fail(what)
		return 0
	}
	return int(n)
}

// slabs hand out the costs and buckets of many details from large blocks,
// rather than two allocations a measurement.
type slabs struct {
	costs    []schema.Cost
	buckets  []schema.Bucket
	profiles interner // cost profile names, of which there are few
}

// profile is b as a string, made once per slabs.
func (s *slabs) profile(b []byte) string {
	if s == nil {
		return string(b)
	}
	return s.profiles.get(b)
}

// interner makes each of a few strings once: bytes read again and again
// (states, cost profile names) become one shared string. Past 64 strings
// it makes each anew.
type interner map[string]string

func (in *interner) get(b []byte) string {
	if s, ok := (*in)[string(b)]; ok {
		return s
	}
	if *in == nil {
		*in = interner{}
	}
	s := string(b)
	if len(*in) < 64 {
		(*in)[s] = s
	}
	return s
}

// detailPart is how much of a detail to decode.
type detailPart uint8

const (
	detailAll     detailPart = iota
	detailSummary            // the latency summary, sample counts and drops
	detailCosts              // those and the costs, not the histogram
)

const slabSize = 4096

func (s *slabs) takeCosts(n int) []schema.Cost {
	if s == nil || n > slabSize/4 {
		return make([]schema.Cost, n)
	}
	if len(s.costs) < n {
		s.costs = make([]schema.Cost, slabSize)
	}
	out := s.costs[:n:n]
	s.costs = s.costs[n:]
	return out
}

func (s *slabs) takeBuckets(n int) []schema.Bucket {
	if s == nil || n > slabSize/4 {
		return make([]schema.Bucket, n)
	}
	if len(s.buckets) < n {
		s.buckets = make([]schema.Bucket, slabSize)
	}
	out := s.buckets[:n:n]
	s.buckets = s.buckets[n:]
	return out
}

// decodeDetail sets what appendDetail wrote of a link into l, taking the
// costs and buckets from s (nil: allocated each). With detailSummary it
// stops before the costs, which it leaves with the histogram empty; with
// detailCosts before the histogram, left empty.
func decodeDetail(b []byte, l *schema.Link, s *slabs, part detailPart) error {
	if len(b) == 0 || !knownDetail(b[0]) {
		return fmt.Errorf("detail: not version 1 or %d", detailVersion)
	}
	r := &detailReader{b: b[1:]}
	for _, f := range [...]*float64{&l.Latency.Min, &l.Latency.P50, &l.Latency.P90, &l.Latency.P99, &l.Latency.Max} {
		*f = r.number("latency")
	}
	l.Samples.Sent = r.uvarint("sent")
	l.Samples.Received = r.uvarint("received")
	l.Samples.Lost = r.uvarint("lost")
	l.Samples.Window = int(r.varint("window"))
	l.Samples.Reordered = r.uvarint("reordered")
	l.Samples.Duplicated = r.uvarint("duplicated")
	l.Dropped = r.uvarint("dropped")
	l.Costs = nil
	l.Histogram = schema.Histogram{}
	if part == detailSummary {
		return r.err
	}
	if n := r.count("costs"); n > 0 {
		l.Costs = s.takeCosts(n)
		for i := range l.Costs {
			size := r.uvarint("cost profile")
			if size > uint64(len(r.b)) {
				r.fail("cost profile")
				break
			}
			l.Costs[i].Profile = s.profile(r.b[:size])
			r.b = r.b[size:]
			l.Costs[i].Value = r.number("cost")
		}
	}
	if part == detailCosts {
		return r.err
	}
	return r.histogram(&l.Histogram, s)
}

// histogram reads the histogram, the last part of a detail, into h.
func (r *detailReader) histogram(h *schema.Histogram, s *slabs) error {
	*h = schema.Histogram{Missing: r.number("histogram")}
	if n := r.count("histogram"); n > 0 {
		h.Buckets = s.takeBuckets(n)
		for i := range h.Buckets {
			h.Buckets[i] = schema.Bucket{LE: r.number("bucket"), Count: r.number("bucket")}
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("length")
	}
	return r.err
}

// decodeHistogram reads the histogram part of a detail (see splitDetail)
// into h.
func decodeHistogram(b []byte, h *schema.Histogram, s *slabs) error {
	r := &detailReader{b: b}
	return r.histogram(h, s)
}

// splitDetail splits a detail before its histogram: the head is a detail
// that decodeDetail reads up to detailCosts, the tail what
// decodeHistogram reads.
func splitDetail(b []byte) (head, hist []byte, err error) {
	if len(b) == 0 || !knownDetail(b[0]) {
		return nil, nil, fmt.Errorf("detail: not version 1 or %d", detailVersion)
	}
	r := &detailReader{b: b[1:]}
	for range 5 {
		r.number("latency")
	}
	for range 3 {
		r.uvarint("samples")
	}
	r.varint("window")
	for range 3 {
		r.uvarint("samples")
	}
	for n := r.count("costs"); n > 0 && r.err == nil; n-- {
		r.bytes("cost profile")
		r.number("cost")
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	at := len(b) - len(r.b)
	return b[:at:at], b[at:], nil
}
