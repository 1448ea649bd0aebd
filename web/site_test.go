package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/schema"
)

// nastyBroker is an address that would run a script if it were not
// escaped.
const nastyBroker = `na.c1.<script>alert("x")</script>`

// fakeSource is a network of two brokers, one with a nasty address, and
// the routing state of the first, newer than its report, which says its
// third link went down and routes to eu.c0.b2 through eu.c0.b1.
type fakeSource struct {
	reps   []schema.Report
	states []schema.State
}

// Links of the fake network.
const (
	fakeLink0 = "00000000-0000-4000-8000-000000000000"
	fakeLink1 = "00000000-0000-4000-8000-000000000001"
	fakeLink2 = "00000000-0000-4000-8000-000000000002"
)

// predictedMs is the fake contract route's predicted median.
var predictedMs = 45.5

func newFakeSource() *fakeSource {
	at := time.Now().Add(-2 * time.Second)
	reps := schema.Synthetic(2, 3, at)
	reps[1].Broker = nastyBroker
	reps[1].Links[0].State = "down"
	reps[1].Links[0].ID = "<b>bold</b>"
	st := schema.State{Broker: "na.c0.b0", Domain: "na", Seq: 3, Time: at.Add(time.Second), Clients: 4,
		Links: []schema.StateLink{{ID: fakeLink0, Peer: "eu.c0.b0", Up: true, Emulation: &schema.StateEmulation{Delay: "45ms", Jitter: "3ms", Loss: "1%"},
			Drops:      map[string]uint64{"send_queue_full": 7, "lost_in_transit": 12},
			ClassDrops: map[string]map[string]uint64{"low": {"send_queue_full": 6}, "normal": {"send_queue_full": 1}}},
			{ID: fakeLink1, Peer: "eu.c0.b1", Up: true}, {ID: fakeLink2, Peer: "eu.c0.b2", Up: false}},
		Routes: []schema.Route{
			{Profile: "default", Destination: "eu.c0.b1", NextHop: "eu.c0.b1", Link: fakeLink1, Cost: 10, Path: []string{"na.c0.b0", "eu.c0.b1"}},
			{Profile: "default", Destination: "eu.c0.b2", NextHop: "eu.c0.b1", Link: fakeLink1, Cost: 20, Path: []string{"na.c0.b0", "eu.c0.b1", "eu.c0.b2"}},
			{Profile: "default", Destination: "eu.c1", NextHop: "eu.c1", Link: fakeLink1, Cost: 30, Path: []string{"na.c0.b0", "eu.c1"}},
			{Profile: "default", Destination: "eu.c2", NextHop: "eu.c1", Link: fakeLink1, Cost: 40, Path: []string{"na.c0.b0", "eu.c1", "eu.c2"},
				Exits: []schema.RouteExit{{Broker: "eu.c1.b3", Link: fakeLink2}}},
			{Profile: "contract", Contract: "trade.>", Destination: "eu.c0.b2", NextHop: "eu.c0.b1", Link: fakeLink1, Cost: 20, Path: []string{"na.c0.b0", "eu.c0.b1", "eu.c0.b2"},
				Prediction: &schema.Prediction{Status: "at risk", Loss: 0.001, Bounds: []schema.PredictedBound{{P: 50, Ms: 50, PredictedMs: &predictedMs, Reached: 88}, {P: 99, Ms: 100, Reached: 98.5}},
					CDF: []schema.CDFPoint{{Ms: 40, P: 1}, {Ms: 45.5, P: 50}, {Ms: 120, P: 98.5}}}},
		},
		Subjects: []string{"<script>sub</script>"},
		Messages: map[string]uint64{"rerouted": 183, "held_for_order": 6, "dropped_no_route": 2},
	}
	return &fakeSource{reps: reps, states: []schema.State{st}}
}

func (f *fakeSource) Latest() []schema.Report { return f.reps }

func (f *fakeSource) States() []schema.State { return f.states }

