package main

import (
	"context"
	"fmt"
	"io"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/topology"
)

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("broker", "broker --topology FILE --address ADDR [flags]", `
Runs one broker of the network that a topology file describes: its
embedded NATS server for clients, its overlay listeners and links, and its
HTTP API. Every broker of the network is started the same way, each in its
own process, from the same file. The broker runs until SIGINT or SIGTERM,
then closes its links and tells its clients.`, stdout, stderr)
	topo := fs.String("topology", "", "topology file (YAML); required")
	addr := fs.String("address", "", "address of the broker to run, as written in the topology file; required")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	if *topo == "" || *addr == "" {
		fs.Usage()
		return usageError{"--topology and --address are required"}
	}
	f, err := topology.Load(*topo)
	if err != nil {
		return err
	}
	a, err := router.ParseAddress(*addr)
	if err != nil {
		return usageError{fmt.Sprintf("--address: %v", err)}
	}
	cfg, err := broker.FromTopology(f, a)
	if err != nil {
		return err
	}
	for _, l := range cfg.Links {
		if l.Transport == "mem" {
			return fmt.Errorf("link %s to %s uses the mem transport, which only joins brokers inside one process: run the network with 'wayline demo', or give the link another transport", l.ID, l.Peer)
		}
	}
	cfg.Logger = log
	cfg.ShutdownGrace = shutdownGrace
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "broker %s: clients %s, http http://%s\n", b.Address(), b.ClientURL(), b.HTTPAddr())
	<-ctx.Done()
	b.Close()
	return nil
}
