package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/wayline/wayline/aggregator"
	"github.com/wayline/wayline/schema"
	"github.com/wayline/wayline/web"
)

// XMLConfig sets the XML handling benchmark.
type XMLConfig struct {
	Links  int // links in the snapshot, 100 per broker
	Rounds int // times each step runs; the median is reported
}

// XMLConstraint is the constraint query the benchmark evaluates.
const XMLConstraint = "//link[@loss > 0.05 and latency/@mean > 100]"

// XMLStep is one measured step.
type XMLStep struct {
	Name   string
	Median time.Duration
	Max    time.Duration
	Target time.Duration
	Seed   time.Duration // what the system Wayline descends from took
}

// RunXML measures, on a snapshot of cfg.Links links: writing the snapshot
// as an XML document, evaluating a constraint on it with XPath, and
// rendering it as an HTML table; and prints them beside the targets and
// the seed system's figures.
func RunXML(ctx context.Context, w io.Writer, cfg XMLConfig) ([]XMLStep, error) {
	if cfg.Links < 1 || cfg.Rounds < 1 {
		return nil, fmt.Errorf("bench xml: links and rounds must be positive")
	}
	brokers := (cfg.Links + 99) / 100
	at := time.Now()
	reports := schema.Synthetic(brokers, 100, at)
	reports[len(reports)-1].Links = reports[len(reports)-1].Links[:cfg.Links-100*(brokers-1)]
	var doc, page []byte
	var found int
	steps := []struct {
		XMLStep
		run func() error
	}{
		{XMLStep{Name: "build the XML document", Target: 50 * time.Millisecond, Seed: 2500 * time.Millisecond}, func() error {
			doc = schema.AppendSnapshotXML(doc[:0], reports, at)
			return nil
		}},
		{XMLStep{Name: "XPath constraint", Target: 20 * time.Millisecond, Seed: 5 * time.Second}, func() error {
			res, err := aggregator.QueryReports(ctx, reports, at, XMLConstraint, 1<<30)
			found = len(res.Nodes)
			return err
		}},
		{XMLStep{Name: "render the HTML table", Target: 100 * time.Millisecond, Seed: 3500 * time.Millisecond}, func() error {
			page = web.AppendLinkTable(page[:0], reports)
			return nil
		}},
	}
	fmt.Fprintf(w, "XML handling: a snapshot of %d links from %d brokers, %d rounds per step, median and worst\n", cfg.Links, brokers, cfg.Rounds)
	fmt.Fprintf(w, "%-24s %10s %10s %10s %10s %12s\n", "step", "median", "worst", "target", "seed", "vs seed")
	var out []XMLStep
	for _, s := range steps {
		times := make([]time.Duration, cfg.Rounds)
		for i := range times {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			start := time.Now()
			if err := s.run(); err != nil {
				return out, fmt.Errorf("bench xml: %s: %w", s.Name, err)
			}
			times[i] = time.Since(start)
		}
		slices.Sort(times)
		s.Median, s.Max = times[len(times)/2], times[len(times)-1]
		out = append(out, s.XMLStep)
		fmt.Fprintf(w, "%-24s %8.1fms %8.1fms %8.0fms %8.0fms %11.0fx\n", s.Name, ms(s.Median), ms(s.Max), ms(s.Target), ms(s.Seed),
			float64(s.Seed)/float64(s.Median))
	}
	fmt.Fprintf(w, "document %d bytes; %q matched %d links; table %d bytes\n", len(doc), XMLConstraint, found, len(page))
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
