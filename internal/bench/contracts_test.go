package bench

import (
	"bytes"
	"context"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/transports"
)

// TestRunContractsSmoke: one short case, predicted and measured, and the
// summary line.
func TestRunContractsSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers")
	}
	var out bytes.Buffer
	cases, err := RunContracts(context.Background(), &out, ContractsConfig{Hops: []int{2}, Dists: []string{transports.JitterUniform},
		Messages: 50, Gap: 20 * time.Millisecond, Warm: 2 * time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	c := cases[0]
	// Two hops of 10 ms +- 3 ms: about 20 ms, predicted and measured.
	if c.Delivered != 50 || c.KSHalves <= 0 || c.KSHalves >= 1 || c.P99Halves[0] < 15 || c.P99Halves[1] < 15 || c.PredP50 < 15 || c.PredP50 > 30 || c.P50 < 15 || c.P50 > 40 || !strings.Contains(out.String(), "contracts_worst_ks=") {
		t.Fatalf("%+v\n%s", c, out.String())
	}
}

// TestSamplesKS: the distance between two samples, ties and all.
func TestSamplesKS(t *testing.T) {
	for _, c := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{1, 2, 3}, []float64{1, 2, 3}, 0},
		{[]float64{1, 2}, []float64{3, 4}, 1},
		{[]float64{1, 2}, []float64{2, 3}, 0.5},
		{[]float64{1, 1, 1, 4}, []float64{1, 2, 3, 4}, 0.5},
	} {
		if got := samplesKS(c.a, c.b); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("samplesKS(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestChainModel: on two in-order hops the messages' own hop delays and
// the probes both compose close to the messages' end-to-end delays, each
// hop holds a probe per probe interval, and a draw repeats with its seed.
func TestChainModel(t *testing.T) {
	var out bytes.Buffer
	cfg := ContractsConfig{Hops: []int{2}, Dists: []string{transports.JitterUniform}, Loss: 0.01, Gap: 20 * time.Millisecond, Seeds: 2}
	cases := RunChainModel(&out, cfg)
	if len(cases) != 1 || len(cases[0].ProbeKS) != 2 || !strings.Contains(out.String(), "chain_worst_ks_probes=") {
		t.Fatalf("%+v\n%s", cases, out.String())
	}
	c := cases[0]
	// 50,000 messages every 20 ms are 1000 s: 20,000 probes at 50 ms.
	if c.ProbesAHop < 19900 || c.ProbesAHop > 20100 {
		t.Errorf("%d probes a hop, want about 20,000", c.ProbesAHop)
	}
	// Two hops of 10 ms +- 3 ms: a median of about 20 ms, stalls aside.
	for _, p50 := range [][]float64{c.P50, c.ProbeP50, c.HopsP50} {
		if len(p50) != 2 || p50[0] < 18 || p50[0] > 26 {
			t.Errorf("medians %v (messages, probes, hops' messages: %v, %v, %v), want two draws of about 20 ms", p50, c.P50, c.ProbeP50, c.HopsP50)
		}
	}
	for i := range c.ProbeKS {
		if c.ProbeKS[i] > 0.05 || c.HopsKS[i] > 0.05 || math.Abs(c.ProbeP99Err[i]) > 0.25 {
			t.Errorf("draw %d: KS %.3f (probes), %.3f (hops' messages), p99 error %+.1f%%: want KS under 0.05, p99 within 25%%\n%s",
				i, c.ProbeKS[i], c.HopsKS[i], 100*c.ProbeP99Err[i], out.String())
		}
	}
	if again := RunChainModel(io.Discard, cfg); again[0].ProbeKS[0] != c.ProbeKS[0] {
		t.Errorf("a second run drew KS %.4f, the first %.4f: want the same draw", again[0].ProbeKS[0], c.ProbeKS[0])
	}
}
