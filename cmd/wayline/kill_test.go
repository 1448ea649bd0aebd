package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/internal/testutil"
)

// TestKillAggregatorLoop kills the aggregator with SIGKILL at random
// moments, again and again, while three brokers report every 100 ms, on
// SQLite and on MariaDB. Every report a broker counts as acknowledged
// (all it wrote but those still waiting) is then in the store.
func TestKillAggregatorLoop(t *testing.T) {
	for _, backend := range []string{"sqlite", "mysql"} {
		t.Run(backend, func(t *testing.T) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "agg.db")
			if backend == "mysql" {
				dsn = testutil.MySQLTestDB(t)
			}
			killLoop(t, dsn)
		})
	}
}

func killLoop(t *testing.T, dsn string) {
	path, clients := chainFile(t, "tcp")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "admin: {token: kill-token}\nreports: {interval: 100ms}\n")
	f.Close()
	demo := start(t, "demo", "--topology", path)
	var https []string
	httpOf := regexp.MustCompile(`http (http://\S+)`)
	for range 3 {
		https = append(https, httpOf.FindStringSubmatch(demo.waitLine(t, `^\s+na\.cgl\.c1\.\w+\s+clients`))[1])
	}
	demo.waitLine(t, "Press Ctrl-C")
	const kills = 10
	for i := range kills {
		agg := start(t, "aggregator", "--domain", "na", "--broker", clients[i%3], "--db", dsn, "--token", "kill-token", "--http", "")
		agg.waitLine(t, "^aggregator")
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		agg.cmd.Process.Signal(syscall.SIGKILL)
		<-agg.exited
	}
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := map[string]map[uint64]bool{}
	reps, err := st.Reports(context.Background(), time.Time{}, time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if stored[r.Broker] == nil {
			stored[r.Broker] = map[uint64]bool{}
		}
		stored[r.Broker][r.Seq] = true
	}
	// Read after the store: whatever the brokers count as acknowledged by
	// now was acknowledged by an aggregator that is dead since.
	total := 0
	for _, h := range https {
		var status broker.StatusInfo
		getJSON(t, h+"/api/status", &status)
		rs := status.Reports
		if rs.Dropped != 0 {
			t.Fatalf("%s dropped %d reports for room", status.Address, rs.Dropped)
		}
		var missing []uint64
		for seq := uint64(1); seq <= rs.Seq; seq++ {
			if !slices.Contains(rs.Waiting, seq) && !stored[status.Address][seq] {
				missing = append(missing, seq)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: %d acknowledged reports are not in the store: %v", status.Address, len(missing), missing)
		}
		total += int(rs.Seq) - len(rs.Waiting)
	}
	t.Logf("%d kills; %d reports acknowledged and stored, %d rows in the store", kills, total, len(reps))
	if total < 100 {
		t.Fatalf("only %d reports acknowledged in all", total)
	}
}
