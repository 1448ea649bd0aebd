package schema

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Limits bound what DecodeReport accepts, so that one report cannot make
// the aggregator spend unbounded memory or time. A zero field takes its
// default.
type Limits struct {
	// MaxBytes bounds the document's size; default DefaultMaxBytes. A
	// 1,000-link report with ten-bucket histograms takes about 1 MB.
	MaxBytes int
	// MaxLinks bounds the links of one report; default DefaultMaxLinks.
	MaxLinks int
}

// Defaults of Limits.
const (
	DefaultMaxBytes = 4 << 20
	DefaultMaxLinks = 100_000
)

// The errors of DecodeReport; check them with errors.Is.
var (
	// ErrTooLarge: the document exceeds Limits.
	ErrTooLarge = errors.New("report too large")
	// ErrForbidden: a DTD, an entity declaration, or a reference to an entity
	// other than the five predefined ones. Refused before anything expands.
	ErrForbidden = errors.New("forbidden XML (DTD or entity)")
	// ErrMalformed: not well-formed XML.
	ErrMalformed = errors.New("malformed XML")
	// ErrInvalid: well-formed, but not a valid report (see Report.Validate).
	ErrInvalid = errors.New("invalid report")
)

// DecodeReport parses a report document (see AppendXML) and checks it as
// Report.Validate would, so that a report it returns is valid and encodes
// back to an equivalent document. Zero-count histogram buckets are dropped
// (AppendXML writes none). Times come back in UTC.
//
// It reads the fixed report format with its own scanner rather than
// encoding/xml, which is several times slower, and checks well-formedness
// of everything it reads: characters, tags and their nesting, attribute
// quoting and uniqueness, references, comments and processing
// instructions. It returns an error wrapping
//   - ErrTooLarge when data is longer than limits.MaxBytes or holds more
//     than limits.MaxLinks links;
//   - ErrForbidden for <!DOCTYPE, <!ENTITY (and the other declarations) or
//     a reference to an undeclared entity;
//   - ErrMalformed when data is not well-formed XML;
//   - ErrInvalid when it is, but is not a valid report: an unknown, missing
//     or misplaced element or attribute, text where only elements belong, a
//     value outside its type (perf-report.xsd) or a fault Validate finds.
//
// Errors name the line and column (in bytes) where the fault was found. The
// first fault ends the decoding, whichever kind it is.
func DecodeReport(data []byte, limits Limits) (Report, error) {
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = DefaultMaxBytes
	}
	if limits.MaxLinks <= 0 {
		limits.MaxLinks = DefaultMaxLinks
	}
	if len(data) > limits.MaxBytes {
		return Report{}, fmt.Errorf("schema: decode report: %w: %d bytes, more than %d", ErrTooLarge, len(data), limits.MaxBytes)
	}
	// The scanner reads data as a string, so that values are substrings,
	// parsed without copying. Nothing refers to it once DecodeReport returns:
	// the strings a Report keeps are copied out (builder), and errors format
	// copies.
	s := unsafe.String(unsafe.SliceData(data), len(data))
	// AppendXML writes a link per line; no link takes less than minLinkBytes.
	links := min(bytes.Count(data, []byte{'\n'}), len(data)/minLinkBytes)
	d := decoder{s: s, b: newBuilder(limits, links, len(data))}
	if err := d.run(); err != nil {
		return Report{}, fmt.Errorf("schema: decode report: %w", err)
	}
	return d.b.r, nil
}

// decoder is the scanner: it reads markup and hands elements, their
// attributes and any character data to the builder, which knows the report.
type decoder struct {
	s     string
	pos   int  // the next byte to read
	tag   int  // where the markup being read began, for errors
	depth int  // open elements
	root  bool // the root element has begun
	attrs []attr
	buf   []byte // attribute values that needed unescaping
	b     builder
}

type attr struct{ name, value string }

