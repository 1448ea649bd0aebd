package bench

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// TestHistoryRuns runs the history benchmark on a small embedded store:
// it stores the reports and answers every query on the range.
func TestHistoryRuns(t *testing.T) {
	cfg := HistoryConfig{DB: "sqlite:" + filepath.Join(t.TempDir(), "h.db"), Fill: true,
		Span: 2 * time.Minute, Interval: 5 * time.Second, Brokers: 3, Links: 4, Range: 30 * time.Second, Rounds: 1}
	steps, err := RunHistory(context.Background(), io.Discard, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != len(HistoryQueries) || steps[0].Median <= 0 {
		t.Fatalf("%+v", steps)
	}
	if _, err := RunHistory(context.Background(), io.Discard, HistoryConfig{DB: cfg.DB, Span: time.Hour, Range: time.Hour}); err == nil {
		t.Error("a range longer than half the span ran")
	}
}
