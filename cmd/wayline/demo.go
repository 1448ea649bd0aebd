package main

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wayline/wayline/aggregator"
	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/topology"
)

//go:embed example.yaml
var exampleTopology []byte

//go:embed example-aggregator.yaml
var exampleAggregator []byte

// builtIn is the built-in example network, once parsed; its aggregator
// takes the built-in rules.
var builtIn *topology.File

// shutdownGrace is how long a stopping broker lets its clients move away.
const shutdownGrace = time.Second

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [--topology FILE] [flags]", `
Runs every broker of a network in this one process, with the aggregators
its topology names, and prints each broker's NATS client URL and HTTP
address. Without --topology it runs a built-in example network of eight
brokers in two super-clusters on two continents, joined over tcp, ws, udp
and quic links (quic across the Atlantic) with emulated wide-area delays,
and one aggregator. Sample applications publish and request at the first
broker and subscribe and answer at the last. Connect any NATS client to any broker: messages reach
subscribers at every other broker. With --chaos a link between clusters
goes down every --chaos-every and comes back half that later, so that
rerouting can be watched. Stop it with Ctrl-C.

The ports are the topology's (4301..., 7101..., 8301... and 8080 for the
built-in network); --port-offset moves them all, and --free-ports has
free ones chosen, so that a demo can run beside another. The addresses
are printed at the start.

