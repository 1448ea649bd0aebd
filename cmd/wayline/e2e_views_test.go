package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests of what the pages show: the map's layout, the XPath
// page's answers, the admin page, a link's charts. The demo, the browser
// and their helpers are in e2e_test.go.

// mapLayout is what testMapLayout measures of the map.
type mapLayout struct {
	MapW    float64  `json:"mapW"`
	MapH    float64  `json:"mapH"`
	MainW   float64  `json:"mainW"`
	Legend  string   `json:"legend"`
	Ticks   []string `json:"ticks"`
	Crossed []string `json:"crossed"` // "link over name" for each link that crosses a name not its own
	Icon    string   `json:"icon"`    // the favicon's content type
}

// mapLayoutJS measures the map: its size and the page's, its legend, and
// the names that links cross, at 60 points along each.
const mapLayoutJS = `(async () => {
  const svg = document.querySelector("svg.map"), r = svg.getBoundingClientRect();
  const names = [...svg.querySelectorAll("text.unitname, text.brokername")].map(t => ({
    box: t.getBBox(), text: t.textContent,
    broker: t.closest("a") ? decodeURIComponent(t.closest("a").getAttribute("href").slice("/brokers/".length)) : ""}));
  const crossed = new Set();
  for (const p of svg.querySelectorAll("path[data-link]")) {
    const ends = p.querySelector("title").textContent.split(",")[0].split(" - ");
    const n = p.getTotalLength();
    for (let i = 1; i < 60; i++) {
      const pt = p.getPointAtLength(n * i / 60);
      for (const nm of names) {
        const b = nm.box;
        if (!ends.includes(nm.broker) && pt.x >= b.x && pt.x <= b.x + b.width && pt.y >= b.y && pt.y <= b.y + b.height) {
          crossed.add(ends.join("-") + " over " + (nm.broker || nm.text));
        }
      }
    }
  }
  const icon = await fetch("/favicon.ico").then(r => r.ok ? r.headers.get("content-type") : String(r.status));
  return {mapW: r.width, mapH: r.height, mainW: document.querySelector("main").clientWidth,
    legend: svg.querySelector("g.legend").textContent, ticks: [...svg.querySelectorAll(".costtick")].map(t => t.textContent),
    crossed: [...crossed], icon: icon};
})()`

// testMapLayout: the map is as wide as the page and tall enough to read,
// carries a legend with the range of the links' costs, and no link
// crosses the name of a unit or of a broker it does not join.
func (d *e2eDemo) testMapLayout(t *testing.T) {
	defer d.noExceptions(t)
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/map"))
	waitJS[bool](t, d, "the map with costs in its legend", `document.querySelectorAll("svg.map .costtick").length === 3`, 15*time.Second)
	m := eval[mapLayout](t, d, mapLayoutJS, chromedp.EvalAwaitPromise)
	t.Logf("map %.0f x %.0f px in a page %.0f px wide; legend %q", m.MapW, m.MapH, m.MainW, m.Legend)
	if m.MapW < 0.95*m.MainW || m.MapH < 350 {
		t.Errorf("the map is %.0f x %.0f px in a page %.0f px wide", m.MapW, m.MapH, m.MainW)
	}
	if !strings.Contains(m.Legend, "link cost (profile default)") || !strings.Contains(m.Legend, "down") || len(m.Ticks) != 3 {
		t.Errorf("legend %q with ticks %q", m.Legend, m.Ticks)
	}
	for _, tick := range m.Ticks {
		if !regexp.MustCompile(`^\d+(\.\d+)?$`).MatchString(tick) {
			t.Errorf("a cost in the legend reads %q", tick)
		}
	}
	for _, c := range m.Crossed {
		t.Errorf("a link crosses a name: %s", c)
	}
	if m.Icon != "image/svg+xml" {
		t.Errorf("/favicon.ico: %s", m.Icon)
	}
	d.screenshot(t, "map")
}

