package schema

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	reports := []Report{sampleReport(), {Broker: "a", Domain: "a", Seq: 1, Time: time.Unix(0, 1).UTC(), Interval: 1}}
	for i := range 300 {
		reports = append(reports, genReport(rng, i%20))
	}
	for i, r := range reports {
		if err := r.Validate(); err != nil {
			t.Fatalf("report %d: generated report is invalid: %v", i, err)
		}
		doc, err := r.EncodeXML()
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		got, err := DecodeReport(doc, Limits{})
		if err != nil {
			t.Fatalf("report %d: %v\n%s", i, err, doc)
		}
		checkSame(t, got, normalized(r))
		if again := got.AppendXML(nil); !bytes.Equal(again, doc) {
			t.Fatalf("report %d: re-encoding differs:\n%s\n%s", i, again, doc)
		}
	}
}

// TestSampleDocuments pins the format: testdata/report.xml and
// testdata/network.xml are what the encoder writes for sampleReport.
func TestSampleDocuments(t *testing.T) {
	r := sampleReport()
	second := sampleReport()
	second.Broker, second.Seq, second.Links = "eu.kth.c1.a", 7, second.Links[:1]
	second.Links[0].A, second.Links[0].B = "eu.kth.c1.a", "na.cgl.c1.a"
	for name, doc := range map[string][]byte{
		"report.xml":  r.AppendXML(nil),
		"network.xml": AppendSnapshotXML(nil, []Report{r, second}, time.Date(2026, 11, 23, 10, 0, 1, 0, time.UTC)),
	} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, doc, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(doc, want) {
			t.Errorf("%s differs (go test -run TestSampleDocuments -update rewrites it):\n%s", path, doc)
		}
	}
}

func TestAppendEscaped(t *testing.T) {
	for in, want := range map[string]string{
		"plain":              "plain",
		`&<>"'`:              "&amp;&lt;&gt;&quot;&apos;",
		"a\tb\nc\rd":         "a&#9;b&#10;c&#13;d",
		"\x00\x1f\x7f":       "\uFFFD\uFFFD\x7f",
		"é€𝄞":                "é€𝄞",
		"bad\xffutf8\xc3":    "bad\uFFFDutf8\uFFFD",
		"\uFFFE\uFFFF\uFFFD": "\uFFFD\uFFFD\uFFFD",
		"\xed\xa0\x80":       "\uFFFD\uFFFD\uFFFD", // a surrogate, not UTF-8
		"x]]>y":              "x]]&gt;y",
	} {
		if got := string(appendEscaped(nil, in)); got != want {
			t.Errorf("appendEscaped(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendFloatAndMs(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", math.Copysign(0, -1): "0", 12: "12", 0.1: "0.1", 45.123: "45.123", 1e21: "1000000000000000000000",
		1e-7: "0.0000001", math.Inf(1): "INF", math.Inf(-1): "-INF", -2.5: "-2.5", 1 << 53: "9007199254740992",
	} {
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("appendFloat(%v) = %q, want %q", v, got, want)
		}
	}
	if got := string(appendFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("appendFloat(NaN) = %q", got)
	}
	for d, want := range map[time.Duration]string{
		5 * time.Second: "5000", 1500 * time.Microsecond: "1.5", 1: "0.000001", 1234567: "1.234567",
		math.MaxInt64: "9223372036854.775807", -time.Millisecond: "-1", math.MinInt64: "-9223372036854.775808",
	} {
		if got := string(appendMs(nil, d)); got != want {
			t.Errorf("appendMs(%d) = %q, want %q", d, got, want)
		}
	}
}

// BenchmarkAppendXML16k writes the network document of 16,000 links (160
// brokers of 100). Target: 50 ms per document.
func BenchmarkAppendXML16k(b *testing.B) {
	reports := benchReports(160, 100)
	at := time.Now()
	buf := AppendSnapshotXML(nil, reports, at)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSnapshotXML(buf[:0], reports, at)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
}

// BenchmarkDecodeReport decodes a report of 1,000 links. The aggregator
// needs 100,000 links/s on a loaded 2-core machine; this should be well
// beyond 200,000 on one core.
func BenchmarkDecodeReport(b *testing.B) {
	const links = 1000
	doc := benchReports(1, links)[0].AppendXML(nil)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeReport(doc, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(links*b.N)/b.Elapsed().Seconds(), "links/s")
}
