package aggregator

import (
	"context"
	"strings"
	"sync"
)

// A query over hours of history walks hundreds of thousands of samples,
// one node at a time, on one core. Many queries look at each link on its
// own: "//link[sample/@loss > 0.15]/@id", "count(//sample)",
// "sum(//sample/samples/@lost)". Their answer on a view is the answers on
// parts of it, each holding some of its brokers whole and in order, put
// end to end (node sets) or added up (count, sum); those parts are
// evaluated at once, one a core.

// split is how a query's answers on parts of a view make its answer.
type split uint8

const (
	splitNone  split = iota // they do not: the query runs on the view whole
	splitNodes              // node sets, end to end
	splitSum                // numbers, added (count and sum)
)

// belowBrokers are the elements whose every node has a broker above it.
var belowBrokers = map[string]bool{
	"link": true, "sample": true, "latency": true, "samples": true, "cost": true, "histogram": true, "bucket": true, "contract": true,
}

// offAxes are the axes that leave a node's subtree.
var offAxes = map[string]bool{
	"ancestor": true, "ancestor-or-self": true, "parent": true, "preceding": true, "preceding-sibling": true,
	"following": true, "following-sibling": true, "namespace": true,
}

// splitOf says how query q splits: only "//name…", "count(//name…)" and
// "sum(//name…)" do, where name is an element below brokers (so that a
// predicate on its position counts among its siblings, which share a
// broker) and what follows is a path that stays in each node's subtree:
// no axis that leaves it, no "..", no absolute path, no id(), no
// variable, no wildcard, no union and no operator outside predicates.
func splitOf(q string) split {
	s := strings.TrimSpace(q)
	kind := splitNodes
	for _, f := range []string{"count", "sum"} {
		if !strings.HasPrefix(s, f) {
			continue
		}
		rest := strings.TrimSpace(s[len(f):])
		if !strings.HasPrefix(rest, "(") || closing(rest, 0) != len(rest)-1 {
			return splitNone
		}
		s, kind = strings.TrimSpace(rest[1:len(rest)-1]), splitSum
		break
	}
	if !strings.HasPrefix(s, "//") {
		return splitNone
	}
	i := 2
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	if !belowBrokers[s[2:i]] {
		return splitNone
	}
	depth := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			if i = quoteEnd(s, i); i < 0 {
				return splitNone
			}
		case c == '[':
			end, compare := predicateEnd(s, i)
			if end < 0 || !boolPredicate(s[i+1:end], compare) {
				return splitNone
			}
			depth++
		case c == '(':
			depth++
		case c == ']' || c == ')':
			depth--
			if depth < 0 {
				return splitNone
			}
		case c == '$' || c == '|' || c == '*':
			return splitNone
		case c == '.' && i+1 < len(s) && s[i+1] == '.':
			return splitNone
		case c == '/':
			// A step of a path that goes on; not the start of one
			// from the root.
			j := i - 1
			for j >= 0 && isSpace(s[j]) {
				j--
			}
			if j < 0 || !(isNameChar(s[j]) || s[j] == '.' || s[j] == ']' || s[j] == ')' || s[j] == '/' && j == i-1) {
				return splitNone
			}
		case isNameChar(c) && (i == 0 || !isNameChar(s[i-1])):
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name, next := s[i:j], strings.TrimLeft(s[j:], " \t\r\n")
			if strings.HasPrefix(next, "::") && offAxes[name] || strings.HasPrefix(next, "(") && name == "id" {
				return splitNone
			}
			i = j - 1
		case depth == 0 && !(c == '@' || c == ':'):
			return splitNone // an operator or a space between steps
		}
	}
	if depth != 0 {
		return splitNone
	}
	return kind
}

