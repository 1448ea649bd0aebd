package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/wayline/wayline/aggregator"
	"github.com/wayline/wayline/internal/bench"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/topology"
	"github.com/wayline/wayline/transports"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		out := stdout
		if len(args) == 0 {
			out = stderr
		}
		fmt.Fprintln(out, `Usage: wayline bench <experiment> [flags]

Experiments:
  overlay          messages across a 3-broker chain, against a NATS leafnode chain and a NATS cluster
  accuracy         link measurement against emulated conditions, for every transport
  failover-detect  how fast a dead link is declared down, and false downs without outages
  failover         time from a link failure to traffic on the other path, in a 6-broker WAN
  burst            100,000 messages at once across an ocean on udp, quic and tcp: delivered, and drops counted
  contracts        delay contracts: predicted against measured delay distributions, and a test bed of two paths
  priority         a link capped at 1 Mbit/s offered 2 Mbit/s: high and low classes against one class
  updates          cost update messages per minute in a 100-broker network, with and without the threshold
  xml              XML document, XPath constraint and HTML table for a 16,000-link snapshot
  ingest           link measurements stored per second, with a broker network running
  history          XPath over an hour of 24 hours of stored measurements of 1,000 links

Run 'wayline bench <experiment> --help' for its flags.`)
		if len(args) == 0 {
			return usageError{"no experiment given"}
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "overlay":
		return benchOverlay(ctx, args[1:], stdout, stderr)
	case "failover":
		return benchFailover(ctx, args[1:], stdout, stderr)
	case "burst":
		return benchBurst(ctx, args[1:], stdout, stderr)
	case "contracts":
		return benchContracts(ctx, args[1:], stdout, stderr)
	case "priority":
		return benchPriority(ctx, args[1:], stdout, stderr)
	case "accuracy":
		return benchAccuracy(ctx, args[1:], stdout, stderr)
	case "failover-detect":
		return benchFailoverDetect(ctx, args[1:], stdout, stderr)
	case "updates":
		return benchUpdates(ctx, args[1:], stdout, stderr)
	case "xml":
		return benchXML(ctx, args[1:], stdout, stderr)
	case "ingest":
		return benchIngest(ctx, args[1:], stdout, stderr)
	case "history":
		return benchHistory(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown experiment %q", args[0])}
}

func benchOverlay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench overlay", "bench overlay [flags]", `
Measures, one after the other in this process: Wayline's A-B-C chain of
brokers over tcp (publisher on A, subscriber on C), a chain of three
nats-servers joined by leafnodes, a 3-node NATS cluster, and the Wayline
chain over quic. For each it
prints the delivered messages per second under flow control (the
publisher keeps at most --window messages in flight, so that systems are
compared on delivered messages, not lost ones), the messages dropped, and
the one-way p50/p99 latency at a steady --rate. The last lines are the
ratios against the leafnode chain (ratio_vs_nats_leaf_throughput=<x.xx>)
and of quic against tcp (ratio_quic_vs_tcp_throughput=<x.xx>). With
--systems wayline,wayline-secret it compares the chain with its links
authenticated by the network secret to the chain without, round by round,
and measures how long a link takes to set up with each kind of
authentication.

Each round's line also gives what the Go runtime did during the latency
run (GC cycles, and the CPU time of the garbage collector and of the
scavenger, which gives freed memory back to the operating system): on a
2-core machine each takes a processor for a millisecond or more at a
time, and messages that wait behind them make part of the p99.
With --trace FILE, each system's latency run in the first round is
traced into FILE.<system> (open it with go tool trace), with a log event
of category "late" for every message slower than --late-after.

With --slices N the systems run side by side: all are started at once,
each has its throughput run, and then their latency runs take turns in N
slices of --latency-duration each, so that what the machine does over a
few seconds falls on every system alike. Each slice's p50 and p99 are
printed; the table gives each system's figures over all its slices. Each
throughput run then has the other systems idle beside it, in a process
that has just started them all: compare throughput in rounds.`, stdout, stderr)
	var cfg bench.OverlayConfig
	fs.DurationVar(&cfg.Duration, "duration", 5e9, "length of each throughput run")
	fs.IntVar(&cfg.Size, "size", 128, "message payload size in bytes (at least 8)")
	fs.IntVar(&cfg.Window, "window", 20000, "messages in flight before the publisher waits")
	fs.IntVar(&cfg.LatencyRate, "rate", 10000, "publishing rate of the latency run, messages per second")
	fs.DurationVar(&cfg.LatencyDuration, "latency-duration", 3e9, "length of each latency run")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; the systems take turns, and the median round is reported")
	fs.IntVar(&cfg.Slices, "slices", 0, "instead of rounds, run the systems side by side and cut each one's latency run into this many slices of --latency-duration, the systems taking turns slice by slice")
	systems := fs.String("systems", "wayline,nats-leaf,nats-cluster,wayline-quic", "comma-separated systems to measure: wayline, wayline-secret (links authenticated by the network secret), wayline-tls, wayline-quic, nats-leaf, nats-cluster; with wayline and wayline-secret, what authentication costs")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&cfg.Trace, "trace", "", "trace each system's first latency run into this file, with the system's name added")
	fs.DurationVar(&cfg.LateAfter, "late-after", 500*time.Microsecond, "with --trace, the latency past which a message is logged in the trace as late")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.Logger = log
	cfg.Systems = strings.Split(*systems, ",")
	if cfg.Slices < 0 {
		return usageError{"--slices must not be negative"}
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	_, err = bench.RunOverlay(ctx, stdout, cfg)
	return err
}

// startCPUProfile profiles this process into the file path names, if
// any, until the function it returns is called.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func benchFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench failover", "bench failover [flags]", `
Emulates a 6-broker wide-area network in this process (two regions of
three brokers, two trans-Atlantic udp links), runs a steady stream across
it, fails the busiest link Trials times (a full outage, both directions)
and reports, for each failure, the time to the first message delivered
over the other path, split into detection (the link's end declares it
down), dissemination (until the publisher's broker changes its routes)
and recomputation, and the messages lost, then doubles the busiest
link's delay Slowdowns times and reports how soon the stream leaves it.
The failures' last line is failover_p99_ms=<x>, the slowdowns'
slowdown_max_ms=<x>.`, stdout, stderr)
	var cfg bench.FailoverConfig
	fs.IntVar(&cfg.Trials, "trials", 20, "failures to time")
	fs.DurationVar(&cfg.Interval, "interval", 100e6, "probe interval of every link")
	fs.IntVar(&cfg.Rate, "rate", 500, "the stream's messages per second")
	fs.DurationVar(&cfg.Settle, "settle", 0, "undisturbed time before each failure, longer than flap damping needs (default 20s)")
	fs.IntVar(&cfg.Slowdowns, "slowdowns", 5, "times the busiest link's delay is doubled")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.Logger = log
	_, err = bench.RunFailover(ctx, stdout, cfg)
	return err
}

func benchBurst(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench burst", "bench burst [flags]", `
Starts four brokers in this process, na.c1.a -tcp- na.c1.b -X- eu.c1.a -tcp-
eu.c1.b, whose trans-Atlantic link X carries the demo's conditions, and
publishes a burst of messages at na.c1.a as fast as the client can, with a
subscriber at eu.c1.b. Each transport of X gets Rounds bursts, each in a
fresh network. For each, it reports the messages delivered against those
sent, what the brokers counted as dropped (by reason: lost_in_transit,
send_queue_full, ...), what went missing uncounted, duplicates, messages
out of order and the rate. Ends with burst_<transport>_delivered_pct=<x>
and burst_<transport>_uncounted=<n> (the worst round) per transport.`, stdout, stderr)
	var cfg bench.BurstConfig
	fs.IntVar(&cfg.Messages, "messages", 100000, "messages in each burst")
	fs.IntVar(&cfg.Size, "size", 128, "payload bytes of each message (at least 8)")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "bursts per transport")
	transportsFlag := fs.String("transports", "udp,quic,tcp", "comma-separated transports of the trans-Atlantic link")
	delay := fs.Duration("delay", 45*time.Millisecond, "one-way delay of the trans-Atlantic link")
	jitter := fs.Duration("jitter", 3*time.Millisecond, "jitter of the trans-Atlantic link")
	loss := fs.Float64("loss", 1, "loss of the trans-Atlantic link, in percent")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	if *loss < 0 || *loss > 100 || *delay < 0 || *jitter < 0 {
		return usageError{"--loss must be 0-100 and --delay, --jitter not negative"}
	}
	cfg.Logger = log
	cfg.Transports = strings.Split(*transportsFlag, ",")
	cfg.Atlantic = &transports.Emulation{Delay: *delay, Jitter: *jitter, Loss: *loss / 100}
	_, err = bench.RunBurst(ctx, stdout, cfg)
	return err
}

func benchContracts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench contracts", "bench contracts [flags]", `
First composes, for each path length of --hops and jitter distribution of
--dists, hop distributions drawn from the emulation (as many frames as a
link monitor's window holds) as routes compose them, against the
distribution of the emulated path itself (200,000 paths drawn): the
Kolmogorov-Smirnov distance and the p99's error, median and range over
--seeds draws. Then models those chains without brokers: hops that keep
frames in order as the emulation's reliable links do, 50,000 messages
every --gap and probes about every --probe on each hop; it composes each
hop's probe delays, and each hop's message delays, against the messages'
end-to-end delays (what probes on a timer, and hops taken as independent,
cannot see). Then, for each, starts a chain of brokers in this process
whose every hop carries the same emulated conditions, puts a delay
contract on the chain's subject, sends messages from one end to the
other at a steady rate (--warm of them first, so that
the links' monitors measure them under that load), and compares the
one-way delays of the delivered messages with the distribution the first
broker predicts for the path: the Kolmogorov-Smirnov distance, p50 and
p99, and loss. With --bed, then runs the test bed: one path with the lower
mean delay and a heavy tail, one steady, a contract of 99% within 50 ms;
contract and default traffic side by side. Ends with
contracts_worst_ks=<x> contracts_worst_p99_error_pct=<y>.`, stdout, stderr)
	var cfg bench.ContractsConfig
	hops := fs.String("hops", "2,3,4", "comma-separated path lengths")
	dists := fs.String("dists", "uniform,normal,pareto", "comma-separated jitter distributions")
	fs.DurationVar(&cfg.Delay, "delay", 10*time.Millisecond, "one-way delay of each hop")
	fs.DurationVar(&cfg.Jitter, "jitter", 3*time.Millisecond, "jitter of each hop (see the emulation's distributions)")
	loss := fs.Float64("loss", 1, "loss of each hop, in percent")
	fs.StringVar(&cfg.Transport, "transport", "tcp", "transport of every hop")
	fs.IntVar(&cfg.Messages, "messages", 300, "messages timed on each path")
	fs.DurationVar(&cfg.Gap, "gap", 40*time.Millisecond, "time between two messages")
	fs.DurationVar(&cfg.Warm, "warm", 13*time.Second, "traffic before the timed messages")
	fs.BoolVar(&cfg.Bed, "bed", true, "run the test bed too")
	fs.BoolVar(&cfg.ModelOnly, "model-only", false, "only the models: composition and chain (no brokers)")
	fs.IntVar(&cfg.Seeds, "seeds", 5, "draws of each case in the model comparison")
	fs.IntVar(&cfg.Window, "window", monitor.DefaultWANConfig().DistWindow, "probes a link's distribution holds (the monitoring block's distribution_window), in the model and on the brokers")
	fs.DurationVar(&cfg.Probe, "probe", 50*time.Millisecond, "the brokers' probe interval")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	if *loss < 0 || *loss > 100 || cfg.Gap <= 0 || cfg.Messages <= 0 {
		return usageError{"--loss must be 0-100, --gap and --messages above 0"}
	}
	// --probe and --window are the monitoring block's interval and
	// distribution_window, and are checked as the topology checks those
	// (a distribution window shorter than the window would leave the
	// brokers holding the window while the model used fewer).
	probing := topology.File{Monitoring: &topology.Monitoring{Interval: cfg.Probe.String(), DistributionWindow: cfg.Window}}
	if _, err := probing.MonitorConfig(topology.Link{}); err != nil {
		return usageError{fmt.Sprintf("--probe %v, --window %d: %v", cfg.Probe, cfg.Window, err)}
	}
	cfg.Loss, cfg.Logger = *loss/100, log
	for _, h := range strings.Split(*hops, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(h))
		if err != nil || n < 1 || n > 16 {
			return usageError{fmt.Sprintf("--hops: %q is not a path length from 1 to 16", h)}
		}
		cfg.Hops = append(cfg.Hops, n)
	}
	for _, d := range strings.Split(*dists, ",") {
		switch d = strings.TrimSpace(d); d {
		case transports.JitterUniform, transports.JitterNormal, transports.JitterPareto:
			cfg.Dists = append(cfg.Dists, d)
		default:
			return usageError{fmt.Sprintf("--dists: %q is none of uniform, normal, pareto", d)}
		}
	}
	_, err = bench.RunContracts(ctx, stdout, cfg)
	return err
}

func benchPriority(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench priority", "bench priority [flags]", `
Starts three brokers in this process, prio.c1.a -tcp- prio.c1.b -tcp-
prio.c1.c, whose link b-c is capped in bandwidth, and offers more than it
carries from a publisher at a to a subscriber at c, on two subjects:
alerts.load (class high) and metrics.load (class low). Rounds take turns:
the classes; the baseline, where both subjects are normal; and the high
subject's load alone, its latency when nothing competes. Each runs in a
fresh network. For each it reports per subject the messages
delivered against those sent, the one-way latency (p50, p99) and the drops
the brokers counted, by class; then the median and range of each. Ends
with priority_<mode>_<class>_delivered_pct=<x> and
priority_<mode>_<class>_p99_ms=<x>.`, stdout, stderr)
	var cfg bench.PriorityConfig
	fs.Int64Var(&cfg.Bandwidth, "bandwidth", 1_000_000, "bandwidth of the capped link, bits per second")
	fs.Int64Var(&cfg.Offered, "offered", 2_000_000, "payload offered, bits per second")
	fs.Float64Var(&cfg.HighShare, "high-share", 0.25, "share of the offered load on the high-class subject (0-1)")
	fs.IntVar(&cfg.Size, "size", 500, "payload bytes of each message (at least 16)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each round offers the load")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "rounds of each mode (classes, baseline, alone)")
	fs.IntVar(&cfg.QueueBytes, "queue-bytes", 64<<10, "the link's send queue, bytes")
	fs.IntVar(&cfg.QueueLimit, "queue-limit", 8<<10, "what the emulated link holds below the send queue, bytes")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	if cfg.HighShare <= 0 || cfg.HighShare >= 1 {
		return usageError{"--high-share must be between 0 and 1"}
	}
	cfg.Logger = log
	_, err = bench.RunPriority(ctx, stdout, cfg)
	return err
}

func benchAccuracy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench accuracy", "bench accuracy [flags]", `
Measures emulated links with the link monitor and compares the figures
with the truth: for each transport (tcp, tls, udp, ws, quic), each delay
(1, 20, 100 ms), jitter 0 or 10% of the delay, and on udp and quic loss 0,
1% or 5%. A
case passes when the mean one-way latency is within max(2%, 0.3 ms) of the
truth, loss within 1 percentage point, and jitter within 20% (0.1 ms when
the truth is 0). Prints a table and ends with accuracy_pass=<n>/<total>.`, stdout, stderr)
	var cfg bench.AccuracyConfig
	fs.DurationVar(&cfg.Duration, "duration", 30e9, "how long each transport's links are measured")
	transportsFlag := fs.String("transports", "tcp,tls,udp,ws,quic", "comma-separated transports")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.Logger = log
	cfg.Transports = strings.Split(*transportsFlag, ",")
	_, err = bench.RunAccuracy(ctx, stdout, cfg)
	return err
}

func benchFailoverDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench failover-detect", "bench failover-detect [flags]", `
Times how fast a full outage of an emulated link (40 ms each way, 5% loss
each way, probes every 100 ms, over udp) is declared down, over many
outages, and counts false downs on a second such link that runs without
outages (10 minutes by default, in real time). Also reports the monitor's
simulation of the same link in virtual time. Ends with detect_p99_ms=<x>
and false_downs=<n>/<duration>.`, stdout, stderr)
	cfg := bench.DefaultDetectConfig()
	fs.IntVar(&cfg.Trials, "trials", cfg.Trials, "outages to time")
	fs.DurationVar(&cfg.SoakDuration, "soak", cfg.SoakDuration, "how long the outage-free link runs")
	fs.DurationVar(&cfg.Delay, "delay", cfg.Delay, "one-way delay")
	fs.Float64Var(&cfg.Loss, "loss", cfg.Loss, "loss of each direction, 0..1")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "probe interval")
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "udp, tcp, ws or mem")
	fs.BoolVar(&cfg.Simulate, "simulate", cfg.Simulate, "also report the simulated figures")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.Logger = log
	_, err = bench.RunFailoverDetect(ctx, stdout, cfg)
	return err
}

func benchUpdates(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench updates", "bench updates [flags]", `
Runs a 100-broker network in this process (4 super-clusters of 5 clusters
of 5 brokers, links with emulated delay, normal jitter and some loss, so
that measurements fluctuate the way real ones do), twice: with the default
cost update threshold (10%, hold-down 1 s) and with none, where every
change of a link's cost is announced. Reports the cost update messages the
network carries per minute (every copy that crosses a link) in each.`, stdout, stderr)
	var cfg bench.UpdatesConfig
	fs.DurationVar(&cfg.Duration, "duration", 2*60e9, "how long each network is observed")
	fs.DurationVar(&cfg.Warmup, "warmup", 30e9, "how long each network runs before it is observed")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.Logger = log
	_, err = bench.RunUpdates(ctx, stdout, cfg)
	return err
}

func benchXML(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench xml", "bench xml [flags]", `
Builds a snapshot of --links links (100 per broker, figures shaped like the
monitor's) and times three steps on it: writing it as the XML document the
aggregator serves, evaluating the XPath constraint
`+bench.XMLConstraint+` on it, and rendering
it as the HTML link table. Prints each step's median and worst time beside
its target and the figure of the system Wayline descends from.`, stdout, stderr)
	var cfg bench.XMLConfig
	fs.IntVar(&cfg.Links, "links", 16000, "links in the snapshot")
	fs.IntVar(&cfg.Rounds, "rounds", 21, "times each step runs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Links < 1 || cfg.Rounds < 1 {
		return usageError{"--links and --rounds must be positive"}
	}
	_, err := bench.RunXML(ctx, stdout, cfg)
	return err
}

func benchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench ingest", "bench ingest [flags]", `
Starts brokers A-B-C joined by tcp links, with an aggregator of their own
storing into --db, and measures the link measurements stored per second
for --duration, printing the rate every 10 s and over the run against the
target of 100,000 per second.

--path store times the aggregator's write path: batches of its batch size,
as many at once as it has writers, of --brokers synthetic brokers' reports
with --links links each. --path network sends those reports as XML from
clients of C, as brokers do (on $WL.perf.na, each acknowledged,
unacknowledged ones sent again), to a second aggregator at A, which
decodes, holds and stores them; it acknowledges only what it can hold, so
the rate is what it stores.

For MariaDB, scripts/mariadb.sh start prints a server's DSN; add a
database name to it.`, stdout, stderr)
	var cfg bench.IngestConfig
	fs.StringVar(&cfg.DB, "db", "", "the store (mysql://... or sqlite:PATH); default a temporary SQLite file")
	fs.StringVar(&cfg.Path, "path", "store", "what is measured: store or network")
	fs.DurationVar(&cfg.Duration, "duration", 60e9, "how long reports are sent")
	fs.IntVar(&cfg.Brokers, "brokers", 50, "reporting brokers")
	fs.IntVar(&cfg.Links, "links", 20, "links in each report")
	fs.IntVar(&cfg.Publishers, "publishers", 4, "client connections sending reports (network path)")
	fs.IntVar(&cfg.Window, "window", 128, "reports each connection keeps unacknowledged (network path); the aggregator acknowledges what it has stored")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Duration <= 0 || cfg.Brokers < 1 || cfg.Links < 1 || cfg.Publishers < 1 || cfg.Window < 1 {
		return usageError{"--duration, --brokers, --links, --publishers and --window must be positive"}
	}
	if cfg.Path != "store" && cfg.Path != "network" {
		return usageError{fmt.Sprintf("--path %q: want store or network", cfg.Path)}
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	_, err = bench.RunIngest(ctx, stdout, cfg)
	return err
}

func benchHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench history", "bench history --db DSN [flags]", `
Stores --span of performance reports (50 brokers with 20 links each, a
report every 5 s: 24 hours are 17 million measurements) into --db, then
times XPath queries through an aggregator over --range of that history,
as 'wayline query --from --to' runs them, against the target of 1 s.
--fill=false reuses the history stored by an earlier run. For MariaDB,
scripts/mariadb.sh start prints a server's DSN; add a database name.`, stdout, stderr)
	var cfg bench.HistoryConfig
	fs.StringVar(&cfg.DB, "db", "", "the store (mysql://... or sqlite:PATH); required")
	fs.BoolVar(&cfg.Fill, "fill", true, "store the history first")
	fs.DurationVar(&cfg.Span, "span", 24*time.Hour, "the history stored")
	fs.DurationVar(&cfg.Range, "range", time.Hour, "the time range queried")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "times each query runs")
	fs.Func("query", "an XPath query to time instead of the built-in ones (repeatable)", func(q string) error {
		if _, err := aggregator.Compile(q); err != nil {
			return err
		}
		cfg.Queries = append(cfg.Queries, q)
		return nil
	})
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.Logger = log
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	if cfg.DB == "" {
		return usageError{"--db is required"}
	}
	if cfg.Span <= 0 || cfg.Range <= 0 || cfg.Rounds < 1 {
		return usageError{"--span, --range and --rounds must be positive"}
	}
	_, err = bench.RunHistory(ctx, stdout, cfg)
	return err
}
