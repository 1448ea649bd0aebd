package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/wayline/wayline/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "Usage: wayline bench <experiment> [flags]\n\nExperiments:\n  overlay  messages across a 3-broker chain, against a NATS leafnode chain and a NATS cluster")
		if len(args) == 0 {
			return usageError{"no experiment given"}
		}
		return nil
	}
	switch args[0] {
	case "overlay":
		return benchOverlay(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown experiment %q", args[0])}
}

func benchOverlay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench overlay", "bench overlay [flags]", `
Measures, one after the other in this process: Wayline's A-B-C chain of
brokers over tcp (publisher on A, subscriber on C), a chain of three
nats-servers joined by leafnodes, and a 3-node NATS cluster. For each it
prints the delivered messages per second under flow control (the
publisher keeps at most --window messages in flight, so that systems are
compared on delivered messages, not lost ones), the messages dropped, and
the one-way p50/p99 latency at a steady --rate. The last line is
ratio_vs_nats_leaf_throughput=<x.xx>.`, stderr)
	var cfg bench.OverlayConfig
	fs.DurationVar(&cfg.Duration, "duration", 5e9, "length of each throughput run")
	fs.IntVar(&cfg.Size, "size", 128, "message payload size in bytes (at least 8)")
	fs.IntVar(&cfg.Window, "window", 20000, "messages in flight before the publisher waits")
	fs.IntVar(&cfg.LatencyRate, "rate", 10000, "publishing rate of the latency run, messages per second")
	fs.DurationVar(&cfg.LatencyDuration, "latency-duration", 3e9, "length of each latency run")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; the systems take turns, and the median round is reported")
	systems := fs.String("systems", "wayline,nats-leaf,nats-cluster", "comma-separated systems to measure: wayline, nats-leaf, nats-cluster")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	logs := addLogFlags(fs, stderr)
	log, err := logs.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.Logger = log
	cfg.Systems = strings.Split(*systems, ",")
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	_, err = bench.RunOverlay(ctx, stdout, cfg)
	return err
}