// testXPathForm types a query into the XPath form, submits it, and reads
// the answer; then asks queries that do not parse, that find nothing, and
// that find links.
func (d *e2eDemo) testXPathForm(t *testing.T) {
	defer d.noExceptions(t)
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/xpath"))
	d.do(t, 10*time.Second, chromedp.SendKeys(chromedp.CSS(`main input[name="q"]`), "count(//broker)"))
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`main form button`)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK || !strings.Contains(resp.URL, "q=count") {
		t.Fatalf("the form went to %s: %d", resp.URL, resp.Status)
	}
	answer := waitJS[string](t, d, "the answer", `document.querySelector("main #count strong")?.textContent`, 10*time.Second)
	if answer != fmt.Sprint(len(d.brokers)) {
		t.Errorf("count(//broker) = %q, want %d", answer, len(d.brokers))
	}
	if q := eval[string](t, d, `document.querySelector('main input[name="q"]').value`); q != "count(//broker)" {
		t.Errorf("the form shows query %q after answering", q)
	}
	d.screenshot(t, "xpath-answer")

	query := func(q string, status int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
		defer cancel()
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(d.pages+"/xpath?"+url.Values{"q": {q}}.Encode()))
		if err != nil || resp.Status != int64(status) {
			t.Fatalf("%s: %v, %v; want %d", q, resp, err, status)
		}
	}
	// A query that does not parse says what is wrong, and where.
	query("//link[@loss >", http.StatusBadRequest)
	msg := eval[string](t, d, `document.querySelector("main #xpatherror")?.textContent ?? ""`)
	if !strings.Contains(msg, "syntax error") || !strings.Contains(msg, `"[" at character 7 is not closed`) || strings.Contains(msg, "node-set") {
		t.Errorf("//link[@loss > is answered %q", msg)
	}
	d.screenshot(t, "xpath-error")
	// An answer of no nodes says so.
	query("//link[@loss > 2]", http.StatusOK)
	if got := eval[string](t, d, `document.querySelector("main #count")?.textContent ?? ""`); got != "0 nodes." {
		t.Errorf("an empty answer reads %q, want 0 nodes.", got)
	}
	// Links found say which broker reported each, and when: both ends of
	// a link are two rows that differ there.
	query("//link[@transport = 'quic']", http.StatusOK)
	rows := eval[[][]string](t, d, `[...document.querySelectorAll("main table.answer tr")].slice(1).map(r => [...r.cells].map(c => c.textContent))`)
	byLink := map[string][]string{}
	for _, r := range rows {
		if len(r) != 5 || r[3] == "" || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT`).MatchString(r[4]) {
			t.Fatalf("answer row %q: want node, value, link, broker and time", r)
		}
		byLink[r[2]] = append(byLink[r[2]], r[3])
	}
	for l, brokers := range byLink {
		if slices.Sort(brokers); len(brokers) != 2 || brokers[0] == brokers[1] {
			t.Errorf("link %s reported by %v, want its two ends", l, brokers)
		}
	}
	if len(byLink) < 3 {
		t.Errorf("%d quic links found, want the demo's 3", len(byLink))
	}
}

// testAdminPage signs in with the admin token, as a browser does (the
// admin page sends it to /login and back); takes a link down with the
// admin page's button and sees the page follow, without a reload; sees a
// change made elsewhere show in the link's fields; brings the link back;
// and adds a rule with three mistakes, which the page lists, keeping the
// form as typed.
func (d *e2eDemo) testAdminPage(t *testing.T) {
	defer d.noExceptions(t)
	// submit clicks a form's button and waits for the page it leads to.
	// The page follows the network live: a button found a moment before
	// its row was drawn again is looked for again.
	submit := func(css string) int {
		t.Helper()
		for try := 1; ; try++ {
			ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
			resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css)))
			cancel()
			switch {
			case err == nil:
				return int(resp.Status)
			case try < 3 && strings.Contains(err.Error(), "Could not find node"):
				continue
			}
			t.Fatalf("click %s: %v", css, err)
		}
	}
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/admin"))
	if p := eval[string](t, d, "location.pathname"); p != "/login" {
		t.Fatalf("the admin page without signing in went to %s, want /login", p)
	}
	d.do(t, 10*time.Second, chromedp.SendKeys(chromedp.CSS(`main input[name="token"]`), "wrong"))
	if code := submit(`main form button`); code != http.StatusUnauthorized || eval[string](t, d, `document.querySelector("main .error")?.textContent`) != "wrong token" {
		t.Fatalf("a wrong token: %d", code)
	}
	d.do(t, 10*time.Second, chromedp.SendKeys(chromedp.CSS(`main input[name="token"]`), e2eToken))
	if code := submit(`main form button`); code != http.StatusOK || eval[string](t, d, "location.pathname") != "/admin" {
		t.Fatalf("signing in: %d, at %s", code, eval[string](t, d, "location.href"))
	}
	ids := slices.Sorted(maps.Keys(d.links))
	link := ids[len(ids)/2]
	at := d.links[link][0]
	row := fmt.Sprintf(`document.querySelector('tr[data-link=%s]')`, js(link))
	field := func(name string) string { return fmt.Sprintf(`%s?.querySelector('input[name=%s]').value`, row, name) }
	button := func(action string) string {
		return fmt.Sprintf(`tr[data-link=%s] button[value=%s]`, js(link), js(action))
	}
	// The fields hold the link's conditions now, as the topology wrote them.
	delay := waitJS[string](t, d, "the link's delay in its field", field("delay"), 10*time.Second)
	if jitter := eval[string](t, d, field("jitter")); !strings.HasSuffix(delay, "ms") || !strings.HasSuffix(jitter, "s") {
		t.Errorf("the link's fields: delay %q, jitter %q", delay, jitter)
	}
	up, restored := false, false
	t.Cleanup(func() {
		if !up {
			d.setDown(t, at, link, false)
		}
		if !restored {
			d.emulate(t, at, link, fmt.Sprintf(`{"delay": %q}`, delay))
		}
	})
	if code := submit(button("down")); code != http.StatusOK {
		t.Fatalf("take the link down: %d: %s", code, eval[string](t, d, `document.querySelector("main").innerText`))
	}
	marker := fmt.Sprint(time.Now().UnixNano())
	eval[chromedp.Void](t, d, "window.e2eMarker = "+js(marker))
	samePage := "window.e2eMarker === " + js(marker)
	waitJS[bool](t, d, "the admin page saying the link went down", fmt.Sprintf(`!!document.querySelector("#done")?.textContent.includes(%s)`, js("taken down")), 10*time.Second)
	waitJS[bool](t, d, "the link shown down, with the button to bring it up, on the same page",
		fmt.Sprintf(`%s && %s?.dataset.state === "down" && !!document.querySelector(%s)`, samePage, row, js(button("up"))), 10*time.Second)
	d.screenshot(t, "admin")
	// A change made at a broker shows in the open page's fields.
	d.emulate(t, at, link, `{"delay": "77ms"}`)
	waitJS[bool](t, d, "the new delay in the link's field, on the same page", fmt.Sprintf(`%s && %s === "77ms"`, samePage, field("delay")), 10*time.Second)
	d.emulate(t, at, link, fmt.Sprintf(`{"delay": %q}`, delay))
	restored = true
	waitJS[bool](t, d, "the delay back in the link's field", fmt.Sprintf(`%s === %s`, field("delay"), js(delay)), 10*time.Second)
	if code := submit(button("up")); code != http.StatusOK {
		t.Fatalf("bring the link up: %d", code)
	}
	waitJS[bool](t, d, "the admin page saying the link came up", fmt.Sprintf(`!!document.querySelector("#done")?.textContent.includes(%s)`, js("taken up")), 10*time.Second)
	waitJS[bool](t, d, "the link shown up, with the button to take it down",
		fmt.Sprintf(`%s?.dataset.state === "up" && !!document.querySelector(%s)`, row, js(button("down"))), 10*time.Second)
	up = true
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/rules"))
	if n := eval[int](t, d, `[...document.querySelectorAll("main td")].filter(td => td.textContent === "admin").length`); n < 2 {
		t.Errorf("the rules page lists %d admin actions, want the link's down and up", n)
	}

	// A rule with three mistakes: each is listed on the admin page, and
	// the form keeps what was typed.
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/admin"))
	existing := eval[string](t, d, `document.querySelector("main table:not(.adminlinks) td")?.textContent ?? ""`)
	if existing == "" {
		t.Fatal("the admin page lists no rule; the demo has two")
	}
	d.do(t, 10*time.Second,
		chromedp.SendKeys(chromedp.CSS(`#addrule input[name="name"]`), existing),
		chromedp.SendKeys(chromedp.CSS(`#addrule input[name="when"]`), "//link[@loss >"),
		chromedp.SendKeys(chromedp.CSS(`#addrule input[name="do"]`), "interval 1ms"))
	if code := submit(`#addrule button`); code != http.StatusBadRequest {
		t.Fatalf("a bad rule: %d", code)
	}
	problems := eval[[]string](t, d, `[...document.querySelectorAll("#ruleerrors li")].map(li => li.textContent)`)
	for i, want := range []string{"when: bad XPath query: syntax error", "do: interval \"1ms\"", "there is a rule \"" + existing + "\" already"} {
		if i >= len(problems) || !strings.Contains(problems[i], want) {
			t.Errorf("the page lists %q, want %d problems, the %dth saying %q", problems, 3, i+1, want)
		}
	}
	if when := eval[string](t, d, `document.querySelector('#addrule input[name="when"]').value`); when != "//link[@loss >" {
		t.Errorf("the form holds %q after the mistakes, want what was typed", when)
	}
	d.screenshot(t, "admin-rule-errors")
}

