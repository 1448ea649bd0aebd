package web

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/schema"
)

// A chart is an SVG drawn here, on the server: a page shows it without
// JavaScript and without a chart library. Its ranges are fitted to the
// data, both axes carry ticks and a label, and every point shows its
// values when the pointer is on it (its title).
const (
	chartW, chartH = 720, 230
	padL, padR     = 76, 16 // room for the y ticks' labels and the y label, and the right edge
	padT, padB     = 30, 44 // the title and legend; the x ticks and label
)

// series is one line of a chart.
type series struct {
	name, color string
	points      [][2]float64 // x (unix seconds or a value), y
}

// axis is one axis of a chart: its range, ticks and how a value reads.
type axis struct {
	label  string
	lo, hi float64
	ticks  []float64
	format func(float64) string
}

// chart is what svgChart draws.
type chart struct {
	title, class string
	note         string // said in the plot, at the bottom right
	x, y         axis
	lines        []series
	pointTitle   func(s series, p [2]float64) string // what a point says under the pointer
}

// svgChart draws c: the grid at the ticks, the axes with their labels,
// the lines (broken where a point is missing) and a dot per point that
// says its values on hover.
func svgChart(c chart) template.HTML {
	px := func(x float64) float64 { return padL + (x-c.x.lo)/(c.x.hi-c.x.lo)*(chartW-padL-padR) }
	py := func(y float64) float64 { return chartH - padB - (y-c.y.lo)/(c.y.hi-c.y.lo)*(chartH-padT-padB) }
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart %s" viewBox="0 0 %d %d" role="img" aria-label="%s">`, c.class, chartW, chartH, esc(c.title))
	fmt.Fprintf(&b, `<text x="%d" y="16" class="title">%s</text>`, padL, esc(c.title))
	for _, t := range c.y.ticks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, padL, py(t), chartW-padR, py(t))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`, padL-6, py(t)+4, esc(c.y.format(t)))
	}
	for _, t := range c.x.ticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>`, px(t), padT, px(t), chartH-padB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, px(t), chartH-padB+16, esc(c.x.format(t)))
	}
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" class="axis" fill="none"/>`, padL, padT, chartH-padB, chartW-padR)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axislabel" text-anchor="middle">%s</text>`, (padL+chartW-padR)/2, chartH-6, esc(c.x.label))
	fmt.Fprintf(&b, `<text transform="translate(12 %d) rotate(-90)" class="axislabel" text-anchor="middle">%s</text>`, (padT+chartH-padB)/2, esc(c.y.label))
	if c.note != "" {
		// Inside the plot, at the bottom right: empty in a CDF.
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="note" text-anchor="end">%s</text>`, chartW-padR-4, chartH-padB-6, esc(c.note))
	}
	for i, s := range c.lines {
		var d strings.Builder
		move := true
		for _, p := range s.points {
			if math.IsNaN(p[1]) || math.IsInf(p[1], 0) || p[0] < c.x.lo || p[0] > c.x.hi {
				move = true
				continue
			}
			cmd := "L"
			if move {
				cmd, move = "M", false
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, px(p[0]), py(p[1]))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.6" class="line" data-series="%s"/>`, strings.TrimSpace(d.String()), s.color, esc(s.name))
		for _, p := range s.points {
			if math.IsNaN(p[1]) || math.IsInf(p[1], 0) || p[0] < c.x.lo || p[0] > c.x.hi {
				continue
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s" class="pt"><title>%s</title></circle>`, px(p[0]), py(p[1]), s.color, esc(c.pointTitle(s, p)))
		}
		fmt.Fprintf(&b, `<text x="%d" y="16" class="legend" fill="%s" text-anchor="end">%s</text>`, chartW-padR-190*(len(c.lines)-1-i), s.color, esc(s.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceStep is the tick step, 1, 2 or 5 times a power of ten, that splits
// span into the number of parts nearest n.
func niceStep(span float64, n int) float64 {
	if !(span > 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	best := pow
	for _, m := range []float64{2, 5, 10} {
		if math.Abs(span/(m*pow)-float64(n)) < math.Abs(span/best-float64(n)) {
			best = m * pow
		}
	}
	return best
}

// valueAxis fits a linear axis to values, with about five ticks written
// with as many decimals as their step needs, and unit after them. With
// zero, it starts at zero when the values are not far from it; without,
// it hugs them, with a margin of a twentieth of their spread.
func valueAxis(label string, values []float64, unit string, zero bool) axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	switch {
	case lo > hi: // no values
		lo, hi = 0, 1
	case zero && (lo >= 0 && lo < hi/2 || hi == 0):
		lo = 0
	case !zero:
		m := (hi - lo) / 20
		lo, hi = max(lo-m, min(lo, 0)), hi+m
	}
	if hi-lo < 1e-9*max(1, math.Abs(hi)) {
		lo, hi = lo-max(1, math.Abs(lo)/10), hi+max(1, math.Abs(hi)/10)
		lo = max(lo, 0)
	}
	step := niceStep(hi-lo, 5)
	decimals := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	a := axis{label: label, lo: lo, hi: hi, format: func(v float64) string {
		return strconv.FormatFloat(v, 'f', decimals, 64) + unit
	}}
	if zero { // from a round number to a round number
		a.lo, a.hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	}
	// Ticks at the round numbers of the range; snapped outwards, a range
	// that hugs its values would take in as much again of empty space.
	for i := math.Ceil(a.lo/step - 1e-9); i*step <= a.hi+step*1e-9; i++ {
		a.ticks = append(a.ticks, i*step+0) // +0: never a tick of -0
	}
	return a
}

// timeSteps are the steps of a time axis's ticks, in seconds.
var timeSteps = []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400}

// timeAxis fits a time axis to [lo, hi] (unix seconds), with ticks at
// round times, at most seven.
func timeAxis(lo, hi float64) axis {
	if hi-lo < 1 { // one time alone: ten seconds around it
		mid := (lo + hi) / 2
		lo, hi = mid-5, mid+5
	}
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if (hi-lo)/s <= 7 {
			step = s
			break
		}
	}
	layout := "15:04"
	switch {
	case step < 60:
		layout = "15:04:05"
	case step >= 86400:
		layout = "Jan 2"
	case hi-lo > 86400:
		layout = "Jan 2 15:04"
	}
	a := axis{label: "time (UTC)", lo: lo, hi: hi, format: func(x float64) string {
		return time.Unix(int64(x), 0).UTC().Format(layout)
	}}
	for t := math.Ceil(lo/step) * step; t <= hi; t += step {
		a.ticks = append(a.ticks, t)
	}
	return a
}

// chartColors are the colours of the ends of a link, in name order.
var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

// linkCharts are a link's time series: latency p50 and p99, jitter, loss
// and its first cost profile's cost, one line per reporting end, each
// fitted to the time the measurements span.
func linkCharts(ms []store.Measurement) []template.HTML {
	if len(ms) == 0 {
		return nil
	}
	// One colour per reporting end, the ends in name order on every chart.
	ends := map[string]int{}
	var order []string
	x0, x1 := math.Inf(1), math.Inf(-1)
	for _, m := range ms {
		if _, ok := ends[m.Broker]; !ok {
			ends[m.Broker] = 0
			order = append(order, m.Broker)
		}
		t := float64(m.Time.UnixMilli()) / 1e3
		x0, x1 = min(x0, t), max(x1, t)
	}
	slices.Sort(order)
	for i, b := range order {
		ends[b] = i
	}
	type fig struct {
		title, label, unit string
		get                func(m *store.Measurement) float64
	}
	figs := []fig{
		{"Latency p50 (one way)", "ms", " ms", func(m *store.Measurement) float64 { return m.Link.Latency.P50 }},
		{"Latency p99 (one way)", "ms", " ms", func(m *store.Measurement) float64 { return m.Link.Latency.P99 }},
		{"Jitter", "ms", " ms", func(m *store.Measurement) float64 { return m.Link.Jitter }},
		{"Loss", "%", "%", func(m *store.Measurement) float64 { return 100 * m.Link.Loss }},
		{"Cost", "cost", "", func(m *store.Measurement) float64 {
			if len(m.Link.Costs) == 0 {
				return math.NaN()
			}
			return m.Link.Costs[0].Value
		}},
	}
	if len(ms[0].Link.Costs) > 0 {
		figs[4].title = "Cost (profile " + ms[0].Link.Costs[0].Profile + ")"
	}
	x := timeAxis(x0, x1)
	var out []template.HTML
	for _, f := range figs {
		lines := make([]series, len(order))
		for i, b := range order {
			lines[i] = series{name: "reported by " + b, color: chartColors[i%len(chartColors)]}
		}
		var values []float64
		for i := range ms {
			m := &ms[i]
			v := f.get(m)
			k := ends[m.Broker]
			lines[k].points = append(lines[k].points, [2]float64{float64(m.Time.UnixMilli()) / 1e3, v})
			values = append(values, v)
		}
		for i := range lines {
			lines[i].points = withGaps(lines[i].points)
		}
		c := chart{title: f.title, class: "series", x: x, y: valueAxis(f.label, values, f.unit, true), lines: lines,
			pointTitle: func(s series, p [2]float64) string {
				return fmt.Sprintf("%s, %s: %s%s", time.UnixMilli(int64(p[0]*1e3)).UTC().Format("15:04:05"), s.name, trimFloat(p[1]), f.unit)
			}}
		out = append(out, svgChart(c))
	}
	return out
}

// withGaps puts a NaN point where points are more than three times their
// usual spacing apart (reports missed, the broker away), so that the line
// breaks there rather than bridging the gap.
func withGaps(pts [][2]float64) [][2]float64 {
	if len(pts) < 3 {
		return pts
	}
	gaps := make([]float64, len(pts)-1)
	for i := range gaps {
		gaps[i] = pts[i+1][0] - pts[i][0]
	}
	slices.Sort(gaps)
	usual := max(gaps[len(gaps)/2], 0.5)
	out := make([][2]float64, 0, len(pts))
	for i, p := range pts {
		if i > 0 && p[0]-pts[i-1][0] > 3*usual {
			out = append(out, [2]float64{(p[0] + pts[i-1][0]) / 2, math.NaN()})
		}
		out = append(out, p)
	}
	return out
}

// trimFloat writes v with up to three significant decimals, no trailing
// zeros.
func trimFloat(v float64) string {
	prec := 0
	switch a := math.Abs(v); {
	case a == 0 || a >= 100:
	case a >= 10:
		prec = 1
	case a >= 1:
		prec = 2
	default:
		prec = 3
	}
	s := fmt.Sprintf("%.*f", prec, v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// cdfChart draws the delay distribution of each end's latest histogram as
// a cumulative distribution: the share of all probes, lost ones included,
// that arrived within each delay. A bucket's mass rises across its width
// (the monitor's buckets, 1-2% wide), and a line that ends below 100%
// says how many never arrived. The delay axis spans the delays of the
// middle 98% of the probes that arrived, and some room: a rare probe that
// waited for a stall would squeeze the rest into a corner, and the chart
// says how many it leaves out.
func cdfChart(latest []linkRow) template.HTML {
	latest = slices.Clone(latest)
	slices.SortFunc(latest, func(a, b linkRow) int { return strings.Compare(a.Broker, b.Broker) })
	var lines []series
	var all []schema.Bucket // every end's buckets, for the axis
	for i, l := range latest {
		h := l.Histogram
		total := h.Missing
		for _, k := range h.Buckets {
			total += k.Count
		}
		if total == h.Missing {
			continue
		}
		s := series{name: "reported by " + l.Broker, color: chartColors[i%len(chartColors)]}
		var acc float64
		for _, k := range h.Buckets {
			if math.IsInf(k.LE, 1) {
				continue
			}
			// Where the bucket starts, in the monitor's scheme.
			lo, _ := router.BucketBounds(router.BucketOf(k.LE) - 1)
			if n := len(s.points); n == 0 || s.points[n-1][0] < lo {
				s.points = append(s.points, [2]float64{lo, 100 * acc / total})
			}
			acc += k.Count
			s.points = append(s.points, [2]float64{k.LE, 100 * acc / total})
			all = append(all, k)
		}
		lines = append(lines, s)
	}
	if len(lines) == 0 {
		return ""
	}
	slices.SortFunc(all, func(a, b schema.Bucket) int { return cmp.Compare(a.LE, b.LE) })
	lo, hi := middleOf(all, 0.01, 0.99)
	x := valueAxis("one-way delay (ms)", []float64{max(lo, all[0].LE*0.98), min(hi, all[len(all)-1].LE)}, "", false)
	var note string
	if beyond := massAbove(all, x.hi); beyond > 0 {
		share := fmt.Sprintf("%.1f%%", 100*beyond)
		if beyond < 0.001 {
			share = fmt.Sprintf("%.2f%%", 100*beyond)
		}
		note = fmt.Sprintf("not shown: %s of the probes that arrived, up to %s ms", share, trimFloat(all[len(all)-1].LE))
	}
	y := axis{label: "probes arrived within (%)", lo: 0, hi: 100, ticks: []float64{0, 25, 50, 75, 100}, format: func(v float64) string { return trimFloat(v) + "%" }}
	return svgChart(chart{title: "Delay distribution (CDF)", class: "cdf", note: note, x: x, y: y, lines: lines,
		pointTitle: func(s series, p [2]float64) string {
			return fmt.Sprintf("%s: %s%% within %s ms", s.name, trimFloat(p[1]), trimFloat(p[0]))
		}})
}

// middleOf is the delays between the quantiles q0 and q1 of buckets (in
// order of bound), widened by a quarter of their spread on each side, and
// at least 2% of the upper.
func middleOf(buckets []schema.Bucket, q0, q1 float64) (lo, hi float64) {
	var total float64
	for _, b := range buckets {
		total += b.Count
	}
	lo, hi = buckets[0].LE, buckets[len(buckets)-1].LE
	var acc float64
	for _, b := range buckets {
		if acc < q0*total {
			lo = b.LE
		}
		acc += b.Count
		if acc >= q1*total {
			hi = b.LE
			break
		}
	}
	pad := max((hi-lo)/4, hi/50)
	return max(lo-pad, 0), hi + pad
}

// massAbove is the share of the mass of buckets in buckets that end
// above ms.
func massAbove(buckets []schema.Bucket, ms float64) float64 {
	var total, above float64
	for _, b := range buckets {
		total += b.Count
		if b.LE > ms {
			above += b.Count
		}
	}
	return above / total
}

// cdfSVG draws a contract route's predicted distribution beside its
// contract: the composed CDF as a line, and each bound as a mark at its
// delay and percentile, green where the prediction reaches it and red
// where it does not. Delays run from 0 to a little past the largest of
// the bounds and the CDF's points.
func cdfSVG(p *schema.Prediction) template.HTML {
	if p == nil {
		return ""
	}
	const w, h, pad = 220.0, 60.0, 4.0
	top := 0.0
	for _, c := range p.CDF {
		top = math.Max(top, c.Ms)
	}
	for _, b := range p.Bounds {
		top = math.Max(top, b.Ms)
	}
	if top <= 0 {
		return ""
	}
	top *= 1.1
	x := func(ms float64) float64 { return pad + (w-2*pad)*ms/top }
	y := func(pct float64) float64 { return h - pad - (h-2*pad)*pct/100 }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="cdf" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="predicted delay distribution against the contract">`, w, h, w, h)
	fmt.Fprintf(&sb, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#999"/>`, pad, y(0), w-pad, y(0))
	if len(p.CDF) > 0 {
		sb.WriteString(`<polyline fill="none" stroke="#36c" stroke-width="1.5" points="`)
		fmt.Fprintf(&sb, "%.1f,%.1f ", x(0), y(0))
		for _, c := range p.CDF {
			fmt.Fprintf(&sb, "%.1f,%.1f ", x(c.Ms), y(c.P))
		}
		sb.WriteString(`"/>`)
	}
	for _, b := range p.Bounds {
		color := "#c33"
		if b.Reached >= b.P {
			color = "#2a2"
		}
		fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>p%g within %g ms: %.2f%% predicted</title></circle>`,
			x(b.Ms), y(b.P), color, b.P, b.Ms, b.Reached)
	}
	fmt.Fprintf(&sb, `<text x="%g" y="%g" font-size="9" text-anchor="end">%.0f ms</text></svg>`, w-pad, h-pad-2, top)
	return template.HTML(sb.String())
}
