package aggregator

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/antchfx/xpath"

	"github.com/wayline/wayline/schema"
)

// ErrBadQuery wraps the XPath parser's complaint about a query.
var ErrBadQuery = errors.New("bad XPath query")

// ErrQueryLimit is returned when a query runs past its time limit.
var ErrQueryLimit = errors.New("query cut off")

// maxQueryLen bounds the text of a query.
const maxQueryLen = 4096

// Compile checks and compiles an XPath expression. Outcomes: the
// expression, or an error wrapping ErrBadQuery that names the syntax
// error and its place (see checkSyntax), or else the parser's message.
// Unlike xmlquery.Find it never panics on a bad expression.
//
// A compiled expression keeps state while it runs, so one must not be
// evaluated by two goroutines at once: compiling is cheap, and each query
// compiles its own.
func Compile(q string) (expr *xpath.Expr, err error) {
	if q == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadQuery)
	}
	if len(q) > maxQueryLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadQuery, maxQueryLen)
	}
	if err := checkSyntax(q); err != nil {
		return nil, fmt.Errorf("%w: syntax error: %v", ErrBadQuery, err)
	}
	defer func() {
		// The XPath package panics on some malformed input.
		if r := recover(); r != nil {
			expr, err = nil, fmt.Errorf("%w: %v", ErrBadQuery, r)
		}
	}()
	if _, err := xpath.Compile(q); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadQuery, err)
	}
	e, err := xpath.Compile(descendantSteps(q))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadQuery, err)
	}
	return e, nil
}

// descendantSteps rewrites "//name[condition]" and "//name" as
// "/descendant::name[condition]" and "/descendant::name" wherever the two
// are the same: the step has no predicate, or one that is a comparison
// that uses neither position() nor last(). Both select the matching
// elements below the context, in document order, but the XPath package
// runs the first form as a child step from every node of the document,
// several times slower (it takes any predicate holding a number for a
// positional one, and without a predicate visits each node twice).
func descendantSteps(q string) string {
	var out []byte
	last := 0
	for i := 0; i+1 < len(q); i++ {
		switch q[i] {
		case '\'', '"':
			if j := strings.IndexByte(q[i+1:], q[i]); j >= 0 {
				i += j + 1
				continue
			}
			return q
		case '/':
			if q[i+1] != '/' {
				continue
			}
			if rewritable(q[i+2:]) {
				out = append(out, q[last:i]...)
				out = append(out, "/descendant::"...)
				last = i + 2
			}
			i++
		}
	}
	if out == nil {
		return q
	}
	return string(append(out, q[last:]...))
}

// rewritable reports whether s, which follows "//", starts with a name
// test and one predicate that is not positional.
func rewritable(s string) bool {
	i := skipSpace(s, 0)
	j := i
	for j < len(s) && (s[j] == '*' || s[j] == '_' || s[j] == '-' || s[j] == '.' ||
		'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9') {
		j++
	}
	if j == i || s[i] == '.' || s[i] == '-' || ('0' <= s[i] && s[i] <= '9') {
		return false
	}
	if s[i] == '*' && j != i+1 {
		return false
	}
	j = skipSpace(s, j)
	switch {
	case j >= len(s):
		return true
	case s[j] == '(' || strings.HasPrefix(s[j:], "::"): // a node test or an axis
		return false
	case s[j] != '[':
		return true // no predicate: the two forms are the same
	}
	end, compare := predicateEnd(s, j)
	if end < 0 || !compare {
		return false
	}
	pred := s[j+1 : end]
	if positionCall.MatchString(pred) {
		return false
	}
	k := skipSpace(s, end+1)
	return k >= len(s) || s[k] != '['
}

var positionCall = regexp.MustCompile(`(position|last)\s*\(`)

