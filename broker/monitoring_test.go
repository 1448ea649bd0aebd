package broker

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

// fastProbes measures links every 50 ms, so that tests gather samples and
// see failures quickly.
func fastProbes(c *Config) {
	c.Monitor = monitor.DefaultLocalConfig()
	c.Monitor.Interval = 50 * time.Millisecond
	c.Monitor.AdaptiveMin = 50 * time.Millisecond
	c.Monitor.ProbeTimeout = 400 * time.Millisecond
}

// emulateAll gives every link of the network the same emulated conditions.
func emulateAll(e transports.Emulation) func(*Config) {
	return func(c *Config) {
		fastProbes(c)
		for i := range c.Links {
			c.Links[i].Emulation = &e
		}
	}
}

func linkOf(t testing.TB, b *Broker, peer string) netapi.LinkInfo {
	t.Helper()
	for _, l := range b.Links() {
		if l.Peer == peer {
			return l
		}
	}
	t.Fatalf("%s has no link to %s", b.Address(), peer)
	return netapi.LinkInfo{}
}

func TestEmulatedLinkIsMeasured(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			e := transports.Emulation{Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond}
			if tr == "udp" {
				e.Loss = 0.1
			}
			n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks(tr)[:1], tweak: emulateAll(e)})
			a := n.brokers["na.c1.a"]
			waitFor(t, "100 samples", 20*time.Second, func() bool { return linkOf(t, a, "na.c1.b").Metrics.Samples >= 100 })
			m := linkOf(t, a, "na.c1.b").Metrics
			// The emulated delay is a floor; a busy machine (CI, the race
			// detector) adds its own delay and jitter on top, so the
			// ceilings are looser than the floors.
			if m.Latency.Mean < 19 || m.Latency.Mean > 24 {
				t.Errorf("mean latency %.2f ms, emulated 20 ms (19-24 on a busy machine)", m.Latency.Mean)
			}
			if m.RTT < 38 || m.RTT > 48 {
				t.Errorf("rtt %.2f ms, emulated 40 ms (38-48 on a busy machine)", m.RTT)
			}
			// Uniform jitter of half-width 2 ms: E|X1-X2| = 4/3 ms.
			if tr == "udp" && (m.Jitter < 0.7 || m.Jitter > 3) {
				t.Errorf("jitter %.2f ms, emulated 1.33 ms", m.Jitter)
			}
			wantLoss := 0.0
			if tr == "udp" {
				wantLoss = 0.1 // each way
			}
			if math.Abs(m.Loss-wantLoss) > 0.07 {
				t.Errorf("loss %.3f, want about %.3f", m.Loss, wantLoss)
			}
			if m.State != "up" || m.Interval != 50 {
				t.Errorf("state %s interval %v", m.State, m.Interval)
			}
			l := linkOf(t, a, "na.c1.b")
			if l.Emulation == nil || l.Emulation.String() == "-" {
				t.Errorf("emulation not shown: %+v", l.Emulation)
			}
		})
	}
}

func putJSON(t testing.TB, url, token string, body any) (int, []byte) {
	t.Helper()
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// TestOutageIsDetectedAndRerouted takes a link of a triangle down with the
// emulation controls and checks that both ends declare it down quickly,
// that traffic moves to the detour, and that the link comes back.
func TestOutageIsDetectedAndRerouted(t *testing.T) {
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.c"},
		links:   []string{"x.a-x.b:udp", "x.b-x.c:tcp", "x.a-x.c:tcp"},
		tweak: func(c *Config) {
			emulateAll(transports.Emulation{Delay: 5 * time.Millisecond})(c)
			c.AdminToken = "tok"
		},
	})
	n.waitRoutes()
	a, b := n.brokers["x.a"], n.brokers["x.b"]
	ab := linkOf(t, a, "x.b").ID
	ch := collect(t, n.connect("x.b"), "flow", "")
	n.waitInterest("x.a", "flow", "x.b")
	url := "http://" + a.HTTPAddr() + "/api/links/" + ab + "/emulation"
	if code, _ := putJSON(t, url, "", map[string]any{"down": true}); code != http.StatusUnauthorized {
		t.Fatalf("PUT without the token: %d", code)
	}
	start := time.Now()
	if code, body := putJSON(t, url, "tok", map[string]any{"down": true}); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	waitFor(t, "both ends to declare the link down", 5*time.Second, func() bool {
		return linkOf(t, a, "x.b").State == "down" && linkOf(t, b, "x.a").State == "down"
	})
	detected := time.Since(start)
	t.Logf("outage detected after %v", detected)
	if detected > 3*time.Second {
		t.Errorf("detection took %v", detected)
	}
	waitFor(t, "a's route to b through c", 5*time.Second, func() bool {
		r := routeTo(a, "x.b")
		return r != nil && r.NextHop == "x.c"
	})
	pub := n.connect("x.a")
	pub.Publish("flow", []byte("detour"))
	if m := expectMsg(t, ch, 5*time.Second); string(m.Data) != "detour" {
		t.Fatalf("got %q", m.Data)
	}
	if code, body := putJSON(t, url, "tok", map[string]any{"down": false}); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	waitFor(t, "the link back up", 5*time.Second, func() bool {
		r := routeTo(a, "x.b")
		return linkOf(t, a, "x.b").State == "up" && r != nil && r.NextHop == "x.b"
	})
}

