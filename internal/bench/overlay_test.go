package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunOverlaySmoke runs the overlay benchmark briefly: every system
// delivers, nothing is lost, and the report ends with the ratio lines. A
// throughput run of a second, not less: under the race detector beside
// other packages' tests, the NATS leafnode chain has stalled for the whole
// of a 300 ms run (0 msg/s). Each system's latency run is traced, every
// message logged as late, and each round says what the Go runtime did.
func TestRunOverlaySmoke(t *testing.T) {
	var out bytes.Buffer
	traces := filepath.Join(t.TempDir(), "latency.trace")
	results, err := RunOverlay(context.Background(), &out, OverlayConfig{
		Duration: time.Second, LatencyDuration: 200 * time.Millisecond, LatencyRate: 2000, Rounds: 1,
		Trace: traces, LateAfter: time.Nanosecond,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(results) != 4 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if r.MsgsPerS <= 0 || r.LatencyN == 0 || r.P99 < r.P50 {
			t.Errorf("%s: %+v", r.System, r)
		}
		if r.Dropped != 0 {
			t.Errorf("%s dropped %d messages", r.System, r.Dropped)
		}
	}
	if !regexp.MustCompile(`ratio_vs_nats_leaf_throughput=\d+\.\d\d\nratio_quic_vs_tcp_p99=\d+\.\d\d\nratio_quic_vs_tcp_throughput=\d+\.\d\d\n$`).Match(out.Bytes()) {
		t.Fatalf("report does not end with the ratio lines:\n%s", out.String())
	}
	if n := len(regexp.MustCompile(`(?m)^  round 1: .* \(latency run: \d+ GCs, gc cpu \S+, scavenger cpu \S+\)$`).FindAll(out.Bytes(), -1)); n != 4 {
		t.Fatalf("%d round lines say what the runtime did, want 4:\n%s", n, out.String())
	}
	for _, sys := range []string{"wayline", "nats-leaf", "nats-cluster", "wayline-quic"} {
		data, err := os.ReadFile(traces + "." + sys)
		if err != nil {
			t.Fatalf("trace of %s: %v", sys, err)
		}
		if !bytes.Contains(data, []byte("late")) {
			t.Fatalf("trace of %s (%d bytes) has no late message logged", sys, len(data))
		}
	}
}

// TestRunOverlaySlices runs two systems side by side briefly: each slice
// line names both, every message of every slice arrives, each system's
// figures are those of all its slices, and the ratio lines follow. A trace
// asks for rounds, so it is refused with slices, before anything runs.
func TestRunOverlaySlices(t *testing.T) {
	var out bytes.Buffer
	cfg := OverlayConfig{
		Duration: time.Second, LatencyDuration: 200 * time.Millisecond, LatencyRate: 2000, Slices: 2,
		Systems: []string{"wayline", "nats-leaf"},
	}
	results, err := RunOverlay(context.Background(), &out, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	lines := regexp.MustCompile(`(?m)^  slice (\d): +wayline A-B-C \(tcp\) p50 \S+ p99 \S+ +nats leafnode chain s1-s2-s3 p50 \S+ p99 \S+$`).FindAllSubmatch(out.Bytes(), -1)
	if len(lines) != 2 || string(lines[0][1]) != "1" || string(lines[1][1]) != "2" {
		t.Fatalf("want slice lines 1 and 2 naming both systems:\n%s", out.String())
	}
	if len(results) != 2 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		// Two slices of 400 messages each.
		if r.LatencyN != 800 || r.Dropped != 0 || r.MsgsPerS <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: %d latencies (want 800), %d dropped, %+v", r.System, r.LatencyN, r.Dropped, r)
		}
	}
	if !regexp.MustCompile(`\nratio_vs_nats_leaf_p50=\d+\.\d\d\nratio_vs_nats_leaf_p99=\d+\.\d\d\nratio_vs_nats_leaf_throughput=\d+\.\d\d\n$`).Match(out.Bytes()) {
		t.Fatalf("report does not end with the ratio lines:\n%s", out.String())
	}
	cfg.Trace = filepath.Join(t.TempDir(), "t")
	out.Reset()
	if _, err := RunOverlay(context.Background(), &out, cfg); err == nil || !strings.Contains(err.Error(), "rounds, not slices") || out.Len() > 0 {
		t.Fatalf("trace with slices: %v, report %q; want refused before anything runs", err, out.String())
	}
}

// TestAuthCostSmoke runs the chain with and without the network secret
// briefly: both deliver everything, and the report says what
// authentication costs, set-up times included.
func TestAuthCostSmoke(t *testing.T) {
	var out bytes.Buffer
	_, err := RunOverlay(context.Background(), &out, OverlayConfig{
		Duration: 300 * time.Millisecond, LatencyDuration: 200 * time.Millisecond, LatencyRate: 2000, Rounds: 1,
		Systems: []string{"wayline", "wayline-secret"},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{`wayline A-B-C \(tcp, secret\)\s+\d+`, `(?m)^  secret  median`, `(?m)^  tls     median`, `ratio_secret_vs_none_throughput=\d\.\d{3}\n$`} {
		if !regexp.MustCompile(want).Match(out.Bytes()) {
			t.Fatalf("report lacks %s:\n%s", want, out.String())
		}
	}
}
