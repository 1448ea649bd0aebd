package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wayline/wayline/monitor"
)

// TestRunAccuracy runs a short accuracy experiment on udp and tcp at 20 ms
// and checks the report's shape and the figures at bounds loose enough for
// a busy two-core machine: 3 s of probes is about 300 samples a link, and
// the table's own bounds are for 30 s runs on a quiet one.
func TestRunAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two brokers for several seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	var out bytes.Buffer
	cases, err := RunAccuracy(ctx, &out, AccuracyConfig{
		Duration:   3 * time.Second,
		Transports: []string{"udp", "tcp"},
		Delays:     []time.Duration{20 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	checkGoroutinesEnd(t, before)
	if want := 6 + 2; len(cases) != want {
		t.Fatalf("%d cases, want %d", len(cases), want)
	}
	if !regexp.MustCompile(`\naccuracy_pass=\d+/8\n$`).Match(out.Bytes()) {
		t.Errorf("report does not end with accuracy_pass=<n>/8")
	}
	for _, re := range []string{`\nprobe_traffic_bps_at_1s=\d+ `, `\ninterval_halving_mean_change=\d+\.\d%`} {
		if !regexp.MustCompile(re).Match(out.Bytes()) {
			t.Errorf("report lacks %s", re)
		}
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s jitter %v loss %.0f%%", c.Transport, c.Jitter, 100*c.Loss)
		if c.Samples < 50 {
			t.Errorf("%s: %d samples", name, c.Samples)
			continue
		}
		if tol := max(0.25*c.WantLatency, 2); math.Abs(c.GotLatency-c.WantLatency) > tol {
			t.Errorf("%s: latency %.3f ms, want %.3f ± %.3f", name, c.GotLatency, c.WantLatency, tol)
		}
		if tol := max(0.5*c.WantJitter, 0.5); math.Abs(c.GotJitter-c.WantJitter) > tol {
			t.Errorf("%s: jitter %.3f ms, want %.3f ± %.3f", name, c.GotJitter, c.WantJitter, tol)
		}
		// Six standard errors of 300 samples at 5%, and then some.
		if math.Abs(c.GotLoss-c.WantLoss) > 0.05 {
			t.Errorf("%s: loss %.4f, want %.4f ± 0.05", name, c.GotLoss, c.WantLoss)
		}
	}
}

// checkGoroutinesEnd waits for the goroutine count to fall back to before:
// every goroutine the brokers started must end once they are closed. An
// emulated link may linger up to a second delivering what it had
// scheduled, hence the wait.
func checkGoroutinesEnd(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, want at most %d\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAccuracyCasesQUIC checks how quic is measured, without running it
// (the full benchmark does; TestRunAccuracy keeps to two transports so as
// to stay short on a busy machine): it is in the default transports, and
// its cases take udp's losses, the finest interval and both ends probing,
// since its probes travel as datagrams that wait behind nothing.
func TestAccuracyCasesQUIC(t *testing.T) {
	var cfg AccuracyConfig
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.Transports, "quic") {
		t.Fatalf("default transports %v lack quic", cfg.Transports)
	}
	cfg.Transports = []string{"quic"}
	cases := accuracyCases(cfg)
	if want := len(cfg.Delays) * 2 * len(accuracyLosses); len(cases) != want {
		t.Fatalf("%d quic cases, want %d", len(cases), want)
	}
	for i, c := range cases {
		l := c.probeLink(accuracyID(i))
		if l.trans != "quic" || l.interval != monitor.MinInterval || l.quietPeer || l.emu.Loss != c.Loss {
			t.Errorf("case %+v measured as %+v", c, l)
		}
	}
	if err := (&AccuracyConfig{Transports: []string{"sctp"}}).defaults(); err == nil {
		t.Errorf("an unknown transport was accepted")
	}
}
