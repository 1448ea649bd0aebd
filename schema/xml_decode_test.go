package schema

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// xsdVerdict says what xmllint must make of a decoder test case.
type xsdVerdict int

const (
	xsdAgrees  xsdVerdict = iota // valid for xmllint exactly when DecodeReport accepts it
	xsdAccepts                   // valid for xmllint: a check only the decoder makes
	xsdSkip                      // limits, DTDs and entities: not the XSD's business
)

type decodeCase struct {
	name string
	doc  []byte
	want error           // nil, or the sentinel the error must wrap
	edit func(r *Report) // for good cases: how the result differs from sampleReport
	xsd  xsdVerdict
}

// decodeCases are good and bad documents, mostly edits of the sample.
func decodeCases(t testing.TB) []decodeCase {
	sample := string(encode(sampleReport()))
	sub := func(pairs ...string) []byte {
		s := sample
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("the sample lacks %q", pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		return []byte(s)
	}
	const decl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	body := strings.TrimPrefix(sample, decl)
	link0 := `<link id="3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5c"`
	lat := `<latency min="44.1" mean="45.1" p50="45" p90="46.9" p99="47.8" max="48.2"/>`
	lat2 := `<latency min="44.1" mean="45.1" p50="45" p90="46.9" p99="47.8" max="48.2">`
	setProfile := func(p string) func(r *Report) { return func(r *Report) { r.Links[0].Costs[0].Profile = p } }
	good := func(name string, doc []byte, edit func(r *Report)) decodeCase {
		return decodeCase{name: name, doc: doc, edit: edit}
	}
	bad := func(name string, doc []byte, want error, xsd xsdVerdict) decodeCase {
		return decodeCase{name: name, doc: doc, want: want, xsd: xsd}
	}
	return []decodeCase{
		good("sample", []byte(sample), nil),
		good("no declaration", []byte(body), nil),
		good("byte order mark", []byte("\uFEFF"+sample), nil),
		good("declaration variants", []byte(`<?xml version='1.0' encoding='utf-8' standalone='yes' ?>`+body), nil),
		good("declaration without encoding", []byte(`<?xml version="1.0"?>`+body), nil),
		good("comments and PIs", sub(decl, decl+"<!-- c --><?pi x?>\n", link0, "<!---->"+link0, lat, "<!-- - -->"+lat2+"<?p?><!--x--></latency>",
			"</report>", "<?pi\tdata ?></report><!-- end -->\n<?end?>\n"), nil),
		good("explicit end tags", sub(`value="57.4"/>`, `value="57.4"></cost>`, `count="12"/>`, `count="12"></bucket >`), nil),
		good("quotes and spacing", sub(` rtt="90.3"`, "\n\trtt = '90.3' ", `/><samples`, ` /><samples`), nil),
		good("attribute order", sub(`rtt="90.3" jitter="2"`, `jitter="2" rtt="90.3"`, `<histogram missing="3">`, `<histogram  missing="3" >`), nil),
		good("whitespace between elements", sub("><samples", ">\r\n  <samples", "><histogram", ">\t<histogram", "><bucket", "> <bucket"), nil),
		good("references", sub(`profile="default"`, `profile="&#x64;e&#102;ault"`), nil),
		good("reference to every special", sub(`profile="default"`, `profile="&lt;&gt;&amp;&apos;&quot;&#9;&#10;&#13;&#x1F600;"`), setProfile("<>&'\"\t\n\r\U0001F600")),
		good("literal whitespace normalizes", sub(`profile="default"`, "profile=\"a\tb\nc\r\nd\re\""), setProfile("a b c d e")),
		good("other quotes inside", sub(`profile="default"`, `profile='say "hi"'`), setProfile(`say "hi"`)),
		good("non-ASCII", sub(`profile="default"`, `profile="défaut €𝄞"`), setProfile("défaut €𝄞")),
		good("empty bucket dropped", sub(`<bucket le="44.`, `<bucket le="1" count="0"/><bucket le="44.`), nil),
		good("number forms", sub(`rtt="90.3"`, `rtt="9.03E+1"`, `jitter="2"`, `jitter="+2."`, `loss="0.01"`, `loss=".0100"`, `value="57.4"`, `value="0057.40"`), nil),
		good("overflow is INF", sub(`value="INF"`, `value="1e400"`), nil),
		good("long mantissa", sub(`rtt="90.3"`, `rtt="90.300000000000000000000000000001"`), nil),
		good("time with offset", sub(`time="2026-11-23T10:00:00.25Z"`, `time="2026-11-23T11:30:00.250000000999+01:30"`), nil),
		good("interval forms", sub(`interval_ms="5000"`, `interval_ms="+05000.000000000"`), nil),
		good("fractional interval", sub(`interval_ms="5000"`, `interval_ms=".5"`), func(r *Report) { r.Interval = 500 * time.Microsecond }),
		good("leading zeros in counts", sub(`sent="512"`, `sent="000512"`), nil),
		good("largest count", sub(`dropped="0"`, `dropped="18446744073709551615"`), func(r *Report) { r.Links[0].Dropped = math.MaxUint64 }),

		bad("root network", sub("<report ", "<network ", "</report>", "</network>"), ErrInvalid, xsdAgrees),
		bad("unknown element", sub(lat, lat+"<extra/>"), ErrInvalid, xsdAgrees),
		bad("samples before latency", sub(lat, "", "/><cost", "/>"+lat+"<cost"), ErrInvalid, xsdAgrees),
		bad("no samples", sub(`<samples sent="512" received="507" lost="5" window="256" reordered="0" duplicated="0"/>`, ""), ErrInvalid, xsdAgrees),
		bad("empty link", sub(`dropped="17">`, `dropped="17"/>`+"\n<!--", "</link>\n</report>", "-->\n</report>"), ErrInvalid, xsdAgrees),
		bad("histogram before cost", sub(`<cost profile="default" value="57.4"/><cost profile="latency" value="45.1"/>`, "", "</histogram>", `</histogram><cost profile="default" value="57.4"/>`), ErrInvalid, xsdAgrees),
		bad("two histograms", sub("</histogram>", `</histogram><histogram missing="0"/>`), ErrInvalid, xsdAgrees),
		bad("unknown attribute", sub(` rtt="90.3"`, ` rtt="90.3" colour="red"`), ErrInvalid, xsdAgrees),
		bad("namespace", sub(`<report `, `<report xmlns="urn:wayline" `), ErrInvalid, xsdAgrees),
		bad("missing report attribute", sub(` seq="42"`, ""), ErrInvalid, xsdAgrees),
		bad("missing link attribute", sub(` loss="0.01"`, ""), ErrInvalid, xsdAgrees),
		bad("missing latency attribute", sub(` p90="46.9"`, ""), ErrInvalid, xsdAgrees),
		bad("missing samples attribute", sub(` window="256"`, ""), ErrInvalid, xsdAgrees),
		bad("missing cost attribute", sub(`<cost profile="default" `, "<cost "), ErrInvalid, xsdAgrees),
		bad("missing histogram attribute", sub(`<histogram missing="3">`, `<histogram>`), ErrInvalid, xsdAgrees),
		bad("missing bucket attribute", sub(` count="12"`, ""), ErrInvalid, xsdAgrees),
		bad("link without id", sub(`id="3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5c" `, ""), ErrInvalid, xsdAgrees),
		bad("text in report", sub("</report>", "hello</report>"), ErrInvalid, xsdAgrees),
		bad("text in link", sub(lat, "x"+lat), ErrInvalid, xsdAgrees),
		bad("whitespace in latency", sub(lat, lat2+" </latency>"), ErrInvalid, xsdAgrees),
		bad("CDATA in link", sub(lat, "<![CDATA[x]]>"+lat), ErrInvalid, xsdAgrees),
		bad("reference in report", sub("</report>", "&amp;</report>"), ErrInvalid, xsdAgrees),
		bad("upper-case id", sub("4b5c", "4B5C"), ErrInvalid, xsdAgrees),
		bad("short id", sub("4b5c", "4b5"), ErrInvalid, xsdAgrees),
		bad("bad address", sub(`b="eu.kth.c1.a"`, `b="eu..kth"`), ErrInvalid, xsdAgrees),
		bad("upper-case broker", sub(`broker="na.cgl.c1.a"`, `broker="NA.cgl.c1.a"`), ErrInvalid, xsdAgrees),
		bad("a is not the broker", sub(`a="na.cgl.c1.a"`, `a="na.cgl.c1.b"`), ErrInvalid, xsdAccepts),
		bad("transport", sub(`transport="udp"`, `transport="sctp"`), ErrInvalid, xsdAgrees),
		bad("state", sub(`state="up"`, `state="Up"`), ErrInvalid, xsdAgrees),
		bad("monitor", sub(`monitor="up"`, `monitor="up "`), ErrInvalid, xsdAgrees),
		bad("NaN", sub(`rtt="90.3"`, `rtt="NaN"`), ErrInvalid, xsdAgrees),
		bad("negative figure", sub(`rtt="90.3"`, `rtt="-1"`), ErrInvalid, xsdAgrees),
		bad("-INF", sub(`value="INF"`, `value="-INF"`), ErrInvalid, xsdAgrees),
		bad("not a number", sub(`rtt="90.3"`, `rtt="0x10"`), ErrInvalid, xsdAgrees),
		bad("exponent without digits", sub(`rtt="90.3"`, `rtt="1e"`), ErrInvalid, xsdAccepts),
		bad("padded number", sub(`rtt="90.3"`, `rtt=" 90.3"`), ErrInvalid, xsdAccepts),
		bad("loss above 1", sub(`loss="0.01"`, `loss="1.5"`), ErrInvalid, xsdAgrees),
		bad("negative count", sub(`dropped="0"`, `dropped="-1"`), ErrInvalid, xsdAgrees),
		bad("signed count", sub(`dropped="0"`, `dropped="+1"`), ErrInvalid, xsdAgrees),
		bad("count overflow", sub(`dropped="0"`, `dropped="18446744073709551616"`), ErrInvalid, xsdAgrees),
		bad("window overflow", sub(`window="256"`, `window="2147483648"`), ErrInvalid, xsdAgrees),
		bad("seq 0", sub(`seq="42"`, `seq="0"`), ErrInvalid, xsdAgrees),
		bad("time without zone", sub(`10:00:00.25Z`, `10:00:00.25`), ErrInvalid, xsdAgrees),
		bad("February 30", sub(`2026-11-23`, `2026-02-30`), ErrInvalid, xsdAgrees),
		bad("hour 24", sub(`T10:00:00.25Z`, `T24:00:00Z`), ErrInvalid, xsdAgrees),
		bad("zone +15:00", sub(`.25Z`, `.25+15:00`), ErrInvalid, xsdAgrees),
		bad("year 0", sub(`2026-11-23`, `0000-11-23`), ErrInvalid, xsdAgrees),
		bad("zero time", sub(`2026-11-23T10:00:00.25Z`, `0001-01-01T00:00:00Z`), ErrInvalid, xsdAccepts),
		bad("interval 0", sub(`interval_ms="5000"`, `interval_ms="0.0"`), ErrInvalid, xsdAgrees),
		bad("interval below a nanosecond", sub(`interval_ms="5000"`, `interval_ms="5000.0000001"`), ErrInvalid, xsdAgrees),
		bad("interval too long", sub(`interval_ms="5000"`, `interval_ms="9223372036854.775808"`), ErrInvalid, xsdAgrees),
		bad("repeated link id", sub("4b5d", "4b5c"), ErrInvalid, xsdAgrees),
		bad("repeated profile", sub(`profile="latency"`, `profile="default"`), ErrInvalid, xsdAgrees),
		bad("empty profile", sub(`profile="default"`, `profile=""`), ErrInvalid, xsdAgrees),
		bad("descending buckets", sub(`le="50.11872336272725"`, `le="40"`), ErrInvalid, xsdAccepts),
		bad("infinite missing", sub(`missing="3"`, `missing="INF"`), ErrInvalid, xsdAgrees),
		bad("NaN count", sub(`count="12"`, `count="NaN"`), ErrInvalid, xsdAgrees),
		bad("XML 1.1", []byte(`<?xml version="1.1"?>`+body), ErrInvalid, xsdAccepts),
		bad("Latin-1", []byte(`<?xml version="1.0" encoding="ISO-8859-1"?>`+body), ErrInvalid, xsdAccepts),
		bad("namespace declaration", sub(`<report `, `<report xmlns:w="urn:wayline" `), ErrInvalid, xsdAccepts),

		bad("DOCTYPE", []byte(decl+"<!DOCTYPE report>\n"+body), ErrForbidden, xsdSkip),
		bad("internal subset", []byte(decl+`<!DOCTYPE report [<!ENTITY p "default">]>`+"\n"+strings.Replace(body, `"default"`, `"&p;"`, 1)), ErrForbidden, xsdSkip),
		bad("billion laughs", []byte(decl+`<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>`+body), ErrForbidden, xsdSkip),
		bad("undeclared entity", sub(`profile="default"`, `profile="&nbsp;"`), ErrForbidden, xsdSkip),
		bad("entity in content", sub(lat, "&x;"+lat), ErrForbidden, xsdSkip),
		bad("ENTITY in content", sub(lat, `<!ENTITY x "y">`+lat), ErrForbidden, xsdSkip),
		bad("external entity", []byte(decl+`<!DOCTYPE report SYSTEM "file:///etc/passwd">`+body), ErrForbidden, xsdSkip),

		bad("empty document", nil, ErrMalformed, xsdAgrees),
		bad("declaration only", []byte(decl), ErrMalformed, xsdAgrees),
		bad("truncated", []byte(sample[:len(sample)/2]), ErrMalformed, xsdAgrees),
		bad("truncated in a tag", []byte(sample[:strings.Index(sample, "rtt=")+6]), ErrMalformed, xsdAgrees),
		bad("mismatched end tag", sub("</link>", "</lnk>"), ErrMalformed, xsdAgrees),
		bad("unclosed link", sub("</link>\n<link", "\n<link"), ErrInvalid, xsdAgrees), // a link in a link comes first
		bad("unquoted value", sub(`rtt="90.3"`, `rtt=90.3`), ErrMalformed, xsdAgrees),
		bad("no '='", sub(`rtt="90.3"`, `rtt "90.3"`), ErrMalformed, xsdAgrees),
		bad("no space between attributes", sub(`rtt="90.3" jitter`, `rtt="90.3"jitter`), ErrMalformed, xsdAgrees),
		bad("repeated attribute", sub(` rtt="90.3"`, ` rtt="90.3" rtt="90.3"`), ErrMalformed, xsdAgrees),
		bad("'<' in a value", sub(`profile="default"`, `profile="a<b"`), ErrMalformed, xsdAgrees),
		bad("bare '&'", sub(`profile="default"`, `profile="a & b"`), ErrMalformed, xsdAgrees),
		bad("unterminated reference", sub(`profile="default"`, `profile="&amp"`), ErrMalformed, xsdAgrees),
		bad("reference to NUL", sub(`profile="default"`, `profile="&#0;"`), ErrMalformed, xsdAgrees),
		bad("reference to a surrogate", sub(`profile="default"`, `profile="&#xD800;"`), ErrMalformed, xsdAgrees),
		bad("reference beyond Unicode", sub(`profile="default"`, `profile="&#x110000;"`), ErrMalformed, xsdAgrees),
		bad("bad decimal reference", sub(`profile="default"`, `profile="&#12a;"`), ErrMalformed, xsdAgrees),
		bad("upper-case X reference", sub(`profile="default"`, `profile="&#X41;"`), ErrMalformed, xsdAgrees),
		bad("not UTF-8", sub(`profile="default"`, "profile=\"d\xe9faut\""), ErrMalformed, xsdAgrees),
		bad("control character", sub(`profile="default"`, "profile=\"a\x01\""), ErrMalformed, xsdAgrees),
		bad("U+FFFE", sub(`profile="default"`, "profile=\"\uFFFE\""), ErrMalformed, xsdAgrees),
		bad("control character in a comment", sub("</report>", "<!-- \x02 --></report>"), ErrMalformed, xsdAgrees),
		bad("'--' in a comment", sub("</report>", "<!-- a -- b --></report>"), ErrMalformed, xsdAgrees),
		bad("comment ending '--->'", sub("</report>", "<!-- a ---></report>"), ErrMalformed, xsdAgrees),
		bad("unterminated comment", sub("</report>", "<!-- </report>"), ErrMalformed, xsdAgrees),
		bad("unterminated PI", sub("</report>", "<?pi </report>"), ErrMalformed, xsdAgrees),
		bad("PI without space", sub("</report>", "<?pi-x?><?pi\"x\"?></report>"), ErrMalformed, xsdAgrees),
		bad("PI named xml", sub("</report>", "<?xml version=\"1.0\"?></report>"), ErrMalformed, xsdAgrees),
		bad("declaration after space", []byte("\n"+sample), ErrMalformed, xsdAgrees),
		bad("declaration without version", []byte(`<?xml encoding="UTF-8"?>`+body), ErrMalformed, xsdAgrees),
		bad("declaration out of order", []byte(`<?xml encoding="UTF-8" version="1.0"?>`+body), ErrMalformed, xsdAgrees),
		bad("version 2.0", []byte(`<?xml version="2.0"?>`+body), ErrMalformed, xsdAgrees),
		bad("standalone maybe", []byte(`<?xml version="1.0" standalone="maybe"?>`+body), ErrMalformed, xsdAgrees),
		bad("text before the root", []byte(decl+"x"+body), ErrMalformed, xsdAgrees),
		bad("text after the root", []byte(sample+"x"), ErrMalformed, xsdAgrees),
		bad("second root", []byte(sample+body), ErrMalformed, xsdAgrees),
		bad("unknown markup", sub("</report>", "<!FOO></report>"), ErrMalformed, xsdAgrees),
		bad("unterminated CDATA", sub("</report>", "<![CDATA[ </report>"), ErrMalformed, xsdAgrees),
		bad("end tag without '>'", sub("</report>", "</report"), ErrMalformed, xsdAgrees),
		bad("'/ >'", sub(`value="57.4"/>`, `value="57.4"/ >`), ErrMalformed, xsdAgrees),
		bad("name starting with a digit", sub(lat, "<1x/>"+lat), ErrMalformed, xsdAgrees),
		bad("not UTF-8 in a name", sub(lat, "<l\x80/>"+lat), ErrMalformed, xsdAgrees),
		bad("not UTF-8 in a PI target", sub("</report>", "<?\x80?></report>"), ErrMalformed, xsdAgrees),
		bad("space after '<'", sub(lat, "< latency"+lat[len("<latency"):]), ErrMalformed, xsdAgrees),
		bad("']]>' in content", sub(lat, "]]>"+lat), ErrInvalid, xsdSkip),
	}
}

func TestDecodeReport(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeReport(c.doc, Limits{})
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("error %v, want %v", err, c.want)
				}
				if n := sentinels(err); n != 1 {
					t.Fatalf("error %v wraps %d sentinels", err, n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := sampleReport()
			if c.edit != nil {
				c.edit(&want)
			}
			checkSame(t, got, normalized(want))
			if ref, err := refDecode(c.doc); err != nil {
				t.Errorf("encoding/xml reading: %v", err)
			} else if c.edit == nil {
				checkSame(t, ref, normalized(want))
			}
		})
	}
}

