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

	"github.com/go-sql-driver/mysql"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

const token = "agg-test-token"

// pair starts two brokers of domain "na" joined by a udp link, reporting
// every reportEvery.
func pair(t *testing.T, reportEvery time.Duration, emu *transports.Emulation) (a, b *broker.Broker, linkID string) {
	t.Helper()
	return pairWith(t, reportEvery, emu, nil)
}

// pairWith is pair with a last word on each broker's configuration.
func pairWith(t *testing.T, reportEvery time.Duration, emu *transports.Emulation, tweak func(*broker.Config)) (a, b *broker.Broker, linkID string) {
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
		if tweak != nil {
			tweak(&cfg)
		}
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
		HTTP: "127.0.0.1:0", Rules: rules, FlushEvery: 50 * time.Millisecond, MaxReportBytes: 256 << 10, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := agg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agg.Close)
	return agg
}

// waitFor polls cond until it holds or the deadline passes.
var waitFor = testutil.WaitFor

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
// outage is how long the aggregator, or its database, is away in the
// tests that nothing is lost: the 60 s that brokers and aggregators
// promise to bridge, or 5 s with -short.
func outage() time.Duration {
	if testing.Short() {
		return 5 * time.Second
	}
	return 60 * time.Second
}

// TestNoReportLostWhileTheAggregatorIsAway: the brokers keep what they
// could not deliver while their aggregator is down, and send it all when
// it returns.
func TestNoReportLostWhileTheAggregatorIsAway(t *testing.T) {
	t.Parallel()
	const every = 250 * time.Millisecond
	a, _, _ := pair(t, every, nil)
	time.Sleep(time.Second) // reports queue at the brokers
	db := "sqlite:" + filepath.Join(t.TempDir(), "agg.db")
	agg := startAggregator(t, a.ClientURL(), nil, db)
	waitFor(t, "the queued reports", 10*time.Second, func() bool { return agg.StatsSnapshot().Received >= 8 })
	agg.Close()
	time.Sleep(outage())
	agg2 := startAggregator(t, a.ClientURL(), nil, db)
	waitFor(t, "a broker's queue to drain", 30*time.Second, func() bool { return a.Status().Reports.Queued <= 1 })
	waitFor(t, "everything stored", 30*time.Second, func() bool { return agg2.Buffered() == 0 })
	wantEverySeq(t, agg2.store, int(outage()/every)*3/4)
	if st := agg2.StatsSnapshot(); st.Gaps != 0 {
		t.Errorf("gaps %+v", st)
	}
}

// TestNoReportLostWhileTheDatabaseIsAway: with its MySQL server out of
// reach, the aggregator keeps taking reports into its buffer, says it is
// degraded, and writes them all once the server is back.
func TestNoReportLostWhileTheDatabaseIsAway(t *testing.T) {
	t.Parallel()
	dsn := testutil.MySQLTestDB(t)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.NewProxy(t, cfg.Addr)
	viaProxy := cfg.Clone()
	viaProxy.Addr = proxy.Addr()
	viaProxy.Timeout = 2 * time.Second

	const every = 250 * time.Millisecond
	a, _, _ := pair(t, every, nil)
	agg := startAggregator(t, a.ClientURL(), nil, "mysql://"+viaProxy.FormatDSN())
	health := "http://" + agg.HTTPAddr() + "/healthz"
	waitFor(t, "reports stored", 10*time.Second, func() bool { return agg.StatsSnapshot().Stored >= 4 })

	proxy.Down()
	waitFor(t, "the health check to say degraded", 15*time.Second, func() bool {
		code, body := get(t, health)
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, "degraded")
	})
	before, queued := agg.StatsSnapshot(), a.Status().Reports.Queued
	time.Sleep(outage())
	during := agg.StatsSnapshot()
	// Nothing was stored, so nothing was acknowledged: the broker keeps
	// every report since.
	if q := a.Status().Reports.Queued; q < queued+int(outage()/every)/2 {
		t.Errorf("the broker's queue went from %d to %d reports while none could be stored", queued, q)
	}
	if code, body := get(t, health); code != http.StatusServiceUnavailable {
		t.Errorf("health with the database away: %d %s", code, body)
	}
	// Two brokers report every 250 ms: the aggregator took in at least
	// half of what they sent, and stored none of it.
	if took, want := during.Received-before.Received, uint64(outage()/every); took < want {
		t.Errorf("took %d reports while the database was away; want at least %d", took, want)
	}
	if during.Stored != before.Stored || during.Buffered == 0 {
		t.Errorf("during the outage: stored %d -> %d, %d buffered", before.Stored, during.Stored, during.Buffered)
	}

	proxy.Up()
	waitFor(t, "the health check to recover", 30*time.Second, func() bool {
		code, _ := get(t, health)
		return code == http.StatusOK
	})
	waitFor(t, "the buffer to drain", 30*time.Second, func() bool { return agg.Buffered() == 0 })
	wantEverySeq(t, agg.store, int(outage()/every)*3/4)
	if st := agg.StatsSnapshot(); st.Gaps != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// wantEverySeq checks that st holds every report of every broker from
