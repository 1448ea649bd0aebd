package store

import (
	"database/sql"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
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

// goFloat reads a figure back, undoing dbFloat.
func goFloat(f sql.NullFloat64) float64 {
	switch {
	case !f.Valid:
		return math.NaN()
	case f.Float64 == math.MaxFloat64:
		return math.Inf(1)
	case f.Float64 == -math.MaxFloat64:
		return math.Inf(-1)
	}
	return f.Float64
}

// Counters are uint64 in Go and signed 64-bit integers in both databases;
// the 64 bits are stored as they are, so every value comes back.
func dbCount(n uint64) int64 { return int64(n) }

// nameEscaper keeps a cost profile's name from breaking the costs text:
// the separators and the escape character itself are %-escaped.
var nameEscaper = strings.NewReplacer("%", "%25", "=", "%3D", ";", "%3B")

// appendFloat writes f as strconv does: shortest exact, "+Inf", "NaN".
func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// encodeCosts is a link's costs as "profile=value;profile=value", e.g.
// "default=45.1;media=+Inf"; "" for none.
func encodeCosts(b []byte, costs []schema.Cost) []byte {
	for i, c := range costs {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, nameEscaper.Replace(c.Profile)...)
		b = append(b, '=')
		b = appendFloat(b, c.Value)
	}
	return b
}

// decodeCosts reads encodeCosts' text; "" is no costs (nil).
func decodeCosts(s string) ([]schema.Cost, error) {
	if s == "" {
		return nil, nil
	}
	out := make([]schema.Cost, 0, strings.Count(s, ";")+1)
	for part := range strings.SplitSeq(s, ";") {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("costs %q: %q has no '='", s, part)
		}
		if strings.Contains(name, "%") {
			var err error
			if name, err = url.PathUnescape(name); err != nil {
				return nil, fmt.Errorf("costs %q: %w", s, err)
			}
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("costs %q: %w", s, err)
		}
		out = append(out, schema.Cost{Profile: name, Value: v})
	}
	return out, nil
}

// encodeHistogram is a histogram as "missing;le:count,le:count", e.g.
// "3;44.67:12,+Inf:1"; "" for an empty one (nothing missing, no buckets).
func encodeHistogram(b []byte, h schema.Histogram) []byte {
	if h.Missing == 0 && len(h.Buckets) == 0 {
		return b
	}
	b = appendFloat(b, h.Missing)
	b = append(b, ';')
	for i, k := range h.Buckets {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, k.LE)
		b = append(b, ':')
		b = appendFloat(b, k.Count)
	}
	return b
}

// decodeHistogram reads encodeHistogram's text; "" is the empty histogram.
func decodeHistogram(s string) (schema.Histogram, error) {
	var h schema.Histogram
	if s == "" {
		return h, nil
	}
	missing, buckets, ok := strings.Cut(s, ";")
	if !ok {
		return h, fmt.Errorf("histogram %q: no ';'", s)
	}
	var err error
	if h.Missing, err = strconv.ParseFloat(missing, 64); err != nil {
		return h, fmt.Errorf("histogram %q: %w", s, err)
	}
	if buckets == "" {
		return h, nil
	}
	h.Buckets = make([]schema.Bucket, 0, strings.Count(buckets, ",")+1)
	for part := range strings.SplitSeq(buckets, ",") {
		le, count, ok := strings.Cut(part, ":")
		if !ok {
			return h, fmt.Errorf("histogram %q: bucket %q has no ':'", s, part)
		}
		k := schema.Bucket{}
		if k.LE, err = strconv.ParseFloat(le, 64); err == nil {
			k.Count, err = strconv.ParseFloat(count, 64)
		}
		if err != nil {
			return h, fmt.Errorf("histogram %q: %w", s, err)
		}
		h.Buckets = append(h.Buckets, k)
	}
	return h, nil
}
