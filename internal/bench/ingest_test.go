package bench

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestIngestRuns runs both paths of the ingest benchmark briefly on an
// embedded store: each stores measurements, whole reports of them, and
// reports its rate.
func TestIngestRuns(t *testing.T) {
	for _, path := range []string{"store", "network"} {
		t.Run(path, func(t *testing.T) {
			cfg := IngestConfig{Path: path, Duration: 2 * time.Second, Every: time.Second, Brokers: 8, Links: 5, Publishers: 2, Window: 2}
			res, err := RunIngest(context.Background(), io.Discard, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Measurements == 0 || res.Measurements%5 != 0 || res.Rate <= 0 || res.Slowest < 0 {
				t.Errorf("%+v", res)
			}
		})
	}
	if _, err := RunIngest(context.Background(), io.Discard, IngestConfig{Path: "disk"}); err == nil {
		t.Error("an unknown path ran")
	}
}

func TestRedactDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"mysql://root:secret@tcp(127.0.0.1:3306)/w": "mysql://root:***@tcp(127.0.0.1:3306)/w",
		"mysql://root@tcp(127.0.0.1:3306)/w":        "mysql://root@tcp(127.0.0.1:3306)/w",
		"sqlite:/tmp/w.db":                          "sqlite:/tmp/w.db",
	} {
		if got := redactDSN(dsn); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}