// sequence number 1 to the last, at least least of them each.
func wantEverySeq(t *testing.T, st store.Store, least int) {
	t.Helper()
	reps, err := st.Reports(context.Background(), time.Time{}, time.Now().Add(time.Hour), 0)
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
	if len(seqs) != 2 {
		t.Errorf("reports of %d brokers stored, want 2", len(seqs))
	}
	for brk, s := range seqs {
		last := uint64(0)
		for q := range s {
			last = max(last, q)
		}
		for q := uint64(1); q <= last; q++ {
			if !s[q] {
				t.Errorf("%s: report %d of %d missing", brk, q, last)
			}
		}
		if last < uint64(least) {
			t.Errorf("%s: only %d reports, want at least %d", brk, last, least)
		}
	}
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
	link := func() netapi.LinkInfo {
		for _, l := range a.Links() {
			if l.ID == linkID {
				return l
			}
		}
		t.Fatal("no link")
		return netapi.LinkInfo{}
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
	// Each action is recorded once its broker has answered, a moment
	// after the broker changed the link.
	var (
		code       int
		body       string
		did, undid int
	)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = get(t, "http://"+agg.HTTPAddr()+"/api/actions")
		var acts []map[string]any
		json.Unmarshal([]byte(body), &acts)
		did, undid = 0, 0
		for _, act := range acts {
			if act["ok"] == true && act["link"] == linkID {
				if act["undo"] == true {
					undid++
				} else {
					did++
				}
			}
		}
		if code == 200 && did >= 2 && undid >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 || did < 2 || undid < 2 {
		t.Fatalf("actions %d: %d done, %d undone: %s", code, did, undid, body)
	}
}

// TestRuleOnContractBreach: a rule acts on the links of a delay contract
// that its route breaches, and undoes it once the route meets it again.
// The bound leaves a 0 ms link room for the ends of the path (each
// broker's way through its embedded server, whose tail reaches tens of
// milliseconds when make test loads the machine).
func TestRuleOnContractBreach(t *testing.T) {
	contract := func(cfg *broker.Config) {
		cfg.Routing.Contracts = []broker.SubjectContract{{Subject: "trade.>", Contract: router.Contract{Within: []router.Bound{{P: 0.99, Ms: 40}}, MaxLoss: 1}}}
	}
	a, b, linkID := pairWith(t, 100*time.Millisecond, &transports.Emulation{Delay: 60 * time.Millisecond}, contract)
	agg := startAggregator(t, a.ClientURL(), []Rule{
		// Measure the links of a breached route more often.
		{When: "//link[contract/@status = 'breached']", Do: Action{Interval: 20 * time.Millisecond}, Undo: true},
	}, "")
	interval := func() int {
		for _, l := range a.Links() {
			if l.ID == linkID {
				return int(l.Metrics.Interval)
			}
		}
		t.Fatal("no link")
		return 0
	}
	waitFor(t, "the rule to act on the breached contract's link", 30*time.Second, func() bool { return interval() == 20 })
	res, err := agg.Query(context.Background(), "//contract[@origin = 'na.c1.a']/@status", time.Time{}, time.Time{})
	if err != nil || len(res.Nodes) == 0 {
		t.Fatalf("no contract in the latest view: %v %v", res, err)
	}
	// Both ways: one-way delays are told apart from the offset between
	// the brokers' clocks by the quickest trip each way.
	for _, x := range []*broker.Broker{a, b} {
		if _, err := x.SetEmulation(linkID, transports.EmulationSpec{Delay: ptr(transports.Quantity("0"))}); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if t.Failed() {
			res, _ := agg.Query(context.Background(), "//contract", time.Time{}, time.Time{})
			t.Logf("contracts: %s", res.AppendXML(nil, "//contract"))
		}
	}()
	waitFor(t, "the action undone once the contract is met", 60*time.Second, func() bool { return interval() == 50 })
}

func ptr[T any](v T) *T { return &v }

// TestBadReportsAreRefused publishes reports the aggregator must refuse;
// it counts them and goes on with good ones.
func TestBadReportsAreRefused(t *testing.T) {
	a, _, _ := pair(t, 100*time.Millisecond, nil)
	agg := startAggregator(t, a.ClientURL(), nil, "")
	nc, err := nats.Connect(a.ClientURL(), nats.UserInfo(netapi.AdminUser, token))
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
		nc.Publish(netapi.PerfSubject("na"), b)
	}
	nc.Flush()
	waitFor(t, "the refusals", 10*time.Second, func() bool { return agg.StatsSnapshot().Rejected >= uint64(len(bad)) })
	before := agg.StatsSnapshot().Received
	waitFor(t, "good reports to go on", 10*time.Second, func() bool { return agg.StatsSnapshot().Received > before })
}