// predicateEnd finds the "]" closing the predicate opened at s[open], and
// whether the predicate holds a comparison outside parentheses and nested
// predicates, which makes its value a boolean. It returns -1 when the
// predicate does not close.
func predicateEnd(s string, open int) (end int, compare bool) {
	depth := 0
	for i := open + 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return -1, false
			}
			i += j + 1
		case '(', '[':
			depth++
		case ')':
			depth--
		case ']':
			if depth == 0 {
				return i, compare
			}
			depth--
		case '=', '<', '>':
			if depth == 0 {
				compare = true
			}
		}
	}
	return -1, false
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// Result is the answer to a query: nodes, or a single value (a count, a
// sum, a boolean, a string).
type Result struct {
	Nodes     []Node
	Value     any // float64, bool or string when the query is not a node set
	Truncated bool
}

// Node is an element or an attribute a query found.
type Node struct{ n nav }

// Name is the node's name: an element's or an attribute's.
func (n Node) Name() string { return n.n.LocalName() }

// IsAttribute reports whether the node is an attribute.
func (n Node) IsAttribute() bool { return n.n.a >= 0 }

// Value is an attribute's value; "" for an element.
func (n Node) Value() string { return n.n.Value() }

// LinkID is the id of the link the node is in, or "" for a node above
// links.
func (n Node) LinkID() string { return n.n.LinkID() }

// ReportedBy is the broker that reported the link the node is in, and
// the time of that report (RFC 3339); "" for a node above links.
func (n Node) ReportedBy() (broker, at string) { return n.n.ReportedBy() }

// Evaluate runs a compiled expression on a view, stopping after max nodes
// or when ctx ends, wherever the engine is: its navigators look at ctx as
// they move. Outcomes: the result; an error wrapping ErrQueryLimit when
// ctx ended (the time ran out, or the client went away); ErrBadQuery for
// an expression the engine refuses at run time.
func Evaluate(ctx context.Context, v *view, expr *xpath.Expr, max int) (res Result, err error) {
	defer func() {
		switch r := recover().(type) {
		case nil:
		case stopped:
			res, err = Result{}, fmt.Errorf("%w: %w", ErrQueryLimit, r.err)
		default:
			err = fmt.Errorf("%w: %v", ErrBadQuery, r)
		}
	}()
	v.ctx, v.steps = ctx, 0
	defer func() { v.ctx = nil }()
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrQueryLimit, err)
	}
	val := expr.Evaluate(newNav(v))
	it, ok := val.(*xpath.NodeIterator)
	if !ok {
		return Result{Value: val}, nil
	}
	for i := 0; it.MoveNext(); i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("%w after %d nodes: %w", ErrQueryLimit, len(res.Nodes), err)
			}
		}
		if len(res.Nodes) >= max {
			res.Truncated = true
			break
		}
		res.Nodes = append(res.Nodes, Node{*it.Current().(*nav)})
	}
	return res, nil
}

// Query answers an XPath query on the latest view, or on stored history
// when from is not zero (to defaults to now).
func (a *Aggregator) Query(ctx context.Context, q string, from, to time.Time) (res Result, err error) {
	defer func() {
		if errors.Is(err, ErrQueryLimit) {
			a.stats.QueriesCut.Add(1)
		}
	}()
	expr, err := Compile(q)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	var v *view
	if from.IsZero() {
		v = latestView(a.Latest(), time.Now()).withContracts(a)
	} else {
		if to.IsZero() {
			to = time.Now()
		}
		return a.queryHistory(ctx, q, expr, from, to)
	}
	return Evaluate(ctx, v, expr, a.cfg.QueryMaxResults)
}

