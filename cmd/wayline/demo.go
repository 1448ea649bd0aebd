package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
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
brokers in two super-clusters on two continents, joined over tcp, ws and
udp links with emulated wide-area delays, and one aggregator. Sample
applications publish and request at the first broker and subscribe and
answer at the last. Connect any NATS client to any broker: messages reach
subscribers at every other broker. With --chaos a link between clusters
goes down every --chaos-every and comes back half that later, so that
rerouting can be watched. Stop it with Ctrl-C.

The first aggregator serves the pages at --http (printed at the start):
the overview, the network map (/map?subject=demo.ticks&from=na.cgl.c1.a
highlights the route of the sample traffic), broker, link, XPath and rules
pages, all public, updated live. Its admin page (/admin: take links down
and up, change their delay and loss, add and remove rules) takes the admin
token: $WAYLINE_ADMIN_TOKEN, the topology's, or one made up for the run
and printed.`, stderr)
	topo := fs.String("topology", "", "topology file (YAML); default: the built-in example network")
	chaosOn := fs.Bool("chaos", false, "take a link between clusters down now and then")
	chaosEvery := fs.Duration("chaos-every", 20*time.Second, "with --chaos: how often a link goes down")
	noSample := fs.Bool("no-sample-traffic", false, "run no sample publisher and subscriber")
	httpAddr := fs.String("http", "", "address of the first aggregator's pages and API (default: the topology's, 127.0.0.1:8080 for the built-in network)")
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
	if *chaosEvery < 100*time.Millisecond {
		return usageError{"--chaos-every must be at least 100ms"}
	}
	if *httpAddr != "" {
		if len(f.Aggregators) == 0 {
			return usageError{"--http: the topology names no aggregator"}
		}
		f.Aggregators[0].HTTP = *httpAddr
	}
	token := adminToken(f)
	brokers, err := startAll(ctx, f, log, token)
	if err != nil {
		return err
	}
	aggs, err := startAggregators(ctx, f, brokers, token, log)
	if err != nil {
		closeAll(brokers)
		return err
	}
	fmt.Fprintf(stdout, "network %q is running with %d brokers:\n", f.Name, len(brokers))
	for _, b := range brokers {
		fmt.Fprintf(stdout, "  %-24s clients %-24s http http://%s\n", b.Address(), b.ClientURL(), b.HTTPAddr())
	}
	for i, a := range aggs {
		fmt.Fprintf(stdout, "  aggregator %-13s http http://%s    pages http://%s/\n", f.Aggregators[i].Domain, a.HTTPAddr(), a.HTTPAddr())
	}
	switch {
	case token.generated:
		fmt.Fprintf(stdout, "admin token for this run (the brokers' admin API and wayline emulate/monitor --token, the pages' /admin): %s\n", token.value)
	case len(aggs) > 0:
		fmt.Fprintln(stdout, "the admin pages (/admin) take the network's admin token")
	}
	if !*noSample && len(brokers) > 0 {
		if err := sampleTraffic(ctx, brokers[0], brokers[len(brokers)-1], stdout, log); err != nil {
			for _, a := range aggs {
				a.Close()
			}
			closeAll(brokers)
			return err
		}
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		if *chaosOn {
			chaos(ctx, chaosLinks(brokers), *chaosEvery, stdout)
		}
	}()
	<-ctx.Done()
	<-chaosDone // the link it took down is back up
	for _, a := range aggs {
		a.Close()
	}
	closeAll(brokers)
	return nil
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
