package schema

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// xmlDecl opens every document Wayline writes.
const xmlDecl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// AppendXML appends r's report document to b and returns the extended
// buffer. It writes what it is given: a report that fails Validate yields a
// document that fails perf-report.xsd and DecodeReport (EncodeXML checks
// first). Strings are escaped, so no value can break the document's shape.
//
// # The XML view
//
// Brokers send one report document per report interval on
// $WL.perf.<domain>; the aggregator keeps the latest report of every broker
// and serves them as one network document (AppendSnapshotXML) for XPath.
// Both are described by perf-report.xsd (XSD). Figures are attributes, not
// child elements: for 16,000 links, attribute style parses about twice as
// fast and answers a constraint query about five times as fast.
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<report broker="na.cgl.c1.a" domain="na" seq="42" time="2026-11-23T10:00:00.25Z" interval_ms="5000">
//	<link id="3f2a…" a="na.cgl.c1.a" b="eu.kth.c1.a" transport="udp" state="up" monitor="up" rtt="90.3" jitter="2" loss="0.01" dropped="0"><latency min="44.1" mean="45.1" p50="45" p90="46.9" p99="47.8" max="48.2"/><samples sent="512" received="507" lost="5" window="256" reordered="0" duplicated="0"/><cost profile="default" value="57.4"/><histogram missing="3"><bucket le="44.668359215096" count="12"/></histogram></link>
//	</report>
//
// One link per line. report carries the reporting broker's address, its
// aggregation domain, the report's sequence number (from 1, per broker), the
// time the figures were read and the report interval in milliseconds. Each
// link element (the contract: an element named link whose id attribute is
// the link's lower-case UUID) carries:
//
//   - a, b: the reporting broker and the peer; transport: tcp, tls, udp,
//     ws, quic or mem; state: up or down (whether it carries routes); monitor:
//     unknown, up, suspect, down or disabled (the failure detector's
//     verdict)
//   - rtt: mean round-trip time; jitter: mean difference of consecutive
//     one-way delays; loss: one-way loss, 0 to 1; dropped: messages
//     dropped towards the link since the broker started
//   - latency: one-way delay summary (min, mean, p50, p90, p99, max)
//   - samples: probes sent, received, lost, reordered and duplicated since
//     the broker started, and the window the statistics cover
//   - cost: the link's cost under each profile, INF when it is down
//   - histogram: the one-way delay distribution over the window: missing
//     probes, and each non-empty bucket's upper bound le (ms, INF for the
//     last) and count; absent when there is nothing to say
//
// Delays are milliseconds. Numbers are the shortest decimal that reads back
// as the same float64, never in exponent notation, because XPath 1.0's
// number() reads no exponents; +Inf is INF (xs:double's spelling; in XPath
// compare it as a string, cost[@value='INF']). Times are RFC 3339 in UTC
// with as many fraction digits as they need. Queries read naturally:
//
//	//link[@loss > 0.01]/@id                  lossy links
//	//link[latency/@p99 > 100]                slow tails
//	//broker[link/@state='down']/@address     brokers with a down link
func (r *Report) AppendXML(b []byte) []byte {
	b = append(b, xmlDecl...)
	b = append(b, "<report"...)
	b = appendHeader(b, "broker", r)
	var bounds boundCache
	b = appendLinks(b, r.Links, &bounds)
	return append(b, "</report>\n"...)
}

// EncodeXML returns r's report document, or an error wrapping ErrInvalid
// when r fails Validate. (It is not called MarshalXML because that name
// belongs to encoding/xml's Marshaler, whose signature differs.)
func (r *Report) EncodeXML() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("schema: encode report of %s seq %d: %w", r.Broker, r.Seq, err)
	}
	return r.AppendXML(make([]byte, 0, sizeHint(1, len(r.Links)))), nil
}