func (f *fakeSource) RouteChanges(int) []schema.RouteChange {
	return []schema.RouteChange{{Time: time.Now(), Broker: "na.c0.b0", Profile: "default", Destination: "<i>eu</i>", From: "eu.c0.b2", To: "eu.c0.b1", Cost: 20}}
}

func (f *fakeSource) Route(subject, from string) (schema.SubjectRoute, error) {
	if from != "na.c0.b0" {
		return schema.SubjectRoute{}, errors.New("no state from broker <u>" + from + "</u>")
	}
	return schema.SubjectRoute{Subject: subject, From: from, Profile: "default", Paths: []schema.SubjectPath{
		{To: "eu.c0.b2", Brokers: []string{"na.c0.b0", "eu.c0.b1", "eu.c0.b2"}, Links: []string{fakeLink1, "00000001-0000-4000-8000-000000000000"}, Reached: true},
	}}, nil
}

func (f *fakeSource) Measurements(_ context.Context, link string, from, to time.Time) ([]store.Measurement, error) {
	var out []store.Measurement
	for _, r := range f.reps {
		for _, l := range r.Links {
			if l.ID != link {
				continue
			}
			for k := range 10 {
				m := store.Measurement{Time: from.Add(time.Duration(k) * to.Sub(from) / 10), Broker: r.Broker, Link: l}
				m.Link.Latency.P50 += float64(k)
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func (f *fakeSource) Actions(context.Context, int) ([]store.Action, error) {
	return []store.Action{{Time: time.Now(), Rule: "<i>rule</i>", Broker: nastyBroker, Link: "l", Action: "exclude-from-routing", OK: true}}, nil
}

func (f *fakeSource) Rules() []RuleText {
	return []RuleText{{Name: "<u>lossy</u>", When: "//link[@loss > 0.05]", Do: "interval 250ms", Undo: true}}
}

func (f *fakeSource) Query(_ context.Context, q, _, _ string) (Answer, error) {
	switch q {
	case "count(//broker)":
		return Answer{Value: "2"}, nil
	case "bad[":
		return Answer{}, errors.New("bad XPath query: expression <oops> must evaluate to a node-set")
	case "//nothing":
		return Answer{NodeSet: true}, nil
	}
	return Answer{NodeSet: true, Nodes: []AnswerNode{{Name: "address", Value: nastyBroker, Attribute: true},
		{Name: "link", Link: fakeLink0, Broker: "na.c0.b0", Time: "2026-11-23T10:00:00Z"}}}, nil
}

// get fetches a page and parses it; it returns the status, the text of
// the page and the elements found.
func getPage(t *testing.T, srv *httptest.Server, path string) (int, string, map[string]int) {
	t.Helper()
	return getPageWith(t, srv.URL+path, nil)
}

// getPageWith is getPage for a URL, with request headers.
func getPageWith(t *testing.T, u string, hdr map[string]string) (int, string, map[string]int) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	elements := map[string]int{}
	var text strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.ElementNode:
			elements[n.Data]++
		case html.TextNode:
			text.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return resp.StatusCode, text.String(), elements
}

func startSite(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	NewSite(newFakeSource(), SiteConfig{}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestPagesEscapeNames: every page renders, and a broker address, a link
// id, a rule or an answer holding markup shows as text: no page gets a
// script, bold, italic or underline element from the network.
func TestPagesEscapeNames(t *testing.T) {
	srv := startSite(t)
	for _, path := range []string{
		"/", "/brokers/" + url.PathEscape(nastyBroker), "/links/" + url.PathEscape("<b>bold</b>"),
		"/links/00000000-0000-4000-8000-000000000000?range=2h", "/xpath", "/xpath?q=" + url.QueryEscape("//broker/@address"),
		"/xpath?q=" + url.QueryEscape("count(//broker)"), "/rules", "/brokers/na.c0.b0",
		"/map?subject=" + url.QueryEscape("<b>s</b>") + "&from=na.c0.b0",
	} {
		code, text, el := getPage(t, srv, path)
		if code != http.StatusOK {
			t.Errorf("%s: %d", path, code)
		}
		for _, e := range []string{"b", "i", "u"} {
			if el[e] > 0 {
				t.Errorf("%s: %d %s elements: a name was not escaped", path, el[e], e)
			}
		}
		if el["script"] != 1 { // the page's own, for live updates
			t.Errorf("%s: %d script elements, want the page's one: a name was not escaped", path, el["script"])
		}
		if el["nav"] != 1 || el["h1"] != 1 {
			t.Errorf("%s: not a whole page: %v", path, el)
		}
		switch {
		case path == "/" || path == "/brokers/"+url.PathEscape(nastyBroker):
			if !strings.Contains(text, nastyBroker) || !strings.Contains(text, "<b>bold</b>") {
				t.Errorf("%s: the nasty names are not shown as text:\n%.500s", path, text)
			}
		case path == "/rules":
			if !strings.Contains(text, "<u>lossy</u>") || !strings.Contains(text, "<i>rule</i>") {
				t.Errorf("%s: rules and actions not shown as text", path)
			}
		}
	}
}

func TestOverviewCountsLinks(t *testing.T) {
	_, text, el := getPage(t, startSite(t), "/")
	// The state of na.c0.b0 says its third link is down.
	if !strings.Contains(text, "2 brokers reporting; 6 links: 4 up, 2 down") {
		t.Errorf("overview:\n%.400s", text)
	}
	if el["tr"] < 7 { // the worst links (6) and the action, with their headers
		t.Errorf("%d table rows", el["tr"])
	}
	// The link that is down heads the worst links.
	if down, up := strings.Index(text, "<b>bold</b>"), strings.Index(text, "00000000-0000-4000-8000-000000000000"); down < 0 || up < 0 || down > up {
		t.Errorf("the link down is not first among the worst (%d, %d)", down, up)
	}
}

func TestLinkPageCharts(t *testing.T) {
	_, text, el := getPage(t, startSite(t), "/links/00000000-0000-4000-8000-000000000000?range=30m")
	if el["svg"] != 6 || el["path"] < 12 { // latency p50, p99, jitter, loss, cost, and the CDF, each with its axes and a line
		t.Errorf("%d charts, %d paths", el["svg"], el["path"])
	}
	if !strings.Contains(text, "10 measurements over the last 30m") {
		t.Errorf("link page:\n%.400s", text)
	}
	if !strings.Contains(text, "Messages dropped on the link") || !regexp.MustCompile(`na\.c0\.b0\s*7\s*0\s*12\s*0`).MatchString(text) {
		t.Errorf("link page without its drops by reason:\n%s", text)
	}
	if !strings.Contains(text, "By priority class, counted at na.c0.b0") || !regexp.MustCompile(`low\s*6\s*0\s*0\s*normal\s*1\s*0\s*0`).MatchString(text) {
		t.Errorf("link page without its drops by class:\n%s", text)
	}
}

func TestPagesRefuseBadInput(t *testing.T) {
	srv := startSite(t)
	for path, want := range map[string]int{
		"/brokers/nobody":        http.StatusNotFound,
		"/links/nothing":         http.StatusNotFound,
		"/links/x?range=forever": http.StatusBadRequest,
		"/links/x?range=-1h":     http.StatusBadRequest,
		"/xpath?q=bad%5B":        http.StatusBadRequest,
		"/nowhere":               http.StatusNotFound,
	} {
		code, text, el := getPage(t, srv, path)
		if code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
		if path == "/xpath?q=bad%5B" && (!strings.Contains(text, "<oops>") || el["oops"] > 0) {
			t.Errorf("%s: the parser's message is not shown as text: %.300s", path, text)
		}
	}
}

func TestMapShowsEveryBroker(t *testing.T) {
	src := newFakeSource()
	svg := string(networkMap(withStates(src.Latest(), src.States()), src.States(), nil))
	doc, err := html.Parse(strings.NewReader(svg))
	if err != nil {
		t.Fatal(err)
	}
	brokers, downs, lines := map[string]bool{}, 0, 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				switch {
				case n.Data == "circle" && a.Key == "data-broker":
					brokers[a.Val] = true
				case n.Data == "path" && a.Key == "class" && a.Val == "down":
					downs++
				case n.Data == "path" && a.Key == "data-link":
					lines++
				}
			}
			if n.Data == "script" {
				t.Error("a script element in the map")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	// Two reporting brokers and their peers (eu.c0.b0..b2).
	for _, b := range []string{"na.c0.b0", nastyBroker, "eu.c0.b0", "eu.c0.b1", "eu.c0.b2"} {
		if !brokers[b] {
			t.Errorf("broker %q not on the map (%v)", b, brokers)
		}
	}
	if lines != 6 || downs != 2 {
		t.Errorf("%d links drawn, %d down; want 6 and 2", lines, downs)
	}
	if code, _, el := getPage(t, startSite(t), "/map"); code != 200 || el["svg"] != 1 || el["script"] != 1 {
		t.Errorf("map page: %d %v", code, el)
	}
}

// TestBrokerPageRoutes: the broker page shows the client count, the route
// table per profile and the subjects, from the broker's routing state.
func TestBrokerPageRoutes(t *testing.T) {
	code, text, el := getPage(t, startSite(t), "/brokers/na.c0.b0")
	if code != http.StatusOK {
		t.Fatalf("%d", code)
	}
	// A unit as next hop names the broker it goes through, and links to
	// that broker's page, not the unit's. A route through a unit names
	// where it leaves it.
	for _, want := range []string{"4 client connections", "Profile default", "na.c0.b0 → eu.c0.b1 → eu.c0.b2", "<script>sub</script>", "eu.c1 via eu.c0.b1",
		"leaves the units it crosses at", "eu.c1.b3 over " + fakeLink2,
		"Contract trade.>", "at risk", "p50: 45.50 of 50 ms", "p99: never of 100 ms", "0.10%",
		"dropped_no_route2", "rerouted183", "held_for_order6"} {
		if !strings.Contains(text, want) {
			t.Errorf("broker page lacks %q:\n%.800s", want, text)
		}
	}
	if el["table"] != 4 { // links, one profile's routes, one contract's, the messages
		t.Errorf("%d tables, want 4", el["table"])
	}
	if el["svg"] < 1 || el["circle"] != 2 { // the contract's distribution and its two bounds
		t.Errorf("%d svg and %d circles, want the contract's distribution with two bounds", el["svg"], el["circle"])
	}
}

// TestOverviewRouteChanges: recent route changes are listed, names as
// text.
func TestOverviewRouteChanges(t *testing.T) {
	_, text, el := getPage(t, startSite(t), "/")
	if !strings.Contains(text, "Recent route changes") || !strings.Contains(text, "<i>eu</i>") || el["i"] > 0 {
		t.Errorf("overview's route changes:\n%.1500s", text)
	}
}

// TestMapHighlightsRoute: the links and brokers of a subject's route are
// drawn highlighted; a bad request says why, as text.
func TestMapHighlightsRoute(t *testing.T) {
	src := newFakeSource()
	rt, _ := src.Route("demo.ticks", "na.c0.b0")
	svg := string(networkMap(withStates(src.Latest(), src.States()), src.States(), &rt))
	if n := strings.Count(svg, `class="route"`); n != 1 { // the second link of the path is not on the map
		t.Errorf("%d route links highlighted, want 1", n)
	}
	if !strings.Contains(svg, `data-route-link="`+fakeLink1+`"`) {
		t.Error("the route's link is not highlighted")
	}
	if n := strings.Count(svg, "broker onroute"); n != 3 {
		t.Errorf("%d brokers highlighted, want 3", n)
	}
	srv := startSite(t)
	code, text, _ := getPage(t, srv, "/map?subject=demo.ticks&from=na.c0.b0")
	if code != http.StatusOK || !strings.Contains(text, "na.c0.b0 → eu.c0.b1 → eu.c0.b2") {
		t.Errorf("map page: %d\n%.800s", code, text)
	}
	code, text, el := getPage(t, srv, "/map?subject=demo.ticks&from=nobody")
	if code != http.StatusBadRequest || !strings.Contains(text, "<u>nobody</u>") || el["u"] > 0 {
		t.Errorf("map page with a bad broker: %d\n%.800s", code, text)
	}
}

// TestLinkPathAvoidsObstacles: a link whose straight line would cross
// another broker or a name bows around it, the same way every time; its
// own ends are no obstacle; others are straight.
func TestLinkPathAvoidsObstacles(t *testing.T) {
	circle := func(name string, x, y float64) obstacle { return obstacle{x - 15, y - 15, x + 15, y + 15, name} }
	obs := []obstacle{circle("a", 0, 100), circle("b", 100, 100), circle("c", 200, 100), circle("d", 100, 300)}
	if d := linkPath([2]float64{0, 100}, [2]float64{100, 100}, "a", "b", obs); !strings.HasPrefix(d, "M0 100 L") {
		t.Errorf("a-b: %s, want a straight line", d)
	}
	if d := linkPath([2]float64{0, 100}, [2]float64{100, 300}, "a", "d", obs); !strings.Contains(d, "L") {
		t.Errorf("a-d: %s, want a straight line", d)
	}
	for _, extra := range [][]obstacle{nil, {textBox(60, 200, 12, false, "")}} {
		all := append(slices.Clone(obs), extra...)
		d := linkPath([2]float64{0, 100}, [2]float64{200, 100}, "a", "c", all) // over b
		var x0, y0, cx, cy, x1, y1 float64
		if _, err := fmt.Sscanf(d, "M%f %f Q%f %f %f %f", &x0, &y0, &cx, &cy, &x1, &y1); err != nil {
			t.Fatalf("a-c: %s: %v", d, err)
		}
		if crosses([2]float64{x0, y0}, [2]float64{cx, cy}, [2]float64{x1, y1}, all[1:2]) {
			t.Errorf("a-c crosses b: %s", d)
		}
		for range 5 {
			if again := linkPath([2]float64{0, 100}, [2]float64{200, 100}, "a", "c", all); again != d {
				t.Fatalf("drawn %s, then %s", d, again)
			}
		}
	}
	// A name in the way of the straight line.
	label := textBox(80, 154, 10, false, "")
	if d := linkPath([2]float64{0, 150}, [2]float64{300, 150}, "a", "c", []obstacle{label}); strings.Contains(d, "L") {
		t.Errorf("a line through a name: %s", d)
	}
}

// TestMapLayout: every level of units is placed by one rule, in name
// order; the map is at least mapMinW wide; no link crosses a unit's name;
// and the legend gives the costs' range.
func TestMapLayout(t *testing.T) {
	var reps []schema.Report
	for _, b := range []string{"na.cgl.c1.a", "na.cgl.c1.b", "na.cgl.c2.a", "eu.kth.c1.a", "eu.kth.c2.b"} {
		reps = append(reps, schema.Report{Broker: b})
	}
	add := func(a, b string, cost float64) {
		for i := range reps {
			if reps[i].Broker == a {
				id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(reps[i].Links)+10*i)
				reps[i].Links = append(reps[i].Links, schema.Link{ID: id, B: b, State: "up", Costs: []schema.Cost{{Profile: "default", Value: cost}}})
			}
		}
	}
	add("na.cgl.c1.a", "na.cgl.c1.b", 4)
	add("na.cgl.c1.a", "eu.kth.c1.a", 90)
	add("na.cgl.c2.a", "eu.kth.c2.b", 85)
	add("na.cgl.c1.b", "na.cgl.c2.a", 24)
	add("eu.kth.c1.a", "eu.kth.c2.b", 30)
	svg := string(networkMap(reps, nil, nil))
	var w, h float64
	if _, err := fmt.Sscanf(svg, `<svg class="map" viewBox="0 0 %f %f"`, &w, &h); err != nil || w < mapMinW {
		t.Fatalf("viewBox %v x %v: %v", w, h, err)
	}
	units := regexp.MustCompile(`<rect x="([0-9.]+)" y="([0-9.]+)" width="[0-9.]+" height="[0-9.]+" rx="8" class="unit depth(\d)" data-unit="([^"]+)"`).FindAllStringSubmatch(svg, -1)
	var order []string
	at := map[string][2]float64{}
	for _, u := range units {
		x, _ := strconv.ParseFloat(u[1], 64)
		y, _ := strconv.ParseFloat(u[2], 64)
		at[u[4]] = [2]float64{x, y}
		order = append(order, u[4])
	}
	if want := []string{"eu", "eu.kth", "eu.kth.c1", "eu.kth.c2", "na", "na.cgl", "na.cgl.c1", "na.cgl.c2"}; !slices.Equal(order, want) {
		t.Fatalf("units %v, want %v", order, want)
	}
	// Continents side by side; clusters of one super-cluster one above
	// the other.
	if at["eu"][0] >= at["na"][0] || at["eu"][1] != at["na"][1] || at["na.cgl.c1"][0] != at["na.cgl.c2"][0] || at["na.cgl.c1"][1] >= at["na.cgl.c2"][1] {
		t.Errorf("units placed at %v", at)
	}
	var names []obstacle
	for name, p := range at {
		names = append(names, textBox(p[0]+8, p[1]+16, len(name), false, ""))
	}
	paths := regexp.MustCompile(`<path d="M([0-9.]+) ([0-9.]+) ([LQ])([^"]+)" fill="none" stroke`).FindAllStringSubmatch(svg, -1)
	if len(paths) != 5 {
		t.Fatalf("%d links drawn, want 5", len(paths))
	}
	for _, p := range paths {
		var x0, y0, cx, cy, x1, y1 float64
		fmt.Sscan(p[1], &x0)
		fmt.Sscan(p[2], &y0)
		if p[3] == "L" {
			fmt.Sscanf(p[4], "%f %f", &x1, &y1)
			cx, cy = (x0+x1)/2, (y0+y1)/2
		} else {
			fmt.Sscanf(p[4], "%f %f %f %f", &cx, &cy, &x1, &y1)
		}
		if crosses([2]float64{x0, y0}, [2]float64{cx, cy}, [2]float64{x1, y1}, names) {
			t.Errorf("link %s crosses a unit's name", p[0])
		}
	}
	if !strings.Contains(svg, "link cost (profile default)") || !strings.Contains(svg, ">4<") || !strings.Contains(svg, ">90<") || !strings.Contains(svg, ">47<") {
		t.Errorf("the legend does not give the costs from 4 to 90:\n%s", svg[strings.Index(svg, `<g class="legend">`):])
	}
}

// TestXPathPageAnswers: an empty answer says 0 nodes; a link found says
// which broker reported it, and when; a value is shown as such.
func TestXPathPageAnswers(t *testing.T) {
	srv := startSite(t)
	for q, want := range map[string][]string{
		"//nothing":       {"0 nodes."},
		"//link":          {"2 nodes.", "reported by", "na.c0.b0", "2026-11-23T10:00:00Z", fakeLink0[:8]},
		"count(//broker)": {"Answer: 2"},
	} {
		code, text, _ := getPage(t, srv, "/xpath?q="+url.QueryEscape(q))
		for _, w := range want {
			if code != http.StatusOK || !strings.Contains(text, w) {
				t.Errorf("%s: %d, the page lacks %q:\n%.600s", q, code, w, text[strings.Index(text, "Examples"):])
			}
		}
	}
}

// TestLinkPageByIDBeginning: a link's page is found by the beginning of
// its id; a beginning that several share lists them.
func TestLinkPageByIDBeginning(t *testing.T) {
	srv := startSite(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + "/links/" + url.PathEscape("<b>b") + "?range=2h")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := (&url.URL{Path: "/links/<b>bold</b>", RawQuery: "range=2h"}).String(); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Errorf("a unique beginning: %d %s, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	code, text, _ := getPage(t, srv, "/links/"+fakeLink1[:30])
	if code != http.StatusBadRequest || !strings.Contains(text, fakeLink0) || !strings.Contains(text, fakeLink2) {
		t.Errorf("an id's beginning that several share: %d\n%.500s", code, text)
	}
	if code, _, _ := getPage(t, srv, "/favicon.ico"); code != http.StatusOK {
		t.Errorf("favicon: %d", code)
	}
}

// TestWithStatesStandby: a link that its broker's routing state has down
// but in standby reads "down (standby)" on the pages, one down without a
// connection "down", and one up "up", whatever the older report said.
func TestWithStatesStandby(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	reps := []schema.Report{{Broker: "na.c0.b0", Time: at, Links: []schema.Link{{ID: "s", State: "up"}, {ID: "d", State: "up"}, {ID: "u", State: "down"}}}}
	states := []schema.State{{Broker: "na.c0.b0", Time: at.Add(time.Second), Links: []schema.StateLink{
		{ID: "s", Standby: true}, {ID: "d"}, {ID: "u", Up: true}}}}
	got := withStates(reps, states)
	for i, want := range []string{"down (standby)", "down", "up"} {
		if s := got[0].Links[i].State; s != want {
			t.Errorf("link %s: %q, want %q", got[0].Links[i].ID, s, want)
		}
	}
	if reps[0].Links[0].State != "up" {
		t.Errorf("the report itself changed: %q", reps[0].Links[0].State)
	}
}

// TestMapStandby: the map draws a link in standby (by either end's
// routing state, or by a report withStates rewrote) dotted orange with a
// title that says so, and the legend shows it; a link one end has down
// and the other in standby is drawn down, one up at both ends up.
func TestMapStandby(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	link := func(id, b, state string) schema.Link {
		return schema.Link{ID: id, B: b, State: state, Costs: []schema.Cost{{Profile: "default", Value: 10}}}
	}
	reps := []schema.Report{
		{Broker: "na.c0.a", Time: at, Links: []schema.Link{link("ab", "na.c0.b", "up"), link("ac", "na.c0.c", "up"), link("ad", "na.c0.d", "up")}},
		{Broker: "na.c0.b", Time: at, Links: []schema.Link{link("ab", "na.c0.a", "up"), link("bc", "na.c0.c", "down (standby)")}},
		{Broker: "na.c0.c", Time: at, Links: []schema.Link{link("ac", "na.c0.a", "down"), link("bc", "na.c0.b", "up")}},
	}
	// a's newer routing state: ac in standby at its end (c says down),
	// ad in standby (d sends no report), ab up.
	states := []schema.State{{Broker: "na.c0.a", Time: at.Add(time.Second), Links: []schema.StateLink{
		{ID: "ab", Peer: "na.c0.b", Up: true}, {ID: "ac", Peer: "na.c0.c", Standby: true}, {ID: "ad", Peer: "na.c0.d", Standby: true}}}}
	svg := string(networkMap(withStates(reps, states), states, nil))
	want := map[string]string{"ab": "up", "ac": "down", "ad": "standby", "bc": "standby"}
	for id, st := range want {
		m := regexp.MustCompile(`<path d="[^"]+" fill="none" ([^>]*) data-link="` + id + `" data-state="([a-z]+)"><title>([^<]*)</title>`).FindStringSubmatch(svg)
		if m == nil {
			t.Fatalf("link %s not drawn: %s", id, svg)
		}
		if m[2] != st {
			t.Errorf("link %s drawn %s, want %s", id, m[2], st)
		}
		if standby := strings.Contains(m[1], `class="standby"`); standby != (st == "standby") || standby != strings.Contains(m[3], "standby") {
			t.Errorf("link %s drawn %q, titled %q", id, m[1], m[3])
		}
	}
	if !strings.Contains(svg, `<text x="`) || !regexp.MustCompile(`stroke="#e80"[^>]*/><text [^>]*>standby</text>`).MatchString(svg) {
		t.Errorf("the legend shows no standby: %s", svg)
	}
}