func routeTo(b *Broker, dst string) *RouteInfo {
	for _, r := range b.Routes() {
		if r.Destination == dst {
			return &r
		}
	}
	return nil
}

func TestMonitoringControls(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp"), tweak: func(c *Config) {
		fastProbes(c)
		c.AdminToken = "tok"
	}})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	base := "http://" + b.HTTPAddr()
	toC := linkOf(t, b, "na.c1.c").ID

	code, body := putJSON(t, base+"/api/links/"+toC+"/monitoring", "tok", map[string]any{"interval": "250ms"})
	if code != 200 || linkOf(t, b, "na.c1.c").Metrics.Interval != 250 || linkOf(t, b, "na.c1.a").Metrics.Interval != 50 {
		t.Fatalf("interval of one link: %d %s", code, body)
	}
	// A beginning of an id names its link when it is unique, and is
	// refused with the links it begins otherwise. The test's ids differ
	// in their last character alone.
	toA := linkOf(t, b, "na.c1.a").ID
	code, body = putJSON(t, base+"/api/links/"+toC[:len(toC)-1]+"/monitoring", "tok", map[string]any{"interval": "200ms"})
	if code != 400 || !strings.Contains(string(body), "ambiguous link id") || !strings.Contains(string(body), toA) || !strings.Contains(string(body), toC) {
		t.Fatalf("an id's beginning that two links share: %d %s", code, body)
	}
	if code, body := putJSON(t, base+"/api/links/"+toC[:len(toC)-1]+"/emulation", "tok", map[string]any{"delay": "1ms"}); code != 400 {
		t.Fatalf("emulation of a link by an ambiguous beginning: %d %s", code, body)
	}
	if code, _ := putJSON(t, base+"/api/monitoring", "tok", map[string]any{"enabled": false}); code != 200 {
		t.Fatalf("disable all: %d", code)
	}
	for _, l := range b.Links() {
		if l.Metrics.State != "disabled" || l.State != "up" {
			t.Fatalf("after disabling: %+v", l)
		}
	}
	sent := linkOf(t, b, "na.c1.a").Metrics.ProbesSent
	time.Sleep(300 * time.Millisecond)
	if got := linkOf(t, b, "na.c1.a").Metrics.ProbesSent; got != sent {
		t.Fatalf("a disabled link sent %d probes", got-sent)
	}
	putJSON(t, base+"/api/monitoring", "tok", map[string]any{"enabled": true, "adaptive": true})
	waitFor(t, "measurement to resume", 5*time.Second, func() bool { return linkOf(t, b, "na.c1.a").Metrics.ProbesSent > sent })

	for _, tc := range []struct {
		path string
		body any
		code int
		want string
	}{
		{"/api/links/" + toC + "/monitoring", map[string]any{"interval": "5ms"}, 400, "outside"},
		{"/api/links/" + toC + "/monitoring", map[string]any{"interval": "2m"}, 400, "outside"},
		{"/api/links/" + toC + "/monitoring", map[string]any{"interval": "soon"}, 400, "duration"},
		{"/api/links/nope/monitoring", map[string]any{"enabled": true}, 404, "unknown link"},
		{"/api/links/" + toC + "/monitoring", map[string]any{"speed": 1}, 400, "unknown field"},
		{"/api/links/" + toC + "/emulation", map[string]any{"loss": "300%"}, 400, "loss"},
	} {
		code, body := putJSON(t, base+tc.path, "tok", tc.body)
		if code != tc.code || !strings.Contains(string(body), tc.want) {
			t.Errorf("PUT %s %v: %d %s, want %d with %q", tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}
}

// TestControlMessages steers a broker over the network with control
// messages on $WL.ctl.<address>, and checks the answers.
func TestControlMessages(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp"), tweak: func(c *Config) {
		fastProbes(c)
		c.AdminToken = "tok"
	}})
	n.waitRoutes()
	c := n.brokers["na.c1.c"]
	n.waitInterest("na.c1.a", netapi.CtlSubject("na.c1.c"), "na.c1.c")
	admin := n.connect("na.c1.a", nats.UserInfo(netapi.AdminUser, "tok"))
	ask := func(req map[string]any) netapi.CtlReply {
		js, _ := json.Marshal(req)
		m, err := admin.Request(netapi.CtlSubject("na.c1.c"), js, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r netapi.CtlReply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	toB := linkOf(t, c, "na.c1.b").ID
	r := ask(map[string]any{"op": "monitoring", "link": toB, "interval": "250ms"})
	if !r.OK || r.Broker != "na.c1.c" || len(r.Links) != 1 || r.Links[0].Metrics.Interval != 250 {
		t.Fatalf("reply %+v", r)
	}
	r = ask(map[string]any{"op": "monitoring", "enabled": false})
	if !r.OK || linkOf(t, c, "na.c1.b").Metrics.State != "disabled" {
		t.Fatalf("disable: %+v", r)
	}
	for req, want := range map[string]string{
		`{"op":"monitoring","link":"nope","enabled":true}`: "unknown link",
		`{"op":"monitoring","interval":"1ms"}`:             "outside",
		`{"op":"explode"}`:                                 "unknown operation",
		`not json`:                                         "bad request",
	} {
		m, err := admin.Request(netapi.CtlSubject("na.c1.c"), []byte(req), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r netapi.CtlReply
		json.Unmarshal(m.Data, &r)
		if r.OK || !strings.Contains(r.Error, want) {
			t.Errorf("%s: reply %+v, want an error with %q", req, r, want)
		}
	}
}

func TestPrometheusMetrics(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("ws")[:1], tweak: fastProbes})
	a := n.brokers["na.c1.a"]
	waitFor(t, "samples", 10*time.Second, func() bool { return linkOf(t, a, "na.c1.b").Metrics.Samples >= 10 })
	resp, err := http.Get("http://" + a.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	id := linkOf(t, a, "na.c1.b").ID
	for _, name := range []string{"wayline_link_latency_seconds", "wayline_link_jitter_seconds", "wayline_link_loss_ratio",
		"wayline_link_state", "wayline_link_up", "wayline_link_probes_total"} {
		f, ok := families[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
		labels := map[string]string{}
		for _, lp := range f.Metric[0].Label {
			labels[lp.GetName()] = lp.GetValue()
		}
		if labels["link"] != id || labels["peer"] != "na.c1.b" || labels["transport"] != "ws" {
			t.Fatalf("%s labels %v", name, labels)
		}
	}
	h := families["wayline_link_latency_seconds"].Metric[0].Histogram
	if h.GetSampleCount() < 10 || len(h.Bucket) < 10 {
		t.Fatalf("latency histogram %v", h)
	}
}

// TestMalformedProbe sends a broker performance packets it cannot read:
// they are counted and dropped, and the link stays up.
func TestMalformedProbe(t *testing.T) {
	// B has a link to a broker z that never dials it; the test plays z.
	const id = "00000000-0000-4000-8000-00000000fa6e"
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("tcp")[:1], tweak: func(c *Config) {
		fastProbes(c)
		if c.Address == "na.c1.b" {
			c.Links = append(c.Links, LinkConfig{ID: id, Peer: "na.c1.z", Transport: "tcp"})
		}
	}})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	conn := dialAs(t, b.OverlayURLs()[0], "na.c1.z", "na.c1.b", id)
	// Garbage probes and a ping in one frame: the ping is still answered,
	// so the bad probes did not end the session.
	var frame []byte
	for _, garbage := range [][]byte{{}, {1, 2, 3}, bytes.Repeat([]byte{0xff}, 44), make([]byte, 44)} {
		frame = overlay.AppendRecord(frame, overlay.RecProbe, garbage)
	}
	frame = overlay.AppendU64Record(frame, overlay.RecPing, 42)
	if _, err := conn.Send(frame); err != nil {
		t.Fatal(err)
	}
	for pong := false; !pong; {
		f, err := conn.Receive()
		if err != nil {
			t.Fatalf("no pong: %v", err)
		}
		overlay.EachRecord(f.Data, func(typ overlay.RecordType, body []byte) error {
			if n, _ := overlay.DecodeU64Record(body); typ == overlay.RecPong && n == 42 {
				pong = true
			}
			return nil
		})
	}
	if got := b.Status().BadProbes; got < 4 {
		t.Fatalf("%d bad probes counted", got)
	}
	if l := linkOf(t, b, "na.c1.z"); l.State != "up" {
		t.Fatalf("link %+v", l)
	}
}