// AppendSnapshotXML appends to b the network document for reports, the
// latest report of each broker as the aggregator holds them, read at time
// at, and returns the extended buffer. Each report becomes a broker element
// with the report's header (its broker's address in address) holding the
// same link elements as the report document, so one XPath expression
// serves both:
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<network time="2026-11-23T10:00:01Z">
//	<broker address="na.cgl.c1.a" domain="na" seq="42" time="2026-11-23T10:00:00.25Z" interval_ms="5000">
//	<link id="3f2a…" a="na.cgl.c1.a" …>…</link>
//	</broker>
//	</network>
//
// Brokers must be distinct (perf-report.xsd requires it); a link appears
// under each broker that reports it, so ids repeat across brokers.
func AppendSnapshotXML(b []byte, reports []Report, at time.Time) []byte {
	b = append(b, xmlDecl...)
	b = append(b, "<network"...)
	b = appendTimeAttr(b, "time", at)
	b = append(b, ">\n"...)
	var bounds boundCache
	for i := range reports {
		b = append(b, "<broker"...)
		b = appendHeader(b, "address", &reports[i])
		b = appendLinks(b, reports[i].Links, &bounds)
		b = append(b, "</broker>\n"...)
	}
	return append(b, "</network>\n"...)
}

// sizeHint estimates a document's size, to allocate its buffer once.
func sizeHint(reports, links int) int { return 128 + 160*reports + 1024*links }

// appendHeader writes a report's attributes, the broker's address under the
// given name, and closes the start tag.
func appendHeader(b []byte, broker string, r *Report) []byte {
	b = appendAttr(b, broker, r.Broker)
	b = appendAttr(b, "domain", r.Domain)
	b = appendUintAttr(b, "seq", r.Seq)
	b = appendTimeAttr(b, "time", r.Time)
	b = append(b, ` interval_ms="`...)
	b = appendMs(b, r.Interval)
	return append(b, "\">\n"...)
}

// appendLinks writes link elements, one per line; the report and network
// documents share them.
func appendLinks(b []byte, links []Link, bounds *boundCache) []byte {
	for i := range links {
		b = appendLink(b, &links[i], bounds)
	}
	return b
}

func appendLink(b []byte, l *Link, bounds *boundCache) []byte {
	b = append(b, "<link"...)
	b = appendAttr(b, "id", l.ID)
	b = appendAttr(b, "a", l.A)
	b = appendAttr(b, "b", l.B)
	b = appendAttr(b, "transport", l.Transport)
	b = appendAttr(b, "state", l.State)
	b = appendAttr(b, "monitor", l.Monitor)
	b = appendFloatAttr(b, "rtt", l.RTT)
	b = appendFloatAttr(b, "jitter", l.Jitter)
	b = appendFloatAttr(b, "loss", l.Loss)
	b = appendUintAttr(b, "dropped", l.Dropped)

	s := &l.Latency
	b = append(b, "><latency"...)
	b = appendFloatAttr(b, "min", s.Min)
	b = appendFloatAttr(b, "mean", s.Mean)
	b = appendFloatAttr(b, "p50", s.P50)
	b = appendFloatAttr(b, "p90", s.P90)
	b = appendFloatAttr(b, "p99", s.P99)
	b = appendFloatAttr(b, "max", s.Max)

	n := &l.Samples
	b = append(b, "/><samples"...)
	b = appendUintAttr(b, "sent", n.Sent)
	b = appendUintAttr(b, "received", n.Received)
	b = appendUintAttr(b, "lost", n.Lost)
	b = append(b, ` window="`...)
	b = strconv.AppendInt(b, int64(n.Window), 10)
	b = append(b, '"')
	b = appendUintAttr(b, "reordered", n.Reordered)
	b = appendUintAttr(b, "duplicated", n.Duplicated)
	b = append(b, "/>"...)

	for _, c := range l.Costs {
		b = append(b, "<cost"...)
		b = appendAttr(b, "profile", c.Profile)
		b = appendFloatAttr(b, "value", c.Value)
		b = append(b, "/>"...)
	}
	b = appendHistogram(b, &l.Histogram, bounds)
	return append(b, "</link>\n"...)
}

