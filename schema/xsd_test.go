package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// xmllint returns the path of xmllint, or skips t when it is missing,
// unless WAYLINE_REQUIRE_XMLLINT is set (as by the Makefile), when t fails.
func xmllint(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("WAYLINE_REQUIRE_XMLLINT") != "" {
			t.Fatalf("xmllint is required (WAYLINE_REQUIRE_XMLLINT is set) but missing: %v; install libxml2-utils", err)
		}
		t.Skip("xmllint missing (install libxml2-utils); set WAYLINE_REQUIRE_XMLLINT to make this a failure")
	}
	return path
}

// lint validates each document against perf-report.xsd with one xmllint
// run and returns, per document, whether it passed and what xmllint said.
func lint(t *testing.T, docs [][]byte) (ok []bool, out string) {
	t.Helper()
	bin := xmllint(t)
	dir := t.TempDir()
	args := []string{"--noout", "--nonet", "--schema", "perf-report.xsd"}
	for i, doc := range docs {
		name := filepath.Join(dir, fmt.Sprintf("doc%04d.xml", i))
		if err := os.WriteFile(name, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, name)
	}
	cmd := exec.Command(bin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("xmllint: %v", err)
	}
	var lines []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasSuffix(line, " validates") {
			lines = append(lines, line)
		}
	}
	out = strings.Join(lines, "\n")
	if strings.Contains(out, "WXS schema perf-report.xsd failed to compile") {
		t.Fatalf("perf-report.xsd does not compile:\n%s", out)
	}
	for i := range docs {
		ok = append(ok, strings.Contains(buf.String(), fmt.Sprintf("doc%04d.xml validates\n", i)))
	}
	return ok, out
}

// TestXMLLint validates generated reports and snapshots against
// perf-report.xsd with libxml2's validator, so that the XSD and the encoder
// cannot drift apart, and checks that it rejects broken ones, so that the
// test means something.
func TestXMLLint(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var reports []Report
	for i := range 40 {
		reports = append(reports, genReport(rng, i%7))
	}
	reports = append(reports, sampleReport())
	var docs [][]byte
	for _, r := range reports {
		docs = append(docs, r.AppendXML(nil))
	}
	docs = append(docs, AppendSnapshotXML(nil, reports, time.Now()), AppendSnapshotXML(nil, nil, time.Now()))
	good := len(docs)

	broken := sampleReport()
	broken.Links[0].Loss = 2
	docs = append(docs, broken.AppendXML(nil))
	dup := reports[:2:2]
	dup = append(dup, reports[0])
	docs = append(docs, AppendSnapshotXML(nil, dup, time.Now())) // a broker twice
	for _, edit := range []struct{ old, new string }{
		{`state="up"`, `state="sideways"`},
		{`<samples`, `<sample`},
		{` dropped="0"`, ``},
		{`id="3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5d"`, `id="3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5c"`},
		{`profile="latency"`, `profile="default"`},
	} {
		docs = append(docs, bytes.Replace(encode(sampleReport()), []byte(edit.old), []byte(edit.new), 1))
	}

	ok, out := lint(t, docs)
	for i := range docs {
		if want := i < good; ok[i] != want {
			t.Errorf("document %d: xmllint says valid=%v, want %v:\n%s\n%s", i, ok[i], want, docs[i], out)
		}
	}
}

// TestDecodeAgreesWithXMLLint checks that the XSD and the decoder agree on
// every case: xmllint accepts the good ones and rejects the bad ones,
// except where the decoder checks more than XSD 1.0 can say.
func TestDecodeAgreesWithXMLLint(t *testing.T) {
	var cases []decodeCase
	var docs [][]byte
	for _, c := range decodeCases(t) {
		if c.xsd != xsdSkip {
			cases = append(cases, c)
			docs = append(docs, c.doc)
		}
	}
	ok, out := lint(t, docs)
	for i, c := range cases {
		want := c.want == nil || c.xsd == xsdAccepts
		if ok[i] != want {
			t.Errorf("%s (document %d): xmllint says valid=%v, want %v\n%s", c.name, i, ok[i], want, out)
		}
	}
}

