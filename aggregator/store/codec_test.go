package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

// detailCases are links whose details must come back exactly.
func detailCases() []schema.Link {
	full := link("l1", "a", "b", 3)
	odd := schema.Link{
		Latency: schema.Summary{Min: -0.0, P50: math.NaN(), P90: math.Inf(1), P99: math.Inf(-1), Max: 1 << 52},
		Samples: schema.Samples{Sent: math.MaxUint64, Received: 1 << 63, Window: -5},
		Costs:   []schema.Cost{{Profile: "", Value: 0}, {Profile: "a=b;c%d\x00\t", Value: -1e-300}},
		Histogram: schema.Histogram{Missing: 0.25, Buckets: []schema.Bucket{
			{LE: 0.5, Count: 0.25}, {LE: math.Inf(1), Count: 1<<52 - 1}}},
	}
	return []schema.Link{{}, full, odd}
}

func TestDetail(t *testing.T) {
	for _, l := range detailCases() {
		b := appendDetail(nil, &l)
		var back schema.Link
		if err := decodeDetail(b, &back, nil, detailAll); err != nil {
			t.Errorf("%+v: %v", l, err)
			continue
		}
		want := schema.Link{Latency: l.Latency, Samples: l.Samples, Dropped: l.Dropped, Costs: l.Costs, Histogram: l.Histogram}
		want.Latency.Mean = 0
		if fmt.Sprintf("%+v", back) != fmt.Sprintf("%+v", want) || math.Signbit(back.Latency.Min) != math.Signbit(l.Latency.Min) {
			t.Errorf("came back as %+v\nwant %+v", back, want)
		}
		// The summary alone: the same percentiles, counts and drops, and
		// neither costs nor histogram, from shared blocks.
		var sum schema.Link
		var s slabs
		if err := decodeDetail(b, &sum, &s, detailSummary); err != nil {
			t.Errorf("summary of %+v: %v", l, err)
		}
		want.Costs, want.Histogram = nil, schema.Histogram{}
		if fmt.Sprintf("%+v", sum) != fmt.Sprintf("%+v", want) {
			t.Errorf("summary came back as %+v\nwant %+v", sum, want)
		}
		// The summary and the costs.
		var costs schema.Link
		if err := decodeDetail(b, &costs, &s, detailCosts); err != nil {
			t.Errorf("costs of %+v: %v", l, err)
		}
		want.Costs = l.Costs
		if fmt.Sprintf("%+v", costs) != fmt.Sprintf("%+v", want) {
			t.Errorf("costs came back as %+v\nwant %+v", costs, want)
		}
		// Every cut of it is refused, and so is more of it.
		for n := range len(b) {
			if err := decodeDetail(b[:n], &back, nil, detailAll); err == nil {
				t.Errorf("%d of %d bytes: no error", n, len(b))
			}
		}
		if err := decodeDetail(append(b, 0), &back, nil, detailAll); err == nil {
			t.Error("a byte more: no error")
		}
	}
	// Whole counts take a byte or two, not nine.
	l := link("l1", "a", "b", 3)
	if n := len(appendDetail(nil, &l)); n > 120 {
		t.Errorf("a detail of %d bytes", n)
	}
}

// TestDetailVersion1: a detail written before numbers could be
// thousandths (version 1, with the monitor's older log-spaced bucket
// bounds) reads as ever; and the bounds of today's buckets, whole
// microseconds, take three bytes each rather than nine.
func TestDetailVersion1(t *testing.T) {
	v1Number := func(b []byte, f float64) []byte {
		if f >= 0 && f < 1<<52 && f == math.Trunc(f) && !math.Signbit(f) {
			return binary.AppendUvarint(b, uint64(f)<<1)
		}
		return binary.LittleEndian.AppendUint64(append(b, 1), math.Float64bits(f))
	}
	want := schema.Link{
		Latency: schema.Summary{Min: 44.1, P50: 45.0, P90: 46.6, P99: 47.75, Max: 52.3},
		Samples: schema.Samples{Sent: 252, Received: 250, Lost: 2, Window: 256},
		Dropped: 3,
		Costs:   []schema.Cost{{Profile: "default", Value: 93.8}},
		Histogram: schema.Histogram{Missing: 2, Buckets: []schema.Bucket{
			{LE: 0.05 * math.Pow(10, 30.0/10), Count: 37}, {LE: 0.05 * math.Pow(10, 31.0/10), Count: 213}}},
	}
	b := []byte{1}
	for _, f := range []float64{44.1, 45.0, 46.6, 47.75, 52.3} {
		b = v1Number(b, f)
	}
	b = binary.AppendUvarint(b, 252)
	b = binary.AppendUvarint(b, 250)
	b = binary.AppendUvarint(b, 2)
	b = binary.AppendVarint(b, 256)
	b = append(b, 0, 0, 3, 1, 7)
	b = v1Number(append(b, "default"...), 93.8)
	b = v1Number(b, 2)
	b = append(b, 2)
	for _, k := range want.Histogram.Buckets {
		b = v1Number(v1Number(b, k.LE), k.Count)
	}
	var got schema.Link
	if err := decodeDetail(b, &got, nil, detailAll); err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("version 1 detail: %v\n got %+v\nwant %+v", err, got, want)
	}
	head, hist, err := splitDetail(b)
	if err != nil || len(head)+len(hist) != len(b) {
		t.Fatalf("splitDetail of a version 1 detail: %v", err)
	}
	// A version 1 block of it: its numbers hold no thousandths, so the
	// block differs from today's in its version bytes alone.
	ps := []packed{{t: 5e9, state: []byte("up"), monitor: []byte("up"), figs: [4]float64{90.27123, 45.14567, 2.04321, math.NaN()}, head: head, hist: hist}}
	figs, detail, err := encodeBlock(ps)
	if err != nil {
		t.Fatal(err)
	}
	figs[0], detail[0] = 1, 1
	if got, err := decodeBlock(5e9, figs, detail); err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", ps) {
		t.Fatalf("version 1 block: %v\n got %+v\nwant %+v", err, got, ps)
	}

	// Fifteen buckets of 512 µs from 44.544 ms.
	var h schema.Histogram
	for i := range 15 {
		h.Buckets = append(h.Buckets, schema.Bucket{LE: float64(44544+512*i) / 1000, Count: float64(1 + i%4)})
	}
	if n := len(appendHistogram(nil, &h)); n > 2+15*4 {
		t.Errorf("15 buckets took %d bytes", n)
	}
	l := schema.Link{Histogram: h}
	var back schema.Link
	if err := decodeDetail(appendDetail(nil, &l), &back, nil, detailAll); err != nil || fmt.Sprintf("%+v", back.Histogram) != fmt.Sprintf("%+v", h) {
		t.Errorf("bounds in thousandths came back as %+v, %v", back.Histogram, err)
	}
}