// sentinels counts the sentinel errors err wraps.
func sentinels(err error) int {
	n := 0
	for _, s := range []error{ErrTooLarge, ErrForbidden, ErrMalformed, ErrInvalid} {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

func TestDecodeLimits(t *testing.T) {
	doc := encode(sampleReport())
	for _, c := range []struct {
		limits Limits
		want   error
	}{
		{Limits{}, nil},
		{Limits{MaxBytes: len(doc)}, nil},
		{Limits{MaxBytes: len(doc) - 1}, ErrTooLarge},
		{Limits{MaxLinks: 2}, nil},
		{Limits{MaxLinks: 1}, ErrTooLarge},
		{Limits{MaxBytes: -1, MaxLinks: -1}, nil},
	} {
		if _, err := DecodeReport(doc, c.limits); !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%+v: error %v, want %v", c.limits, err, c.want)
		}
	}
	big := make([]byte, DefaultMaxBytes+1)
	if _, err := DecodeReport(big, Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("%d bytes: error %v, want ErrTooLarge", len(big), err)
	}
}

func TestDecodeErrorPosition(t *testing.T) {
	doc := strings.Replace(string(encode(sampleReport())), `loss="1"`, `loss="2"`, 1)
	_, err := DecodeReport([]byte(doc), Limits{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line 4, column 1:") || !strings.Contains(err.Error(), `loss="2"`) {
		t.Fatalf("error %v, want ErrInvalid at line 4, column 1 naming loss", err)
	}
	_, err = DecodeReport([]byte("<report\n  b='1'\x01/>"), Limits{})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "line 2, column 8:") {
		t.Fatalf("error %v, want ErrMalformed at line 2, column 8", err)
	}
}

// refDecode decodes a report with encoding/xml's tokenizer in front of the
// same builder, to cross-check the hand-written scanner.
func refDecode(data []byte) (Report, error) {
	d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
	b := newBuilder(Limits{MaxBytes: DefaultMaxBytes, MaxLinks: DefaultMaxLinks}, 0, len(data))
	name := func(n xml.Name) string {
		if n.Space != "" {
			return n.Space + ":" + n.Local
		}
		return n.Local
	}
	var attrs []attr
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return b.r, b.finish()
		}
		if err != nil {
			return Report{}, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attrs = attrs[:0]
			for _, a := range tok.Attr {
				attrs = append(attrs, attr{name(a.Name), a.Value})
			}
			err = b.start(name(tok.Name), attrs)
		case xml.EndElement:
			err = b.end(name(tok.Name))
		case xml.CharData:
			if len(bytes.Trim(tok, " \t\r\n")) == 0 {
				err = b.space()
			} else {
				err = b.text()
			}
		case xml.Directive:
			err = ErrForbidden
		}
		if err != nil {
			return Report{}, err
		}
	}
}