// chartView is what testDelayDistribution reads of a link's charts.
type chartView struct {
	CDFPoints int       `json:"cdfPoints"`
	CDFTicks  []string  `json:"cdfTicks"`
	CDFFirst  []float64 `json:"cdfFirst"` // the leftmost point: its x in the chart, and its delay (ms)
	Charts    []struct {
		Title  string  `json:"title"`
		Ticks  int     `json:"ticks"`
		Labels string  `json:"labels"`
		Points int     `json:"points"`
		Titled int     `json:"titled"`
		MinX   float64 `json:"minX"`
		MaxX   float64 `json:"maxX"`
	} `json:"charts"`
}

const chartViewJS = `(() => {
  const cdf = document.querySelector("svg.cdf");
  return {
    cdfPoints: cdf ? cdf.querySelectorAll("circle.pt").length : 0,
    cdfTicks: cdf ? [...cdf.querySelectorAll("text.tick")].map(t => t.textContent) : [],
    cdfFirst: cdf ? [...cdf.querySelectorAll("circle.pt")].map(p => [p.cx.baseVal.value, parseFloat(p.textContent.match(/within ([0-9.]+) ms/)[1])])
      .reduce((a, b) => b[0] < a[0] ? b : a, [1e9, 0]) : [],
    charts: [...document.querySelectorAll("svg.chart.series")].map(c => {
      const xs = [...c.querySelectorAll("circle.pt")].map(p => p.cx.baseVal.value);
      return {title: c.querySelector("text.title").textContent, ticks: c.querySelectorAll("text.tick").length,
        labels: [...c.querySelectorAll("text.axislabel")].map(t => t.textContent).join(" | "),
        points: xs.length, titled: c.querySelectorAll("circle.pt > title").length,
        minX: xs.length ? Math.min(...xs) : 0, maxX: xs.length ? Math.max(...xs) : 0};
    })};
})()`

