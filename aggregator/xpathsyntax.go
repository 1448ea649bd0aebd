package aggregator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkSyntax reads q against XPath 1.0's grammar and says what is wrong
// with it, where: the XPath package's own parser answers most syntax
// errors with "expression must evaluate to a node-set", which hides the
// mistake, and takes some (a stray "]") without a word. Outcomes: nil for
// a query that parses; an error naming the first problem and its
// character (from 1). Whether its functions exist is left to the XPath
// package.
func checkSyntax(q string) error {
	toks, err := xpTokens(q)
	if err != nil {
		return err
	}
	p := &xpParser{toks: toks}
	if err := p.expr(); err != nil {
		return err
	}
	if t := p.peek(); t.kind != xpEnd {
		return fmt.Errorf("unexpected %s at character %d", t, t.pos)
	}
	return nil
}

type xpKind uint8

const (
	xpEnd    xpKind = iota
	xpName          // a name, with its prefix if any
	xpNumber        // 12, 0.5, .5
	xpString        // 'a' or "a"
	xpVar           // $name
	xpOp            // punctuation and operators
)

type xpToken struct {
	kind xpKind
	v    string
	pos  int // its first character, from 1
}

func (t xpToken) String() string {
	if t.kind == xpEnd {
		return "end of the query"
	}
	return fmt.Sprintf("%q", t.v)
}

// xpOps are the operators and punctuation, longest first.
var xpOps = []string{"//", "::", "..", "!=", "<=", ">=", "/", "|", "+", "-", "=", "<", ">", "*", "(", ")", "[", "]", ".", "@", ","}

// xpTokens splits q into tokens, ending with an xpEnd.
func xpTokens(q string) ([]xpToken, error) {
	var toks []xpToken
	chars := 0 // characters before i
	for i := 0; i < len(q); {
		r, size := utf8.DecodeRuneInString(q[i:])
		pos := chars + 1
		start := i
		switch {
		case unicode.IsSpace(r):
			i += size
		case r == '\'' || r == '"':
			end := strings.IndexRune(q[i+1:], r)
			if end < 0 {
				return nil, fmt.Errorf("the string at character %d is not closed", pos)
			}
			i += end + 2
			toks = append(toks, xpToken{xpString, q[start:i], pos})
		case r >= '0' && r <= '9' || r == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			i += size
			for i < len(q) && (q[i] >= '0' && q[i] <= '9' || q[i] == '.') {
				i++
			}
			toks = append(toks, xpToken{xpNumber, q[start:i], pos})
		case r == '$':
			i += size
			n := nameLen(q[i:])
			if n == 0 {
				return nil, fmt.Errorf("a variable name must follow '$' at character %d", pos)
			}
			i += n
			toks = append(toks, xpToken{xpVar, q[start:i], pos})
		case isNameStart(r):
			i += nameLen(q[i:])
			toks = append(toks, xpToken{xpName, q[start:i], pos})
		default:
			op := ""
			for _, o := range xpOps {
				if strings.HasPrefix(q[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected character %q at character %d", r, pos)
			}
			i += len(op)
			toks = append(toks, xpToken{xpOp, op, pos})
		}
		chars += utf8.RuneCountInString(q[start:i])
	}
	return append(toks, xpToken{kind: xpEnd, pos: chars + 1}), nil
}

func isNameStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

// nameLen is the length of the name (an NCName, or prefix:local) at the
// start of s; 0 when none.
func nameLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		inName := isNameStart(r) || n > 0 && (unicode.IsDigit(r) || r == '-' || r == '.')
		// A prefix's colon, but not the axis's "::".
		if r == ':' && n > 0 && n+1 < len(s) && s[n+1] != ':' && isNameStart(rune(s[n+1])) {
			inName = true
		}
		if !inName {
			break
		}
		n += size
	}
	return n
}

// xpParser is a recursive descent over XPath 1.0's grammar that only
// checks; open holds the brackets not yet closed.
type xpParser struct {
	toks []xpToken
	i    int
	open []xpToken
}

func (p *xpParser) peek() xpToken { return p.toks[p.i] }

func (p *xpParser) peekAt(k int) xpToken { return p.toks[min(p.i+k, len(p.toks)-1)] }

func (p *xpParser) next() xpToken {
	t := p.toks[p.i]
	if t.kind != xpEnd {
		p.i++
	}
	return t
}

func (p *xpParser) at(op string) bool { t := p.peek(); return t.kind == xpOp && t.v == op }

// missing is the error for a query that lacks what must come next, what,
// after the token before.
func (p *xpParser) missing(what string) error {
	t := p.peek()
	if p.i == 0 {
		return fmt.Errorf("unexpected %s at character %d: the query must start with %s", t, t.pos, what)
	}
	prev := p.toks[p.i-1]
	if t.kind != xpEnd {
		return fmt.Errorf("unexpected %s at character %d: %s must follow %s", t, t.pos, what, prev)
	}
	n := len(p.open)
	if n > 0 && p.open[n-1] == prev {
		return fmt.Errorf("%s at character %d is not closed", prev, prev.pos)
	}
	msg := fmt.Sprintf("the query ends early: %s must follow %s", what, prev)
	if n > 0 {
		msg += fmt.Sprintf(", and %s at character %d is not closed", p.open[n-1], p.open[n-1].pos)
	}
	return errors.New(msg)
}