func (d *decoder) run() error {
	if strings.HasPrefix(d.s, "\uFEFF") { // a byte order mark
		d.pos = len("\uFEFF")
	}
	if rest := d.s[d.pos:]; len(rest) > 5 && rest[:5] == "<?xml" && isSpace(rest[5]) {
		d.tag = d.pos
		if err := d.xmlDecl(); err != nil {
			return err
		}
	}
	for d.pos < len(d.s) {
		c := d.s[d.pos]
		switch {
		case c == '<':
			d.tag = d.pos
			if err := d.markup(); err != nil {
				return err
			}
		case isSpace(c):
			d.tag = d.pos
			d.skipSpace()
			if d.depth > 0 {
				if err := d.b.space(); err != nil {
					return d.at(d.tag, err)
				}
			}
		case d.depth == 0:
			return d.malformed(d.pos, "text outside the root element")
		default:
			return d.text()
		}
	}
	if d.depth > 0 {
		return d.malformed(d.pos, "the document ends inside an element")
	}
	if !d.root {
		return d.malformed(d.pos, "no root element")
	}
	return d.b.finish()
}

// text reports character data in an element: one character or reference
// is read, to tell a malformed or forbidden one from mere misplaced text.
func (d *decoder) text() error {
	d.tag = d.pos
	if d.s[d.pos] == '&' {
		if _, _, err := d.ref(d.pos); err != nil {
			return err
		}
	} else if err := d.checkChars(d.pos, d.pos+1); err != nil {
		return err
	}
	return d.at(d.tag, d.b.text())
}

// declarations are the DTD's markup declarations, all refused.
var declarations = []string{"DOCTYPE", "ENTITY", "ELEMENT", "ATTLIST", "NOTATION"}

func (d *decoder) markup() error {
	rest := d.s[d.pos:]
	switch {
	case strings.HasPrefix(rest, "<!--"):
		return d.comment()
	case strings.HasPrefix(rest, "<?"):
		return d.pi()
	case strings.HasPrefix(rest, "</"):
		return d.endTag()
	case strings.HasPrefix(rest, "<![CDATA["):
		end := strings.Index(rest, "]]>")
		switch {
		case d.depth == 0:
			return d.malformed(d.pos, "CDATA section outside the root element")
		case end < 0:
			return d.malformed(d.pos, "unterminated CDATA section")
		}
		if err := d.checkChars(d.pos+9, d.pos+end); err != nil {
			return err
		}
		return d.at(d.tag, d.b.text())
	case strings.HasPrefix(rest, "<!"):
		for _, kw := range declarations {
			if strings.HasPrefix(rest[2:], kw) {
				return d.at(d.pos, fmt.Errorf("%w: <!%s", ErrForbidden, kw))
			}
		}
		return d.malformed(d.pos, "unknown markup <!")
	}
	return d.startTag()
}

func (d *decoder) startTag() error {
	d.pos++
	name, err := d.name()
	if err != nil {
		return err
	}
	if d.depth == 0 && d.root {
		return d.malformed(d.tag, "a second root element <%.40s>", name)
	}
	d.root = true
	d.attrs = d.attrs[:0]
	for {
		spaced := d.skipSpace()
		if d.pos >= len(d.s) {
			return d.malformed(d.pos, "the document ends inside tag <%.40s>", name)
		}
		c := d.s[d.pos]
		if c == '>' {
			d.pos++
			break
		}
		if c == '/' {
			if !strings.HasPrefix(d.s[d.pos:], "/>") {
				return d.malformed(d.pos, "'/' not followed by '>' in tag <%.40s>", name)
			}
			d.pos += 2
			if err := d.b.start(name, d.attrs); err != nil {
				return d.at(d.tag, err)
			}
			return d.at(d.tag, d.b.end(name))
		}
		if !spaced {
			return d.malformed(d.pos, "no whitespace before an attribute in tag <%.40s>", name)
		}
		if err := d.attr(); err != nil {
			return err
		}
	}
	if err := d.b.start(name, d.attrs); err != nil {
		return d.at(d.tag, err)
	}
	d.depth++
	return nil
}

