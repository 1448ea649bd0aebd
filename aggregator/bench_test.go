package aggregator

import (
	"context"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

// constraintQuery is the constraint of the XML benchmark: lossy and slow
// links.
const constraintQuery = "//link[@loss > 0.05 and latency/@mean > 100]"

// BenchmarkLatestView16k builds the tree XPath queries run on for a
// snapshot of 16,000 links (160 brokers of 100).
func BenchmarkLatestView16k(b *testing.B) {
	reports := schema.Synthetic(160, 100, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		latestView(reports, time.Now())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
}

// BenchmarkXPathConstraint16k evaluates a constraint on the view of 16,000
// links. Target: 20 ms.
func BenchmarkXPathConstraint16k(b *testing.B) {
	doc := latestView(schema.Synthetic(160, 100, time.Now()), time.Now())
	expr, err := Compile(constraintQuery)
	if err != nil {
		b.Fatal(err)
	}
	var found int
	for b.Loop() {
		res, err := Evaluate(context.Background(), doc, expr, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		found = len(res.Nodes)
	}
	if found == 0 {
		b.Fatal("the constraint found no link; the benchmark would measure nothing")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
	b.ReportMetric(float64(found), "links")
}