// appendHistogram writes the non-empty buckets, or nothing when there are
// none and nothing is missing.
func appendHistogram(b []byte, h *Histogram, bounds *boundCache) []byte {
	first := 0
	for first < len(h.Buckets) && h.Buckets[first].Count == 0 {
		first++
	}
	if h.Missing == 0 && first == len(h.Buckets) {
		return b
	}
	b = append(b, "<histogram"...)
	b = appendFloatAttr(b, "missing", h.Missing)
	if first == len(h.Buckets) {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for _, k := range h.Buckets[first:] {
		if k.Count == 0 {
			continue
		}
		b = append(b, `<bucket le="`...)
		b = bounds.append(b, k.LE)
		b = append(b, '"')
		b = appendFloatAttr(b, "count", k.Count)
		b = append(b, "/>"...)
	}
	return append(b, "</histogram>"...)
}

// boundCache remembers how bucket bounds were written. The monitor's
// histograms share one set of bounds, each written in up to 17 digits on
// every link, and formatting them took a fifth of a document's time.
// Direct-mapped: a bound hashes to one slot, which holds the last bound
// written there.
type boundCache struct {
	bits [64]uint64
	text [64][24]byte
	n    [64]uint8 // 0: empty
}

func (c *boundCache) append(b []byte, v float64) []byte {
	bits := math.Float64bits(v)
	i := bits * 0x9E3779B97F4A7C15 >> 58
	if c.n[i] != 0 && c.bits[i] == bits {
		return append(b, c.text[i][:c.n[i]]...)
	}
	start := len(b)
	b = appendFloat(b, v)
	if n := len(b) - start; n <= len(c.text[i]) {
		c.bits[i], c.n[i] = bits, uint8(n)
		copy(c.text[i][:], b[start:])
	}
	return b
}

func appendAttr(b []byte, name, v string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, v)
	return append(b, '"')
}

func appendUintAttr(b []byte, name string, v uint64) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, '"')
}

func appendFloatAttr(b []byte, name string, v float64) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendFloat(b, v)
	return append(b, '"')
}

func appendTimeAttr(b []byte, name string, t time.Time) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendFloat writes v as xs:double: the shortest decimal that reads back
// as v, without an exponent (XPath 1.0 reads none), and INF, -INF or NaN.
// Whole numbers below 2^53, such as histogram counts, take a shortcut.
// Negative zero is written 0.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v >= 0 && v < 1<<53 && v == math.Trunc(v): // -0 too, as 0
		return strconv.AppendUint(b, uint64(v), 10)
	case math.IsInf(v, 1):
		return append(b, "INF"...)
	case math.IsInf(v, -1):
		return append(b, "-INF"...)
	case v != v:
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendMs writes d in milliseconds as an exact xs:decimal: up to six
// fraction digits, none when d is a whole number of milliseconds.
func appendMs(b []byte, d time.Duration) []byte {
	u := uint64(d)
	if d < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/1e6, 10)
	frac := u % 1e6
	if frac == 0 {
		return b
	}
	var digits [7]byte
	n := len(digits)
	for i := 0; i < 6; i++ {
		n--
		digits[n] = byte('0' + frac%10)
		frac /= 10
	}
	end := len(digits)
	for digits[end-1] == '0' {
		end--
	}
	digits[0] = '.'
	return append(b, digits[:end]...)
}

// appendEscaped writes s as attribute text: the five predefined entities
// for & < > " ', character references for tab, newline and carriage return
// (which attribute-value normalization would otherwise turn into spaces),
// and U+FFFD for what XML 1.0 cannot carry at all (other control
// characters, U+FFFE, U+FFFF and bytes that are not UTF-8), which Validate
// rejects.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		n := 1
		switch {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			n = size
			if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
				esc = "\uFFFD"
			}
		case c >= 0x20 && c != '&' && c != '<' && c != '>' && c != '"' && c != '\'':
		default:
			esc = escapes[c]
		}
		if esc != "" {
			b = append(b, s[last:i]...)
			b = append(b, esc...)
			last = i + n
		}
		i += n
	}
	return append(b, s[last:]...)
}

// escapes holds the replacement of each ASCII byte appendEscaped escapes.
var escapes = func() (e [utf8.RuneSelf]string) {
	for c := range 0x20 {
		e[c] = "\uFFFD"
	}
	e['\t'], e['\n'], e['\r'] = "&#9;", "&#10;", "&#13;"
	e['&'], e['<'], e['>'], e['"'], e['\''] = "&amp;", "&lt;", "&gt;", "&quot;", "&apos;"
	return e
}()

// The lexical forms DecodeReport accepts: those of the XSD types, without
// the surrounding whitespace XSD would collapse and without signs on
// integers (xmllint, the validator the tests run, rejects both for
// xs:unsignedLong), and without xs:double's "1e" (no exponent digits),
// which libxml2 takes and XSD does not.

// pow10 holds the powers of ten that a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

var errNotDouble = errors.New("not an xs:double")

