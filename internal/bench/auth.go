package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/transports"
)

// What authenticating links costs: the overlay's throughput with the
// network secret against without it, round by round (the two chains take
// turns in each round), and the time a link takes to set up in each mode.

// benchSecret is the network secret of the authenticated chain.
const benchSecret = "the wayline benchmark network secret"

// setupVersion is the protocol version both ends of a measured set-up
// speak; any will do.
const setupVersion = 3

// SetupResult is how long a link took to set up in one mode.
type SetupResult struct {
	Mode             string // none, secret or tls
	N                int
	Median, P10, P90 time.Duration
}

// authCost prints the throughput ratio of the chain with the secret to
// the chain without, per round and their median, then the link set-up
// times, and ends with ratio_secret_vs_none_throughput=<x.xxx>.
func authCost(ctx context.Context, w io.Writer, cfg OverlayConfig, plain, secret []Result) error {
	med := roundRatios(w, "throughput", plain, secret, func(r Result) float64 { return r.MsgsPerS })
	fmt.Fprintf(w, "  %.1f%% of the throughput lost (target at most 5%%)\n", 100*(1-med))
	cpu := roundRatios(w, "cpu per message", plain, secret, func(r Result) float64 { return float64(r.CPUPerMsg) })
	fmt.Fprintf(w, "  %.1f%% more cpu per message (less sensitive than throughput to other load on the machine)\n", 100*(cpu-1))
	setups, err := RunLinkSetup(ctx, cfg.Rounds, 200)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "link set-up on loopback, dial to the end of the handshake, %d set-ups per mode in %d rounds taking turns:\n", setups[0].N, cfg.Rounds)
	for _, s := range setups {
		fmt.Fprintf(w, "  %-7s median %8v  p10-p90 %v-%v\n", s.Mode, s.Median.Round(time.Microsecond), s.P10.Round(time.Microsecond), s.P90.Round(time.Microsecond))
	}
	fmt.Fprintf(w, "ratio_secret_vs_none_setup=%.2f\n", float64(setups[1].Median)/float64(setups[0].Median))
	fmt.Fprintf(w, "ratio_secret_vs_none_throughput=%.3f\n", med)
	return nil
}

// roundRatios prints, round by round, a figure of the chain with the
// secret over the same figure without, and returns their median.
func roundRatios(w io.Writer, what string, plain, secret []Result, figure func(Result) float64) float64 {
	var ratios []float64
	var each []string
	for i := range min(len(plain), len(secret)) {
		r := figure(secret[i]) / figure(plain[i])
		ratios = append(ratios, r)
		each = append(each, fmt.Sprintf("%.3f", r))
	}
	sorted := slices.Sorted(slices.Values(ratios))
	med := sorted[len(sorted)/2]
	fmt.Fprintf(w, "authentication: %s with the secret / without, by round: %s; median %.3f, range %.3f-%.3f\n",
		what, strings.Join(each, " "), med, sorted[0], sorted[len(sorted)-1])
	return med
}

// setupMode is one way of setting a link up.
type setupMode struct {
	name, scheme string
	secret       []byte
}

// RunLinkSetup measures how long links take to set up on loopback, from
// the dial to the end of the handshake of package linkauth, as brokers set
// them up: over tcp without authentication and with the network secret,
// and over tls with certificates naming the brokers. The modes take turns
// for rounds rounds of n set-ups each.
func RunLinkSetup(ctx context.Context, rounds, n int) ([]SetupResult, error) {
	tc, err := throwawayTLS(chainNames...)
	if err != nil {
		return nil, err
	}
	modes := []setupMode{{"none", "tcp", nil}, {"secret", "tcp", []byte(benchSecret)}, {"tls", "tls", nil}}
	times := make([][]time.Duration, len(modes))
	for range rounds {
		for i, m := range modes {
			d, err := setupTimes(ctx, m, tc, n)
			if err != nil {
				return nil, fmt.Errorf("link set-up (%s): %w", m.name, err)
			}
			times[i] = append(times[i], d...)
		}
	}
	var out []SetupResult
	for i, m := range modes {
		d := times[i]
		slices.Sort(d)
		out = append(out, SetupResult{Mode: m.name, N: len(d), Median: d[len(d)/2], P10: d[len(d)/10], P90: d[len(d)*9/10]})
	}
	return out, nil
}

// setupTimes sets up n links of one mode, one after another, and returns
// how long each took.
func setupTimes(ctx context.Context, m setupMode, tc *tls.Config, n int) ([]time.Duration, error) {
	a, b := chainNames[0], chainNames[1]
	lcfg := transports.Config{TLS: tc}
	ln, err := transports.Listen(m.scheme+"://127.0.0.1:0", lcfg)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	auth := linkauth.Config{Version: setupVersion, Secret: m.secret}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, _, err := linkauth.Accept(c, auth, func(h linkauth.Hello) (linkauth.Hello, string) {
					return linkauth.Hello{Version: setupVersion, From: b, To: h.From, LinkID: h.LinkID}, ""
				})
				if err == nil {
					_, _ = sc.Receive() // until the dialer closes
				}
			}()
		}
	}()
	dcfg := lcfg
	if tc != nil {
		dcfg.TLS = tc.Clone()
		dcfg.TLS.ServerName = b // as a broker dials: the certificate must name the peer
	}
	hello := linkauth.Hello{Version: setupVersion, From: a, To: b, LinkID: "00000000-0000-4000-8000-000000005e70"}
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		c, err := transports.Dial(ctx, ln.URL(), dcfg)
		if err != nil {
			return nil, err
		}
		_, _, err = linkauth.Dial(c, hello, auth)
		d := time.Since(start)
		c.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
