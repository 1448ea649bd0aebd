package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/transports"
)

// TestRunBurstSmoke sends a small burst across a lossy ocean on udp and
// quic and a clean one on tcp: the reliable transports deliver it whole,
// in order and once, and udp's missing messages are every one counted.
func TestRunBurstSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four brokers per transport")
	}
	var out bytes.Buffer
	rounds, err := RunBurst(context.Background(), &out, BurstConfig{
		Messages: 5000, Rounds: 1, Transports: []string{"udp", "quic", "tcp"},
		Atlantic: &transports.Emulation{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.02},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rounds) != 3 {
		t.Fatalf("%d rounds\n%s", len(rounds), out.String())
	}
	for _, r := range rounds {
		if r.Duplicates != 0 || r.Inversions != 0 {
			t.Errorf("%s: %d duplicated, %d out of order", r.Transport, r.Duplicates, r.Inversions)
		}
		if r.Uncounted() != 0 {
			t.Errorf("%s: %d missing that no one counted (%d missing, %d counted by reason %v, %d dropped by the client)\n%s",
				r.Transport, r.Uncounted(), r.Missing(), r.Counted, r.CountedBy, r.ClientDropped, out.String())
		}
		if r.Transport != "udp" && r.Delivered != r.Sent {
			t.Errorf("%s delivered %d of %d", r.Transport, r.Delivered, r.Sent)
		}
		if r.Delivered == 0 {
			t.Errorf("%s delivered nothing", r.Transport)
		}
	}
	for _, want := range []string{"burst_udp_delivered_pct=", "burst_quic_uncounted=0", "burst_tcp_delivered_pct=100.000"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := RunBurst(context.Background(), &out, BurstConfig{Transports: []string{"carrier-pigeon"}}); err == nil {
		t.Error("an unknown transport was accepted")
	}
}