func TestEncodeXMLRejectsInvalid(t *testing.T) {
	for name, mutate := range map[string]func(r *Report){
		"empty broker":       func(r *Report) { r.Broker = "" },
		"upper-case domain":  func(r *Report) { r.Domain = "NA" },
		"seq 0":              func(r *Report) { r.Seq = 0 },
		"no time":            func(r *Report) { r.Time = time.Time{} },
		"year 10000":         func(r *Report) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zero interval":      func(r *Report) { r.Interval = 0 },
		"upper-case id":      func(r *Report) { r.Links[0].ID = strings.ToUpper(r.Links[0].ID) },
		"a not the broker":   func(r *Report) { r.Links[0].A = "na.cgl.c1.b" },
		"bad b":              func(r *Report) { r.Links[0].B = "a..b" },
		"transport":          func(r *Report) { r.Links[0].Transport = "sctp" },
		"state":              func(r *Report) { r.Links[0].State = "suspect" },
		"monitor":            func(r *Report) { r.Links[0].Monitor = "UP" },
		"negative rtt":       func(r *Report) { r.Links[0].RTT = -1 },
		"NaN jitter":         func(r *Report) { r.Links[0].Jitter = math.NaN() },
		"NaN p99":            func(r *Report) { r.Links[0].Latency.P99 = math.NaN() },
		"loss above 1":       func(r *Report) { r.Links[0].Loss = 1.5 },
		"negative window":    func(r *Report) { r.Links[0].Samples.Window = -1 },
		"empty profile":      func(r *Report) { r.Links[0].Costs[0].Profile = "" },
		"control in profile": func(r *Report) { r.Links[0].Costs[0].Profile = "a\x01" },
		"repeated profile":   func(r *Report) { r.Links[0].Costs[1].Profile = "default" },
		"NaN cost":           func(r *Report) { r.Links[0].Costs[0].Value = math.NaN() },
		"infinite missing":   func(r *Report) { r.Links[0].Histogram.Missing = math.Inf(1) },
		"negative count":     func(r *Report) { r.Links[0].Histogram.Buckets[1].Count = -1 },
		"descending buckets": func(r *Report) { r.Links[0].Histogram.Buckets[2].LE = 1 },
		"repeated id":        func(r *Report) { r.Links[1].ID = r.Links[0].ID },
	} {
		r := sampleReport()
		mutate(&r)
		if _, err := r.EncodeXML(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: EncodeXML error %v, want ErrInvalid", name, err)
		}
	}
}

// TestRepeatedIDsAtScale covers the map path of the uniqueness checks.
func TestRepeatedIDsAtScale(t *testing.T) {
	r := genReport(rand.New(rand.NewPCG(3, 4)), 50)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	r.Links[40].ID = r.Links[3].ID
	if err := r.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "link 40 repeats id") {
		t.Fatalf("Validate: %v", err)
	}
	costs := make([]Cost, 20)
	for i := range costs {
		costs[i] = Cost{Profile: fmt.Sprint("p", i%19), Value: 1}
	}
	if err := uniqueProfiles(costs); err == nil {
		t.Fatal("a repeated profile among 20 passed")
	}
}

func uniqueProfiles(cs []Cost) error {
	r := Report{Broker: "a", Links: []Link{{A: "a", Costs: cs}}}
	return r.validateAcross()
}

