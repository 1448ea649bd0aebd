package aggregator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

func sampleReport() schema.Report {
	return schema.Report{Broker: "na.c1.a", Domain: "na", Seq: 7, Time: time.Unix(1700000000, 0).UTC(), Interval: 5 * time.Second,
		Links: []schema.Link{{ID: "00000000-0000-4000-8000-000000000001", A: "na.c1.a", B: "na.c1.b", Transport: "udp", State: "up", Monitor: "up",
			RTT: 40, Jitter: 1.5, Loss: 0.02, Latency: schema.Summary{Min: 19, Mean: 20, P50: 20, P90: 21, P99: 22, Max: 25},
			Samples:   schema.Samples{Sent: 100, Received: 98, Lost: 2, Window: 98},
			Costs:     []schema.Cost{{Profile: "default", Value: 21.5}},
			Histogram: schema.Histogram{Missing: 2, Buckets: []schema.Bucket{{LE: 20, Count: 50}, {LE: 25, Count: 48}}}}}}
}

func TestQueriesOnTheLatestView(t *testing.T) {
	doc := latestView([]schema.Report{sampleReport()}, time.Now())
	for q, want := range map[string]string{
		"count(//link)":                                         "1",
		"//link[@loss > 0.01]/@id":                              "00000000-0000-4000-8000-000000000001",
		"string(//link[latency/@p99 > 21]/@b)":                  "na.c1.b",
		"sum(//link/samples/@lost)":                             "2",
		"boolean(//link[cost[@profile='default']/@value > 20])": "true",
		"count(//link[histogram/bucket/@le = 25])":              "1",
		"count(//broker[@address='na.c1.a'])":                   "1",
	} {
		expr, err := Compile(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		res, err := Evaluate(context.Background(), doc, expr, 100)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var got string
		if res.Value != nil {
			got = valueText(res.Value)
		} else if len(res.Nodes) > 0 {
			got = res.Nodes[0].Value()
		}
		if got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
}

func TestQueryLimits(t *testing.T) {
	var reps []schema.Report
	for i := range 50 {
		r := sampleReport()
		r.Broker = "na.c1.b" + strings.Repeat("x", i%3) + string(rune('a'+i%26))
		reps = append(reps, r)
	}
	doc := latestView(reps, time.Now())
	expr, _ := Compile("//link")
	res, err := Evaluate(context.Background(), doc, expr, 10)
	if err != nil || len(res.Nodes) != 10 || !res.Truncated {
		t.Fatalf("limit: %d nodes, truncated %v, %v", len(res.Nodes), res.Truncated, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	expr, _ = Compile("//*")
	if _, err := Evaluate(ctx, doc, expr, 1<<20); err == nil {
		t.Fatal("a cancelled query ran to the end")
	}
}

// FuzzQuery feeds arbitrary queries to the compiler and evaluator: they
// may refuse a query, never crash, and the compiler's rewrite of
// descendant steps never changes an answer. Seeds are in
// testdata/fuzz/FuzzQuery.
func FuzzQuery(f *testing.F) {
	for _, q := range rewriteQueries {
		f.Add(q)
	}
	v := latestView(viewReports(), time.Unix(0, 0))
	f.Fuzz(func(t *testing.T, q string) {
		_, _ = parseTime(q)
		expr, err := Compile(q)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := Evaluate(ctx, v, expr, 100); err != nil || descendantSteps(q) == q {
			return
		}
		got, want := answer(t, q, newNav(v)), answerRaw(t, q, newNav(v))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: rewritten as %s, %d results; as written %d", q, descendantSteps(q), len(got), len(want))
		}
	})
}
