package aggregator

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/schema"
	"github.com/wayline/wayline/transports"
)

// TestRoutesFollowLinks: brokers' routing states reach the aggregator, a
// subject's route is followed to its subscriber, and a link going down
// shows as a route change and a live update within seconds, although
// reports come only every 30 s. (The pair has no other way: its link stays
// in standby, and carries the route, until its silent connection is given
// up, after a second here.)
func TestRoutesFollowLinks(t *testing.T) {
	a, b, linkID := pairWith(t, 30*time.Second, nil, func(c *broker.Config) {
		c.Keepalive, c.DeadAfter = 100*time.Millisecond, time.Second
	})
	agg := startAggregator(t, a.ClientURL(), nil, "")
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("demo.>"); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	waitFor(t, "the route of demo.x from na.c1.a to na.c1.b", 10*time.Second, func() bool {
		rt, err := RouteOf(agg.States(), "demo.x", "na.c1.a")
		return err == nil && len(rt.Paths) == 1 && rt.Paths[0].Reached && slices.Equal(rt.Paths[0].Links, []string{linkID})
	})
	states := agg.States()
	if i := slices.IndexFunc(states, func(st schema.State) bool { return st.Broker == "na.c1.b" }); i < 0 || states[i].Clients < 1 || !slices.Contains(states[i].Subjects, "demo.>") {
		t.Errorf("na.c1.b's state, with its subscriber: %+v", states)
	}
	code, body := get(t, "http://"+agg.HTTPAddr()+"/api/route?subject=demo.x&from=na.c1.a")
	if code != http.StatusOK || !strings.Contains(body, `"Reached": true`) {
		t.Errorf("/api/route: %d %s", code, body)
	}
	if code, _ := get(t, "http://"+agg.HTTPAddr()+"/api/route?subject=demo.*&from=na.c1.a"); code != http.StatusBadRequest {
		t.Errorf("/api/route with a wildcard: %d, want 400", code)
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+agg.HTTPAddr()+"/live?topics="+"route.", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	down := true
	start := time.Now()
	if _, err := a.SetEmulation(linkID, transports.EmulationSpec{Down: &down}); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("no live route change: %v", err)
	}
	var ev struct{ Kind, Broker string }
	if err := json.Unmarshal(msg, &ev); err != nil || ev.Kind != "route" {
		t.Fatalf("live update %s", msg)
	}
	t.Logf("route change seen live %v after the link went down", time.Since(start).Round(time.Millisecond))
	changes := agg.RouteChanges(10)
	if len(changes) == 0 || changes[0].To != "" || changes[0].From == "" {
		t.Fatalf("route changes %+v, want one to unreachable", changes)
	}
	rt, err := RouteOf(agg.States(), "demo.x", "na.c1.a")
	if err != nil || len(rt.Paths) != 1 || rt.Paths[0].Reached {
		t.Errorf("route after the link went down: %+v %v", rt, err)
	}
	// The routing state of the broker that took the link down carries the
	// emulation, which the admin page shows (its peer's state, which would
	// cross the link, cannot come).
	waitFor(t, "na.c1.a's state to say the link is emulated down", 10*time.Second, func() bool {
		for _, st := range agg.States() {
			for _, l := range st.Links {
				if st.Broker == "na.c1.a" && l.ID == linkID && l.Emulation != nil && l.Emulation.Down {
					return true
				}
			}
		}
		return false
	})
	down = false
	if _, err := a.SetEmulation(linkID, transports.EmulationSpec{Down: &down}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the route back", 10*time.Second, func() bool {
		c := agg.RouteChanges(1)
		return len(c) == 1 && c[0].To != ""
	})
}

