package web

import (
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/schema"
)

var (
	circleX  = regexp.MustCompile(`<circle cx="([0-9.]+)"`)
	tickText = regexp.MustCompile(`<text [^>]*class="tick"[^>]*>([^<]*)</text>`)
)

// TestChartsFitTheData: eight minutes of measurements fill a chart's
// width, whatever range was asked for, and both axes carry ticks and a
// label; each point says its values on hover.
func TestChartsFitTheData(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var ms []store.Measurement
	for i := range 96 { // every 5 s
		for _, b := range []string{"na.a", "eu.b"} {
			l := schema.Link{ID: "l", Latency: schema.Summary{P50: 45 + float64(i%7)/10, P99: 48}, Jitter: 2, Loss: 0.01,
				Costs: []schema.Cost{{Profile: "default", Value: 46}}}
			ms = append(ms, store.Measurement{Time: start.Add(time.Duration(i) * 5 * time.Second), Broker: b, Link: l})
		}
	}
	charts := linkCharts(ms)
	if len(charts) != 5 {
		t.Fatalf("%d charts", len(charts))
	}
	for i, c := range charts {
		svg := string(c)
		xs := circleX.FindAllStringSubmatch(svg, -1)
		if len(xs) != 2*96 {
			t.Fatalf("chart %d: %d points, want %d", i, len(xs), 2*96)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, m := range xs {
			x, _ := strconv.ParseFloat(m[1], 64)
			lo, hi = min(lo, x), max(hi, x)
		}
		if lo != padL || hi != chartW-padR {
			t.Errorf("chart %d: points from x=%v to %v, want the whole width %d to %d", i, lo, hi, padL, chartW-padR)
		}
		if ticks := tickText.FindAllStringSubmatch(svg, -1); len(ticks) < 6 {
			t.Errorf("chart %d: %d tick labels", i, len(ticks))
		}
		if !strings.Contains(svg, ">time (UTC)<") || !strings.Contains(svg, `<title>10:00:00, reported by eu.b: `) {
			t.Errorf("chart %d lacks its x label or a point's title:\n%.600s", i, svg)
		}
	}
	if !strings.Contains(string(charts[0]), ">45.0 ms<") || !strings.Contains(string(charts[0]), ">10:04<") {
		t.Errorf("latency chart's ticks: %q", tickText.FindAllStringSubmatch(string(charts[0]), -1))
	}
}

// TestCDFShowsTheSpread: a link of 45 ms ± 3 ms, measured in the
// monitor's buckets, draws a CDF of many points over 42-48 ms, and ends
// at the share that arrived.
func TestCDFShowsTheSpread(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	delays := make([]float64, 256)
	for i := range delays {
		delays[i] = 45 + 3*(2*r.Float64()-1)
	}
	// And a stall: a probe of 115 ms, which the axis leaves out, saying so.
	h := router.HistogramOf(append(delays, 115), 3)
	var sh schema.Histogram
	sh.Missing = h.Missing
	for _, b := range h.Buckets {
		_, hi := router.BucketBounds(b.Index)
		sh.Buckets = append(sh.Buckets, schema.Bucket{LE: hi, Count: b.Count})
	}
	svg := string(cdfChart([]linkRow{{Broker: "na.a", Link: schema.Link{Histogram: sh}}}))
	pts := circleX.FindAllStringSubmatch(svg, -1)
	if len(pts) < 12 {
		t.Errorf("the CDF has %d points", len(pts))
	}
	ticks := tickText.FindAllStringSubmatch(svg, -1)
	first, _ := strconv.ParseFloat(ticks[5][1], 64) // after the five y ticks
	if first < 40 || first > 43 {
		t.Errorf("the delay axis starts at %v ms, want it fitted to 42-48 ms: %q", first, ticks)
	}
	if want := "within 48."; !strings.Contains(svg, "98.5% "+want) && !strings.Contains(svg, "98.46% "+want) {
		t.Errorf("the CDF does not reach 256 of 260 probes within 48 ms:\n%s", svg[max(0, len(svg)-800):])
	}
	if last, _ := strconv.ParseFloat(ticks[len(ticks)-1][1], 64); last > 55 || !strings.Contains(svg, "not shown: 0.4% of the probes that arrived, up to 117 ms") {
		t.Errorf("the stall of 115 ms: the axis ends at %v ms; note %q", last, regexp.MustCompile(`class="note"[^>]*>[^<]*`).FindString(svg))
	}
}

// TestValueAxis: ticks fall on round numbers, written with the decimals
// their step needs, never as -0; an axis from zero starts at zero, one
// that hugs its values stays near them.
func TestValueAxis(t *testing.T) {
	a := valueAxis("%", []float64{0, 1.5}, "%", true)
	var got []string
	for _, v := range a.ticks {
		got = append(got, a.format(v))
	}
	if strings.Join(got, " ") != "0.0% 0.5% 1.0% 1.5%" || a.lo != 0 {
		t.Errorf("ticks %q from %v", got, a.lo)
	}
	b := valueAxis("ms", []float64{42.1, 66.3}, "", false)
	if b.lo < 40.8 || b.lo > 42.1 || b.hi < 66.3 || b.hi > 67.6 || b.format(b.ticks[0]) != "45" {
		t.Errorf("an axis hugging 42.1-66.3: %v-%v, ticks %v", b.lo, b.hi, b.ticks)
	}
}