// closing consumes the bracket that closes the last one opened.
func (p *xpParser) closing(want string) error {
	o := p.open[len(p.open)-1]
	if !p.at(want) {
		t := p.peek()
		if t.kind == xpEnd {
			return fmt.Errorf("%s at character %d is not closed", o, o.pos)
		}
		return fmt.Errorf("unexpected %s at character %d: %s at character %d is not closed", t, t.pos, o, o.pos)
	}
	p.next()
	p.open = p.open[:len(p.open)-1]
	return nil
}

// binaryOps are the binary operators by precedence, loosest first.
var binaryOps = [][]string{{"or"}, {"and"}, {"=", "!="}, {"<", "<=", ">", ">="}, {"+", "-"}, {"*", "div", "mod"}}

func (p *xpParser) expr() error { return p.binary(0) }

func (p *xpParser) binary(level int) error {
	if level == len(binaryOps) {
		return p.unary()
	}
	if err := p.binary(level + 1); err != nil {
		return err
	}
	for {
		t := p.peek()
		// After an operand, a name of an operator is that operator.
		if (t.kind != xpOp && t.kind != xpName) || !slices.Contains(binaryOps[level], t.v) {
			return nil
		}
		p.next()
		if err := p.binary(level + 1); err != nil {
			return err
		}
	}
}

func (p *xpParser) unary() error {
	for p.at("-") {
		p.next()
	}
	if err := p.path(); err != nil {
		return err
	}
	for p.at("|") {
		p.next()
		if err := p.path(); err != nil {
			return err
		}
	}
	return nil
}

// nodeTypes are the node tests written like functions.
var nodeTypes = []string{"node", "text", "comment", "processing-instruction"}

// startsPrimary: a variable, literal, number, parenthesis or function
// call.
func (p *xpParser) startsPrimary() bool {
	t := p.peek()
	switch t.kind {
	case xpVar, xpString, xpNumber:
		return true
	case xpName:
		n := p.peekAt(1)
		return n.kind == xpOp && n.v == "(" && !slices.Contains(nodeTypes, t.v)
	}
	return p.at("(")
}

func (p *xpParser) startsStep() bool {
	t := p.peek()
	return t.kind == xpName || t.kind == xpOp && (t.v == "*" || t.v == "@" || t.v == "." || t.v == "..")
}

func (p *xpParser) path() error {
	switch {
	case p.at("/"):
		p.next()
		if !p.startsStep() {
			return nil // the root alone
		}
	case p.at("//"):
		p.next()
		if !p.startsStep() {
			return p.missing("a step")
		}
	case p.startsPrimary():
		if err := p.primary(); err != nil {
			return err
		}
		if err := p.predicates(); err != nil {
			return err
		}
		if more, err := p.moreSteps(); !more {
			return err
		}
	case !p.startsStep():
		return p.missing("an expression")
	}
	for {
		if err := p.step(); err != nil {
			return err
		}
		if more, err := p.moreSteps(); !more {
			return err
		}
	}
}

// moreSteps consumes a "/" or "//" and says whether steps follow: none do
// when neither is next, and one must after either.
func (p *xpParser) moreSteps() (bool, error) {
	if !p.at("/") && !p.at("//") {
		return false, nil
	}
	p.next()
	if !p.startsStep() {
		return false, p.missing("a step")
	}
	return true, nil
}

func (p *xpParser) step() error {
	if p.at(".") || p.at("..") {
		p.next()
		return nil
	}
	if p.at("@") {
		p.next()
	} else if n := p.peekAt(1); p.peek().kind == xpName && n.kind == xpOp && n.v == "::" {
		p.next()
		p.next()
	}
	switch t := p.peek(); {
	case p.at("*"):
		p.next()
	case t.kind != xpName:
		return p.missing("a name or *")
	default:
		p.next()
		if slices.Contains(nodeTypes, t.v) && p.at("(") {
			p.open = append(p.open, p.next())
			if t.v == "processing-instruction" && p.peek().kind == xpString {
				p.next()
			}
			if err := p.closing(")"); err != nil {
				return err
			}
		}
	}
	return p.predicates()
}

func (p *xpParser) predicates() error {
	for p.at("[") {
		p.open = append(p.open, p.next())
		if err := p.expr(); err != nil {
			return err
		}
		if err := p.closing("]"); err != nil {
			return err
		}
	}
	return nil
}

func (p *xpParser) primary() error {
	t := p.next()
	if t.kind != xpName && !(t.kind == xpOp && t.v == "(") {
		return nil // a variable, literal or number
	}
	if t.kind == xpOp { // a parenthesised expression
		p.open = append(p.open, t)
		if err := p.expr(); err != nil {
			return err
		}
		return p.closing(")")
	}
	p.open = append(p.open, p.next()) // a function call's "("
	if !p.at(")") {
		for {
			if err := p.expr(); err != nil {
				return err
			}
			if !p.at(",") {
				break
			}
			p.next()
		}
	}
	return p.closing(")")
}
