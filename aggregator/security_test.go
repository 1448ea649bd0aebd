package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
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
			brokerLog := &testutil.LogSink{}
			a, _, _ := pairWith(t, 100*time.Millisecond, nil, func(c *broker.Config) {
				c.AdminToken, c.Logger = tc.network, slog.New(brokerLog)
			})
			aggLog := &testutil.LogSink{}
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
				if n := aggLog.Count("network has no admin token"); n != 1 {
					t.Errorf("the aggregator said %d times that the network has no token", n)
				}
			} else {
				time.Sleep(time.Second)
				if q := a.Status().Reports.Queued; q < 10 {
					t.Errorf("the broker holds %d reports, yet the aggregator cannot acknowledge them", q)
				}
				if n := aggLog.Count("started without it"); n != 1 {
					t.Errorf("the aggregator said %d times that it lacks the token", n)
				}
			}
			if n := brokerLog.Count("Permissions Violation"); n != 0 {
				t.Errorf("the broker logged %d permission violations", n)
			}
			if n := aggLog.Count("ERROR") + aggLog.Count("WARN"); n > 2 {
				t.Errorf("the aggregator logged %d errors and warnings:\n%s", n, aggLog.String())
			}
		})
	}
}

// bomb is a query whose work grows with the cube of the nodes of a view.
const bomb = "count(//*[count(//*[count(//*)>0])>0])"

// manyReports are 300 brokers of 4 links each: a bomb on them would run
// for hours.
func manyReports() []schema.Report {
	var reps []schema.Report
	for i := range 300 {
		r := sampleReport()
		r.Broker = fmt.Sprintf("na.c%d.b", i)
		r.Links = append(r.Links, r.Links[0], r.Links[0], r.Links[0])
		reps = append(reps, r)
	}
	return reps
}

// TestXPathBombStopped: the bomb stops within its limit, wherever the
// engine is, over HTTP with the aggregator's time limit, and when its
// client goes away long before that limit.
func TestXPathBombStopped(t *testing.T) {
	t.Run("evaluation", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		expr, err := Compile(bomb)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = Evaluate(ctx, latestView(manyReports(), time.Now()), expr, 100)
		if !errors.Is(err, ErrQueryLimit) || time.Since(start) > 2*time.Second {
			t.Fatalf("after %v: %v", time.Since(start), err)
		}
	})
	for _, tc := range []struct {
		name          string
		limit, client time.Duration
		status        int
	}{
		{"time limit", 300 * time.Millisecond, time.Minute, http.StatusGatewayTimeout},
		{"client gone", time.Minute, 300 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg, err := New(context.Background(), Config{Domain: "na", BrokerURL: "nats://127.0.0.1:1", DB: "sqlite:" + filepath.Join(t.TempDir(), "agg.db"),
				QueryTimeout: tc.limit, Public: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { agg.store.Close() })
			for _, r := range manyReports() {
				agg.latest[r.Broker] = r
			}
			srv := httptest.NewServer(agg.Handler())
			defer srv.Close()
			client := &http.Client{Timeout: tc.client}
			start := time.Now()
			resp, err := client.Get(srv.URL + "/api/xpath?q=" + url.QueryEscape(bomb))
			if tc.status != 0 {
				if err != nil || resp.StatusCode != tc.status {
					t.Fatalf("%v, %v", resp, err)
				}
				resp.Body.Close()
			} else if err == nil {
				t.Fatalf("the client got an answer: %s", resp.Status)
			}
			waitFor(t, "the query to stop", 3*time.Second, func() bool { return agg.StatsSnapshot().QueriesCut == 1 })
			t.Logf("stopped %v after the query began", time.Since(start))
		})
	}
}

// TestSilentConnectionsClosed opens connections to the aggregator's HTTP
// port that say nothing, or trickle a byte at a time: each is closed
// after the port's limit.
func TestSilentConnectionsClosed(t *testing.T) {
	a, _, _ := pair(t, time.Second, nil)
	agg := startAggregator(t, a.ClientURL(), nil, "")
	const limit = 12 * time.Second // the header's 5 s, on a busy machine
	var wg sync.WaitGroup
	for _, trickle := range []bool{false, true} {
		wg.Go(func() { testutil.ClosedWithin(t, agg.HTTPAddr(), trickle, limit) })
	}
	wg.Wait()
}