func TestRouteOf(t *testing.T) {
	r := func(dst, next, link string, path ...string) schema.Route {
		return schema.Route{Profile: "default", Destination: dst, NextHop: next, Link: link, Cost: 1, Path: path}
	}
	// na.c1.a - na.c1.b (gateway) - eu.c1.a - eu.c1.b; eu.c1.c is cut off.
	lk := func(id, peer string) schema.StateLink { return schema.StateLink{ID: id, Peer: peer, Up: true} }
	states := []schema.State{
		{Broker: "na.c1.a", Routes: []schema.Route{r("na.c1.b", "na.c1.b", "l1", "na.c1.a", "na.c1.b"),
			r("eu.c1.a", "na.c1.b", "l1", "na.c1.a", "na.c1.b", "eu.c1.a"), r("eu.c1.b", "na.c1.b", "l1", "na.c1.a", "na.c1.b", "eu.c1.a", "eu.c1.b")},
			Links: []schema.StateLink{lk("l1", "na.c1.b")}, Profiles: []schema.SubjectProfile{{Subject: "fast.>", Profile: "latency"}}},
		{Broker: "na.c1.b", Routes: []schema.Route{r("na.c1.a", "na.c1.a", "l1", "na.c1.b", "na.c1.a"),
			r("eu.c1.a", "eu.c1.a", "l2", "na.c1.b", "eu.c1.a"), r("eu.c1.b", "eu.c1.a", "l2", "na.c1.b", "eu.c1.a", "eu.c1.b")},
			Links: []schema.StateLink{lk("l1", "na.c1.a"), lk("l2", "eu.c1.a")}},
		{Broker: "eu.c1.a", Routes: []schema.Route{r("eu.c1.b", "eu.c1.b", "l3", "eu.c1.a", "eu.c1.b"), r("na.c1.b", "na.c1.b", "l2", "eu.c1.a", "na.c1.b")},
			Links: []schema.StateLink{lk("l2", "na.c1.b"), lk("l3", "eu.c1.b")}},
		{Broker: "eu.c1.b", Subjects: []string{"orders.*"}},
		{Broker: "eu.c1.c", Subjects: []string{">"}},
	}
	rt, err := RouteOf(states, "orders.new", "na.c1.a")
	if err != nil {
		t.Fatal(err)
	}
	if rt.Profile != "default" || len(rt.Paths) != 2 {
		t.Fatalf("%+v", rt)
	}
	for _, p := range rt.Paths {
		switch p.To {
		case "eu.c1.b":
			if !p.Reached || !slices.Equal(p.Brokers, []string{"na.c1.a", "na.c1.b", "eu.c1.a", "eu.c1.b"}) || !slices.Equal(p.Links, []string{"l1", "l2", "l3"}) {
				t.Errorf("to eu.c1.b: %+v", p)
			}
		case "eu.c1.c":
			if p.Reached || !slices.Equal(p.Brokers, []string{"na.c1.a"}) {
				t.Errorf("to eu.c1.c: %+v", p)
			}
		default:
			t.Errorf("path to %s", p.To)
		}
	}
	if rt, _ := RouteOf(states, "fast.x", "na.c1.a"); rt.Profile != "latency" {
		t.Errorf("profile of fast.x: %q", rt.Profile)
	}
	for _, bad := range [][2]string{{"orders.*", "na.c1.a"}, {"", "na.c1.a"}, {"orders.new", "nobody"}} {
		if _, err := RouteOf(states, bad[0], bad[1]); err == nil {
			t.Errorf("RouteOf(%q, %q): no error", bad[0], bad[1])
		}
	}
}

// TestRouteOfThroughExits: cluster eu.g.r0 is split (r0.c0 and r0.c2 have
// no link), so r0.c2 reaches r0.c0 through cluster r1, crossing it from
// r1.c2 to r1.c0: the route names the link it leaves r1 by, and the path
// follows it.
func TestRouteOfThroughExits(t *testing.T) {
	lk := func(id, peer string) schema.StateLink { return schema.StateLink{ID: id, Peer: peer, Up: true} }
	r := func(dst, next, link string, path ...string) schema.Route {
		return schema.Route{Profile: "default", Destination: dst, NextHop: next, Link: link, Cost: 1, Path: path}
	}
	across := r("eu.g.r0.c0", "eu.g.r1.c2", "v2", "eu.g.r0.c2", "eu.g.r1.c2", "eu.g.r1.c0", "eu.g.r0.c0")
	across.Exits = []schema.RouteExit{{Broker: "eu.g.r1.c0", Link: "v0"}}
	states := []schema.State{
		{Broker: "eu.g.r0.c2", Routes: []schema.Route{across, r("eu.g.r1.c2", "eu.g.r1.c2", "v2", "eu.g.r0.c2", "eu.g.r1.c2")},
			Links: []schema.StateLink{lk("v2", "eu.g.r1.c2")}},
		{Broker: "eu.g.r1.c2", Routes: []schema.Route{r("eu.g.r1.c0", "eu.g.r1.c0", "l3", "eu.g.r1.c2", "eu.g.r1.c0"), r("eu.g.r0.c2", "eu.g.r0.c2", "v2", "eu.g.r1.c2", "eu.g.r0.c2")},
			Links: []schema.StateLink{lk("v2", "eu.g.r0.c2"), lk("l3", "eu.g.r1.c0")}},
		{Broker: "eu.g.r1.c0", Routes: []schema.Route{r("eu.g.r1.c2", "eu.g.r1.c2", "l3", "eu.g.r1.c0", "eu.g.r1.c2"), r("eu.g.r0.c0", "eu.g.r0.c0", "v0", "eu.g.r1.c0", "eu.g.r0.c0")},
			Links: []schema.StateLink{lk("v0", "eu.g.r0.c0"), lk("l3", "eu.g.r1.c2")}},
		{Broker: "eu.g.r0.c0", Subjects: []string{"mesh.>"}, Links: []schema.StateLink{lk("v0", "eu.g.r1.c0")}},
	}
	rt, err := RouteOf(states, "mesh.x", "eu.g.r0.c2")
	if err != nil {
		t.Fatal(err)
	}
	want := schema.SubjectPath{To: "eu.g.r0.c0", Reached: true,
		Brokers: []string{"eu.g.r0.c2", "eu.g.r1.c2", "eu.g.r1.c0", "eu.g.r0.c0"}, Links: []string{"v2", "l3", "v0"}}
	if len(rt.Paths) != 1 || !reflect.DeepEqual(rt.Paths[0], want) {
		t.Fatalf("paths %+v, want %+v", rt.Paths, want)
	}
	// With the exit's link down and no other way towards r0, r1.c0 has
	// nowhere to send it.
	states[2].Links[0].Up = false
	states[2].Routes = states[2].Routes[:1]
	rt, _ = RouteOf(states, "mesh.x", "eu.g.r0.c2")
	if len(rt.Paths) != 1 || rt.Paths[0].Reached || !slices.Equal(rt.Paths[0].Brokers, want.Brokers[:3]) {
		t.Fatalf("with the exit down: %+v", rt.Paths)
	}
}

