package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/topology"
)

//go:embed example.yaml
var exampleTopology []byte

// shutdownGrace is how long a stopping broker lets its clients move away.
const shutdownGrace = time.Second

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [--topology FILE] [flags]", `
Runs every broker of a network in this one process and prints each
broker's NATS client URL and HTTP address. Without --topology it runs a
built-in example network of five brokers in two regions, joined over tcp,
ws and udp links. Connect any NATS client to any broker: messages
reach subscribers at every other broker. Stop it with Ctrl-C.`, stderr)
	topo := fs.String("topology", "", "topology file (YAML); default: the built-in example network")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	var f *topology.File
	if *topo == "" {
		f, err = topology.Parse(exampleTopology)
	} else {
		f, err = topology.Load(*topo)
	}
	if err != nil {
		return err
	}
	brokers, err := startAll(ctx, f, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "network %q is running with %d brokers:\n", f.Name, len(brokers))
	for _, b := range brokers {
		fmt.Fprintf(stdout, "  %-24s clients %-24s http http://%s\n", b.Address(), b.ClientURL(), b.HTTPAddr())
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	<-ctx.Done()
	closeAll(brokers)
	return nil
}

// startAll starts every broker of f in this process; on failure it stops
// those already started.
func startAll(ctx context.Context, f *topology.File, log *slog.Logger) ([]*broker.Broker, error) {
	var brokers []*broker.Broker
	for _, tb := range f.Brokers {
		cfg, err := broker.FromTopology(f, tb.Address)
		if err == nil {
			cfg.Logger = log
			cfg.ShutdownGrace = shutdownGrace
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
