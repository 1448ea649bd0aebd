package web

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/wayline/wayline/aggregator/store"
)

// A chart is an SVG drawn here, on the server: a page shows it without
// JavaScript and without a chart library.
const (
	chartW, chartH = 640, 160
	chartPad       = 40
)

// series is one line of a chart.
type series struct {
	name, color string
	points      [][2]float64 // x (unix seconds or a value), y
}

// svgChart draws lines over [x0, x1] and [0, the largest y], with the
// largest y and the ends of x as labels; xLabel formats an x.
func svgChart(title string, lines []series, x0, x1 float64, xLabel func(float64) string, yLabel func(float64) string) template.HTML {
	ymax := 0.0
	for _, s := range lines {
		for _, p := range s.points {
			if !math.IsNaN(p[1]) && !math.IsInf(p[1], 0) {
				ymax = max(ymax, p[1])
			}
		}
	}
	if ymax == 0 {
		ymax = 1
	}
	if x1 <= x0 {
		x1 = x0 + 1
	}
	px := func(x float64) float64 { return chartPad + (x-x0)/(x1-x0)*(chartW-2*chartPad) }
	py := func(y float64) float64 { return chartH - chartPad/2 - y/ymax*(chartH-chartPad) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="4" y="14" class="title">%s</text>`, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="axis"/>`, chartPad, py(0), chartW-chartPad, py(0))
	fmt.Fprintf(&b, `<text x="4" y="%.1f" class="label">%s</text>`, py(ymax)+4, template.HTMLEscapeString(yLabel(ymax)))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="label">%s</text>`, chartPad, chartH-2, template.HTMLEscapeString(xLabel(x0)))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="label" text-anchor="end">%s</text>`, chartW-chartPad, chartH-2, template.HTMLEscapeString(xLabel(x1)))
	for i, s := range lines {
		var pts []string
		for _, p := range s.points {
			if math.IsNaN(p[1]) || math.IsInf(p[1], 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="legend" fill="%s">%s</text>`, chartW-chartPad-80*(len(lines)-i), 14, s.color, template.HTMLEscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// linkCharts are a link's time series over [from, to): latency p50 and
// p99, jitter, loss and its first cost profile's cost, one line per
// reporting end.
func linkCharts(ms []store.Measurement, from, to time.Time) []template.HTML {
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}
	// One colour per reporting end, the ends in name order on every chart.
	ends := map[string]int{}
	var order []string
	for _, m := range ms {
		if _, ok := ends[m.Broker]; !ok {
			ends[m.Broker] = 0
			order = append(order, m.Broker)
		}
	}
	slices.Sort(order)
	for i, b := range order {
		ends[b] = i
	}
	type fig struct {
		name string
		get  func(m *store.Measurement) float64
		unit func(float64) string
	}
	msLabel := func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	figs := []fig{
		{"latency p50", func(m *store.Measurement) float64 { return m.Link.Latency.P50 }, msLabel},
		{"latency p99", func(m *store.Measurement) float64 { return m.Link.Latency.P99 }, msLabel},
		{"jitter", func(m *store.Measurement) float64 { return m.Link.Jitter }, msLabel},
		{"loss", func(m *store.Measurement) float64 { return 100 * m.Link.Loss }, func(v float64) string { return fmt.Sprintf("%.1f%%", v) }},
		{"cost", func(m *store.Measurement) float64 {
			if len(m.Link.Costs) == 0 {
				return math.NaN()
			}
			return m.Link.Costs[0].Value
		}, func(v float64) string { return fmt.Sprintf("%.1f", v) }},
	}
	x0, x1 := float64(from.Unix()), float64(to.Unix())
	clock := func(x float64) string { return time.Unix(int64(x), 0).UTC().Format("15:04:05") }
	var out []template.HTML
	for _, f := range figs {
		lines := make([]series, len(order))
		for i, b := range order {
			lines[i] = series{name: "at " + b, color: colors[i%len(colors)]}
		}
		for i := range ms {
			m := &ms[i]
			k := ends[m.Broker]
			lines[k].points = append(lines[k].points, [2]float64{float64(m.Time.Unix()), f.get(m)})
		}
		out = append(out, svgChart(f.name, lines, x0, x1, clock, f.unit))
	}
	return out
}

// cdfChart draws the delay distribution of each end's latest histogram as
// a cumulative distribution: the share of probes at or under each bound.
func cdfChart(latest []linkRow) template.HTML {
	colors := []string{"#1f77b4", "#d62728"}
	latest = slices.Clone(latest)
	slices.SortFunc(latest, func(a, b linkRow) int { return strings.Compare(a.Broker, b.Broker) })
	var lines []series
	hi := 0.0
	for i, l := range latest {
		var total float64
		for _, k := range l.Histogram.Buckets {
			total += k.Count
		}
		if total == 0 {
			continue
		}
		s := series{name: "at " + l.Broker, color: colors[i%len(colors)]}
		var acc float64
		for _, k := range l.Histogram.Buckets {
			acc += k.Count
			if math.IsInf(k.LE, 1) {
				continue
			}
			s.points = append(s.points, [2]float64{k.LE, acc / total})
			hi = max(hi, k.LE)
		}
		lines = append(lines, s)
	}
	if len(lines) == 0 {
		return ""
	}
	return svgChart("delay CDF", lines, 0, hi,
		func(v float64) string { return fmt.Sprintf("%.0f ms", v) },
		func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) })
}
