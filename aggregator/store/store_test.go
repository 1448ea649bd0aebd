package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

// suite is the conformance test that every backend passes; each case gets
// a database of its own.
var suite = []struct {
	name string
	run  func(t *testing.T, dsn string)
}{
	{"MigrationsIdempotent", testMigrationsIdempotent},
	{"RoundTrip", testRoundTrip},
	{"MeasurementFilters", testMeasurementFilters},
	{"Reports", testReports},
	{"Upsert", testUpsert},
	{"NastyStrings", testNastyStrings},
	{"Actions", testActions},
	{"Prune", testPrune},
	{"Ping", testPing},
	{"ConcurrentSaves", testConcurrentSaves},
	{"WritePaths", testWritePaths},
	{"SavedTwice", testSavedTwice},
	{"Compact", testCompact},
	{"CompactWhileWalking", testCompactWhileWalking},
	{"CompactBigWindow", testCompactBigWindow},
	{"CompactBrokenRow", testCompactBrokenRow},
}

func TestStore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range suite {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, b.dsn(t))
				})
			}
		})
	}
}

func save(t testing.TB, s Store, batch ...Received) {
	t.Helper()
	if err := s.Save(context.Background(), batch); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func testMigrationsIdempotent(t *testing.T, dsn string) {
	first := open(t, dsn)
	save(t, first, rep("a", 1, at(0), link("l1", "a", "b", 1)))
	first.Close()
	again := open(t, dsn) // finds every migration applied
	ms, err := schema.Migrations(again.d.name)
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, again, "schema_migrations"); got != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", got, len(ms))
	}
	if got := count(t, again, "measurements"); got != 1 {
		t.Errorf("after reopening, %d measurements, want 1", got)
	}
	if err := again.migrate(context.Background()); err != nil {
		t.Errorf("migrating a migrated database: %v", err)
	}
	if _, err := again.db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)", ms[len(ms)-1].Version+1); err != nil {
		t.Fatal(err)
	}
	if err := again.migrate(context.Background()); err == nil {
		t.Error("a database migrated by a newer program was accepted")
	}
	if _, err := again.db.Exec("DELETE FROM schema_migrations WHERE name = 'future'"); err != nil {
		t.Fatal(err)
	}
	// A table of an earlier development version, under the same
	// migration number: refused at once, saying what to do.
	for _, q := range []string{"DROP TABLE actions", "CREATE TABLE actions (id INTEGER PRIMARY KEY, what TEXT)"} {
		if _, err := again.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := again.migrate(context.Background()); err == nil || !strings.Contains(err.Error(), "earlier development version") {
		t.Errorf("a table of another layout: %v", err)
	}
}

