package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

// linkEmulation gives each link (by "a-b") its own emulated conditions.
func linkEmulation(byLink map[string]transports.Emulation) func(*Config) {
	return func(c *Config) {
		fastProbes(c)
		c.Routing.Check = 100 * time.Millisecond
		c.Routing.HoldDown = 200 * time.Millisecond
		for i, l := range c.Links {
			for k, e := range byLink {
				a, b, _ := strings.Cut(k, "-")
				if (c.Address == a && l.Peer == b) || (c.Address == b && l.Peer == a) {
					e := e
					c.Links[i].Emulation = &e
				}
			}
		}
	}
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// pathOf returns the path from broker b to dst on a profile, as a string.
func pathOf(b *Broker, profile, dst string) (string, float64) {
	routes, _ := b.RoutesFor(profile)
	for _, r := range routes {
		if r.Destination == dst {
			return strings.Join(r.Path, " "), r.Cost
		}
	}
	return "", math.Inf(1)
}

// waitPath waits until b's route to dst is want, priced from measurements
// (a link not yet measured costs as if its latency were a second).
func waitPath(t testing.TB, b *Broker, profile, dst, want string) float64 {
	t.Helper()
	var got string
	var cost float64
	waitFor(t, fmt.Sprintf("%s's %s route to %s to be %s", b.Address(), profile, dst, want), 20*time.Second, func() bool {
		got, cost = pathOf(b, profile, dst)
		return got == want && cost < unmeasuredLatencyMs
	})
	return cost
}

// TestAcceptanceTopology is the four-broker network of the study this
// system descends from: broker 1 far away (San Diego), 2, 3 and 4 in one
// lab. Emulated delays make the costs 1-2 44.5, 2-4 1.6, 1-3 41.2, 4-3 1.4
// under the default profile. Traffic from 2 to 3 takes 2-4-3 (cost 3.0),
// not 2-1-3 (85.7); when 4-3 fails it takes 2-1-3, and it moves back when
// 4-3 recovers.
func TestAcceptanceTopology(t *testing.T) {
	b1, b2, b3, b4 := "lab.x.b1", "lab.x.b2", "lab.x.b3", "lab.x.b4"
	n := newTestNet(t, netSpec{
		brokers: []string{b1, b2, b3, b4},
		links:   []string{b1 + "-" + b2 + ":udp", b2 + "-" + b4 + ":udp", b1 + "-" + b3 + ":udp", b4 + "-" + b3 + ":udp"},
		tweak: linkEmulation(map[string]transports.Emulation{
			b1 + "-" + b2: {Delay: ms(44.5)}, b2 + "-" + b4: {Delay: ms(1.6)},
			b1 + "-" + b3: {Delay: ms(41.2)}, b4 + "-" + b3: {Delay: ms(1.4)},
		}),
	})
	two := n.brokers[b2]
	cost := waitPath(t, two, "default", b3, b2+" "+b4+" "+b3)
	// The emulated delays set a floor; a busy machine adds its own delay on
	// top of them, so the ceiling is generous (still far below 2-1-3).
	if cost < 2.7 || cost > 8 {
		t.Errorf("cost of 2-4-3 is %.2f, want 3.0 (2.7-8 on a busy machine)", cost)
	}
	ch := collect(t, n.connect(b3), "lab.data", "")
	n.waitInterest(b2, "lab.data", b3)
	pub := n.connect(b2)
	viaLink := func(peer string) uint64 { return linkOf(t, two, peer).MsgsSent }
	send := func() {
		before1, before4 := viaLink(b1), viaLink(b4)
		pub.Publish("lab.data", []byte("x"))
		expectMsg(t, ch, 5*time.Second)
		t.Logf("sent via 1: %d, via 4: %d", viaLink(b1)-before1, viaLink(b4)-before4)
	}
	send()
	if linkOf(t, two, b4).MsgsSent == 0 {
		t.Fatal("the message did not go through 4")
	}

	fortyThree := linkOf(t, n.brokers[b4], b3).ID
	if _, err := n.brokers[b4].SetEmulation(fortyThree, transports.EmulationSpec{Down: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	cost = waitPath(t, two, "default", b3, b2+" "+b1+" "+b3)
	if cost < 84.5 || cost > 95 {
		t.Errorf("cost of 2-1-3 is %.2f, want 85.7 (84.5-95 on a busy machine)", cost)
	}
	sentVia1 := linkOf(t, two, b1).MsgsSent
	send()
	if linkOf(t, two, b1).MsgsSent == sentVia1 {
		t.Fatal("the message did not go through 1")
	}

	if _, err := n.brokers[b4].SetEmulation(fortyThree, transports.EmulationSpec{Down: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	waitPath(t, two, "default", b3, b2+" "+b4+" "+b3)
}

func ptr[T any](v T) *T { return &v }

// TestProfilesAndDetours: the direct link A-C is quick but jittery, the
// detour A-B-C slower but steady. The default profile takes the direct
// link; media subjects, on a jitter-heavy profile, take the detour. When
// the detour is made slow, media traffic moves back to the direct link.
func TestProfilesAndDetours(t *testing.T) {
	tweak := linkEmulation(map[string]transports.Emulation{
		"x.a-x.c": {Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond},
		"x.a-x.b": {Delay: 12 * time.Millisecond},
		"x.b-x.c": {Delay: 12 * time.Millisecond},
	})
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.c"},
		links:   []string{"x.a-x.b:udp", "x.b-x.c:udp", "x.a-x.c:udp"},
		tweak: func(c *Config) {
			tweak(c)
			c.Routing.Profiles = []router.Profile{{Name: "media", Overall: 1, Latency: 0.5, Loss: 20, Jitter: 10}}
			c.Routing.Subjects = []SubjectProfile{{Subject: "media.>", Profile: "media"}}
		},
	})
	a := n.brokers["x.a"]
	waitPath(t, a, "default", "x.c", "x.a x.c")
	waitPath(t, a, "media", "x.c", "x.a x.b x.c")

	media := collect(t, n.connect("x.c"), "media.>", "")
	other := collect(t, n.connect("x.c"), "files.>", "")
	n.waitInterest("x.a", "media.>", "x.c")
	n.waitInterest("x.a", "files.>", "x.c")
	pub := n.connect("x.a")
	viaB, direct := linkOf(t, a, "x.b").MsgsSent, linkOf(t, a, "x.c").MsgsSent
	pub.Publish("media.video.1", []byte("frame"))
	expectMsg(t, media, 5*time.Second)
	if linkOf(t, a, "x.b").MsgsSent != viaB+1 || linkOf(t, a, "x.c").MsgsSent != direct {
		t.Fatal("media did not take the detour")
	}
	pub.Publish("files.big", []byte("chunk"))
	expectMsg(t, other, 5*time.Second)
	if linkOf(t, a, "x.c").MsgsSent != direct+1 {
		t.Fatal("files did not take the direct link")
	}

	// Make the detour slow: media comes back to the direct link.
	ab := linkOf(t, a, "x.b").ID
	if _, err := a.SetEmulation(ab, transports.EmulationSpec{Delay: ptr(transports.Quantity("400ms"))}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitPath(t, a, "media", "x.c", "x.a x.c")
	t.Logf("media moved back to the direct link %v after the detour slowed", time.Since(start))

	// Both profiles' tables over HTTP, and one of them alone.
	var routes []RouteInfo
	getJSON(t, "http://"+a.HTTPAddr()+"/api/routes?profile=media", &routes)
	for _, r := range routes {
		if r.Profile != "media" {
			t.Fatalf("route %+v in the media table", r)
		}
	}
	resp, err := http.Get("http://" + a.HTTPAddr() + "/api/routes?profile=nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown profile: %d", resp.StatusCode)
	}
}

// TestFailoverKeepsDelivering kills the link a steady stream uses, by an
// outage or by killing the broker in the middle, and checks that the
// subscriber keeps receiving over the other path.
func TestFailoverKeepsDelivering(t *testing.T) {
	for _, kill := range []string{"outage", "broker"} {
		t.Run(kill, func(t *testing.T) { failover(t, kill) })
	}
}

func failover(t *testing.T, kill string) {
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.c", "x.d"},
		links:   []string{"x.a-x.b:udp", "x.b-x.d:udp", "x.a-x.c:udp", "x.c-x.d:udp"},
		tweak: linkEmulation(map[string]transports.Emulation{
			"x.a-x.b": {Delay: 5 * time.Millisecond}, "x.b-x.d": {Delay: 5 * time.Millisecond},
			"x.a-x.c": {Delay: 20 * time.Millisecond}, "x.c-x.d": {Delay: 20 * time.Millisecond},
		}),
	})
	a := n.brokers["x.a"]
	waitPath(t, a, "default", "x.d", "x.a x.b x.d")
	var last time.Time
	gaps := make(chan time.Duration, 10000)
	sub := n.connect("x.d")
	sub.Subscribe("stream", func(*nats.Msg) {
		now := time.Now()
		if !last.IsZero() {
			gaps <- now.Sub(last)
		}
		last = now
	})
	sub.Flush()
	n.waitInterest("x.a", "stream", "x.d")
	pub := n.connect("x.a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pub.Publish("stream", nil)
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	for len(gaps) > 0 {
		<-gaps
	}
	if kill == "outage" {
		a.SetEmulation(linkOf(t, a, "x.b").ID, transports.EmulationSpec{Down: ptr(true)})
	} else {
		n.brokers["x.b"].Close()
	}
	waitPath(t, a, "default", "x.d", "x.a x.c x.d")
	time.Sleep(500 * time.Millisecond)
	cancel()
	var worst time.Duration
	for len(gaps) > 0 {
		worst = max(worst, <-gaps)
	}
	t.Logf("longest gap in delivery: %v", worst)
	if worst > 3*time.Second {
		t.Fatalf("delivery stopped for %v", worst)
	}
}

// TestCostUpdatesOnTheTopic subscribes to a unit's cost subject with an
// ordinary client and reads the updates brokers send.
func TestCostUpdatesOnTheTopic(t *testing.T) {
	// An update that comes before the broker has learnt of the
	// subscriber is not shown to it; announcements every second make up
	// for that on a busy machine.
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp"), tweak: func(c *Config) {
		fastProbes(c)
		c.Routing.Refresh = time.Second
	}})
	ch := collect(t, n.connect("na.c1.a"), netapi.CostSubject("na.c1"), "")
	n.waitRoutes()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-ch:
			var u netapi.CostUpdate
			if err := json.Unmarshal(m.Data, &u); err != nil {
				t.Fatal(err)
			}
			if u.Unit != "na.c1" || u.Seq == 0 || len(u.Links) == 0 || u.Links[0].ID == "" {
				t.Fatalf("update %+v", u)
			}
			if u.Origin == "na.c1.c" && u.Links[0].Up && u.Links[0].Cost["default"] > 0 {
				return
			}
		case <-deadline:
			t.Fatal("no cost update from na.c1.c")
		}
	}
}