// attr reads name="value" (or with single quotes) into d.attrs.
func (d *decoder) attr() error {
	name, err := d.name()
	if err != nil {
		return err
	}
	if d.pos < len(d.s) && d.s[d.pos] == '=' {
		d.pos++
	} else if d.skipSpace(); d.pos < len(d.s) && d.s[d.pos] == '=' {
		d.pos++
	} else {
		return d.malformed(d.pos, "attribute %.40s lacks '='", name)
	}
	if d.pos < len(d.s) && d.s[d.pos] != '"' && d.s[d.pos] != '\'' {
		d.skipSpace()
	}
	if d.pos >= len(d.s) || d.s[d.pos] != '"' && d.s[d.pos] != '\'' {
		return d.malformed(d.pos, "the value of attribute %.40s is not quoted", name)
	}
	v, err := d.attrValue()
	if err != nil {
		return err
	}
	d.attrs = append(d.attrs, attr{name, v})
	return nil
}

// attrPlain marks the bytes an attribute value holds as they are: ASCII
// other than control characters, '<', '&' and the quotes.
var attrPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '<' && c != '&' && c != '"' && c != '\''
	}
	return t
}()

// attrValue reads a quoted value at d.pos and returns it normalized as XML
// requires: references replaced, and each literal tab, newline, carriage
// return or CR LF pair turned into one space.
func (d *decoder) attrValue() (string, error) {
	s, q := d.s, d.s[d.pos]
	start := d.pos + 1
	i := start
	for i < len(s) && attrPlain[s[i]] {
		i++
	}
	if i < len(s) && s[i] == q {
		d.pos = i + 1
		return s[start:i], nil
	}
	buf := append(d.buf[:0], s[start:i]...)
	for {
		if i >= len(s) {
			return "", d.malformed(start-1, "unterminated attribute value")
		}
		switch c := s[i]; {
		case c == q:
			d.buf, d.pos = buf, i+1
			return string(buf), nil
		case c == '<':
			return "", d.malformed(i, "'<' in an attribute value")
		case c == '&':
			r, next, err := d.ref(i)
			if err != nil {
				return "", err
			}
			buf, i = utf8.AppendRune(buf, r), next
		case c == '\r' && i+1 < len(s) && s[i+1] == '\n':
			buf, i = append(buf, ' '), i+2
		case c == '\t' || c == '\n' || c == '\r':
			buf, i = append(buf, ' '), i+1
		default:
			n, err := d.char(i)
			if err != nil {
				return "", err
			}
			buf, i = append(buf, s[i:i+n]...), i+n
		}
	}
}

// predefined are XML's five predefined entities.
var predefined = map[string]rune{"lt": '<', "gt": '>', "amp": '&', "apos": '\'', "quot": '"'}

// ref reads the reference at s[i] ('&') and returns its character and the
// index after it.
func (d *decoder) ref(i int) (rune, int, error) {
	s := d.s
	j := i + 1
	if j < len(s) && s[j] == '#' {
		j++
		base := 10
		if j < len(s) && s[j] == 'x' {
			base, j = 16, j+1
		}
		var r int64
		start := j
		for ; j < len(s) && s[j] != ';'; j++ {
			v := digitValue(s[j])
			if v >= base {
				return 0, 0, d.malformed(j, "bad character reference")
			}
			if r <= utf8.MaxRune {
				r = r*int64(base) + int64(v)
			}
		}
		if j == start || j >= len(s) {
			return 0, 0, d.malformed(i, "bad character reference")
		}
		if r > utf8.MaxRune || !isXMLChar(rune(r)) {
			return 0, 0, d.malformed(i, "character reference %.40s to a character XML cannot carry", s[i:j+1])
		}
		return rune(r), j + 1, nil
	}
	end := d.nameEnd(j)
	if end == j || end >= len(s) || s[end] != ';' {
		return 0, 0, d.malformed(i, "'&' that begins no reference (write &amp;)")
	}
	if r, ok := predefined[s[j:end]]; ok {
		return r, end + 1, nil
	}
	return 0, 0, d.at(i, fmt.Errorf("%w: reference to entity &%.40s;", ErrForbidden, s[j:end]))
}

