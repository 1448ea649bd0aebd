package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/aggregator"
	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
)

// IngestConfig sets the ingest benchmark.
type IngestConfig struct {
	// DB is the store; empty for a SQLite file in a temporary directory.
	DB string
	// Path is what is measured: "store", the aggregator's write path (its
	// batches, its writers, into DB), or "network", reports sent as XML
	// across the brokers to an aggregator, which decodes, holds and stores
	// them.
	Path string
	// Duration is how long reports are sent.
	Duration time.Duration
	// Brokers and Links are the reporting brokers and the links in each
	// report.
	Brokers, Links int
	// Publishers are the client connections the reports are sent on, and
	// Window the reports each keeps unacknowledged (the network path).
	Publishers, Window int
	// Every is how often the rate is printed.
	Every  time.Duration
	Logger *slog.Logger
}

func (c *IngestConfig) defaults() error {
	if c.Path == "" {
		c.Path = "store"
	}
	if c.Path != "store" && c.Path != "network" {
		return fmt.Errorf("bench ingest: path %q: want store or network", c.Path)
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.Brokers <= 0 {
		c.Brokers = 50
	}
	if c.Links <= 0 {
		c.Links = 20
	}
	if c.Publishers <= 0 {
		c.Publishers = 4
	}
	if c.Window <= 0 {
		c.Window = 128
	}
	if c.Every <= 0 {
		c.Every = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Brokers < c.Publishers {
		return fmt.Errorf("bench ingest: %d brokers cannot keep %d publishers busy", c.Brokers, c.Publishers)
	}
	return nil
}

// IngestResult is what the ingest benchmark measured.
type IngestResult struct {
	Measurements uint64        // link measurements stored
	Elapsed      time.Duration // from the first report sent to the last stored
	Rate         float64       // measurements stored per second over Elapsed
	Slowest      float64       // the slowest window's rate
}

// IngestTarget is the rate the aggregator must sustain.
const IngestTarget = 100000

// ingestToken is the admin token of the benchmark's brokers.
const ingestToken = "bench-ingest-token"

// RunIngest measures how many link measurements per second are stored
// while a broker network runs: brokers A-B-C joined by tcp links, which
// measure their links and report to an aggregator of their own, a client
// of A, storing into cfg.DB. On that network, the "store" path times the
// aggregator's write path: batches of its batch size, as many at once as
// it has writers, of synthetic brokers' reports (cfg.Brokers brokers,
// cfg.Links links each). The "network" path sends those reports as XML
// from clients of C, as brokers do (on $WL.perf.<domain>, each
// acknowledged), to a second aggregator at A, which decodes, holds and
// stores them; it acknowledges only what it can hold, so its rate is what
// it stores, not what is sent.
func RunIngest(ctx context.Context, w io.Writer, cfg IngestConfig) (IngestResult, error) {
	if err := cfg.defaults(); err != nil {
		return IngestResult{}, err
	}
	chain, err := waylineChain(ctx, cfg.Logger, ingestToken)
	if err != nil {
		return IngestResult{}, err
	}
	defer chain.close()
	db := cfg.DB
	if db == "" {
		dir, err := os.MkdirTemp("", "wayline-ingest-")
		if err != nil {
			return IngestResult{}, err
		}
		defer os.RemoveAll(dir)
		db = "sqlite:" + filepath.Join(dir, "wayline.db")
	}
	// The network's own aggregator: the brokers' reports, as ever.
	own, err := startIngestAggregator(ctx, "bench", chain.pubURL, db, 0, cfg.Logger)
	if err != nil {
		return IngestResult{}, err
	}
	defer own.Close()

	reports := schema.Synthetic(cfg.Brokers, cfg.Links, time.Now())
	fmt.Fprintf(w, "ingest (%s path): %d brokers x %d links per report into %s, with brokers A-B-C running\n",
		cfg.Path, cfg.Brokers, cfg.Links, redactDSN(db))
	var stored func() uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, max(cfg.Publishers, aggregator.DefaultWriters))
	if cfg.Path == "store" {
		st, err := store.Open(ctx, db, store.Options{Logger: cfg.Logger})
		if err != nil {
			return IngestResult{}, err
		}
		defer st.Close()
		var n atomic.Uint64
		stored = n.Load
		next := roundRobin(reports)
		fmt.Fprintf(w, "  %d writers, batches of %d reports (the aggregator's defaults)\n", aggregator.DefaultWriters, aggregator.DefaultBatchSize)
		wg.Go(func() {
			err := saveLikeTheAggregator(ctx, st, next, func() int {
				if stop.Load() {
					return 0
				}
				return aggregator.DefaultBatchSize
			}, func(reports int) { n.Add(uint64(reports * cfg.Links)) })
			if err != nil {
				errs <- err
			}
		})
	} else {
		// The aggregator holds at most a few batches: past them it stops
		// acknowledging, the senders wait, and what is measured is the
		// store.
		agg, err := startIngestAggregator(ctx, "na", chain.pubURL, db, 4*aggregator.DefaultBatchSize, cfg.Logger)
		if err != nil {
			return IngestResult{}, err
		}
		defer agg.Close()
		stored = func() uint64 { return agg.StatsSnapshot().Stored * uint64(cfg.Links) }
		fmt.Fprintf(w, "  %d publishers at C, %d reports in flight each; the aggregator at A\n", cfg.Publishers, cfg.Window)
		for p := range cfg.Publishers {
			var mine []schema.Report
			for i := p; i < len(reports); i += cfg.Publishers {
				mine = append(mine, reports[i])
			}
			wg.Go(func() {
				if err := sendReports(chain.subURL, mine, cfg.Window, &stop); err != nil {
					errs <- err
				}
			})
		}
		defer func() {
			// What was acknowledged is held: it is stored before the end.
			if st := agg.StatsSnapshot(); st.Rejected > 0 || st.Gaps > 0 {
				fmt.Fprintf(w, "  the aggregator refused %d reports and missed %d\n", st.Rejected, st.Gaps)
			}
		}()
	}
	res, err := ingestWindows(ctx, w, cfg, stored, errs)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return res, err
	}
	if ok, why := own.Healthy(); !ok {
		return res, fmt.Errorf("bench ingest: the network's own aggregator is degraded: %s", why)
	}
	fmt.Fprintf(w, "stored %d measurements in %.1f s: %.0f measurements/s (slowest %.0f s window %.0f/s); target %d/s: %.2fx\n",
		res.Measurements, res.Elapsed.Seconds(), res.Rate, cfg.Every.Seconds(), res.Slowest,
		IngestTarget, res.Rate/IngestTarget)
	return res, nil
}

