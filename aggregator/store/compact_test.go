package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

// compactQueries are walks whose answers compaction must not change:
// every part of the detail, some figure columns, and ranges that cut
// windows (of 5 minutes from base) in the middle.
var compactQueries = []MeasurementQuery{
	{},
	{NoDetail: true},
	{SummaryOnly: true, Figures: []string{"loss"}},
	{NoHistogram: true, Figures: []string{"state", "rtt"}},
	{From: at(290), To: at(610)},
	{From: at(300), To: at(301)},
	{From: at(7), To: at(8)},
	{From: at(1000)},
	{To: at(299), Links: []string{"l2"}},
	{From: at(301), To: at(900), Links: []string{"l1", "l3"}, NoDetail: true},
}

// walks is the answer of every compactQuery, as text: %+v writes NaN as
// NaN and tells infinities and -0 apart.
func walks(t testing.TB, s Store) []string {
	t.Helper()
	var out []string
	for _, q := range compactQueries {
		out = append(out, fmt.Sprintf("%+v", walkAll(t, s, q)))
	}
	return out
}

func sameWalks(t *testing.T, when string, got, want []string) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: query %+v:\n got %.600s\nwant %.600s", when, compactQueries[i], got[i], want[i])
		}
	}
}

func testCompact(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := context.Background()
	// Three links over four windows; a and b both report l1, at the same
	// instants and in between; odd figures on l3.
	odd := func(n int) schema.Link {
		l := link("l3", "a", "d", n)
		l.RTT, l.Jitter, l.Loss = math.Inf(1), math.NaN(), math.Copysign(0, -1)
		l.Latency.Min = math.Inf(-1)
		l.Samples.Sent, l.Samples.Window = math.MaxUint64, -3
		l.Costs = append(l.Costs, schema.Cost{Profile: "odd;name=50%", Value: math.NaN()})
		if n%2 == 0 {
			l.Costs, l.Histogram = nil, schema.Histogram{}
		}
		l.State, l.Monitor = "down", ""
		return l
	}
	var batch []Received
	for i := range 120 {
		sec := 10 * i
		batch = append(batch, rep("a", uint64(i+1), at(sec), link("l1", "a", "b", i), link("l2", "a", "c", i), odd(i)))
		batch = append(batch, rep("b", uint64(i+1), at(sec+i%2*5), link("l1", "b", "a", 1000+i)))
	}
	save(t, s, batch...)
	want := walks(t, s)
	links, err := s.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The first two windows, then the rest.
	n, err := s.Compact(ctx, at(600+299))
	if err != nil || n != 2*30*4 {
		t.Fatalf("Compact of two windows: %d, %v; want %d", n, err, 2*30*4)
	}
	if got := count(t, s, "measurement_blocks"); got != 2*4 {
		t.Errorf("%d blocks, want 8", got)
	}
	sameWalks(t, "two windows packed", walks(t, s), want)
	if n, err := s.Compact(ctx, at(600)); n != 0 || err != nil {
		t.Errorf("Compact again: %d, %v; want 0, nil", n, err)
	}
	if n, err := s.Compact(ctx, at(100000)); n != 480-240 || err != nil {
		t.Errorf("Compact of the rest: %d, %v; want 240", n, err)
	}
	if got := count(t, s, "measurements"); got != 0 {
		t.Errorf("%d rows left", got)
	}
	sameWalks(t, "all packed", walks(t, s), want)
	if got, err := s.Links(ctx); err != nil || fmt.Sprint(got) != fmt.Sprint(links) {
		t.Errorf("Links after packing:\n got %v, %v\nwant %v", got, err, links)
	}

	// A report that comes late, into a packed window, and one stored
	// again: the walk sees each once, before and after they are packed.
	late := rep("c", 1, at(302), link("l2", "c", "a", 77))
	save(t, s, late, batch[61], batch[62])
	m := walkAll(t, s, MeasurementQuery{From: at(300), To: at(311), Links: []string{"l2"}})
	if len(m) != 3 || m[1].Broker != "c" || m[1].Link.Dropped != 77 {
		t.Errorf("l2 in [300s, 311s) with a late report: %+v", m)
	}
	again := walks(t, s)
	if n, err := s.Compact(ctx, at(100000)); n != 1+3+1 || err != nil {
		t.Errorf("Compact of the late reports: %d, %v; want 5", n, err)
	}
	sameWalks(t, "late reports packed", walks(t, s), again)
	if got := count(t, s, "measurement_blocks"); got != 4*4+1 {
		t.Errorf("%d blocks, want 17 (c's is its own)", got)
	}

	// Prune: a block goes when all of it is older.
	if _, err := s.Prune(ctx, at(650)); err != nil {
		t.Fatal(err)
	}
	if got := walkAll(t, s, MeasurementQuery{Links: []string{"l2"}}); len(got) != 60 || !got[0].Time.Equal(at(600)) {
		t.Errorf("after Prune: %d measurements of l2 from %v, want 60 from %v", len(got), got[0].Time, at(600))
	}
}

