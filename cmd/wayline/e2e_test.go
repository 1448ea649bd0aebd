package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wayline/wayline/internal/testutil"
)

// e2eToken is the admin token the demo gets in its environment.
const e2eToken = "e2e-admin-token"

// e2eDemo is a running built-in demo and a browser tab on its pages.
type e2eDemo struct {
	proc     *proc
	pages    string               // http://host:port of the aggregator's pages
	brokers  []string             // addresses, as the demo printed them
	api      map[string]string    // broker address -> http://host:port of its API
	from, to string               // the sample publisher's and subscriber's brokers
	links    map[string][2]string // by id: the brokers at its ends
	out      string               // where screenshots go
	ctx      context.Context      // the browser tab

	mu         sync.Mutex
	exceptions []string // uncaught script exceptions since the last check
	console    []string // console errors and the browser's error log, likewise
}

// TestE2EDemo drives the pages of the built-in demo network, as a user
// sees them, in headless Chromium: the map shows every broker, fills the
// page, has a cost legend and keeps its links off the units' names; a link
// taken down through a broker's admin API shows on the open map, and the
// route goes around it, without a reload; the XPath form answers, says
// what is wrong with a query that does not parse, and says 0 nodes for an
// empty answer; the admin page takes the token at the sign-in page and a
// link down and up, follows changes live and shows a link's conditions,
// and lists every mistake of a bad rule; the trans-Atlantic link's delay
// distribution has the points of its jitter; and every page renders its
// content with no script error and no broken link. It saves a screenshot
// of each page in $WAYLINE_E2E_OUT, or else a temporary directory.
func TestE2EDemo(t *testing.T) {
	chrome := chromiumPath(t)
	began := time.Now()
	d := startE2EDemo(t)
	d.openBrowser(t, chrome)
	d.waitReporting(t)
	t.Logf("demo up, browser open and all %d brokers reporting after %v", len(d.brokers), time.Since(began).Round(time.Millisecond))

	t.Run("MapShowsEveryBroker", d.testMapBrokers)
	t.Run("MapFillsThePage", d.testMapLayout)
	t.Run("LinkDownLive", d.testLinkDownLive)
	t.Run("XPathForm", d.testXPathForm)
	t.Run("AdminPage", d.testAdminPage)
	t.Run("Pages", d.testPages)
	t.Run("DelayDistribution", d.testDelayDistribution)
	if err := d.proc.stop(t, os.Interrupt); err != nil {
		t.Errorf("demo exited with %v", err)
	}
	if strings.Contains(d.proc.stderr(), "WARNING: DATA RACE") {
		t.Error("the demo, built with -race, found a data race: see its stderr")
	}
}

// chromiumPath finds the browser, or skips t when there is none, unless
// WAYLINE_REQUIRE_CHROMIUM=1 (as the Makefile sets), when t fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("WAYLINE_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium, chromium-browser or google-chrome on PATH, and WAYLINE_REQUIRE_CHROMIUM=1; install it with make chromium")
	}
	t.Skip("no chromium, chromium-browser or google-chrome on PATH (make chromium installs it); set WAYLINE_REQUIRE_CHROMIUM=1 to make this a failure")
	return ""
}

var (
	brokerLine = regexp.MustCompile(`^\s+(\S+)\s+clients nats://\S+\s+http (http://\S+)$`)
	pagesLine  = regexp.MustCompile(`pages (http://\S+?)/?$`)
	sampleLine = regexp.MustCompile(`sample traffic: (\S+) publishes demo\.ticks .*; (\S+) subscribes`)
)

// startE2EDemo runs the built-in demo on free ports, its pages on one
// of its own, with the admin token in its environment, and reads what it
// prints.
func startE2EDemo(t *testing.T) *e2eDemo {
	t.Helper()
	t.Setenv("WAYLINE_ADMIN_TOKEN", e2eToken)
	addr := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	d := &e2eDemo{api: map[string]string{}, links: map[string][2]string{}}
	d.proc = start(t, "demo", "--free-ports", "--http", addr, "--log-level", "warn")
	for {
		l := d.proc.waitLine(t, `clients nats://|pages http://`)
		if m := brokerLine.FindStringSubmatch(l); m != nil {
			d.brokers = append(d.brokers, m[1])
			d.api[m[1]] = m[2]
			continue
		}
		d.pages = pagesLine.FindStringSubmatch(l)[1]
		break
	}
	m := sampleLine.FindStringSubmatch(d.proc.waitLine(t, `sample traffic:`))
	if m == nil {
		t.Fatal("the demo runs no sample traffic")
	}
	d.from, d.to = m[1], m[2]
	d.proc.waitLine(t, `Press Ctrl-C`)
	if len(d.brokers) != 8 || d.from != d.brokers[0] || d.to != d.brokers[len(d.brokers)-1] {
		t.Fatalf("demo printed brokers %v and sample traffic from %s to %s; want 8, from the first to the last", d.brokers, d.from, d.to)
	}
	for _, b := range d.brokers {
		var links []struct {
			ID   string `json:"id"`
			Peer string `json:"peer"`
		}
		getJSON(t, d.api[b]+"/api/links", &links)
		for _, l := range links {
			d.links[l.ID] = [2]string{b, l.Peer}
		}
	}
	d.out = os.Getenv("WAYLINE_E2E_OUT")
	if d.out == "" {
		d.out = t.TempDir()
	} else if err := os.MkdirAll(d.out, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", u, resp.Status, err)
	}
}