The first aggregator serves the pages at --http (printed at the start):
the overview, the network map (/map?subject=demo.ticks&from=na.cgl.c1.a
highlights the route of the sample traffic), broker, link, XPath and rules
pages, all public, updated live. Its admin page (/admin: take links down
and up, change their delay and loss, add and remove rules) takes the admin
token: $WAYLINE_ADMIN_TOKEN, the topology's, or one made up for the run
and printed. It keeps its data where --db says, or where the topology's
aggregator says; else in a new temporary directory that goes when the
demo stops, so that every demo starts afresh.`, stdout, stderr)
	topo := fs.String("topology", "", "topology file (YAML); default: the built-in example network")
	chaosOn := fs.Bool("chaos", false, "take a link between clusters down now and then")
	chaosEvery := fs.Duration("chaos-every", 20*time.Second, "with --chaos: how often a link goes down")
	noSample := fs.Bool("no-sample-traffic", false, "run no sample publisher and subscriber")
	httpAddr := fs.String("http", "", "address of the first aggregator's pages and API (default: the topology's, 127.0.0.1:8080 for the built-in network)")
	db := fs.String("db", "", "the first aggregator's database: sqlite:PATH or mysql://user:pw@tcp(host:port)/db (default: the topology's, else a temporary one)")
	offset := fs.Int("port-offset", 0, "move every port of the network by this much, e.g. 10000 (4301 becomes 14301)")
	free := fs.Bool("free-ports", false, "run on free ports chosen now (printed at the start) rather than the topology's")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	var f *topology.File
	if *topo == "" {
		f, err = topology.Parse(exampleTopology)
		builtIn = f
	} else {
		f, err = topology.Load(*topo)
	}
	if err != nil {
		return err
	}
	switch {
	case *chaosEvery < 100*time.Millisecond:
		return usageError{"--chaos-every must be at least 100ms"}
	case (*httpAddr != "" || *db != "") && len(f.Aggregators) == 0:
		return usageError{"--http and --db: the topology names no aggregator"}
	case *free && *offset != 0:
		return usageError{"--free-ports and --port-offset: give one or the other"}
	case *free:
		if err := freePortsFor(f); err != nil {
			return fmt.Errorf("--free-ports: %w", err)
		}
	case *offset != 0:
		if err := offsetPorts(f, *offset); err != nil {
			return usageError{fmt.Sprintf("--port-offset: %v", err)}
		}
	}
	if *httpAddr != "" {
		f.Aggregators[0].HTTP = *httpAddr
	}
	if *db != "" {
		f.Aggregators[0].DB = *db
	}
	data, err := demoData(f)
	if err != nil {
		return err
	}
	defer data.remove()
	token := adminToken(f)
	brokers, err := startAll(ctx, f, log, token)
	if err != nil {
		return portHint(err)
	}
	aggs, err := startAggregators(ctx, f, brokers, token, log)
	if err != nil {
		closeAll(brokers)
		return portHint(err)
	}
	stop := func() {
		for _, a := range aggs {
			a.Close()
		}
		closeAll(brokers)
	}
	var sample bytes.Buffer
	if !*noSample && len(brokers) > 0 {
		if err := sampleTraffic(ctx, brokers[0], brokers[len(brokers)-1], &sample, log); err != nil {
			stop()
			return err
		}
	}
	// The banner comes once the links are up, after the burst of start-up
	// logs rather than among them.
	waitLinksUp(ctx, brokers, 10*time.Second)
	banner(stdout, f, brokers, aggs, token, data, sample.String())
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		if *chaosOn {
			chaos(ctx, chaosLinks(brokers), *chaosEvery, stdout)
		}
	}()
	<-ctx.Done()
	<-chaosDone // the link it took down is back up
	stop()
	return nil
}

// demoStore is where a demo's aggregators keep their data: as the
// topology or --db says, or in a temporary directory of this run.
type demoStore struct {
	temp string // the temporary directory, if any
	dbs  []string
}

// demoData gives every aggregator of f without a database one in a new
// temporary directory.
func demoData(f *topology.File) (*demoStore, error) {
	d := &demoStore{}
	for i := range f.Aggregators {
		a := &f.Aggregators[i]
		if a.DB == "" {
			if d.temp == "" {
				dir, err := os.MkdirTemp("", "wayline-demo-")
				if err != nil {
					return nil, fmt.Errorf("demo data: %w", err)
				}
				d.temp = dir
			}
			a.DB = "sqlite:" + filepath.Join(d.temp, fmt.Sprintf("aggregator-%d.db", i+1))
		}
		d.dbs = append(d.dbs, a.DB)
	}
	return d, nil
}

func (d *demoStore) remove() {
	if d.temp != "" {
		os.RemoveAll(d.temp)
	}
}

// waitLinksUp waits until the monitor of every link of brokers has found
// it up, or timeout.
func waitLinksUp(ctx context.Context, brokers []*broker.Broker, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		up := true
		for _, b := range brokers {
			for _, l := range b.Links() {
				up = up && l.Metrics.State == "up"
			}
		}
		if up {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// banner prints where everything of the demo is, framed so that it stands
// out from the logs.
func banner(w io.Writer, f *topology.File, brokers []*broker.Broker, aggs []*aggregator.Aggregator, tok demoToken, data *demoStore, sample string) {
	rule := strings.Repeat("=", 100)
	fmt.Fprintf(w, "\n%s\nWayline demo: network %q is running with %s and %s.\n\n", rule, f.Name, count(len(brokers), "broker"), count(len(aggs), "aggregator"))
	fmt.Fprintln(w, "Connect any NATS client to any broker; each broker's HTTP API is beside it:")
	for _, b := range brokers {
		fmt.Fprintf(w, "  %-24s clients %-24s http http://%s\n", b.Address(), b.ClientURL(), b.HTTPAddr())
	}
	for i, a := range aggs {
		fmt.Fprintf(w, "  aggregator %-13s http http://%s    pages http://%s/\n", f.Aggregators[i].Domain, a.HTTPAddr(), a.HTTPAddr())
	}
	fmt.Fprintln(w)
	switch {
	case tok.generated:
		fmt.Fprintf(w, "Admin token for this run (the brokers' admin API and wayline emulate/monitor --token, the pages' /admin): %s\n", tok.value)
	case len(aggs) > 0:
		fmt.Fprintln(w, "The admin page (/admin) takes the network's admin token.")
	}
	if len(aggs) > 0 {
		if data.temp != "" {
			fmt.Fprintf(w, "Data: kept in %s, removed when the demo stops (--db sqlite:wayline.db keeps it).\n", data.temp)
		} else {
			fmt.Fprintf(w, "Data: %s (delete it to start afresh).\n", strings.Join(data.dbs, ", "))
		}
	}
	if sample != "" {
		fmt.Fprint(w, "\n"+sample)
		fmt.Fprintf(w, "  try: nats --server %s sub 'demo.>'\n", brokers[len(brokers)-1].ClientURL())
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n%s\n\n", rule)
}

// adminToken is the network's admin token: the topology's or the
// environment's, or else a random one for this run only, which the demo
// prints: its brokers' admin API and its aggregators' admin pages take it.
func adminToken(f *topology.File) (tok demoToken) {
	if t := os.Getenv("WAYLINE_ADMIN_TOKEN"); t != "" {
		return demoToken{value: t}
	}
	if f.Admin != nil && f.Admin.Token != "" {
		return demoToken{value: f.Admin.Token}
	}
	return demoToken{value: randomHex(16), generated: true}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type demoToken struct {
	value     string
	generated bool
}

// startAggregators starts the aggregators the topology names.
func startAggregators(ctx context.Context, f *topology.File, brokers []*broker.Broker, tok demoToken, log *slog.Logger) ([]*aggregator.Aggregator, error) {
	var out []*aggregator.Aggregator
	for _, ta := range f.Aggregators {
		var url string
		for _, b := range brokers {
			if b.Address() == string(ta.Broker) {
				url = b.ClientURL()
			}
		}
		// The demo's pages are open to read; its admin page takes the token.
		cfg := aggregator.Config{Domain: ta.Domain, BrokerURL: url, Token: tok.value, DB: ta.DB, HTTP: ta.HTTP, Public: true, Logger: log}
		if ta.Config != "" {
			if err := readAggregatorFile(ta.Config, &cfg); err != nil {
				return out, err
			}
		} else if f == builtIn {
			if err := decodeAggregatorFile(exampleAggregator, "built-in aggregator config", &cfg); err != nil {
				return out, err
			}
		}
		a, err := aggregator.New(ctx, cfg)
		if err == nil {
			err = a.Start(ctx)
		}
		if err != nil {
			for _, x := range out {
				x.Close()
			}
			return nil, fmt.Errorf("aggregator %s: %w", ta.Domain, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// startAll starts every broker of f in this process; on failure it stops
// those already started.
func startAll(ctx context.Context, f *topology.File, log *slog.Logger, tok demoToken) ([]*broker.Broker, error) {
	var brokers []*broker.Broker
	secret := randomHex(32)
	for _, tb := range f.Brokers {
		cfg, err := broker.FromTopology(f, tb.Address)
		if err == nil {
			cfg.Logger = log
			cfg.ShutdownGrace = shutdownGrace
			cfg.AdminToken = tok.value
			if cfg.Secret == "" {
				// Every broker runs here: a secret made up for the run
				// authenticates their links.
				cfg.Secret = secret
			}
			var b *broker.Broker
			if b, err = broker.New(cfg); err == nil {
				if err = b.Start(ctx); err == nil {
					brokers = append(brokers, b)
					continue
				}
			}
		}
		closeAll(brokers)
		return nil, err
	}
	return brokers, nil
}

func closeAll(brokers []*broker.Broker) {
	var wg sync.WaitGroup
	for _, b := range brokers {
		wg.Go(b.Close)
	}
	wg.Wait()
}

// count says n things, in the singular or the plural.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