// boolPredicate reports whether a predicate is sure to be a boolean
// (compare: it holds a comparison outside parentheses and predicates): a
// comparison without position() or last(), a path, or a call of a
// boolean function. A number would be a position, which the XPath
// package does not always count among siblings alone.
func boolPredicate(pred string, compare bool) bool {
	pred = strings.TrimSpace(pred)
	switch {
	case pred == "":
		return false
	case compare:
		return !positionCall.MatchString(pred)
	}
	for _, f := range []string{"not", "contains", "starts-with", "boolean", "lang"} {
		if rest := strings.TrimPrefix(pred, f); rest != pred {
			rest = strings.TrimLeft(rest, " \t\r\n")
			open := len(pred) - len(rest)
			return strings.HasPrefix(rest, "(") && closing(pred, open) == len(pred)-1 && !positionCall.MatchString(pred)
		}
	}
	// A path: steps of names, and predicates (checked on their own).
	if c := pred[0]; '0' <= c && c <= '9' || c == '.' && len(pred) > 1 && '0' <= pred[1] && pred[1] <= '9' {
		return false
	}
	depth := 0
	for i := 0; i < len(pred); i++ {
		switch c := pred[i]; {
		case c == '\'' || c == '"':
			if i = quoteEnd(pred, i); i < 0 {
				return false
			}
		case c == '[':
			depth++
		case c == ']':
			depth--
		case depth == 0 && !(isNameChar(c) || c == '/' || c == '@' || c == ':'):
			return false
		}
	}
	return true
}

// closing is the index of the parenthesis that closes the one at open,
// or -1.
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			if i = quoteEnd(s, i); i < 0 {
				return -1
			}
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// quoteEnd is the index of the quote that closes the string literal
// opening at s[open], or -1.
func quoteEnd(s string, open int) int {
	end := strings.IndexByte(s[open+1:], s[open])
	if end < 0 {
		return -1
	}
	return open + 1 + end
}

func isNameChar(c byte) bool {
	return c == '_' || c == '-' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parts splits v into up to n views of its brokers, whole and in order,
// about alike in size.
func (v *view) parts(n int) []*view {
	size := func(b *vBroker) int {
		k := 1
		for _, l := range b.links {
			k += 1 + len(l.samples)
		}
		return k
	}
	total := 0
	for i := range v.brokers {
		total += size(&v.brokers[i])
	}
	var out []*view
	start, acc := 0, 0
	for i := range v.brokers {
		acc += size(&v.brokers[i])
		if len(out) < n-1 && acc*n >= total*(len(out)+1) {
			out = append(out, &view{attrs: v.attrs, brokers: v.brokers[start : i+1]})
			start = i + 1
		}
	}
	if start < len(v.brokers) || len(out) == 0 {
		out = append(out, &view{attrs: v.attrs, brokers: v.brokers[start:]})
	}
	return out
}

// evaluateSplit answers q on v in up to n parts at once, as Evaluate
// answers it on v whole, when q splits (see splitOf); ok is false when it
// does not. A sum may differ from the one of the whole in its last
// digits: its terms are added in another order.
func evaluateSplit(ctx context.Context, v *view, q string, max, n int) (res Result, ok bool, err error) {
	kind := splitOf(q)
	if kind == splitNone || n < 2 {
		return Result{}, false, nil
	}
	views := v.parts(n)
	if len(views) < 2 {
		return Result{}, false, nil
	}
	results := make([]Result, len(views))
	errs := make([]error, len(views))
	var wg sync.WaitGroup
	for i, pv := range views {
		wg.Go(func() {
			// A compiled expression keeps state as it runs: each
			// part compiles its own.
			expr, err := Compile(q)
			if err == nil {
				results[i], err = Evaluate(ctx, pv, expr, max)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Result{}, true, err
		}
	}
	if kind == splitSum {
		sum, okSum := 0.0, true
		for _, r := range results {
			f, isNum := r.Value.(float64)
			okSum = okSum && isNum && r.Nodes == nil
			sum += f
		}
		if !okSum { // not a number after all: answer it whole
			return Result{}, false, nil
		}
		return Result{Value: sum}, true, nil
	}
	for _, r := range results {
		if r.Value != nil {
			return Result{}, false, nil
		}
		for _, n := range r.Nodes {
			if len(res.Nodes) >= max {
				res.Truncated = true
				break
			}
			res.Nodes = append(res.Nodes, n)
		}
		res.Truncated = res.Truncated || r.Truncated
	}
	return res, true, nil
}