// queryHistory answers a query on the history of [from, to): on a view
// without the measurements' details when the query does not read them,
// and again with them if elements come back, which are written whole.
func (a *Aggregator) queryHistory(ctx context.Context, q string, expr *xpath.Expr, from, to time.Time) (Result, error) {
	rd := queryReads(q)
	for {
		start := time.Now()
		v, err := a.historyView(ctx, from, to, rd)
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, fmt.Errorf("%w: %w", ErrQueryLimit, err)
			}
			return Result{}, err
		}
		read := time.Since(start)
		res, split, err := evaluateSplit(ctx, v, q, a.cfg.QueryMaxResults, runtime.GOMAXPROCS(0))
		if !split {
			res, err = Evaluate(ctx, v, expr, a.cfg.QueryMaxResults)
		}
		a.log.Debug("history query", slog.String("query", q), slog.Duration("read", read),
			slog.Duration("evaluated", time.Since(start)-read), slog.Bool("detail", rd.detail), slog.Bool("in parts", split))
		if err != nil || rd.detail || !res.hasElements() {
			return res, err
		}
		rd = allReads
	}
}

// hasElements reports whether the result holds an element.
func (r Result) hasElements() bool {
	for _, n := range r.Nodes {
		if !n.IsAttribute() {
			return true
		}
	}
	return false
}

// QueryReports answers an XPath query on reports, as the latest view
// shows them (in the order given, at time at), stopping after max nodes.
func QueryReports(ctx context.Context, reports []schema.Report, at time.Time, q string, max int) (Result, error) {
	expr, err := Compile(q)
	if err != nil {
		return Result{}, err
	}
	return Evaluate(ctx, latestView(reports, at), expr, max)
}

// AppendXML writes a result as a document: <results query=".." count=".."
// truncated="..">, holding the elements found, whole, and the attributes
// found as <attribute name=".." value=".."/>; or, for a value, <results
// query=".." type="number|boolean|string"> holding it as text.
func (r Result) AppendXML(b []byte, q string) []byte {
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"...)
	b = append(b, `<results query="`...)
	b = appendXMLEscaped(b, q)
	if r.Nodes == nil && r.Value != nil {
		kind := "string"
		switch r.Value.(type) {
		case float64:
			kind = "number"
		case bool:
			kind = "boolean"
		}
		b = append(b, `" type="`...)
		b = append(b, kind...)
		b = append(b, `">`...)
		b = appendXMLEscaped(b, valueText(r.Value))
		return append(b, "</results>\n"...)
	}
	b = append(b, `" count="`...)
	b = strconv.AppendInt(b, int64(len(r.Nodes)), 10)
	b = append(b, `" truncated="`...)
	b = strconv.AppendBool(b, r.Truncated)
	b = append(b, "\">\n"...)
	for _, n := range r.Nodes {
		if n.IsAttribute() {
			b = append(b, `<attribute name="`...)
			b = appendXMLEscaped(b, n.Name())
			b = append(b, `" value="`...)
			b = appendXMLEscaped(b, n.Value())
			b = append(b, "\"/>\n"...)
			continue
		}
		b = appendElement(b, n.n)
		b = append(b, '\n')
	}
	return append(b, "</results>\n"...)
}

// appendElement writes the element n is on, with its attributes and
// descendants; the document node writes its one child.
func appendElement(b []byte, n nav) []byte {
	if n.k == kDoc {
		n.MoveToChild()
	}
	b = append(b, '<')
	b = append(b, n.LocalName()...)
	for a := n; a.MoveToNextAttribute(); {
		b = append(b, ' ')
		b = append(b, a.LocalName()...)
		b = append(b, `="`...)
		b = appendXMLEscaped(b, a.Value())
		b = append(b, '"')
	}
	c := n
	if !c.MoveToChild() {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	for {
		b = appendElement(b, c)
		if !c.MoveToNext() {
			break
		}
	}
	b = append(b, "</"...)
	b = append(b, n.LocalName()...)
	return append(b, '>')
}

// appendXMLEscaped writes s as XML text or attribute value.
func appendXMLEscaped(b []byte, s string) []byte {
	var buf bytes.Buffer
	if err := xml.EscapeText(&buf, []byte(s)); err != nil {
		return append(b, html.EscapeString(s)...)
	}
	return append(b, buf.Bytes()...)
}

func valueText(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