var _ = sync.Mutex{}

// TestPagesAndLiveUpdates: the aggregator serves the pages of its network
// and tells connected pages of each report as it comes.
func TestPagesAndLiveUpdates(t *testing.T) {
	a, _, linkID := pair(t, 100*time.Millisecond, nil)
	agg := startAggregator(t, a.ClientURL(), nil, "")
	waitFor(t, "reports of both brokers, stored", 10*time.Second, func() bool {
		return len(agg.Latest()) == 2 && agg.StatsSnapshot().Stored >= 2
	})
	base := "http://" + agg.HTTPAddr()
	for path, want := range map[string]string{
		"/": "na.c1.b", "/map": `data-broker="na.c1.a"`, "/brokers/na.c1.a": linkID, "/links/" + linkID: "<svg",
		"/rules": "No rules", "/xpath?q=count(//link)": "<strong>2</strong>",
		"/xpath?q=count(//sample)%3E0&from=1m": "<strong>true</strong>",
	} {
		code, body := get(t, base+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %q in\n%.300s", path, code, want, body)
		}
	}
	// The query page takes times as the API does, and says what is wrong.
	for _, path := range []string{"/xpath?q=count(//link)&from=yesterday", "/xpath?q=count(//link)&from=1h&to=soon", "/xpath?q=//link["} {
		if code, body := get(t, base+path); code != http.StatusBadRequest || !strings.Contains(body, `class="error"`) {
			t.Errorf("%s: %d\n%.300s", path, code, body)
		}
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+agg.HTTPAddr()+"/live?topics=report.na.c1.b", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Kind, Broker string
		Seq          uint64
	}
	if err := json.Unmarshal(msg, &ev); err != nil || ev.Kind != "report" || ev.Broker != "na.c1.b" || ev.Seq == 0 {
		t.Fatalf("live update %s: %+v %v", msg, ev, err)
	}
}