// openBrowser starts headless Chromium with a fresh profile and opens a
// tab, whose uncaught script exceptions it collects.
func (d *e2eDemo) openBrowser(t *testing.T, path string) {
	t.Helper()
	var stderr testutil.Buffer
	// The tests may run with no way out to the Internet: these flags keep
	// Chromium from trying, again and again, to reach Google's services.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-pings", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&stderr),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser output, without its complaints about D-Bus:\n%s", withoutDBus(stderr.String()))
		}
	})
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d.mu.Lock()
			d.exceptions = append(d.exceptions, exceptionText(ev.ExceptionDetails))
			d.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, cmp.Or(a.Description, string(a.Value)))
				}
				d.mu.Lock()
				d.console = append(d.console, "console.error: "+strings.Join(args, " "))
				d.mu.Unlock()
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				d.mu.Lock()
				d.console = append(d.console, fmt.Sprintf("browser log: %s (%s)", ev.Entry.Text, ev.Entry.URL))
				d.mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatalf("chromium %s: %v", path, err)
	}
	d.ctx = ctx
}

// withoutDBus drops Chromium's many complaints that there is no D-Bus, as
// on a server, from its output.
func withoutDBus(out string) string {
	var b strings.Builder
	for l := range strings.Lines(out) {
		if !strings.Contains(l, "dbus") {
			b.WriteString(l)
		}
	}
	return b.String()
}

func exceptionText(e *runtime.ExceptionDetails) string {
	s := fmt.Sprintf("%s (%s:%d:%d)", e.Text, e.URL, e.LineNumber+1, e.ColumnNumber+1)
	if e.Exception != nil && e.Exception.Description != "" {
		s += ": " + e.Exception.Description
	}
	return s
}

// noExceptions fails t for every uncaught script exception since the last
// call, and logs the console's errors.
func (d *e2eDemo) noExceptions(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.exceptions {
		t.Errorf("uncaught script exception: %s", e)
	}
	for _, c := range d.console {
		t.Log(c)
	}
	d.exceptions, d.console = nil, nil
}

