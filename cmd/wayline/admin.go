package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/netapi"
)

// The commands that talk to a running broker over its HTTP API.

// brokerFlags are the flags of the commands that talk to a broker: its
// address, and for those that change something, the admin token.
type brokerFlags struct {
	url   *string
	token func() string // nil for a command that only reads
}

// tokenFlag adds --token, whose value it returns: as given, or else
// $WAYLINE_ADMIN_TOKEN, read when asked for so that --help never shows it.
func tokenFlag(fs *flag.FlagSet, usage string) func() string {
	tok := fs.String("token", "", usage+" (default $WAYLINE_ADMIN_TOKEN)")
	return func() string {
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "token" })
		if given {
			return *tok
		}
		return os.Getenv("WAYLINE_ADMIN_TOKEN")
	}
}

func addBrokerFlags(fs *flag.FlagSet, changes bool) brokerFlags {
	bf := brokerFlags{url: fs.String("broker", "http://127.0.0.1:8301", "the broker's HTTP address")}
	if changes {
		bf.token = tokenFlag(fs, "the network's admin token")
	}
	return bf
}

// call sends a request to the broker and decodes a JSON answer into out
// (when not nil). An error status becomes an error carrying the body.
func (bf brokerFlags) call(ctx context.Context, method, path string, body, out any) error {
	base := strings.TrimRight(*bf.url, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(js)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, base+path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bf.token != nil {
		if tok := bf.token(); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, base+path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(data))
		var apiErr struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &apiErr) == nil && apiErr.Error != "" {
			msg = apiErr.Error
		}
		return fmt.Errorf("%s %s: %s: %s", method, base+path, resp.Status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, base+path, err)
		}
	}
	return nil
}

func runLinks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("links", "links [--broker URL]", `
Prints a table of a broker's links: peer, transport, state, and the
measured round-trip time, one-way latency (mean and p99), jitter and loss,
with the number of samples behind them and the messages dropped.`, stdout, stderr)
	bf := addBrokerFlags(fs, false)
	asJSON := fs.Bool("json", false, "print the broker's JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var links []netapi.LinkInfo
	if err := bf.call(ctx, http.MethodGet, "/api/links", nil, &links); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(links)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tPEER\tTRANSPORT\tSTATE\tRTT ms\tLATENCY ms\tP99 ms\tJITTER ms\tLOSS\tSAMPLES\tDROPPED\tEMULATION")
	for _, l := range links {
		m := l.Metrics
		state := l.State
		if l.Standby {
			state += " (standby)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f%%\t%d\t%d\t%s\n",
			shortID(l.ID), l.Peer, l.Transport, state, m.RTT, m.Latency.Mean, m.Latency.P99, m.Jitter, 100*m.Loss, m.Samples, l.Dropped, l.Emulation.String())
	}
	return tw.Flush()
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("emulate", "emulate --link ID [--down | --up] [--delay D] [--jitter D] [--loss P] [flags]", `
Changes the emulated wide-area conditions of one link while the network
runs, in both directions. Only the conditions named on the command line
change; the others keep their values. For example, a full outage:

  wayline emulate --broker http://127.0.0.1:8301 --link 3f2a... --down

and back:

  wayline emulate --broker http://127.0.0.1:8301 --link 3f2a... --up

Durations are written like 45ms, probabilities like 1% or 0.01, bandwidth
like 1Mbit. A value of 0 clears a condition. Prints the link's resulting
emulation.`, stdout, stderr)
	bf := addBrokerFlags(fs, true)
	link := fs.String("link", "", "the link's id (see 'wayline links'); required")
	down := fs.Bool("down", false, "take the link down: a full outage")
	up := fs.Bool("up", false, "end a full outage")
	fs.String("delay", "", "fixed one-way delay, e.g. 45ms")
	fs.String("jitter", "", "random extra delay: half-width (uniform), standard deviation (normal) or mean (pareto)")
	fs.String("jitter-dist", "", "jitter distribution: uniform, normal or pareto")
	fs.String("loss", "", "probability a frame is lost, e.g. 1%")
	fs.String("duplicate", "", "probability a frame is sent twice (udp)")
	fs.String("reorder", "", "probability a frame is held back so that later ones overtake it (udp)")
	fs.String("bandwidth", "", "bandwidth cap, e.g. 1Mbit; 0 for none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *link == "" {
		fs.Usage()
		return usageError{"--link is required"}
	}
	if *down && *up {
		return usageError{"--down and --up contradict each other"}
	}
	spec := map[string]any{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "delay", "jitter", "loss", "duplicate", "reorder", "bandwidth":
			spec[f.Name] = f.Value.String()
		case "jitter-dist":
			spec["jitter_dist"] = f.Value.String()
		}
	})
	if *down || *up {
		spec["down"] = *down
	}
	if len(spec) == 0 {
		return usageError{"nothing to change: give --down, --up or a condition such as --delay"}
	}
	var got map[string]any
	if err := bf.call(ctx, http.MethodPut, "/api/links/"+url.PathEscape(*link)+"/emulation", spec, &got); err != nil {
		return err
	}
	js, _ := json.Marshal(got)
	fmt.Fprintf(stdout, "link %s emulation: %s\n", *link, js)
	return nil
}

func runMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("monitor", "monitor [--link ID] [--enable | --disable] [--interval D] [--adaptive=true|false] [flags]", `
Starts or stops the measurement of one link (--link) or of every link of
the broker, and changes the probe interval (10ms to 60s) or the adaptive
mode, in which probes come more often while a link is unstable and less
often while it is steady. Prints the links concerned.`, stdout, stderr)
	bf := addBrokerFlags(fs, true)
	link := fs.String("link", "", "the link's id; empty: every link of the broker")
	enable := fs.Bool("enable", false, "start measuring")
	disable := fs.Bool("disable", false, "stop measuring")
	interval := fs.String("interval", "", "probe interval, e.g. 250ms")
	adaptive := fs.String("adaptive", "", "true or false: adapt the interval to the link's stability")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	req := netapi.MonitoringRequest{}
	switch {
	case *enable && *disable:
		return usageError{"--enable and --disable contradict each other"}
	case *enable:
		req.Enabled = enable
	case *disable:
		off := false
		req.Enabled = &off
	}
	if *interval != "" {
		req.Interval = interval
	}
	if *adaptive != "" {
		v, err := strconv.ParseBool(*adaptive)
		if err != nil {
			return usageError{fmt.Sprintf("--adaptive %q: want true or false", *adaptive)}
		}
		req.Adaptive = &v
	}
	if req == (netapi.MonitoringRequest{}) {
		return usageError{"nothing to change: give --enable, --disable, --interval or --adaptive"}
	}
	path := "/api/monitoring"
	if *link != "" {
		path = "/api/links/" + url.PathEscape(*link) + "/monitoring"
	}
	var links []netapi.LinkInfo
	if err := bf.call(ctx, http.MethodPut, path, req, &links); err != nil {
		return err
	}
	for _, l := range links {
		fmt.Fprintf(stdout, "link %s to %s: %s, every %.0fms\n", l.ID, l.Peer, l.Metrics.State, l.Metrics.Interval)
	}
	return nil
}

func runRoutes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("routes", "routes [--broker URL] [--profile NAME]", `
Prints a broker's routes: for each cost profile, each destination of its
network map (every broker of its own cluster, and each unit beside one of
its own, such as a sibling cluster or another continent), the next hop,
the path and its cost. Then, for each delay contract of the routing block
and each destination, the path the contract's messages take and what its
composed delay distribution promises: for each bound, the delay predicted
at the bound's percentile against the bound's, the predicted loss, and
whether the contract is met, at risk (within 20% of a bound) or breached.
--profile contract lists only the contracts' routes.`, stdout, stderr)
	bf := addBrokerFlags(fs, false)
	profile := fs.String("profile", "", "only this profile's routes")
	asJSON := fs.Bool("json", false, "print the broker's JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := "/api/routes"
	if *profile != "" {
		path += "?profile=" + url.QueryEscape(*profile)
	}
	var routes []broker.RouteInfo
	if err := bf.call(ctx, http.MethodGet, path, nil, &routes); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(routes)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	var contracts []broker.RouteInfo
	for i, r := range routes {
		if r.Prediction != nil {
			contracts = append(contracts, r)
			continue
		}
		if i == 0 {
			fmt.Fprintln(tw, "PROFILE\tDESTINATION\tNEXT HOP\tCOST\tPATH\tEXITS")
		}
		exits := make([]string, len(r.Exits))
		for i, e := range r.Exits {
			exits[i] = e.Broker
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\n", r.Profile, r.Destination, r.NextHop, r.Cost, strings.Join(r.Path, " > "), strings.Join(exits, " > "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(contracts) == 0 {
		return nil
	}
	if len(contracts) < len(routes) {
		fmt.Fprintln(stdout)
	}
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTRACT\tDESTINATION\tSTATUS\tPREDICTED / ASKED\tLOSS\tPATH")
	for _, r := range contracts {
		p := r.Prediction
		bounds := make([]string, len(p.Bounds))
		for i, b := range p.Bounds {
			got := "never"
			if b.PredictedMs != nil {
				got = fmt.Sprintf("%.1f", *b.PredictedMs)
			}
			bounds[i] = fmt.Sprintf("p%g %s/%g ms", b.P, got, b.Ms)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f%%\t%s\n", r.Contract, r.Destination, p.Status, strings.Join(bounds, ", "), 100*p.Loss, strings.Join(r.Path, " > "))
	}
	return tw.Flush()
}