// TestBadCostUpdates sends a broker cost updates it must refuse: about a
// link the sender does not own, with negative and NaN costs, and stale.
func TestBadCostUpdates(t *testing.T) {
	const zid = "00000000-0000-4000-8000-0000000000ff"
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("tcp")[:1], tweak: func(c *Config) {
		fastProbes(c)
		if c.Address == "na.c1.b" {
			c.Links = append(c.Links, LinkConfig{ID: zid, Peer: "na.c1.z", Transport: "tcp"})
		}
	}})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	ab := linkOf(t, b, "na.c1.a").ID
	conn := dialAs(t, b.OverlayURLs()[0], "na.c1.z", "na.c1.b", zid)
	update := func(seq uint64, id, peer string, cost float64) []byte {
		return appendLinkState(nil, &linkState{Origin: "na.c1.z", Unit: "na.c1", Ver: version{Epoch: 1, Seq: seq}, Profiles: []string{"default"},
			Links: []lsLink{{ID: id, Peer: peer, Up: true, Costs: []float64{cost}}}})
	}
	before := b.Status()
	conn.Send(update(1, ab, "na.c1.a", 1))           // a link z does not own
	conn.Send(update(2, zid, "na.c1.b", -5))         // a negative cost
	conn.Send(update(3, zid, "na.c1.b", math.NaN())) // NaN
	conn.Send(update(5, zid, "na.c1.b", 2))          // good
	conn.Send(update(4, zid, "na.c1.b", 2))          // older than what is held
	waitFor(t, "the updates to be judged", 5*time.Second, func() bool {
		s := b.Status()
		return s.BadUpdates-before.BadUpdates >= 3 && s.StaleUpdates-before.StaleUpdates >= 1
	})
	if r, _ := pathOf(n.brokers["na.c1.b"], "default", "na.c1.a"); r != "na.c1.b na.c1.a" {
		t.Fatalf("a forged update changed the route to a: %q", r)
	}
}