func testRoundTrip(t *testing.T, dsn string) {
	s := open(t, dsn)
	full := link("3f2a0c1e-0000-4000-8000-000000000001", "a", "b", 7)
	full.RTT = math.Inf(1)
	full.Jitter = math.NaN()
	full.Loss = 0
	full.Latency.Min = -0.5
	full.Samples.Sent = math.MaxUint64
	full.Samples.Received = 1 << 63
	full.Costs = append(full.Costs, schema.Cost{Profile: "odd;name=50%", Value: math.Inf(1)})
	bare := schema.Link{ID: "3f2a0c1e-0000-4000-8000-000000000002", A: "a", B: "c", Transport: "tcp", State: "down", Monitor: "unknown"}
	when := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	save(t, s, rep("a", 42, when, full, bare))

	got := walkAll(t, s, MeasurementQuery{})
	if len(got) != 2 {
		t.Fatalf("got %d measurements, want 2", len(got))
	}
	for i, want := range []schema.Link{full, bare} {
		m := got[i]
		if !m.Time.Equal(when) || m.Broker != "a" {
			t.Errorf("measurement %d: time %v broker %q, want %v a", i, m.Time, m.Broker, when)
		}
		// %v shows NaN as NaN, which == does not match, and nil and
		// empty slices alike.
		if g, w := fmt.Sprintf("%+v", m.Link), fmt.Sprintf("%+v", want); g != w {
			t.Errorf("measurement %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

func testMeasurementFilters(t *testing.T, dsn string) {
	s := open(t, dsn)
	ids := []string{"l3", "l1", "l2"}
	var batch []Received
	for i := range 5 {
		var ls []schema.Link
		for j, id := range ids {
			ls = append(ls, link(id, "a", "b", 10*i+j))
		}
		batch = append(batch, rep("a", uint64(i+1), at(10*i), ls...))
		// b reports l1 too, at the same instants: stored after a's.
		batch = append(batch, rep("b", uint64(i+1), at(10*i), link("l1", "b", "a", 100+i)))
	}
	save(t, s, batch[:4]...)
	save(t, s, batch[4:]...)

	type key struct {
		link, broker string
		t            int
	}
	keys := func(ms []Measurement) []key {
		var out []key
		for _, m := range ms {
			out = append(out, key{m.Link.ID, m.Broker, int(m.Time.Sub(base) / time.Second)})
		}
		return out
	}
	cases := []struct {
		name string
		q    MeasurementQuery
		want []key
	}{
		{"range [10s, 30s) of all links", MeasurementQuery{From: at(10), To: at(30)}, []key{
			{"l1", "a", 10}, {"l1", "b", 10}, {"l1", "a", 20}, {"l1", "b", 20},
			{"l2", "a", 10}, {"l2", "a", 20}, {"l3", "a", 10}, {"l3", "a", 20}}},
		{"two links, open start", MeasurementQuery{To: at(11), Links: []string{"l3", "l2", "l3"}}, []key{
			{"l2", "a", 0}, {"l2", "a", 10}, {"l3", "a", 0}, {"l3", "a", 10}}},
		{"open end", MeasurementQuery{From: at(40), Links: []string{"l1"}}, []key{{"l1", "a", 40}, {"l1", "b", 40}}},
		{"unknown link", MeasurementQuery{Links: []string{"nope"}}, nil},
		{"empty range", MeasurementQuery{From: at(20), To: at(20)}, nil},
	}
	for _, c := range cases {
		if got := keys(walkAll(t, s, c.q)); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
		}
	}
	if got := len(walkAll(t, s, MeasurementQuery{})); got != 20 {
		t.Errorf("all: %d measurements, want 20", got)
	}

	stop := errors.New("enough")
	calls := 0
	err := s.Measurements(context.Background(), MeasurementQuery{}, func(Measurement) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn's error: got %v after %d calls, want %v after 1", err, calls, stop)
	}
	// In parts: every measurement once, each link in one part only, in
	// order within its part; and an error in one part stops the walk.
	for _, n := range []int{1, 2, 3, 7} {
		got := make([][]key, n)
		err := s.MeasurementsInParts(context.Background(), MeasurementQuery{}, n, func(i int) func(Measurement) error {
			return func(m Measurement) error {
				got[i] = append(got[i], keys([]Measurement{m})...)
				return nil
			}
		})
		if err != nil {
			t.Fatalf("%d parts: %v", n, err)
		}
		var all []key
		partOf := map[string]int{}
		for i, ks := range got {
			for _, k := range ks {
				if j, ok := partOf[k.link]; ok && j != i {
					t.Errorf("%d parts: link %s in parts %d and %d", n, k.link, j, i)
				}
				partOf[k.link] = i
			}
			all = append(all, ks...)
		}
		if want := keys(walkAll(t, s, MeasurementQuery{})); !slices.Equal(all, want) {
			t.Errorf("%d parts:\n got %v\nwant %v", n, all, want)
		}
	}
	err = s.MeasurementsInParts(context.Background(), MeasurementQuery{}, 3, func(i int) func(Measurement) error {
		return func(Measurement) error { return stop }
	})
	if !errors.Is(err, stop) {
		t.Errorf("fn's error in parts: %v, want %v", err, stop)
	}
	// b's view of l1: it is end A of what it reports.
	for _, m := range walkAll(t, s, MeasurementQuery{Links: []string{"l1"}}) {
		if want := map[string]string{"a": "b", "b": "a"}[m.Broker]; m.Link.A != m.Broker || m.Link.B != want {
			t.Errorf("l1 reported by %s has ends %s-%s", m.Broker, m.Link.A, m.Link.B)
		}
	}
}

func testReports(t *testing.T, dsn string) {
	s := open(t, dsn)
	r1 := rep("a", 1, at(0), link("l1", "a", "b", 1))
	r2 := rep("a", 4, at(15), link("l1", "a", "b", 2), link("l2", "a", "c", 2))
	r2.Gap = 2
	r3 := rep("b", 9, at(20))
	r3.Bytes = 77
	save(t, s, r1, r2, r3)

	all, err := s.Reports(context.Background(), time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []ReportRow{
		{Broker: "b", Seq: 9, Time: at(20), Received: r3.Received, Links: 0, Gap: 0, Bytes: 77},
		{Broker: "a", Seq: 4, Time: at(15), Received: r2.Received, Links: 2, Gap: 2, Bytes: r2.Bytes},
		{Broker: "a", Seq: 1, Time: at(0), Received: r1.Received, Links: 1, Gap: 0, Bytes: r1.Bytes},
	}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Errorf("Reports:\n got %v\nwant %v", all, want)
	}
	// By the time received: r2 came at 15.001 s.
	some, err := s.Reports(context.Background(), at(1), at(21), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != 1 || some[0].Seq != 9 {
		t.Errorf("Reports in [1s, 21s) limit 1: %v, want b's seq 9", some)
	}
	some, err = s.Reports(context.Background(), at(1), at(20), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != 1 || some[0].Seq != 4 || some[0].Gap != 2 {
		t.Errorf("Reports in [1s, 20s): %v, want a's seq 4 with gap 2", some)
	}
}

func testUpsert(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := context.Background()
	save(t, s, rep("a", 1, at(10), link("l1", "a", "b", 1)))
	brokers, _ := s.Brokers(ctx)
	want := []BrokerRow{
		{Address: "a", Domain: "na", FirstSeen: at(10), LastSeen: at(10), LastSeq: 1},
		{Address: "b", FirstSeen: at(10)}, // heard of as a's peer only
	}
	if fmt.Sprint(brokers) != fmt.Sprint(want) {
		t.Errorf("after one report:\n got %v\nwant %v", brokers, want)
	}

	b := rep("b", 7, at(20), link("l1", "b", "a", 2))
	b.Report.Domain = "eu"
	moved := link("l1", "a", "b", 3)
	moved.Transport = "tcp"
	save(t, s, b, rep("a", 2, at(20), moved))
	save(t, s, rep("a", 9, at(5), link("l1", "a", "b", 0))) // late: moves only first_seen
	brokers, _ = s.Brokers(ctx)
	want = []BrokerRow{
		{Address: "a", Domain: "na", FirstSeen: at(5), LastSeen: at(20), LastSeq: 2},
		{Address: "b", Domain: "eu", FirstSeen: at(5), LastSeen: at(20), LastSeq: 7},
	}
	if fmt.Sprint(brokers) != fmt.Sprint(want) {
		t.Errorf("after more reports:\n got %v\nwant %v", brokers, want)
	}
	links, err := s.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantLinks := []LinkRow{{ID: "l1", A: "a", B: "b", Transport: "tcp", LastSeen: at(20)}}
	if fmt.Sprint(links) != fmt.Sprint(wantLinks) {
		t.Errorf("Links:\n got %v\nwant %v", links, wantLinks)
	}
}

// nasty strings that break SQL built by pasting, and characters that need
// four bytes in UTF-8.
const nasty = `na.c1.'b"1\'; DROP TABLE brokers; -- \x` + "\u00fc\U0001F600"

func testNastyStrings(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := context.Background()
	l := link("l-"+nasty, nasty, "peer`"+nasty, 1)
	l.State, l.Monitor = `'"\`, `;--`
	l.Costs = []schema.Cost{{Profile: nasty, Value: 1}}
	r := rep(nasty, 1, at(0), l)
	r.Report.Domain = nasty
	save(t, s, r)

	brokers, err := s.Brokers(ctx)
	if err != nil || len(brokers) != 2 || brokers[0].Address != nasty || brokers[0].Domain != nasty || brokers[1].Address != "peer`"+nasty {
		t.Errorf("Brokers: %+v, %v", brokers, err)
	}
	links, err := s.Links(ctx)
	if err != nil || len(links) != 1 || links[0].ID != l.ID || links[0].A != nasty || links[0].B != l.B {
		t.Errorf("Links: %+v, %v", links, err)
	}
	got := walkAll(t, s, MeasurementQuery{Links: []string{l.ID}})
	if len(got) != 1 || fmt.Sprintf("%+v", got[0].Link) != fmt.Sprintf("%+v", l) {
		t.Errorf("Measurements: %+v\nwant link %+v", got, l)
	}
	a := Action{Time: at(1), Rule: nasty, Broker: nasty, Link: l.ID, Action: nasty, Error: nasty, Request: `{"x":"` + nasty + `"}`}
	if err := s.RecordAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	acts, err := s.Actions(ctx, time.Time{}, time.Time{}, 0)
	if err != nil || len(acts) != 1 || fmt.Sprint(acts[0]) != fmt.Sprint(a) {
		t.Errorf("Actions: %+v, %v\nwant %+v", acts, err, a)
	}
	if n := count(t, s, "brokers"); n != 2 {
		t.Errorf("%d brokers", n)
	}
}

func testActions(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := context.Background()
	acts := []Action{
		{Time: at(0), Rule: "loss > 0.05", Broker: "a", Link: "l1", Action: "interval 250ms", OK: true, Request: `{"op":"interval","ms":250}`},
		{Time: at(10), Rule: "loss > 0.05", Broker: "a", Link: "l1", Action: "exclude-from-routing", Error: "timeout"},
		{Time: at(20), Rule: "loss > 0.05", Broker: "a", Link: "l1", Action: "interval 250ms", Undo: true, OK: true},
	}
	for _, a := range acts {
		if err := s.RecordAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		from, to time.Time
		limit    int
		want     []Action
	}{
		{time.Time{}, time.Time{}, 0, []Action{acts[2], acts[1], acts[0]}},
		{time.Time{}, time.Time{}, 2, []Action{acts[2], acts[1]}},
		{at(0), at(20), 0, []Action{acts[1], acts[0]}},
		{at(21), time.Time{}, 0, nil},
	}
	for _, c := range cases {
		got, err := s.Actions(ctx, c.from, c.to, c.limit)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("Actions(%v, %v, %d):\n got %v, %v\nwant %v", c.from, c.to, c.limit, got, err, c.want)
		}
	}
}

func testPrune(t *testing.T, dsn string) {
	s := open(t, dsn)
	s.pruneChunk = 3 // several chunks per link
	ctx := context.Background()
	var batch []Received
	for i := range 10 {
		batch = append(batch, rep("a", uint64(i+1), at(i), link("l1", "a", "b", i), link("l2", "a", "c", i)))
	}
	save(t, s, batch...)
	if err := s.RecordAction(ctx, Action{Time: at(0), Action: "x"}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, at(7))
	if err != nil {
		t.Fatal(err)
	}
	// 7 reports of 2 links each, and the 7 reports received before 7 s
	// (at 0.001 s … 6.001 s).
	if n != 7*2+7 {
		t.Errorf("Prune removed %d rows, want %d", n, 7*2+7)
	}
	left := walkAll(t, s, MeasurementQuery{})
	if len(left) != 6 || !left[0].Time.Equal(at(7)) {
		t.Errorf("left %d measurements, want 6 from %v: %v", len(left), at(7), left)
	}
	reports, _ := s.Reports(ctx, time.Time{}, time.Time{}, 0)
	if len(reports) != 3 {
		t.Errorf("left %d reports, want 3", len(reports))
	}
	if count(t, s, "brokers") != 3 || count(t, s, "links") != 2 || count(t, s, "actions") != 1 {
		t.Error("Prune removed brokers, links or actions")
	}
	if n, err := s.Prune(ctx, at(7)); n != 0 || err != nil {
		t.Errorf("Prune again: %d, %v; want 0, nil", n, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prune(cancelled, at(100)); !errors.Is(err, context.Canceled) {
		t.Errorf("Prune with a cancelled context: %v", err)
	}
}

func testPing(t *testing.T, dsn string) {
	st, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := st.Save(context.Background(), nil); err != nil {
		t.Errorf("Save of nothing: %v", err)
	}
	st.Close()
	if err := st.Ping(context.Background()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

// testConcurrentSaves saves from several goroutines at once, batches that
// share brokers and links and so contend for the same rows.
func testConcurrentSaves(t *testing.T, dsn string) {
	s := open(t, dsn)
	const writers, batches, reports = 6, 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var batch []Received
				for r := range reports {
					// brokers b0..b3, peers among them, links l0..l5
					from, to := fmt.Sprintf("b%d", (w+r)%4), fmt.Sprintf("b%d", (w+r+1)%4)
					i := w*batches*reports + b*reports + r
					batch = append(batch, rep(from, uint64(i+1), at(i),
						link(fmt.Sprintf("l%d", r), from, to, i), link(fmt.Sprintf("l%d", 5-r), from, to, i)))
				}
				if err := s.Save(context.Background(), batch); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := len(walkAll(t, s, MeasurementQuery{})), writers*batches*reports*2; got != want {
		t.Errorf("%d measurements, want %d", got, want)
	}
	if got, want := count(t, s, "reports"), writers*batches*reports; got != want {
		t.Errorf("%d reports, want %d", got, want)
	}
	if count(t, s, "brokers") != 4 || count(t, s, "links") != 6 {
		t.Errorf("%d brokers and %d links, want 4 and 6", count(t, s, "brokers"), count(t, s, "links"))
	}
}

// testWritePaths stores awkward values through both INSERTs (the
// prepared one of a full chunk and the one of the remainder), and checks
// that a batch the database refuses leaves nothing behind.
func testWritePaths(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := context.Background()
	for i, rows := range []int{1, s.chunk + 1} {
		var links []schema.Link
		for k := range rows {
			l := link(fmt.Sprintf("l%d-%d-%s", i, k, nasty), nasty, "b\t\n\x00"+nasty, i)
			l.State, l.Monitor = "a\tb\nc", "\\N"
			l.Costs = []schema.Cost{{Profile: "tab\there\\", Value: math.Inf(1)}}
			l.Jitter, l.RTT = math.NaN(), math.Inf(-1)
			links = append(links, l)
		}
		save(t, s, rep(nasty, uint64(i+1), at(i), links...))
		got := walkAll(t, s, MeasurementQuery{From: at(i), To: at(i + 1)})
		if len(got) != rows {
			t.Fatalf("%d rows: %d came back", rows, len(got))
		}
		want := map[string]string{}
		for _, l := range links {
			want[l.ID] = fmt.Sprintf("%+v", l)
		}
		for _, m := range got {
			if fmt.Sprintf("%+v", m.Link) != want[m.Link.ID] {
				t.Errorf("%d rows: got %+v\nwant link %s", rows, m.Link, want[m.Link.ID])
				break
			}
		}
		if s.d != mysqlDialect {
			continue
		}
		// MySQL refuses a state longer than its column; the whole batch
		// goes back, the report before the bad one too.
		bad := link(fmt.Sprintf("bad%d", i), "x", "y", i)
		bad.State = strings.Repeat("s", 100)
		err := s.Save(ctx, []Received{rep("x", 1, at(50+10*i), link(fmt.Sprintf("good%d", i), "x", "y", 1)), rep("x", 2, at(51+10*i), bad)})
		if err == nil {
			t.Errorf("%d rows: a state of 100 bytes was stored", rows)
		}
		if n := len(walkAll(t, s, MeasurementQuery{From: at(50)})); n != 0 {
			t.Errorf("%d rows: a failed batch left %d measurements", rows, n)
		}
		if reps, _ := s.Reports(ctx, at(50), time.Time{}, 0); len(reps) != 0 {
			t.Errorf("%d rows: a failed batch left %d reports", rows, len(reps))
		}
	}
}

// testSavedTwice: a batch stored again (retried after its commit went
// through unheard, or written by two writers) leaves one row per
// measurement and per report.
func testSavedTwice(t *testing.T, dsn string) {
	s := open(t, dsn)
	for i := range 2 {
		batch := []Received{
			rep("a", uint64(10*i+1), at(10*i), link("l1", "a", "b", 1), link("l2", "a", "c", 2)),
			rep("b", uint64(10*i+1), at(10*i), link("l1", "b", "a", 3)),
		}
		save(t, s, batch...)
		save(t, s, batch...)
		save(t, s, batch[1])
		if got := len(walkAll(t, s, MeasurementQuery{From: at(10 * i), To: at(10*i + 1)})); got != 3 {
			t.Errorf("round %d: %d measurements, want 3", i, got)
		}
		if got := count(t, s, "reports"); got != 2*(i+1) {
			t.Errorf("round %d: %d reports, want %d", i, got, 2*(i+1))
		}
	}
}
