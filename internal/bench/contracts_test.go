package bench

import (
	"bytes"
	"context"
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
	if c.Delivered != 50 || c.PredP50 < 15 || c.PredP50 > 30 || c.P50 < 15 || c.P50 > 40 || !strings.Contains(out.String(), "contracts_worst_ks=") {
		t.Fatalf("%+v\n%s", c, out.String())
	}
}