// digitValue returns the value of a hexadecimal digit, or 16.
func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return 16
}

func (d *decoder) endTag() error {
	d.pos += 2
	name, err := d.name()
	if err != nil {
		return err
	}
	d.skipSpace()
	if d.pos >= len(d.s) || d.s[d.pos] != '>' {
		return d.malformed(d.pos, "end tag </%.40s> lacks '>'", name)
	}
	d.pos++
	if d.depth == 0 {
		return d.malformed(d.tag, "end tag </%.40s> outside any element", name)
	}
	d.depth--
	return d.at(d.tag, d.b.end(name))
}

func (d *decoder) comment() error {
	body := d.pos + 4
	k := strings.Index(d.s[body:], "--")
	if k < 0 {
		return d.malformed(d.pos, "unterminated comment")
	}
	end := body + k
	if end+2 >= len(d.s) || d.s[end+2] != '>' {
		return d.malformed(end, "'--' inside a comment")
	}
	if err := d.checkChars(body, end); err != nil {
		return err
	}
	d.pos = end + 3
	return nil
}

// pi skips a processing instruction, after checking it.
func (d *decoder) pi() error {
	d.pos += 2
	target, err := d.name()
	if err != nil {
		return err
	}
	if strings.EqualFold(target, "xml") {
		return d.malformed(d.tag, "XML declaration not at the start of the document")
	}
	k := strings.Index(d.s[d.pos:], "?>")
	if k < 0 {
		return d.malformed(d.tag, "unterminated processing instruction")
	}
	if k > 0 && !isSpace(d.s[d.pos]) {
		return d.malformed(d.pos, "no whitespace after processing instruction target")
	}
	if err := d.checkChars(d.pos, d.pos+k); err != nil {
		return err
	}
	d.pos += k + 2
	return nil
}

// xmlDecl reads <?xml version="1.0" encoding="UTF-8" standalone="yes"?>,
// encoding and standalone optional. Other versions and encodings are
// well-formed but not reports (which are XML 1.0 in UTF-8).
func (d *decoder) xmlDecl() error {
	d.pos += 5
	next := 0 // index into pseudo of the earliest allowed
	pseudo := [...]string{"version", "encoding", "standalone"}
	for {
		spaced := d.skipSpace()
		if strings.HasPrefix(d.s[d.pos:], "?>") {
			d.pos += 2
			break
		}
		if !spaced {
			return d.malformed(d.pos, "bad XML declaration")
		}
		start := d.pos
		name, err := d.name()
		if err != nil {
			return err
		}
		k := next
		for k < len(pseudo) && pseudo[k] != name {
			k++
		}
		if k == len(pseudo) || next == 0 && k != 0 {
			return d.malformed(start, "XML declaration: unexpected %.40s", name)
		}
		next = k + 1
		d.skipSpace()
		if d.pos >= len(d.s) || d.s[d.pos] != '=' {
			return d.malformed(d.pos, "XML declaration: %s lacks '='", name)
		}
		d.pos++
		d.skipSpace()
		if d.pos >= len(d.s) || d.s[d.pos] != '"' && d.s[d.pos] != '\'' {
			return d.malformed(d.pos, "XML declaration: %s is not quoted", name)
		}
		end := strings.IndexByte(d.s[d.pos+1:], d.s[d.pos])
		if end < 0 {
			return d.malformed(d.pos, "XML declaration: unterminated %s", name)
		}
		v := d.s[d.pos+1 : d.pos+1+end]
		d.pos += end + 2
		if err := checkPseudo(name, v); err != nil {
			return d.at(start, err)
		}
	}
	if next == 0 {
		return d.malformed(d.tag, "XML declaration without version")
	}
	return nil
}