// FuzzDecodeDetail: a stored detail is read back whatever its bytes (a
// damaged row, another writer): it decodes or fails with an error, never
// panics or allocates beyond its size, and what decodes encodes to the
// same bytes.
func FuzzDecodeDetail(f *testing.F) {
	for _, l := range detailCases() {
		f.Add(appendDetail(nil, &l))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l schema.Link
		if err := decodeDetail(b, &l, nil, detailAll); err != nil {
			return
		}
		if len(l.Costs)+len(l.Histogram.Buckets) > len(b) {
			t.Fatalf("%d bytes made %d costs and %d buckets", len(b), len(l.Costs), len(l.Histogram.Buckets))
		}
		again := appendDetail(nil, &l)
		var back schema.Link
		if err := decodeDetail(again, &back, nil, detailAll); err != nil || fmt.Sprintf("%+v", back) != fmt.Sprintf("%+v", l) {
			t.Fatalf("%x decoded to %+v, which came back as %+v, %v", b, l, back, err)
		}
	})
}

func TestTimesAndFloats(t *testing.T) {
	for _, tm := range []time.Time{{}, base, time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC)} {
		if back := goTime(dbTime(tm)); !back.Equal(tm) {
			t.Errorf("time %v came back as %v", tm, back)
		}
	}
	if lo, hi := span(time.Time{}, time.Time{}); lo != math.MinInt64 || hi != math.MaxInt64 {
		t.Errorf("open span: [%d, %d)", lo, hi)
	}
	if got := dbTime(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); got != math.MaxInt64 {
		t.Errorf("year 3000: %d, want the largest time", got)
	}
	for _, f := range []float64{0, -1.5, 1e300, math.Inf(1), math.Inf(-1), math.NaN()} {
		back, err := anyFloat(dbFloat(f))
		if err != nil || fmt.Sprint(back) != fmt.Sprint(f) {
			t.Errorf("float %v came back as %v", f, back)
		}
	}
}

func TestStatements(t *testing.T) {
	text := "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT ';');\n/* block; */ INSERT INTO a VALUES ('it''s; \\' fine', \"q;\", `c;`);\n\n;  \n"
	want := []string{"CREATE TABLE a (x TEXT DEFAULT ';')", "INSERT INTO a VALUES ('it''s; \\' fine', \"q;\", `c;`)"}
	if got := statements(text); !slices.Equal(got, want) {
		t.Errorf("statements:\n got %q\nwant %q", got, want)
	}
}

// TestMigrationsEmbedded checks that each dialect's migrations parse,
// number from 1 without gaps, and create the same tables.
func TestMigrationsEmbedded(t *testing.T) {
	tables := map[string][]string{}
	for _, d := range []string{"mysql", "sqlite"} {
		ms, err := schema.Migrations(d)
		if err != nil || len(ms) == 0 {
			t.Fatalf("Migrations(%s): %d, %v", d, len(ms), err)
		}
		for i, m := range ms {
			if m.Version != i+1 || m.Name == "" || len(statements(m.SQL)) == 0 {
				t.Errorf("%s migration %d: version %d name %q", d, i, m.Version, m.Name)
			}
			for _, st := range statements(m.SQL) {
				if name, ok := strings.CutPrefix(st, "CREATE TABLE IF NOT EXISTS "); ok {
					name, _, _ = strings.Cut(name, " ")
					tables[d] = append(tables[d], name)
				}
			}
		}
	}
	if !slices.Equal(tables["mysql"], tables["sqlite"]) {
		t.Errorf("the dialects create different tables: %v and %v", tables["mysql"], tables["sqlite"])
	}
	for _, bad := range []string{"", "postgres", "../sql", "mysql/.."} {
		if _, err := schema.Migrations(bad); err == nil {
			t.Errorf("Migrations(%q): no error", bad)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, dsn := range []string{
		"postgres://x@y/z",
		"mysql://root@tcp(127.0.0.1:1)/",                     // no database
		"mysql://root@tcp(127.0.0.1:1",                       // malformed
		"mysql://root:secret@tcp(127.0.0.1:1)/db?timeout=1s", // nobody listens
		"sqlite:",
		"sqlite::memory:",
	} {
		st, err := Open(context.Background(), dsn, Options{})
		if err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if !strings.HasPrefix(err.Error(), "store: open: ") || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): %v", dsn, err)
		}
	}
}
