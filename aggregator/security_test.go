package aggregator

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/netapi"
)

// TestReportOriginChecked: an admin client publishes reports in a
// broker's name, with no reply subject and with another broker's. Both
// are refused, and that broker's real reports go on being stored.
func TestReportOriginChecked(t *testing.T) {
	a, _, _ := pair(t, 100*time.Millisecond, nil)
	agg := startAggregator(t, a.ClientURL(), nil, "")
	latestSeq := func() uint64 {
		for _, r := range agg.Latest() {
			if r.Broker == "na.c1.a" {
				return r.Seq
			}
		}
		return 0
	}
	waitFor(t, "reports of na.c1.a", 10*time.Second, func() bool { return latestSeq() > 0 })
	nc, err := nats.Connect(a.ClientURL(), nats.UserInfo(netapi.AdminUser, token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	forged := []byte(fmt.Sprintf(`<report broker="na.c1.a" domain="na" seq="1000000" time="%s" interval_ms="100"/>`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)))
	before := agg.StatsSnapshot()
	nc.Publish(netapi.PerfSubject("na"), forged)
	nc.PublishMsg(&nats.Msg{Subject: netapi.PerfSubject("na"), Reply: netapi.PerfAckSubject("na.c1.b"), Data: forged})
	nc.Flush()
	waitFor(t, "the refusals", 10*time.Second, func() bool { return agg.StatsSnapshot().Rejected >= before.Rejected+2 })
	stored := agg.StatsSnapshot().Stored
	waitFor(t, "real reports to go on being stored", 10*time.Second, func() bool { return agg.StatsSnapshot().Stored >= stored+4 })
	if seq := latestSeq(); seq >= 1000000 {
		t.Fatalf("the forged report made it into the latest view: %d", seq)
	}
}

// logLines is a slog handler that keeps every line.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// TestTokens runs an aggregator without a token in a network without one,
// as the README shows, and in a network with one. Without: it stores and
// acknowledges every report, and the brokers log no permission violation.
// With: it says once, at start, that it lacks the token, and neither it
// nor the brokers say more while reports keep coming.
func TestTokens(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network string
	}{{"network without a token", ""}, {"network with a token", token}} {
		t.Run(tc.name, func(t *testing.T) {
			brokerLog := &logLines{}
			a, _, _ := pairWith(t, 100*time.Millisecond, nil, func(c *broker.Config) {
				c.AdminToken, c.Logger = tc.network, slog.New(brokerLog)
			})
			aggLog := &logLines{}
			agg, err := New(context.Background(), Config{Domain: "na", BrokerURL: a.ClientURL(), DB: "sqlite:" + filepath.Join(t.TempDir(), "agg.db"),
				FlushEvery: 50 * time.Millisecond, Logger: slog.New(aggLog)})
			if err != nil {
				t.Fatal(err)
			}
			if err := agg.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(agg.Close)
			waitFor(t, "reports", 10*time.Second, func() bool { return agg.StatsSnapshot().Stored >= 10 })
			if tc.network == "" {
				waitFor(t, "the broker's queue to drain", 10*time.Second, func() bool { return a.Status().Reports.Queued <= 2 })
				if n := aggLog.count("network has no admin token"); n != 1 {
					t.Errorf("the aggregator said %d times that the network has no token", n)
				}
			} else {
				time.Sleep(time.Second)
				if q := a.Status().Reports.Queued; q < 10 {
					t.Errorf("the broker holds %d reports, yet the aggregator cannot acknowledge them", q)
				}
				if n := aggLog.count("started without it"); n != 1 {
					t.Errorf("the aggregator said %d times that it lacks the token", n)
				}
			}
			if n := brokerLog.count("Permissions Violation"); n != 0 {
				t.Errorf("the broker logged %d permission violations", n)
			}
			if n := aggLog.count("ERROR") + aggLog.count("WARN"); n > 2 {
				t.Errorf("the aggregator logged %d errors and warnings:\n%s", n, strings.Join(aggLog.lines, "\n"))
			}
		})
	}
}