func checkPseudo(name, v string) error {
	switch name {
	case "version":
		if len(v) < 3 || v[:2] != "1." || strings.Trim(v[2:], "0123456789") != "" {
			return fmt.Errorf("%w: XML version %.40q", ErrMalformed, v)
		}
		if v != "1.0" {
			return fmt.Errorf("%w: XML version %.40q (reports are XML 1.0)", ErrInvalid, v)
		}
	case "encoding":
		if v == "" || !isASCIILetter(v[0]) || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return fmt.Errorf("%w: XML encoding %.40q", ErrMalformed, v)
		}
		if !strings.EqualFold(v, "UTF-8") {
			return fmt.Errorf("%w: encoding %.40q (reports are UTF-8)", ErrInvalid, v)
		}
	default:
		if v != "yes" && v != "no" {
			return fmt.Errorf("%w: XML declaration: standalone=%.40q", ErrMalformed, v)
		}
	}
	return nil
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// skipSpace skips whitespace and reports whether there was any.
func (d *decoder) skipSpace() bool {
	start := d.pos
	for d.pos < len(d.s) && isSpace(d.s[d.pos]) {
		d.pos++
	}
	return d.pos > start
}

// name reads an XML Name at d.pos.
func (d *decoder) name() (string, error) {
	start := d.pos
	end := d.nameEnd(start)
	if end == start {
		return "", d.malformed(start, "expected a name")
	}
	d.pos = end
	return d.s[start:end], nil
}

// nameEnd returns the end of the longest XML Name at s[i:] (i if none).
// ASCII names, the only ones a report has, take a quick loop.
func (d *decoder) nameEnd(i int) int {
	s, start := d.s, i
	if i < len(s) && s[i] < utf8.RuneSelf {
		if c := s[i]; !isASCIILetter(c) && c != '_' && c != ':' {
			return i
		}
		for i++; i < len(s) && nameASCII[s[i]]; i++ {
		}
		if i == len(s) || s[i] < utf8.RuneSelf {
			return i
		}
	}
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if !nameASCII[c] || i == start && !isASCIILetter(c) && c != '_' && c != ':' {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !isNameChar(r, i == start) {
			break
		}
		i += n
	}
	return i
}

// nameASCII marks the ASCII characters of XML names.
var nameASCII = func() (t [256]bool) {
	for c := range utf8.RuneSelf {
		t[c] = isASCIILetter(byte(c)) || '0' <= c && c <= '9' || strings.IndexByte("._-:", byte(c)) >= 0
	}
	return t
}()

// isNameChar reports whether a non-ASCII r may appear in an XML name (first
// in it when first is set): XML 1.0 fifth edition, NameStartChar and
// NameChar.
func isNameChar(r rune, first bool) bool {
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r == 0x200C, r == 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	case r == 0xB7, r >= 0x300 && r <= 0x36F, r == 0x203F, r == 0x2040:
		return !first
	}
	return false
}

// checkChars fails unless s[from:to] holds only XML characters.
func (d *decoder) checkChars(from, to int) error {
	for i := from; i < to; {
		if c := d.s[i]; c >= 0x20 && c < utf8.RuneSelf || c == '\n' || c == '\t' || c == '\r' {
			i++
			continue
		}
		n, err := d.char(i)
		if err != nil {
			return err
		}
		i += n
	}
	return nil
}

// char checks the character at s[i] and returns its length in bytes.
func (d *decoder) char(i int) (int, error) {
	r, n := utf8.DecodeRuneInString(d.s[i:])
	if r == utf8.RuneError && n == 1 {
		return 0, d.malformed(i, "not UTF-8")
	}
	if !isXMLChar(r) {
		return 0, d.malformed(i, "character %U is not allowed in XML", r)
	}
	return n, nil
}

func (d *decoder) malformed(pos int, format string, args ...any) error {
	return d.at(pos, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...))
}

// at prefixes err, if any, with the line and column of byte pos.
func (d *decoder) at(pos int, err error) error {
	if err == nil {
		return nil
	}
	pos = min(pos, len(d.s))
	line := 1 + strings.Count(d.s[:pos], "\n")
	col := pos - strings.LastIndexByte(d.s[:pos], '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