// startIngestAggregator starts an aggregator of domain at url storing into
// db, holding at most buffer reports (0: the default).
func startIngestAggregator(ctx context.Context, domain, url, db string, buffer int, log *slog.Logger) (*aggregator.Aggregator, error) {
	agg, err := aggregator.New(ctx, aggregator.Config{Domain: domain, BrokerURL: url, Token: ingestToken,
		DB: db, BufferReports: buffer, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := agg.Start(ctx); err != nil {
		agg.Close()
		return nil, err
	}
	return agg, nil
}

// saveLikeTheAggregator saves batches of next's reports into st as the
// aggregator writes them, its writers each saving a batch at a time, until
// take (asked before each batch for its size) says 0 or a save fails;
// saved hears of each batch stored.
func saveLikeTheAggregator(ctx context.Context, st store.Store, next func(int) []store.Received, take func() int, saved func(int)) error {
	var wg sync.WaitGroup
	errs := make(chan error, aggregator.DefaultWriters)
	for range aggregator.DefaultWriters {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := take()
				if n <= 0 {
					return
				}
				if err := st.Save(ctx, next(n)); err != nil {
					errs <- err
					return
				}
				saved(n)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// roundRobin hands out reps in turn, each time round with the next
// sequence number and a time one interval later.
func roundRobin(reps []schema.Report) func(n int) []store.Received {
	var mu sync.Mutex
	i, round := 0, 0
	t0 := reps[0].Time
	return func(n int) []store.Received {
		mu.Lock()
		defer mu.Unlock()
		out := make([]store.Received, n)
		for k := range out {
			r := reps[i]
			r.Seq = uint64(round + 1)
			r.Time = t0.Add(time.Duration(round) * r.Interval)
			out[k] = store.Received{Report: r, Received: r.Time.Add(20 * time.Millisecond), Bytes: 300 * len(r.Links)}
			if i++; i == len(reps) {
				i, round = 0, round+1
			}
		}
		return out
	}
}

// ingestWindows prints the rate every cfg.Every until cfg.Duration is over.
func ingestWindows(ctx context.Context, w io.Writer, cfg IngestConfig, stored func() uint64, errs <-chan error) (IngestResult, error) {
	start := time.Now()
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	end := time.NewTimer(cfg.Duration)
	defer end.Stop()
	first := stored()
	last, lastAt := first, start
	res := IngestResult{Slowest: -1}
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case err := <-errs:
			return res, fmt.Errorf("bench ingest: %w", err)
		case now := <-tick.C:
			n := stored()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			fmt.Fprintf(w, "  %5.0f s  %8.0f measurements/s\n", now.Sub(start).Seconds(), rate)
			if res.Slowest < 0 || rate < res.Slowest {
				res.Slowest = rate
			}
			last, lastAt = n, now
		case now := <-end.C:
			res.Elapsed = now.Sub(start)
			res.Measurements = stored() - first
			res.Rate = float64(res.Measurements) / res.Elapsed.Seconds()
			return res, nil
		}
	}
}

// sendReports sends reps round after round, as their brokers would: each
// round a new sequence number and a time one interval later, each report
// with its broker's acknowledgement subject as its reply. At most window
// reports are unacknowledged, and what is not acknowledged within a second
// is sent again, as brokers do. The aggregator acknowledges a report once
// it is stored, so window must cover what its writers store at once.
func sendReports(url string, reps []schema.Report, window int, stop *atomic.Bool) error {
	nc, err := nats.Connect(url, nats.UserInfo(netapi.AdminUser, ingestToken), nats.Name("bench-ingest"))
	if err != nil {
		return fmt.Errorf("bench ingest: connect %s: %w", url, err)
	}
	defer nc.Close()
	type key struct {
		broker string
		seq    uint64
	}
	type pending struct {
		data []byte
		sent time.Time
	}
	var mu sync.Mutex
	out := map[key]*pending{}
	credit := make(chan struct{}, window)
	for range window {
		credit <- struct{}{}
	}
	prefix := netapi.PerfAckSubject("")
	sub, err := nc.Subscribe(netapi.PerfAckSubject(">"), func(m *nats.Msg) {
		seq, err := strconv.ParseUint(string(m.Data), 10, 64)
		if err != nil {
			return
		}
		k := key{strings.TrimPrefix(m.Subject, prefix), seq}
		mu.Lock()
		defer mu.Unlock()
		if out[k] != nil {
			delete(out, k)
			credit <- struct{}{}
		}
	})
	if err != nil {
		return fmt.Errorf("bench ingest: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("bench ingest: flush: %w", err)
	}
	subject := netapi.PerfSubject("na")
	resend := func() error {
		mu.Lock()
		defer mu.Unlock()
		for k, p := range out {
			if time.Since(p.sent) < time.Second {
				continue
			}
			p.sent = time.Now()
			if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: prefix + k.broker, Data: p.data}); err != nil {
				return fmt.Errorf("bench ingest: publish: %w", err)
			}
		}
		return nil
	}
	t0 := reps[0].Time
	for round := 0; ; round++ {
		for i := range reps {
			r := &reps[i]
			for waiting := true; waiting; {
				if stop.Load() {
					return nil
				}
				select {
				case <-credit:
					waiting = false
				case <-time.After(time.Second):
					if err := resend(); err != nil {
						return err
					}
				}
			}
			r.Seq = uint64(round + 1)
			r.Time = t0.Add(time.Duration(round) * r.Interval)
			p := &pending{data: r.AppendXML(nil), sent: time.Now()}
			mu.Lock()
			out[key{r.Broker, r.Seq}] = p
			mu.Unlock()
			if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: prefix + r.Broker, Data: p.data}); err != nil {
				return fmt.Errorf("bench ingest: publish: %w", err)
			}
		}
	}
}

// redactDSN hides a DSN's password.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	colon := strings.Index(dsn, "://")
	if at < 0 || colon < 0 {
		return dsn
	}
	userinfo := dsn[colon+3 : at]
	if u, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:colon+3] + u + ":***" + dsn[at:]
	}
	return dsn
}