func TestRouteChanges(t *testing.T) {
	prev := schema.State{Broker: "x", Routes: []schema.Route{
		{Profile: "default", Destination: "a", NextHop: "a"},
		{Profile: "default", Destination: "b", NextHop: "a"},
		{Profile: "default", Destination: "c", NextHop: "c"},
	}}
	cur := schema.State{Broker: "x", Time: time.Now(), Routes: []schema.Route{
		{Profile: "default", Destination: "a", NextHop: "a"},
		{Profile: "default", Destination: "b", NextHop: "b", Cost: 3},
		{Profile: "default", Destination: "d", NextHop: "a"},
	}}
	got := routeChanges(prev, cur)
	want := []schema.RouteChange{
		{Time: cur.Time, Broker: "x", Profile: "default", Destination: "b", From: "a", To: "b", Cost: 3},
		{Time: cur.Time, Broker: "x", Profile: "default", Destination: "c", From: "c"},
		{Time: cur.Time, Broker: "x", Profile: "default", Destination: "d", To: "a"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestRouteOfContract: a subject routed by a delay contract follows the
// contract's route where it is published (its whole path pinned), while
// another subject follows the default routes.
func TestRouteOfContract(t *testing.T) {
	r := func(dst, next, link string, path ...string) schema.Route {
		return schema.Route{Profile: "default", Destination: dst, NextHop: next, Link: link, Cost: 1, Path: path}
	}
	lk := func(id, peer string) schema.StateLink { return schema.StateLink{ID: id, Peer: peer, Up: true} }
	// x.a reaches x.d through x.b (cheapest) or x.c (the contract's).
	viaC := schema.Route{Profile: schema.ContractProfile, Contract: "trade.>", Destination: "x.d", NextHop: "x.c", Link: "ac", Cost: 4,
		Path: []string{"x.a", "x.c", "x.d"}, Exits: []schema.RouteExit{{Broker: "x.c", Link: "cd"}}, Prediction: &schema.Prediction{Status: "met"}}
	states := []schema.State{
		{Broker: "x.a", Routes: []schema.Route{r("x.d", "x.b", "ab", "x.a", "x.b", "x.d"), viaC},
			Links: []schema.StateLink{lk("ab", "x.b"), lk("ac", "x.c")}},
		{Broker: "x.b", Routes: []schema.Route{r("x.d", "x.d", "bd", "x.b", "x.d")}, Links: []schema.StateLink{lk("ab", "x.a"), lk("bd", "x.d")}},
		{Broker: "x.c", Routes: []schema.Route{r("x.d", "x.a", "ac", "x.c", "x.a", "x.b", "x.d")}, Links: []schema.StateLink{lk("ac", "x.a"), lk("cd", "x.d")}},
		{Broker: "x.d", Subjects: []string{">"}},
	}
	for subject, want := range map[string][]string{"trade.eur": {"x.a", "x.c", "x.d"}, "news.x": {"x.a", "x.b", "x.d"}} {
		rt, err := RouteOf(states, subject, "x.a")
		if err != nil || len(rt.Paths) != 1 || !rt.Paths[0].Reached || !slices.Equal(rt.Paths[0].Brokers, want) {
			t.Errorf("%s: %+v %v, want through %v", subject, rt, err, want)
		}
		if c := rt.Contract; (c != "") != (subject == "trade.eur") || subject == "trade.eur" && rt.Profile != schema.ContractProfile {
			t.Errorf("%s: contract %q, profile %q", subject, c, rt.Profile)
		}
	}
}