// parseDouble parses xs:double: INF, -INF, NaN or a decimal with an
// optional exponent. Magnitudes beyond float64 become ±Inf.
//
// A decimal of at most 15 or so digits and no exponent, which is what
// AppendXML writes for delays, is the quotient of two exactly represented
// numbers, so one correctly rounded division gives the correctly rounded
// value; anything else goes to strconv.ParseFloat.
func parseDouble(s string) (float64, error) {
	switch s {
	case "INF":
		return math.Inf(1), nil
	case "-INF":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg, i = s[0] == '-', 1
	}
	var mant uint64 // wraps beyond 19 digits, and is then not used
	start := i
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		mant = mant*10 + uint64(s[i]-'0')
	}
	digits, frac := i-start, 0
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			mant = mant*10 + uint64(s[i]-'0')
		}
		frac = i - start
		digits += frac
	}
	if digits == 0 {
		return 0, errNotDouble
	}
	if i == len(s) && digits <= 19 && mant < 1<<53 && frac < len(pow10) {
		v := float64(mant) / pow10[frac]
		if neg {
			v = -v
		}
		return v, nil
	}
	if i < len(s) { // only an exponent may follow
		if s[i] != 'e' && s[i] != 'E' {
			return 0, errNotDouble
		}
		if i++; i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) {
			return 0, errNotDouble
		}
		for ; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, errNotDouble
			}
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errNotDouble
	}
	return v, nil
}

// parseCount parses xs:unsignedLong as decimal digits, leading zeros allowed.
func parseCount(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("not an xs:unsignedLong")
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			if c == '-' && i == 0 {
				return 0, errors.New("negative")
			}
			return 0, errors.New("not an xs:unsignedLong")
		}
		if n > math.MaxUint64/10 || n*10 > math.MaxUint64-uint64(c-'0') {
			return 0, errors.New("more than 18446744073709551615")
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

// parseIntervalMs parses a positive xs:decimal count of milliseconds with
// at most 6 significant fraction digits (nanoseconds), no more than the
// largest time.Duration.
func parseIntervalMs(s string) (time.Duration, error) {
	bad := errors.New("not an xs:decimal")
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("negative")
	}
	s = strings.TrimPrefix(s, "+")
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" || strings.Count(s, ".") > 1 {
		return 0, bad
	}
	fp = strings.TrimRight(fp, "0")
	if len(fp) > 6 {
		return 0, errors.New("finer than a nanosecond")
	}
	var ms uint64
	if ip != "" {
		var err error
		if ms, err = parseCount(ip); err != nil {
			return 0, bad
		}
	}
	var ns uint64
	for i := range 6 {
		ns *= 10
		if i < len(fp) {
			if fp[i] < '0' || fp[i] > '9' {
				return 0, bad
			}
			ns += uint64(fp[i] - '0')
		}
	}
	if ms > math.MaxInt64/1_000_000 || ms*1e6 > math.MaxInt64-ns {
		return 0, errors.New("longer than the longest time.Duration")
	}
	d := time.Duration(ms*1e6 + ns)
	if d == 0 {
		return 0, errors.New("zero")
	}
	return d, nil
}

// parseTime parses the xs:dateTime subset of perf-report.xsd's Time:
// YYYY-MM-DDThh:mm:ss, optional fraction digits (beyond nanoseconds they
// are dropped), and Z or an offset of at most 14 hours. The result is UTC.
func parseTime(s string) (time.Time, error) {
	bad := func(what string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%q is not a time: %s (want RFC 3339 with a zone)", s, what)
	}
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return bad("layout")
	}
	y, ok1 := digits(s[0:4])
	mo, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	h, ok4 := digits(s[11:13])
	mi, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return bad("digits")
	}
	if y < 1 || mo < 1 || mo > 12 || d < 1 || d > time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() ||
		h > 23 || mi > 59 || sec > 59 {
		return bad("out of range")
	}
	rest, ns := s[19:], 0
	if strings.HasPrefix(rest, ".") {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			if n <= 9 {
				ns = ns*10 + int(rest[n]-'0')
			}
			n++
		}
		if n == 1 {
			return bad("fraction")
		}
		for k := n; k <= 9; k++ {
			ns *= 10
		}
		rest = rest[n:]
	}
	var off int
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || om > 59 || oh > 14 || oh == 14 && om != 0 {
			return bad("zone")
		}
		if off = (oh*60 + om) * 60; rest[0] == '-' {
			off = -off
		}
	default:
		return bad("zone")
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC).Add(-time.Duration(off) * time.Second)
	if err := checkTime(t); err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", s, err)
	}
	return t, nil
}

// digits parses a short run of decimal digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
