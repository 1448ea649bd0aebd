package aggregator

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/schema"
)

func TestQueryReadsDetail(t *testing.T) {
	for q, want := range map[string]string{
		"//link[@loss > 0.01]/@id":                   "none",
		"count(//sample)":                            "none",
		"//link[sample/@rtt > 100]/@id":              "none",
		"//broker/@address | //link/@transport":      "none",
		"//link[@state = 'latency']/@id":             "none", // a string, not a name
		"//link[descendant::sample[@loss > 0]]/@id":  "none", // an axis, not a name
		"//link/latency/@p99":                        "summary",
		"//link[latency/@mean > 100]/@id":            "none",
		"//link/latency[@min > 1]/@mean":             "summary",
		"//link[samples/@sent > 0]/@id":              "summary",
		"sum(//bucket/@count)":                       "all",
		"//link/@dropped":                            "summary",
		"//link/@*":                                  "all",
		"//sample/*":                                 "all",
		"//link/node()":                              "all",
		"//link[@loss * 2 > 0.1]/@id":                "all", // errs towards yes
		"//link[@id = 'unterminated]":                "all",
		"//cost[@profile = \"default\"]/@value":      "costs",
		"//link[   count  (cost) > 1]/@id":           "costs",
		"count(//sample[cost/@value > 100])":         "costs",
		"//sample[cost/@value > histogram/@missing]": "all",
		"//link[@loss > 0.01]/ancestor :: broker/@a": "none",
	} {
		r := queryReads(q)
		got := "none"
		switch {
		case r.detail:
			got = "all"
		case r.costs:
			got = "costs"
		case r.summary:
			got = "summary"
		}
		if got != want {
			t.Errorf("queryReads(%q) reads %s of the detail, want %s", q, got, want)
		}
	}
}

// TestHistoryWithoutDetail: a query answers the same on the history with
// only what queryReads says it reads as on the whole history; one whose
// answer holds elements is answered on the whole history.
// historyAggregator is an aggregator on a store of rounds reports, every
// interval from start, of brokers brokers with links links each.
func historyAggregator(t *testing.T, brokers, links, rounds int, every time.Duration) (*Aggregator, time.Time) {
	t.Helper()
	ctx := context.Background()
	agg, err := New(ctx, Config{Domain: "na", BrokerURL: "nats://127.0.0.1:1", DB: "sqlite:" + filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agg.Close)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	reps := schema.Synthetic(brokers, links, start)
	var batch []store.Received
	for round := range rounds {
		for _, r := range reps {
			r.Seq, r.Time = uint64(round+1), start.Add(time.Duration(round)*every)
			batch = append(batch, store.Received{Report: r, Received: r.Time})
		}
	}
	if err := agg.store.Save(ctx, batch); err != nil {
		t.Fatal(err)
	}
	return agg, start
}

func TestHistoryWithoutDetail(t *testing.T) {
	ctx := context.Background()
	agg, start := historyAggregator(t, 4, 6, 12, 5*time.Second)
	from, to := start.Add(10*time.Second), start.Add(40*time.Second)
	full, err := agg.historyView(ctx, from, to, allReads)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, q := range slices.Concat(axisQueries, rewriteQueries, []string{
		"count(//sample)", "//link[sample/@loss > 0.01]/@id", "sum(//sample/@rtt)", "//sample[@loss > 0.01]/@time",
		"//link[@loss > 0.05 and @rtt > 100]/@id", "count(//broker)", "//broker/@domain",
		"//link[@loss > 0.05 and latency/@mean > 100]/@id", "sum(//sample/latency/@mean)", "//link[latency]/@id",
		"count(//latency)", "//latency/@mean", "//link[count(latency) = 1]/@id", "//sample[latency/@mean > 50]/@time",
		"sum(//sample/samples/@lost)", "//link[latency/@p99 > 50]/@id", "//sample[@dropped > 3]/@time",
		"//link[samples/@sent > samples/@received]/@id", "sum(//samples/@window)",
		"count(//sample[cost/@value > 30])", "sum(//sample/cost[@profile = 'latency']/@value)", "//link[cost/@value > 50]/@id",
		"count(//cost)", "//sample[cost/@value > 60]/@time",
	}) {
		rd := queryReads(q)
		if rd.detail {
			continue
		}
		lean, err := agg.historyView(ctx, from, to, rd)
		if err != nil {
			t.Fatal(err)
		}
		expr, err := Compile(q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Evaluate(ctx, full, expr, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Evaluate(ctx, lean, expr, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if want.hasElements() {
			// Query loads the detail for these: check that it does.
			if got, err = agg.Query(ctx, q, from, to); err != nil {
				t.Fatal(err)
			}
		}
		if g, w := string(got.AppendXML(nil, q)), string(want.AppendXML(nil, q)); g != w {
			t.Errorf("%s: without the detail\n%.400s\nwith it\n%.400s", q, g, w)
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("only %d queries checked", checked)
	}
	res, err := agg.Query(ctx, "count(//sample)", from, to)
	if err != nil || res.Value != float64(4*6*6) {
		t.Errorf("count(//sample) = %v, %v; want %d", res.Value, err, 4*6*6)
	}
}

func TestQueryReadsFigures(t *testing.T) {
	for q, want := range map[string][]string{
		"count(//sample)":                                  {},
		"//link[sample/@loss > 0.15]/@id":                  {"loss"},
		"//link[@loss > 0.05 and latency/@mean > 100]/@id": {"loss", "lat_mean"},
		"//link[@state = 'down' or @monitor = 'down']/@id": {"state", "monitor"},
		"sum(//sample/@rtt) div count(//sample)":           {"rtt"},
		"//sample[@jitter > 5]/@time":                      {"jitter"},
		"//link/@*":                                        nil,
	} {
		if got := queryReads(q).figures; !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("queryReads(%q).figures = %q, want %q", q, got, want)
		}
	}
}

// TestHistoryPackedAnswersAlike: queries over a range that blocks and rows
// share answer as they did before the compactor packed any of it.
func TestHistoryPackedAnswersAlike(t *testing.T) {
	ctx := context.Background()
	agg, start := historyAggregator(t, 3, 4, 24, 30*time.Second) // windows of 5 minutes from start
	from, to := start.Add(2*time.Minute), start.Add(11*time.Minute)
	queries := slices.Concat(axisQueries, []string{"//sample", "count(//sample)", "//link[sample/@loss > 0.01]/@id",
		"sum(//sample/histogram/@missing)", "//link[sample/cost[@profile='default']/@value > 50]/@id", "//link/@time"})
	answers := func() []string {
		var out []string
		for _, q := range queries {
			res, err := agg.Query(ctx, q, from, to)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			out = append(out, string(res.AppendXML(nil, q)))
		}
		return out
	}
	want := answers()
	for _, before := range []time.Time{start.Add(5 * time.Minute), start.Add(time.Hour)} {
		if n, err := agg.store.Compact(ctx, before); err != nil || n == 0 {
			t.Fatalf("Compact(%v): %d, %v", before, n, err)
		}
		for i, got := range answers() {
			if got != want[i] {
				t.Errorf("packed up to %v: %s:\n got %.400s\nwant %.400s", before, queries[i], got, want[i])
			}
		}
	}
}
