package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/transports"
)

const token = "agg-test-token"

// pair starts two brokers of domain "na" joined by a udp link, reporting
// every reportEvery.
func pair(t *testing.T, reportEvery time.Duration, emu *transports.Emulation) (a, b *broker.Broker, linkID string) {
	t.Helper()
	port := testutil.FreePort(t)
	u := fmt.Sprintf("udp://127.0.0.1:%d", port)
	linkID = "00000000-0000-4000-8000-0000000000aa"
	mon := monitor.DefaultLocalConfig()
	mon.Interval = 50 * time.Millisecond
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("WAYLINE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mk := func(addr string, lc broker.LinkConfig, listen []string) *broker.Broker {
		cfg := broker.Config{Address: addr, Client: "127.0.0.1:0", Listen: listen, Links: []broker.LinkConfig{lc},
			Monitor: mon, AdminToken: token, Logger: log, Report: broker.ReportConfig{Interval: reportEvery}}
		b, err := broker.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	b = mk("na.c1.b", broker.LinkConfig{ID: linkID, Peer: "na.c1.a", Transport: "udp", Emulation: emu}, []string{u})
	a = mk("na.c1.a", broker.LinkConfig{ID: linkID, Peer: "na.c1.b", Transport: "udp", Dial: u, Emulation: emu}, nil)
	return a, b, linkID
}

func startAggregator(t *testing.T, brokerURL string, rules []Rule, db string) *Aggregator {
	t.Helper()
	if db == "" {
		db = "sqlite:" + filepath.Join(t.TempDir(), "agg.db")
	}
	agg, err := New(context.Background(), Config{Domain: "na", BrokerURL: brokerURL, Token: token, DB: db,
		HTTP: "127.0.0.1:0", Rules: rules, FlushEvery: 50 * time.Millisecond, MaxReportBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := agg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agg.Close)
	return agg
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t testing.TB, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReportsReachTheAggregator(t *testing.T) {
	a, _, linkID := pair(t, 100*time.Millisecond, &transports.Emulation{Delay: 5 * time.Millisecond})
	agg := startAggregator(t, a.ClientURL(), nil, "")
	waitFor(t, "reports of both brokers", 10*time.Second, func() bool { return len(agg.Latest()) == 2 })
	waitFor(t, "reports stored", 10*time.Second, func() bool { return agg.StatsSnapshot().Stored >= 4 })
	base := "http://" + agg.HTTPAddr()
	code, body := get(t, base+"/api/xpath?q="+url.QueryEscape("//link/@id"))
	if code != 200 || !strings.Contains(body, linkID) {
		t.Fatalf("xpath: %d %s", code, body)
	}
	code, body = get(t, base+"/api/xpath?q="+url.QueryEscape("count(//broker)"))
	if code != 200 || !strings.Contains(body, `type="number">2<`) {
		t.Fatalf("count: %d %s", code, body)
	}
	// History: samples over the last minute.
	code, body = get(t, base+"/api/xpath?from=1m&q="+url.QueryEscape("count(//link/sample)"))
	if code != 200 || strings.Contains(body, ">0<") {
		t.Fatalf("history: %d %s", code, body)
	}
	if s := agg.StatsSnapshot(); s.Gaps != 0 || s.Rejected != 0 {
		t.Fatalf("stats %+v", s)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok" {
		t.Fatalf("healthz %d %s", code, body)
	}
}

func TestBadQueries(t *testing.T) {
	a, _, _ := pair(t, 100*time.Millisecond, nil)
	agg := startAggregator(t, a.ClientURL(), nil, "")
	base := "http://" + agg.HTTPAddr()
	for q, want := range map[string]int{"//link[": 400, "": 400, "//link[@loss >": 400, "count(": 400} {
		code, body := get(t, base+"/api/xpath?q="+url.QueryEscape(q))
		if code != want || !strings.Contains(body, "XPath") {
			t.Errorf("%q: %d %s", q, code, body)
		}
	}
	if code, _ := get(t, base+"/api/xpath?q=//link&from=yesterday"); code != 400 {
		t.Errorf("bad time: %d", code)
	}
}

// TestNoReportLostWhileTheAggregatorIsAway starts the aggregator late,
// then stops and restarts it: every report arrives, in sequence, with no
// gap.
func TestNoReportLostWhileTheAggregatorIsAway(t *testing.T) {
	a, _, _ := pair(t, 50*time.Millisecond, nil)
	time.Sleep(time.Second) // reports queue at the brokers
	db := "sqlite:" + filepath.Join(t.TempDir(), "agg.db")
	agg := startAggregator(t, a.ClientURL(), nil, db)
	waitFor(t, "the queued reports", 10*time.Second, func() bool { return agg.StatsSnapshot().Received >= 30 })
	agg.Close()
	time.Sleep(time.Second)
	agg2 := startAggregator(t, a.ClientURL(), nil, db)
	waitFor(t, "a broker's queue to drain", 10*time.Second, func() bool { return a.Status().Reports.Queued <= 1 })
	waitFor(t, "everything stored", 10*time.Second, func() bool { return agg2.Buffered() == 0 })
	reps, err := agg2.store.Reports(context.Background(), time.Time{}, time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[string]map[uint64]bool{}
	for _, r := range reps {
		if seqs[r.Broker] == nil {
			seqs[r.Broker] = map[uint64]bool{}
		}
		seqs[r.Broker][r.Seq] = true
	}
	for brk, s := range seqs {
		max := uint64(0)
		for q := range s {
			max = ad(max, q)
		}
		for q := uint64(1); q <= max; q++ {
			if !s[q] {
				t.Errorf("%s: report %d of %d missing", brk, q, max)
			}
		}
		if max < 20 {
			t.Errorf("%s: only %d reports", brk, max)
		}
	}
	if st := agg2.StatsSnapshot(); st.Gaps != 0 {
		t.Errorf("gaps %+v", st)
	}
}

func ad(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// TestRulesSteerBrokers: a rule slows a lossy link's probing, another takes
// it out of routing; both come undone when the loss clears, and every
// action is recorded.
func TestRulesSteerBrokers(t *testing.T) {
	a, _, linkID := pair(t, 100*time.Millisecond, &transports.Emulation{Delay: 2 * time.Millisecond})
	rules := []Rule{
		{When: "//link[@loss > 0.1]", Do: Action{Interval: 250 * time.Millisecond}, Undo: true},
		{When: "//link[@loss > 0.1]", Do: Action{Op: OpExclude}, Undo: true},
	}
	agg := startAggregator(t, a.ClientURL(), rules, "")
	waitFor(t, "reports", 10*time.Second, func() bool { return len(agg.Latest()) == 2 })
	link := func() broker.LinkInfo {
		for _, l := range a.Links() {
			if l.ID == linkID {
				return l
			}
		}
		t.Fatal("no link")
		return broker.LinkInfo{}
	}
	if _, err := a.SetEmulation(linkID, transports.EmulationSpec{Loss: ptr(transports.Quantity("40%"))}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			_, body := get(t, "http://"+agg.HTTPAddr()+"/api/actions")
			t.Logf("actions: %s", body)
		}
	}()
	waitFor(t, "the rules to act", 20*time.Second, func() bool {
		l := link()
		return l.Metrics.Interval == 250 && l.Excluded && l.State == "down"
	})
	if _, err := a.SetEmulation(linkID, transports.EmulationSpec{Loss: ptr(transports.Quantity("0"))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the actions undone", 60*time.Second, func() bool {
		l := link()
		return l.Metrics.Interval == 50 && !l.Excluded
	})
	code, body := get(t, "http://"+agg.HTTPAddr()+"/api/actions")
	var acts []map[string]any
	json.Unmarshal([]byte(body), &acts)
	var did, undid int
	for _, act := range acts {
		if act["OK"] == true && act["Link"] == linkID {
			if act["Undo"] == true {
				undid++
			} else {
				did++
			}
		}
	}
	if code != 200 || did < 2 || undid < 2 {
		t.Fatalf("actions %d: %d done, %d undone: %s", code, did, undid, body)
	}
}

func ptr[T any](v T) *T { return &v }

// TestBadReportsAreRefused publishes reports the aggregator must refuse;
// it counts them and goes on with good ones.
func TestBadReportsAreRefused(t *testing.T) {
	a, _, _ := pair(t, 100*time.Millisecond, nil)
	agg := startAggregator(t, a.ClientURL(), nil, "")
	nc, err := nats.Connect(a.ClientURL(), nats.UserInfo(broker.AdminUser, token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bad := [][]byte{
		[]byte("<report"),
		[]byte(`<?xml version="1.0"?><!DOCTYPE report [<!ENTITY x "boom">]><report broker="na.c1.z" domain="na" seq="1" time="2026-01-01T00:00:00Z" interval_ms="1">&x;</report>`),
		[]byte(strings.Repeat("<", 300<<10)), // over the aggregator's limit
		[]byte(`<report broker="na.c1.z" domain="eu" seq="1" time="2026-01-01T00:00:00Z" interval_ms="1"/>`),
	}
	for _, b := range bad {
		nc.Publish(broker.PerfSubject("na"), b)
	}
	nc.Flush()
	waitFor(t, "the refusals", 10*time.Second, func() bool { return agg.StatsSnapshot().Rejected >= uint64(len(bad)) })
	before := agg.StatsSnapshot().Received
	waitFor(t, "good reports to go on", 10*time.Second, func() bool { return agg.StatsSnapshot().Received > before })
}

var _ = sync.Mutex{}
