package web

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/wayline/wayline/schema"
)

// cells parses a rendered table and returns its body rows as text cells,
// and every element name found in the document.
func cells(t testing.TB, page []byte) (rows [][]string, elements map[string]int) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	elements = map[string]int{}
	var text func(n *html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var sb strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			sb.WriteString(text(c))
		}
		return sb.String()
	}
	var walk func(n *html.Node, inBody bool)
	walk = func(n *html.Node, inBody bool) {
		if n.Type == html.ElementNode {
			elements[n.Data]++
			if n.Data == "tbody" {
				inBody = true
			}
			if inBody && n.Data == "tr" {
				var row []string
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode && c.Data == "td" {
						row = append(row, text(c))
					}
				}
				rows = append(rows, row)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inBody)
		}
	}
	walk(doc, false)
	return rows, elements
}

func TestLinkTableShowsEveryLink(t *testing.T) {
	reports := schema.Synthetic(3, 4, time.Now())
	reports[1].Links[2].Costs = reports[1].Links[2].Costs[1:] // one profile missing
	rows, _ := cells(t, AppendLinkTable(nil, reports))
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 12", len(rows))
	}
	l := reports[1].Links[3]
	r := rows[7]
	want := []string{reports[1].Broker, l.ID, l.B, "udp", "up", "up"}
	for i, w := range want {
		if r[i] != w {
			t.Errorf("cell %d = %q, want %q", i, r[i], w)
		}
	}
	if len(r) != 15 {
		t.Fatalf("%d cells, want 13 and two cost profiles: %q", len(r), r)
	}
	if got := r[10]; got != strings.TrimSpace(string(appendFixed(nil, 100*l.Loss, 2))) {
		t.Errorf("loss cell %q for loss %v", got, l.Loss)
	}
	if rows[6][13] != "" || rows[6][14] == "" {
		t.Errorf("link without a default cost: cost cells %q, %q", rows[6][13], rows[6][14])
	}
}

func TestLinkTableEscapesNames(t *testing.T) {
	evil := `<script>alert("x")</script>`
	rep := schema.Report{Broker: "na.c1." + evil, Links: []schema.Link{{
		ID: `"><img src=x onerror=alert(1)>`, B: evil, Transport: "tcp&udp", State: "up'", Monitor: "\xff",
		Costs: []schema.Cost{{Profile: evil, Value: 1}},
	}}}
	page := AppendLinkTable(nil, []schema.Report{rep})
	rows, elements := cells(t, page)
	if elements["script"] != 0 || elements["img"] != 0 {
		t.Fatalf("markup from the network became elements: %v\n%s", elements, page)
	}
	if len(rows) != 1 || rows[0][0] != rep.Broker || rows[0][1] != rep.Links[0].ID || rows[0][2] != evil || rows[0][3] != "tcp&udp" {
		t.Fatalf("names not shown as text: %q", rows)
	}
	if rows[0][5] != "\uFFFD" {
		t.Errorf("invalid UTF-8 shown as %q", rows[0][5])
	}
}

func TestAppendFixed(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{{1.005, "1.00"}, {12.5, "12.50"}, {0, "0.00"}, {inf, "∞"}, {-inf, "-∞"}, {nan, "-"}} {
		if got := string(appendFixed(nil, c.v, 2)); got != c.want {
			t.Errorf("appendFixed(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// BenchmarkLinkTable16k renders the snapshot of 16,000 links (160 brokers
// of 100). Target: 100 ms.
func BenchmarkLinkTable16k(b *testing.B) {
	reports := schema.Synthetic(160, 100, time.Now())
	buf := AppendLinkTable(nil, reports)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendLinkTable(buf[:0], reports)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
}

var (
	inf = math.Inf(1)
	nan = math.NaN()
)
