package aggregator

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

func TestSplitOf(t *testing.T) {
	for q, want := range map[string]split{
		"//link[sample/@loss > 0.15]/@id":                   splitNodes,
		"//link[@loss > 0.05 and latency/@mean > 100]/@id":  splitNodes,
		" //link[1]/@id ":                                   splitNone, // positions: see boolPredicate
		"//link[last()]":                                    splitNone,
		"//link[@loss > 0.01][1]":                           splitNone,
		"//link/sample[position() < 3]/@loss":               splitNone,
		"//link[sample[.5]]":                                splitNone,
		"//link[sample/@loss + 1]":                          splitNone,
		"//sample[cost and histogram]":                      splitNone,
		"//link[not(sample)]/@id":                           splitNodes,
		"//sample[cost[@profile='a/b']][.//bucket]/@time":   splitNodes,
		"//link[count(sample) > 2]/sample[@loss < 3]/@loss": splitNodes,
		"//bucket":                      splitNodes,
		"count(//sample)":               splitSum,
		"sum( //sample/samples/@lost )": splitSum,
		"count(//sample/histogram/bucket[@count > 40])":   splitSum,
		"sum(//sample/cost[@profile = 'default']/@value)": splitSum,
		"//broker[link]/@address":                         splitNone, // brokers' positions span parts
		"//broker/link":                                   splitNone,
		"/network/broker/link":                            splitNone,
		"/descendant::link[1]":                            splitNone, // the first in the document
		"(//link)[1]":                                     splitNone,
		"//link[@id = //link[2]/@id]":                     splitNone, // an absolute path inside
		"//link[count(/network/broker) > 1]":              splitNone,
		"//link[@loss > 0.1]/following-sibling::link[1]":  splitNone,
		"//link/../@address":                              splitNone,
		"//latency/parent::*/@id":                         splitNone,
		"//link[id('x')]":                                 splitNone,
		"//link | //sample":                               splitNone,
		"//link/*":                                        splitNone,
		"//link/@loss > 0.5":                              splitNone, // a boolean
		"count(//link) + count(//sample)":                 splitNone,
		"count(//link) > 1":                               splitNone,
		"sum(//link/@loss) div count(//link)":             splitNone,
		"string(//link/@id)":                              splitNone,
		"//link[$x]":                                      splitNone,
		"//link[@a = 'unterminated]":                      splitNone,
		"//link[@a > 1":                                   splitNone,
		"//link/preceding::sample":                        splitNone,
		"//link/ancestor-or-self :: broker":               splitNone,
		"//links":                                         splitNone,
		"//link[sample[@loss > 0.1]/following-sibling::sample[1]]": splitNone,
	} {
		if got := splitOf(q); got != want {
			t.Errorf("splitOf(%q) = %d, want %d", q, got, want)
		}
	}
}

// TestSplitAnswersAlike: every query that splits answers in parts as on
// the view whole, on the latest view and on a history.
func TestSplitAnswersAlike(t *testing.T) {
	queries := slices.Concat(axisQueries, rewriteQueries, historyQueries, []string{
		"//link[sample/@loss > 0.01]/@id", "count(//sample)", "sum(//sample/@loss)", "sum(//samples/@sent)",
		"//link[1]/@id", "//link[last()]/sample[1]/@time", "//sample[cost[@profile='latency']]/@time",
		"count(//bucket[@count > 20])", "//bucket[last()]/@le", "//link[not(sample)]/@id", "//link/sample[2]/latency/@p99",
	})
	views := map[string]*view{"latest": latestView(viewReports(), time.Now()), "history": historyTestView()}
	for name, v := range views {
		checked := 0
		for _, q := range queries {
			if splitOf(q) == splitNone {
				continue
			}
			expr, err := Compile(q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Evaluate(context.Background(), v, expr, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{2, 3, 7} {
				got, ok, err := evaluateSplit(context.Background(), v, q, 1000, n)
				if !ok || err != nil {
					t.Fatalf("%s: %s in %d parts: %v, %v", name, q, n, ok, err)
				}
				if g, w := got.Value, want.Value; g != nil || w != nil {
					gf, _ := g.(float64)
					wf, _ := w.(float64)
					if math.Abs(gf-wf) > 1e-9*math.Abs(wf) {
						t.Errorf("%s: %s in %d parts = %v, whole %v", name, q, n, g, w)
					}
					continue
				}
				if g, w := string(got.AppendXML(nil, q)), string(want.AppendXML(nil, q)); g != w {
					t.Errorf("%s: %s in %d parts:\n%.400s\nwhole:\n%.400s", name, q, n, g, w)
				}
			}
			checked++
		}
		if checked < 20 {
			t.Errorf("%s: only %d queries split", name, checked)
		}
	}
	// A limit on nodes holds for the parts together.
	v := historyTestView()
	res, ok, err := evaluateSplit(context.Background(), v, "//sample", 5, 3)
	if !ok || err != nil || len(res.Nodes) != 5 || !res.Truncated {
		t.Errorf("//sample limited to 5 in 3 parts: %d nodes, truncated %v, %v %v", len(res.Nodes), res.Truncated, ok, err)
	}
	// Parts hold the brokers whole, in order, each once.
	parts := v.parts(3)
	var names, want []kv
	for _, p := range parts {
		for _, b := range p.brokers {
			names = append(names, b.attrs[0])
		}
	}
	for _, b := range v.brokers {
		want = append(want, b.attrs[0])
	}
	if len(parts) != 3 || !slices.Equal(names, want) {
		t.Errorf("3 parts of brokers %v: %d parts of %v", want, len(parts), names)
	}
}