// FuzzDecodeReport checks that DecodeReport never panics, fails only with
// its sentinels, and that what it accepts re-encodes to a document that
// decodes to the same report, and is read the same way by encoding/xml.
func FuzzDecodeReport(f *testing.F) {
	for _, c := range decodeCases(f) {
		f.Add(c.doc)
	}
	f.Add(encode(genReport(newRand(9), 3)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReport(data, Limits{MaxBytes: 1 << 16, MaxLinks: 50})
		if err != nil {
			if sentinels(err) != 1 {
				t.Fatalf("error %v wraps %d sentinels", err, sentinels(err))
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted an invalid report: %v", err)
		}
		doc := r.AppendXML(nil)
		again, err := DecodeReport(doc, Limits{})
		if err != nil {
			t.Fatalf("re-encoded report: %v\n%s", err, doc)
		}
		checkSame(t, again, r)
		ref, err := refDecode(data)
		if err != nil {
			t.Fatalf("accepted, but encoding/xml reading fails: %v", err)
		}
		// encoding/xml does not normalize whitespace in attribute values.
		ws := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")
		for _, rr := range []*Report{&r, &ref} {
			for i := range rr.Links {
				for k := range rr.Links[i].Costs {
					rr.Links[i].Costs[k].Profile = ws.Replace(rr.Links[i].Costs[k].Profile)
				}
			}
		}
		checkSame(t, ref, r)
	})
}

// TestParseDouble checks the shortcut against strconv over many forms.
func TestParseDouble(t *testing.T) {
	rng := newRand(10)
	for range 100000 {
		v := math.Float64frombits(rng.Uint64())
		if v != v {
			continue
		}
		for _, s := range []string{fmt.Sprint(v), string(appendFloat(nil, v)), fmt.Sprintf("%.*f", rng.IntN(20), v), fmt.Sprintf("%.3e", v)} {
			got, err := parseDouble(s)
			if err != nil {
				t.Fatalf("parseDouble(%q): %v", s, err)
			}
			want := parseFloatRef(s)
			if math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("parseDouble(%q) = %v, want %v", s, got, want)
			}
		}
	}
	for _, s := range []string{"", "+", "-", ".", "e5", "1e", "1e+", "1.2.3", "1e5.5", "inf", "Infinity", "+INF", "nan", "1_0", "0x1p3", " 1", "1 "} {
		if v, err := parseDouble(s); err == nil {
			t.Errorf("parseDouble(%q) = %v, want an error", s, v)
		}
	}
}
