package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunPrioritySmoke runs one short round of each mode: with the
// classes the high subject loses nothing, and in every mode every message
// that did not arrive was counted by the brokers.
func TestRunPrioritySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers per round")
	}
	var out bytes.Buffer
	rounds, err := RunPriority(context.Background(), &out, PriorityConfig{Rounds: 1, Duration: 2 * time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rounds) != 4 {
		t.Fatalf("%d rounds\n%s", len(rounds), out.String())
	}
	for _, r := range rounds {
		if lost := r.High.Lost() + r.Low.Lost(); uint64(lost) != r.Counted {
			t.Errorf("%s: %d lost, %d counted\n%s", r.Mode, lost, r.Counted, out.String())
		}
		if (r.Mode == "classes" || r.Mode == "paced") && (r.High.Lost() != 0 || r.ByClass["low"] == 0 || r.ByClass["high"] != 0) {
			t.Errorf("%s: high lost %d, drops by class %v\n%s", r.Mode, r.High.Lost(), r.ByClass, out.String())
		}
	}
	for _, want := range []string{"priority_classes_high_delivered_pct=100.0", "priority_paced_high_delivered_pct=100.0", "priority_baseline_low_p99_ms=", "priority_alone_high_delivered_pct=100.0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
