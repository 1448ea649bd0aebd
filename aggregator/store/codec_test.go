package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

func TestCosts(t *testing.T) {
	cases := []struct {
		costs []schema.Cost
		text  string
	}{
		{nil, ""},
		{[]schema.Cost{{Profile: "default", Value: 45.1}, {Profile: "media", Value: 12.3}}, "default=45.1;media=12.3"},
		{[]schema.Cost{{Profile: "default", Value: math.Inf(1)}}, "default=+Inf"},
		{[]schema.Cost{{Profile: "", Value: 0}, {Profile: "a=b;c%d", Value: -1e-300}}, "=0;a%3Db%3Bc%25d=-1e-300"},
	}
	for _, c := range cases {
		text := string(encodeCosts(nil, c.costs))
		if text != c.text {
			t.Errorf("encode %v: %q, want %q", c.costs, text, c.text)
		}
		back, err := decodeCosts(text)
		if err != nil || fmt.Sprint(back) != fmt.Sprint(c.costs) {
			t.Errorf("decode %q: %v, %v; want %v", text, back, err, c.costs)
		}
	}
	for _, bad := range []string{"default", "default=x", "a=1;", "%zz=1"} {
		if _, err := decodeCosts(bad); err == nil {
			t.Errorf("decode %q: no error", bad)
		}
	}
}

func TestHistogram(t *testing.T) {
	cases := []struct {
		h    schema.Histogram
		text string
	}{
		{schema.Histogram{}, ""},
		{schema.Histogram{Missing: 3}, "3;"},
		{schema.Histogram{Missing: 3, Buckets: []schema.Bucket{{LE: 44.67, Count: 12}, {LE: math.Inf(1), Count: 1}}}, "3;44.67:12,+Inf:1"},
		{schema.Histogram{Buckets: []schema.Bucket{{LE: 0.5, Count: 0.25}}}, "0;0.5:0.25"},
	}
	for _, c := range cases {
		text := string(encodeHistogram(nil, c.h))
		if text != c.text {
			t.Errorf("encode %v: %q, want %q", c.h, text, c.text)
		}
		back, err := decodeHistogram(text)
		if err != nil || fmt.Sprint(back) != fmt.Sprint(c.h) {
			t.Errorf("decode %q: %v, %v; want %v", text, back, err, c.h)
		}
	}
	for _, bad := range []string{"3", "x;", "3;1", "3;1:x", "3;1:2,"} {
		if _, err := decodeHistogram(bad); err == nil {
			t.Errorf("decode %q: no error", bad)
		}
	}
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
		v, ok := dbFloat(f).(float64)
		back := goFloat(sql.NullFloat64{Float64: v, Valid: ok})
		if fmt.Sprint(back) != fmt.Sprint(f) {
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
