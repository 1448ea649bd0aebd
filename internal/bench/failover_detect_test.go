package bench

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"testing"
	"time"
)

// TestRunFailoverDetectSmoke times a few outages on the acceptance link and
// soaks another briefly: every outage is called, within a bound loose
// enough for a busy machine (the target is 1 s at p99), the report ends
// with its two result lines, and no goroutine outlives the run. Settle is
// cut to 2 s, so the detector's loss estimate rests on about 20 probes and
// may be well off the link's 9.75%; hence the loose bound.
func TestRunFailoverDetectSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real brokers for several seconds")
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := RunFailoverDetect(ctx, &out, DetectConfig{
		Trials: 5, SoakDuration: 3 * time.Second, Settle: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Detect) != 5 || res.Undetected != 0 {
		t.Fatalf("detect %v, undetected %d\n%s", res.Detect, res.Undetected, out.String())
	}
	for i, d := range res.Detect {
		if d <= 0 || d > 3*time.Second {
			t.Errorf("outage %d called after %v, want (0, 3s]", i+1, d)
		}
	}
	if res.SoakDuration < 3*time.Second {
		t.Errorf("soak ran %v, want 3s", res.SoakDuration)
	}
	if !regexp.MustCompile(`\ndetect_p99_ms=\d+\nfalse_downs=\d+/3s\n$`).Match(out.Bytes()) {
		t.Errorf("report does not end with the result lines:\n%s", out.String())
	}
	// Brokers end their goroutines in Close; give the runtime a moment to
	// retire them before counting.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
