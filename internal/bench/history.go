package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/aggregator"
	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/schema"
)

// HistoryConfig sets the benchmark of XPath over stored history.
type HistoryConfig struct {
	DB string // the store; required
	// Fill stores the history first: Span of reports every Interval from
	// Brokers brokers with Links links each. Without it, the store holds
	// them from an earlier run.
	Fill           bool
	Span, Interval time.Duration
	Brokers, Links int
	// Range is the time range queried, ending Span/2 after the start.
	Range  time.Duration
	Rounds int // times each query runs; the median is reported
	// Queries replaces HistoryQueries.
	Queries []string
	Logger  *slog.Logger
}

func (c *HistoryConfig) defaults() error {
	if c.DB == "" {
		return fmt.Errorf("bench history: a store (--db) is required")
	}
	if c.Span <= 0 {
		c.Span = 24 * time.Hour
	}
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Brokers <= 0 {
		c.Brokers = 50
	}
	if c.Links <= 0 {
		c.Links = 20
	}
	if c.Range <= 0 {
		c.Range = time.Hour
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Range > c.Span/2 {
		return fmt.Errorf("bench history: a range of %v does not fit in half of %v", c.Range, c.Span)
	}
	return nil
}

// HistoryQueries are the queries the benchmark times: one that counts
// every sample, one that selects on them, one on the links' latest
// figures, and one that reads what only a measurement's detail holds (the
// sample counts, in its summary part).
var HistoryQueries = []string{
	"count(//sample)",
	"//link[sample/@loss > 0.15]/@id",
	"//link[@loss > 0.05 and latency/@mean > 100]/@id",
	"sum(//sample/samples/@lost)",
}

// HistoryStart is when the benchmark's stored history begins.
var HistoryStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// HistoryTarget is the time a query over the range must take at most.
const HistoryTarget = time.Second

// HistoryStep is one query's figures.
type HistoryStep struct {
	Query          string
	Median, Max    time.Duration
	Samples, Nodes int
}

// RunHistory stores cfg.Span of reports (when cfg.Fill), then times XPath
// queries through an aggregator on that store over cfg.Range in the middle
// of it, as `wayline query --from --to` runs them.
func RunHistory(ctx context.Context, w io.Writer, cfg HistoryConfig) ([]HistoryStep, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	reports := schema.Synthetic(cfg.Brokers, cfg.Links, HistoryStart)
	for i := range reports {
		reports[i].Interval = cfg.Interval
	}
	rounds := int(cfg.Span / cfg.Interval)
	st, err := store.Open(ctx, cfg.DB, store.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if cfg.Fill {
		err = fillHistory(ctx, w, st, reports, rounds)
	}
	if err == nil {
		err = compactHistory(ctx, w, st, HistoryStart.Add(cfg.Span))
	}
	st.Close()
	if err != nil {
		return nil, err
	}
	agg, err := aggregator.New(ctx, aggregator.Config{Domain: "na", BrokerURL: "nats://unused", DB: cfg.DB,
		QueryTimeout: time.Minute, QueryMaxResults: 1 << 30, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer agg.Close()
	from := HistoryStart.Add(cfg.Span / 2)
	to := from.Add(cfg.Range)
	fmt.Fprintf(w, "XPath over %v of history (%d links, a report every %v), from %s to %s, %d rounds per query\n",
		cfg.Span, cfg.Brokers*cfg.Links, cfg.Interval, from.Format(time.RFC3339), to.Format(time.RFC3339), cfg.Rounds)
	fmt.Fprintf(w, "%-52s %10s %10s %10s %8s\n", "query", "median", "worst", "target", "answer")
	var out []HistoryStep
	queries := HistoryQueries
	if cfg.Queries != nil {
		queries = cfg.Queries
	}
	for _, q := range queries {
		step := HistoryStep{Query: q}
		times := make([]time.Duration, cfg.Rounds)
		var answer string
		for i := range times {
			t0 := time.Now()
			res, err := agg.Query(ctx, q, from, to)
			if err != nil {
				return out, fmt.Errorf("bench history: %s: %w", q, err)
			}
			times[i] = time.Since(t0)
			step.Nodes = len(res.Nodes)
			answer = fmt.Sprint(len(res.Nodes), " nodes")
			if res.Nodes == nil {
				answer = fmt.Sprint(res.Value)
			}
		}
		slices.Sort(times)
		step.Median, step.Max = times[len(times)/2], times[len(times)-1]
		fmt.Fprintf(w, "%-52s %10v %10v %10v %8s\n", q, step.Median.Round(time.Millisecond), step.Max.Round(time.Millisecond), HistoryTarget, answer)
		out = append(out, step)
	}
	return out, nil
}

// fillHistory stores rounds rounds of reps, with the aggregator's writers
// and batch size, and prints the rate.
func fillHistory(ctx context.Context, w io.Writer, st store.Store, reps []schema.Report, rounds int) error {
	total := rounds * len(reps)
	var taken atomic.Int64
	start := time.Now()
	err := saveLikeTheAggregator(ctx, st, roundRobin(reps), func() int {
		const batch = aggregator.DefaultBatchSize
		first := int(taken.Add(batch)) - batch
		return max(0, min(batch, total-first))
	}, func(int) {})
	if err != nil {
		return fmt.Errorf("bench history: fill: %w", err)
	}
	n := total * len(reps[0].Links)
	took := time.Since(start)
	fmt.Fprintf(w, "stored %d reports, %d measurements, in %v (%.0f measurements/s)\n", total, n, took.Round(time.Second), float64(n)/took.Seconds())
	return nil
}

// compactHistory packs what the store holds before end into blocks, as
// an aggregator's compactor does as time passes, and prints the rate. A
// store packed already has nothing to pack.
func compactHistory(ctx context.Context, w io.Writer, st store.Store, end time.Time) error {
	start := time.Now()
	n, err := st.Compact(ctx, end)
	if err != nil {
		return fmt.Errorf("bench history: compact: %w", err)
	}
	if n > 0 {
		took := time.Since(start)
		fmt.Fprintf(w, "packed %d measurements into blocks in %v (%.0f measurements/s)\n", n, took.Round(time.Second), float64(n)/took.Seconds())
	}
	return nil
}