// TestDecoderNeverLaxerThanXSD mutates generated reports (values in every
// lexical corner, comments, whitespace, references, dropped elements) and
// checks that whatever DecodeReport accepts, xmllint accepts too: the
// decoder may check more than perf-report.xsd, never less.
func TestDecoderNeverLaxerThanXSD(t *testing.T) {
	rng := newRand(12)
	numbers := []string{
		"0", "-0", "+0", "1", "+1", "-1", "007", "1.", ".5", "1.5e3", "1E-3", "1e400", "-1e400", "1e-400",
		"4.9e-324", "1.7976931348623157e308", "1.7976931348623159e308", "INF", "-INF", "+INF", "NaN",
		" 1", "1 ", "&#32;1", "1e", "0x1", "18446744073709551615", "18446744073709551616", "2147483647",
		"2147483648", "0000000000000000000000001", "9223372036854.775807", "9223372036854.775808",
		"0.000001", "0.0000001", "1.0000000", "0.5", "1.0", "0.99999999999999999", "1.00000000000000001",
	}
	classes := []struct {
		attrs  string // a regular expression
		values []string
	}{
		{`rtt|jitter|loss|dropped|min|mean|p50|p90|p99|max|sent|received|lost|window|reordered|duplicated|value|missing|le|count|seq|interval_ms`, numbers},
		{`time`, []string{
			"2026-11-23T10:00:00Z", "2026-11-23T10:00:00.123456789123Z", "2026-11-23T10:00:00+14:00",
			"2026-11-23T10:00:00-14:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:01", "0001-01-01T00:00:00.000000001Z",
			"9999-12-31T23:59:59Z", "9999-12-31T23:59:59-00:01", "2024-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
			"2026-11-23T10:00:00", "2026-11-23t10:00:00z", "2026-11-23T10:00:00.Z", " 2026-11-23T10:00:00Z"}},
		{`broker|domain|a|b`, []string{"", "a", "a.b", "a..b", "A", "a_b-c", ".a", "a.", strings.Repeat("a", 63),
			strings.Repeat("a", 64), strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 126) + "ab", "&#97;"}},
		{`id`, []string{"3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5c", "3F2A6C1E-9B7D-4E2A-8C55-0D1E2F3A4B5C",
			"3f2a6c1e9b7d4e2a8c550d1e2f3a4b5c", "3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5", "{3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5c}"}},
		{`transport|state|monitor`, []string{"up", "down", "UP", "", "tcp", "mem", "quic", "suspect", "disabled", "unknown", "&#9;up", "u&#112;", "up "}},
		{`profile`, []string{"", " ", "x&amp;y", "default", "&#x10FFFF;", "&#9;", "a\tb"}},
	}
	edits := []func(doc string) string{
		func(doc string) string { // a value
			c := classes[rng.IntN(len(classes))]
			m := regexp.MustCompile(` (`+c.attrs+`)="([^"]*)"`).FindAllStringSubmatchIndex(doc, -1)
			if len(m) == 0 {
				return doc
			}
			k := m[rng.IntN(len(m))]
			return doc[:k[4]] + c.values[rng.IntN(len(c.values))] + doc[k[5]:]
		},
		func(doc string) string { // a comment, a PI or whitespace between tags
			from := rng.IntN(len(doc))
			k := strings.Index(doc[from:], "><")
			if k < 0 {
				return doc
			}
			at := from + k + 1
			return doc[:at] + []string{"<!-- x -->", "<?p x?>", " ", "\n", "&#32;"}[rng.IntN(5)] + doc[at:]
		},
		func(doc string) string { // an element
			for _, re := range []string{`<cost [^>]*/>`, `<bucket [^>]*/>`, `<histogram [^>]*>.*?</histogram>`, `<latency [^>]*/>`} {
				if loc := regexp.MustCompile(re).FindStringIndex(doc); loc != nil && rng.IntN(2) == 0 {
					return doc[:loc[0]] + doc[loc[1]:]
				}
			}
			return doc
		},
	}
	var accepted [][]byte
	for range 3000 {
		r := genReport(rng, 1+rng.IntN(2))
		doc := string(r.AppendXML(nil))
		for range 1 + rng.IntN(2) {
			doc = edits[rng.IntN(len(edits))](doc)
		}
		if _, err := DecodeReport([]byte(doc), Limits{}); err == nil {
			accepted = append(accepted, []byte(doc))
		}
	}
	t.Logf("%d of 3000 mutated documents accepted", len(accepted))
	if len(accepted) < 300 {
		t.Fatalf("only %d mutated documents accepted; the test needs more", len(accepted))
	}
	ok, out := lint(t, accepted)
	for i := range accepted {
		if !ok[i] {
			t.Errorf("DecodeReport accepts what xmllint rejects:\n%s\n%s", accepted[i], out)
		}
	}
}

func TestXSDEmbedded(t *testing.T) {
	file, err := os.ReadFile("perf-report.xsd")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(XSD, file) {
		t.Fatal("XSD differs from perf-report.xsd")
	}
}
