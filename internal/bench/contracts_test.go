package bench

import (
	"bytes"
	"context"
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
