package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
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

func newFakeSource() *fakeSource {
	at := time.Now().Add(-2 * time.Second)
	reps := schema.Synthetic(2, 3, at)
	reps[1].Broker = nastyBroker
	reps[1].Links[0].State = "down"
	reps[1].Links[0].ID = "<b>bold</b>"
	st := schema.State{Broker: "na.c0.b0", Domain: "na", Seq: 3, Time: at.Add(time.Second), Clients: 4,
		Links: []schema.StateLink{{ID: fakeLink0, Peer: "eu.c0.b0", Up: true}, {ID: fakeLink1, Peer: "eu.c0.b1", Up: true}, {ID: fakeLink2, Peer: "eu.c0.b2", Up: false}},
		Routes: []schema.Route{
			{Profile: "default", Destination: "eu.c0.b1", NextHop: "eu.c0.b1", Link: fakeLink1, Cost: 10, Path: []string{"na.c0.b0", "eu.c0.b1"}},
			{Profile: "default", Destination: "eu.c0.b2", NextHop: "eu.c0.b1", Link: fakeLink1, Cost: 20, Path: []string{"na.c0.b0", "eu.c0.b1", "eu.c0.b2"}},
			{Profile: "default", Destination: "eu.c1", NextHop: "eu.c1", Link: fakeLink1, Cost: 30, Path: []string{"na.c0.b0", "eu.c1"}},
			{Profile: "default", Destination: "eu.c2", NextHop: "eu.c1", Link: fakeLink1, Cost: 40, Path: []string{"na.c0.b0", "eu.c1", "eu.c2"},
				Exits: []schema.RouteExit{{Broker: "eu.c1.b3", Link: fakeLink2}}},
		},
		Subjects: []string{"<script>sub</script>"},
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
	}
	return Answer{Nodes: []AnswerNode{{Name: "address", Value: nastyBroker, Attribute: true}, {Name: "link", Link: "abc"}}}, nil
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
	if el["svg"] != 6 || el["polyline"] != 6 { // latency p50, p99, jitter, loss, cost, and the CDF
		t.Errorf("%d charts, %d lines", el["svg"], el["polyline"])
	}
	if !strings.Contains(text, "10 measurements over the last 30m0s") {
		t.Errorf("link page:\n%.400s", text)
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
		"leaves the units it crosses at", "eu.c1.b3 over " + fakeLink2} {
		if !strings.Contains(text, want) {
			t.Errorf("broker page lacks %q:\n%.800s", want, text)
		}
	}
	if el["table"] != 2 { // links, and one profile's routes
		t.Errorf("%d tables, want 2", el["table"])
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

// TestLinkPathAvoidsBrokers: a link whose straight line would cross
// another broker bows away from it; others are straight.
func TestLinkPathAvoidsBrokers(t *testing.T) {
	pos := map[string][2]float64{"a": {0, 100}, "b": {100, 100}, "c": {200, 100}, "d": {100, 300}}
	if d := linkPath(pos["a"], pos["b"], pos); !strings.Contains(d, "L") {
		t.Errorf("a-b: %s, want a straight line", d)
	}
	if d := linkPath(pos["a"], pos["d"], pos); !strings.Contains(d, "L") {
		t.Errorf("a-d: %s, want a straight line", d)
	}
	d := linkPath(pos["a"], pos["c"], pos) // over b
	var x0, y0, cx, cy, x1, y1 float64
	if _, err := fmt.Sscanf(d, "M%f %f Q%f %f %f %f", &x0, &y0, &cx, &cy, &x1, &y1); err != nil {
		t.Fatalf("a-c: %s: %v", d, err)
	}
	// The curve's middle is halfway between the midpoint and the control
	// point: clear of b's circle.
	if mid := (y0+y1)/2/2 + cy/2; math.Abs(mid-100) < mapBrokerR+6 {
		t.Errorf("a-c passes %v from b: %s", math.Abs(mid-100), d)
	}
	// b, right on the line, is the nearest: the curve bows above it (to
	// smaller y), every time, whatever the order of the map.
	pos["e"] = [2]float64{100, 94}
	for range 20 {
		if d := linkPath(pos["a"], pos["c"], pos); !strings.Contains(d, "Q100 50 ") {
			t.Fatalf("a-c past b and e: %s, want a curve above", d)
		}
	}
	// Without b, e just above the line: the curve bows below, away from
	// it; and above, away from one just below.
	delete(pos, "b")
	if d := linkPath(pos["a"], pos["c"], pos); !strings.Contains(d, "Q100 150 ") {
		t.Errorf("a-c past e above: %s, want a curve below", d)
	}
	pos["e"] = [2]float64{100, 106}
	if d := linkPath(pos["a"], pos["c"], pos); !strings.Contains(d, "Q100 50 ") {
		t.Errorf("a-c past e below: %s, want a curve above", d)
	}
}