// testDelayDistribution opens the page of the link across the Atlantic
// (45 ms, 3 ms of jitter) by the first 8 characters of its id: its delay
// distribution has the points of its spread, over an axis fitted to it,
// and its time series fill their charts' width, with ticks and labels on
// both axes and a value under the pointer at every point.
func (d *e2eDemo) testDelayDistribution(t *testing.T) {
	defer d.noExceptions(t)
	var link string
	for id, ends := range d.links {
		if slices.Contains(ends[:], "na.cgl.c1.a") && slices.Contains(ends[:], "eu.kth.c1.a") {
			link = id
		}
	}
	if link == "" {
		t.Fatal("no link between na.cgl.c1.a and eu.kth.c1.a")
	}
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/links/"+link[:8]))
	if p := eval[string](t, d, "location.pathname"); p != "/links/"+link {
		t.Fatalf("/links/%s led to %s, want the link's page", link[:8], p)
	}
	waitJS[bool](t, d, "a delay distribution of many points", `document.querySelectorAll("svg.cdf circle.pt").length >= 16`, 30*time.Second)
	// Every chart reaches the right edge: the page is live, and the charts
	// are read until they do. A busy machine's stalls can take the link
	// down (the phi detector) over and over: in one make test its two ends
	// declared it down 21 times in 17 s. Its cost series then stops short
	// of the edge while flap damping keeps it announced down (up to a
	// minute after its last fall), and resumes when the link is priced
	// again: hence the long wait, which a quiet run never reaches.
	var v chartView
	for deadline := time.Now().Add(150 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		v = eval[chartView](t, d, chartViewJS)
		reach := len(v.Charts) == 5
		for _, c := range v.Charts {
			reach = reach && c.Points >= 4 && c.MinX <= 77 && c.MaxX >= 703
		}
		if reach || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("delay distribution: %d points, delay ticks %v", v.CDFPoints, v.CDFTicks)
	// The axis starts near the link's 42 ms, not at 0, and the first
	// point is near it; where the axis ends depends on the stalls of a
	// busy test machine (a stalled probe is part of the spread, up to the
	// 99th percentile). The plot starts at x = 76 of the chart's 720.
	if len(v.CDFFirst) != 2 || v.CDFFirst[0] > 160 || v.CDFFirst[1] < 35 || v.CDFFirst[1] > 46 {
		t.Errorf("the delay distribution's first point (x, ms) is %v, want one near 42 ms at the axis's start; ticks %v", v.CDFFirst, v.CDFTicks)
	}
	if len(v.Charts) != 5 {
		t.Fatalf("%d time series charts, want 5", len(v.Charts))
	}
	for _, c := range v.Charts {
		// The plot spans x = 76 to 704 of the chart's 720.
		if c.Ticks < 5 || !strings.Contains(c.Labels, "time (UTC)") || c.Points < 4 || c.Titled != c.Points || c.MinX > 77 || c.MaxX < 703 {
			t.Errorf("chart %q: %d ticks, labels %q, %d points (%d with a title) from x=%.0f to %.0f", c.Title, c.Ticks, c.Labels, c.Points, c.Titled, c.MinX, c.MaxX)
		}
	}
	d.screenshot(t, "link-atlantic")
}