// testCompactWhileWalking: while the compactor packs what writers store,
// every walk sees every measurement of its range once.
func testCompactWhileWalking(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const links = 4
	report := func(i int) Received {
		var ls []schema.Link
		for j := range links {
			ls = append(ls, link(fmt.Sprint("l", j), "a", "b", i))
		}
		return rep("a", uint64(i+1), at(10*i), ls...)
	}
	var stored atomic.Int64 // reports 0 … stored-1 are stored
	save(t, s, report(0))
	stored.Store(1)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { // a report every 10 s, 30 to a window
		for i := 1; i < 600 && ctx.Err() == nil; i++ {
			if err := s.Save(ctx, []Received{report(i)}); err != nil {
				errs <- err
				return
			}
			stored.Store(int64(i + 1))
		}
	})
	wg.Go(func() { // packs what is a window behind
		for ctx.Err() == nil {
			done := stored.Load()
			if _, err := s.Compact(ctx, at(10*int(done)-300)); err != nil && ctx.Err() == nil {
				errs <- err
				return
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	walked := 0
	for ; time.Now().Before(deadline) && stored.Load() < 600; walked++ {
		done := int(stored.Load())
		got := walkAll(t, s, MeasurementQuery{To: at(10 * done), NoDetail: true})
		if len(got) != done*links {
			t.Fatalf("walk %d of %d reports: %d measurements, want %d", walked, done, len(got), done*links)
		}
		for k, m := range got {
			if want := at(10 * (k % done)); !m.Time.Equal(want) {
				t.Fatalf("walk %d: measurement %d at %v, want %v", walked, k, m.Time, want)
			}
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if walked < 5 || count(t, s, "measurement_blocks") == 0 {
		t.Errorf("%d walks, %d blocks: the compactor and the walks did not overlap", walked, count(t, s, "measurement_blocks"))
	}
}

// testCompactBigWindow: a window of more measurements than a block holds
// is several blocks.
func testCompactBigWindow(t *testing.T, dsn string) {
	s := open(t, dsn)
	var batch []Received
	const n = blockMaxCount + 100
	for i := range n {
		batch = append(batch, rep("a", uint64(i+1), base.Add(time.Duration(i)*100*time.Millisecond), link("l1", "a", "b", i)))
	}
	save(t, s, batch...)
	want := walks(t, s)
	if k, err := s.Compact(context.Background(), at(1000)); k != n || err != nil {
		t.Fatalf("Compact: %d, %v; want %d", k, err, n)
	}
	if got := count(t, s, "measurement_blocks"); got != 2 {
		t.Errorf("%d blocks, want 2", got)
	}
	sameWalks(t, "packed", walks(t, s), want)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Compact(cancelled, at(1000)); !errors.Is(err, context.Canceled) {
		t.Errorf("Compact with a cancelled context: %v", err)
	}
}

// testCompactBrokenRow: a row whose detail cannot be read stays a row,
// with the rows of its transaction, and the rest is packed.
func testCompactBrokenRow(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := context.Background()
	var batch []Received
	for i := range 4 * compactLinks {
		batch = append(batch, rep("a", uint64(i+1), at(i), link(fmt.Sprint("l", i), "a", "b", i)))
	}
	save(t, s, batch...)
	if _, err := s.db.Exec("UPDATE measurements SET detail = ? WHERE t = ?", []byte{9, 9}, dbTime(at(3))); err != nil {
		t.Fatal(err)
	}
	n, err := s.Compact(ctx, at(10000))
	if err == nil || !strings.Contains(err.Error(), "detail") {
		t.Errorf("Compact over a broken detail: %v", err)
	}
	// The first compactLinks links are one transaction.
	if n != 3*compactLinks || count(t, s, "measurements") != compactLinks {
		t.Errorf("packed %d, %d rows left; want %d and %d", n, count(t, s, "measurements"), 3*compactLinks, compactLinks)
	}
}