// do runs browser steps, bounded by timeout.
func (d *e2eDemo) do(t *testing.T, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a script expression in the page.
func eval[T any](t *testing.T, d *e2eDemo, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitJS polls expr in the page every 50 ms until it is truthy, and
// returns its value; after timeout it fails t with what the page's main
// content says.
func waitJS[T any](t *testing.T, d *e2eDemo, what, expr string, timeout time.Duration) T {
	t.Helper()
	// The poll's own timeout ends it; the context's is a backstop.
	ctx, cancel := context.WithTimeout(d.ctx, timeout+10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		main := eval[string](t, d, `(document.querySelector("main") || document.body).innerText`)
		t.Fatalf("%s: not within %v (%v); the page says:\n%s", what, timeout, err, main)
	}
	return v
}

// js quotes s as a script string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// screenshot saves the whole page as <name>.png in the output directory.
func (d *e2eDemo) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("screenshot %s: %d bytes, not a PNG of a page", name, len(png))
	}
	path := filepath.Join(d.out, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// waitReporting opens the overview and waits until, by its live updates,
// it lists every broker as reporting: the brokers report every few
// seconds, so the first page may show none.
func (d *e2eDemo) waitReporting(t *testing.T) {
	t.Helper()
	d.do(t, 30*time.Second, chromedp.Navigate(d.pages+"/"))
	waitJS[bool](t, d, "every broker reporting on the overview",
		fmt.Sprintf(`document.querySelectorAll('main h2 + ul a[href^="/brokers/"]').length === %d`, len(d.brokers)), 30*time.Second)
	d.noExceptions(t)
}

// testMapBrokers: the map draws every broker the demo runs, as a circle,
// and every link.
func (d *e2eDemo) testMapBrokers(t *testing.T) {
	defer d.noExceptions(t)
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/map"))
	waitJS[bool](t, d, "every broker and link on the map",
		fmt.Sprintf(`document.querySelectorAll('svg.map circle.broker[data-broker]').length === %d && document.querySelectorAll('svg.map path[data-link]').length === %d`,
			len(d.brokers), len(d.links)), 15*time.Second)
	shown := eval[[]string](t, d, `[...document.querySelectorAll('svg.map circle.broker')].map(c => c.dataset.broker)`)
	want := slices.Sorted(slices.Values(d.brokers))
	if slices.Sort(shown); !slices.Equal(shown, want) {
		t.Errorf("map shows brokers %v, want %v", shown, want)
	}
	drawn := eval[[]string](t, d, `[...document.querySelectorAll('svg.map path[data-link]')].map(l => l.dataset.link)`)
	for id := range d.links {
		if !slices.Contains(drawn, id) {
			t.Errorf("map does not draw link %s (%s - %s)", id, d.links[id][0], d.links[id][1])
		}
	}
}

// routeView is the route from d.from to d.to as the map shows it.
type routeView struct {
	Path  string   `json:"path"`  // the brokers of the #route list, as "a > b > c"
	Links []string `json:"links"` // the links the map highlights
}

// routeJS is a script expression: the routeView of the page, or null
// while it shows no route that gets there.
func (d *e2eDemo) routeJS() string {
	return fmt.Sprintf(`(() => {
  const head = "to " + %[1]s + ":";
  const li = [...document.querySelectorAll("#route li")].find(l => l.textContent.startsWith(head));
  if (!li || li.querySelector(".down")) return null;
  const hops = li.textContent.slice(head.length).split("\u2192").map(s => s.trim());
  if (hops[0] !== %[2]s || hops[hops.length - 1] !== %[1]s) return null;
  return {path: hops.join(" > "), links: [...document.querySelectorAll("svg.map path.route")].map(l => l.dataset.routeLink)};
})()`, js(d.to), js(d.from))
}

// setDown takes a link down or brings it back up through the admin API of
// the broker at.
func (d *e2eDemo) setDown(t *testing.T, at, link string, down bool) {
	t.Helper()
	d.emulate(t, at, link, fmt.Sprintf(`{"down": %t}`, down))
}

// emulate changes a link's emulated conditions (body, JSON) through the
// admin API of the broker at.
func (d *e2eDemo) emulate(t *testing.T, at, link, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, d.api[at]+"/api/links/"+url.PathEscape(link)+"/emulation", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT emulation %s of link %s at %s: %s", body, link, at, resp.Status)
	}
}

// testLinkDownLive opens the route of the sample traffic on the map, takes
// the route's first link down, and sees the open page, with no reload,
// draw the link down and the route go around it; then brings it back.
func (d *e2eDemo) testLinkDownLive(t *testing.T) {
	defer d.noExceptions(t)
	q := url.Values{"subject": {sampleSubject}, "from": {d.from}}
	d.do(t, 20*time.Second, chromedp.Navigate(d.pages+"/map?"+q.Encode()))
	// Every broker on the way must have sent its routing state first.
	before := waitJS[routeView](t, d, "the route of "+sampleSubject+" from "+d.from+" to "+d.to, d.routeJS(), 15*time.Second)
	hops := strings.Split(before.Path, " > ")
	if len(before.Links) != len(hops)-1 {
		t.Fatalf("route %s highlights %d links: %v", before.Path, len(before.Links), before.Links)
	}
	var link string
	for _, id := range before.Links {
		if ends := d.links[id]; ends == [2]string{d.from, hops[1]} || ends == [2]string{hops[1], d.from} {
			link = id
		}
	}
	if link == "" {
		t.Fatalf("route %s: no highlighted link joins %s and %s: %v", before.Path, d.from, hops[1], before.Links)
	}
	marker := fmt.Sprint(time.Now().UnixNano())
	eval[chromedp.Void](t, d, "window.e2eMarker = "+js(marker))
	samePage := "window.e2eMarker === " + js(marker)
	line := fmt.Sprintf(`document.querySelector('svg.map path[data-link=%s]')`, js(link))
	t.Logf("route %s; taking its first link %s (%s - %s) down", before.Path, link, d.from, hops[1])

	up := false
	t.Cleanup(func() {
		if !up {
			d.setDown(t, d.from, link, false)
		}
	})
	began := time.Now()
	d.setDown(t, d.from, link, true)
	waitJS[bool](t, d, "the link drawn down, on the same page",
		fmt.Sprintf(`%s && %s?.dataset.state === "down"`, samePage, line), 10*time.Second)
	shownDown := time.Since(began)
	after := waitJS[routeView](t, d, "the route around the link, on the same page",
		fmt.Sprintf(`%s && !document.querySelector('svg.map path.route[data-route-link=%s]') && %s`, samePage, js(link), d.routeJS()), 10*time.Second)
	rerouted := time.Since(began)
	if after.Path == before.Path || slices.Contains(after.Links, link) {
		t.Errorf("route %s (links %v) with link %s down", after.Path, after.Links, link)
	}
	if eval[string](t, d, "document.body.dataset.updated || ''") == "" {
		t.Error("the page's content changed, yet document.body.dataset.updated is not set")
	}
	t.Logf("link down: drawn down after %v, route changed after %v to %s", shownDown.Round(time.Millisecond), rerouted.Round(time.Millisecond), after.Path)
	d.screenshot(t, "map-link-down")

	began = time.Now()
	d.setDown(t, d.from, link, false)
	up = true
	waitJS[bool](t, d, "the link drawn up again, on the same page",
		fmt.Sprintf(`%s && %s?.dataset.state === "up"`, samePage, line), 10*time.Second)
	shownUp := time.Since(began)
	now := waitJS[routeView](t, d, "a route", d.routeJS(), 10*time.Second)
	t.Logf("link up: drawn up after %v; route now %s", shownUp.Round(time.Millisecond), now.Path)
}

// brokenLinksJS is a script expression: the links of the page to its own
// site that answer with an error, with the error. They are asked for as a
// click asks, so that a page that needs signing in (/admin) sends to the
// sign-in page.
const brokenLinksJS = `Promise.all([...new Set([...document.querySelectorAll('a[href^="/"]')].map(a => a.getAttribute("href")))]
  .map(h => fetch(h, {headers: {Accept: "text/html"}}).then(r => r.ok ? "" : h + ": " + r.status, e => h + ": " + e)))
  .then(rs => rs.filter(Boolean))`

// e2ePage is a page to load and what it must show.
type e2ePage struct {
	name, path, h1 string
	shows          string // a script expression, true when the page shows its content
}

// testPages loads each page and checks that it shows its main content, has
// no script error and no link to a missing page, and makes a screenshot.
func (d *e2eDemo) testPages(t *testing.T) {
	link := slices.Sorted(maps.Keys(d.links))[0]
	pages := []e2ePage{
		{"overview", "/", "Overview", fmt.Sprintf(
			`/^%[1]d brokers reporting/.test(document.querySelector("main p").textContent) && document.querySelectorAll('main h2 + ul a[href^="/brokers/"]').length === %[1]d`+
				` && document.querySelectorAll("main table.routechanges tr").length > 1`, len(d.brokers))},
		{"map", "/map", "Network map", fmt.Sprintf(`document.querySelectorAll("main svg.map").length === 1 && document.querySelectorAll("svg.map circle.broker").length === %d`, len(d.brokers))},
		{"link", "/links/" + url.PathEscape(link), "Link " + link,
			`document.querySelectorAll("main svg.chart").length >= 5 && document.querySelectorAll("main table tr").length > 1`},
		{"xpath", "/xpath", "XPath", `!!document.querySelector('main form input[name="q"]') && !!document.querySelector("main form button")`},
		{"rules", "/rules", "Rules", `document.querySelectorAll("main table tr").length > 1`},
	}
	// Every broker's page: each has routes of its own, whose next hops link
	// to broker pages.
	for _, b := range d.brokers {
		pages = append(pages, e2ePage{"broker-" + b, "/brokers/" + url.PathEscape(b), b,
			`/^\d+ client connections/.test(document.querySelector("#clients")?.textContent) && document.querySelectorAll("main table.routes tr").length > 1`})
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			defer d.noExceptions(t)
			ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
			defer cancel()
			resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(d.pages+p.path))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusOK {
				t.Fatalf("GET %s: %d", p.path, resp.Status)
			}
			if h1 := eval[string](t, d, `document.querySelector("main h1")?.textContent ?? ""`); h1 != p.h1 {
				t.Errorf("GET %s: h1 %q, want %q", p.path, h1, p.h1)
			}
			waitJS[bool](t, d, p.name+" page content", p.shows, 5*time.Second)
			d.screenshot(t, p.name)
			for _, b := range eval[[]string](t, d, brokenLinksJS, chromedp.EvalAwaitPromise) {
				t.Errorf("%s page links to %s", p.name, b)
			}
		})
	}
}
