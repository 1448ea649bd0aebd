package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPAPI(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	collect(t, n.connect("na.c1.c"), "api.>", "")
	n.waitInterest("na.c1.a", "api.>", "na.c1.c")
	base := "http://" + n.brokers["na.c1.a"].HTTPAddr()

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}

	var links []map[string]any
	getJSON(t, base+"/api/links", &links)
	if len(links) != 1 {
		t.Fatalf("links: %v", links)
	}
	for _, k := range []string{"id", "peer", "transport", "state", "dropped"} {
		if _, ok := links[0][k]; !ok {
			t.Fatalf("link lacks %q: %v", k, links[0])
		}
	}
	if links[0]["peer"] != "na.c1.b" || links[0]["state"] != "up" || links[0]["transport"] != "tcp" {
		t.Fatalf("link: %v", links[0])
	}

	var routes []struct {
		Destination string   `json:"destination"`
		NextHop     string   `json:"next_hop"`
		Cost        float64  `json:"cost"`
		Path        []string `json:"path"`
	}
	getJSON(t, base+"/api/routes", &routes)
	if len(routes) != 2 || routes[1].Destination != "na.c1.c" || routes[1].NextHop != "na.c1.b" || !(routes[1].Cost > routes[0].Cost) ||
		strings.Join(routes[1].Path, ",") != "na.c1.a,na.c1.b,na.c1.c" {
		t.Fatalf("routes: %+v", routes)
	}

	var interest []struct {
		Subject string   `json:"subject"`
		Brokers []string `json:"brokers"`
	}
	getJSON(t, base+"/api/interest", &interest)
	for len(interest) > 0 && strings.HasPrefix(interest[0].Subject, netapi.Reserved) {
		interest = interest[1:] // the brokers' own control subjects
	}
	if len(interest) != 1 || interest[0].Subject != "api.>" || strings.Join(interest[0].Brokers, ",") != "na.c1.c" {
		t.Fatalf("interest: %+v", interest)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	sink := &testutil.LogSink{}
	n := newTestNet(t, netSpec{
		brokers: chain[:2], links: chainLinks("tcp")[:1],
		tweak: func(c *Config) { c.Logger = slog.New(sink) },
	})
	n.waitRoutes()
	target := n.brokers["na.c1.b"].OverlayURLs()[0]
	linkID := n.brokers["na.c1.b"].Links()[0].ID
	tests := []struct {
		name   string
		h      linkauth.Hello
		reason string
	}{
		{"version", linkauth.Hello{Version: overlay.ProtoVersion + 1, From: "na.c1.a", To: "na.c1.b", LinkID: linkID}, "protocol version mismatch"},
		{"wrong broker", linkauth.Hello{Version: overlay.ProtoVersion, From: "na.c1.a", To: "na.c1.x", LinkID: linkID}, "wrong broker"},
		{"unknown link", linkauth.Hello{Version: overlay.ProtoVersion, From: "na.c1.a", To: "na.c1.b", LinkID: "nope"}, "has no link nope"},
		{"impostor", linkauth.Hello{Version: overlay.ProtoVersion, From: "na.c1.z", To: "na.c1.b", LinkID: linkID}, "not na.c1.z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := transports.Dial(context.Background(), target, transports.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _, err = linkauth.Dial(conn, tc.h, linkauth.Config{Version: tc.h.Version, Secret: []byte(testSecret)})
			if !errors.Is(err, linkauth.ErrRefused) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("dial: %v, want a refusal with %q", err, tc.reason)
			}
			waitFor(t, "the refusal in the acceptor's log", 2*time.Second, func() bool {
				return sink.Contains("ERROR refused inbound link", tc.reason)
			})
		})
	}
	// The dialer's side: a broker that answers with another version.
	fake, err := transports.Listen("tcp://127.0.0.1:0", transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	go func() {
		c, err := fake.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		linkauth.Accept(c, linkauth.Config{Version: overlay.ProtoVersion + 1, Secret: []byte(testSecret)}, func(h linkauth.Hello) (linkauth.Hello, string) {
			return linkauth.Hello{Version: overlay.ProtoVersion + 1, From: h.To, To: h.From, LinkID: h.LinkID}, ""
		})
	}()
	dsink := &testutil.LogSink{}
	b, err := New(Config{Address: "na.c1.d", Secret: testSecret, Client: "127.0.0.1:0", Logger: slog.New(dsink),
		Links: []LinkConfig{{ID: "l-d", Peer: "na.c1.e", Transport: "tcp", Dial: fake.URL()}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitFor(t, "the dialer to report the mismatch", 5*time.Second, func() bool {
		return dsink.Contains("ERROR", "protocol version mismatch")
	})
}

func TestGarbageNeverCrashes(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp"), tweak: func(c *Config) {
		if c.Address == "na.c1.b" {
			c.Leaf, c.LeafToken = "127.0.0.1:0", "the leaf token"
		}
	}})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	overlayAddr := strings.TrimPrefix(b.OverlayURLs()[0], "tcp://")
	client := strings.TrimPrefix(b.ClientURL(), "nats://")
	leaf := strings.TrimPrefix(b.LeafURL(), "nats://")
	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		bytes.Repeat([]byte{0xff}, 4096),
		{0, 0, 0, 12, 9, 0, 0, 0, 200, 1, 2, 3, 4, 5, 6, 7},
		[]byte("LMSG a.b 5\r\nhello\r\nLS+ \r\n"),
		[]byte("CONNECT {}\r\nLMSG foo 99999999\r\n"),
		[]byte("CONNECT {}\r\nHMSG foo 10 5\r\nxxxxx\r\n"),
	}
	for _, addr := range []string{overlayAddr, client, leaf} {
		for _, g := range garbage {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(g)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, c) // the broker closes the connection
			c.Close()
		}
	}
	// A well-formed frame with a malformed record in place of the
	// handshake: refused and closed.
	conn, err := transports.Dial(context.Background(), b.OverlayURLs()[0], transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	conn.Send([]byte{byte(overlay.RecMsg), 0, 0, 0, 3, 1, 2, 3})
	if _, err := conn.Receive(); err == nil {
		t.Fatal("connection with garbage stayed open")
	}
	conn.Close()
	// The broker still works end to end.
	ch := collect(t, n.connect("na.c1.c"), "after.garbage", "")
	n.waitInterest("na.c1.a", "after.garbage", "na.c1.c")
	n.connect("na.c1.a").Publish("after.garbage", []byte("ok"))
	expectMsg(t, ch, 5*time.Second)
	if s := b.Status(); s.RefusedLinks == 0 {
		t.Fatal("refused connections not counted")
	}
}

func TestLargeMessages(t *testing.T) {
	for _, tr := range []string{"tcp", "udp"} {
		t.Run(tr, func(t *testing.T) {
			n := newTestNet(t, netSpec{brokers: chain, links: chainLinks(tr)})
			n.waitRoutes()
			ch := collect(t, n.connect("na.c1.c"), "big", "")
			n.waitInterest("na.c1.a", "big", "na.c1.c")
			pub := n.connect("na.c1.a")
			max := int(pub.MaxPayload())
			if max != n.brokers["na.c1.a"].cfg.MaxPayload {
				t.Fatalf("clients see max payload %d", max)
			}
			for _, size := range []int{0, 1500, 70000, max} {
				data := bytes.Repeat([]byte{byte(size)}, size)
				if err := pub.Publish("big", data); err != nil {
					t.Fatal(err)
				}
				m := expectMsg(t, ch, 5*time.Second)
				if !bytes.Equal(m.Data, data) {
					t.Fatalf("%d-byte message arrived as %d bytes", size, len(m.Data))
				}
			}
			if err := pub.Publish("big", make([]byte, max+1)); err == nil {
				t.Fatal("message over the limit accepted")
			}
		})
	}
}

// TestOverloadIsCounted pushes an unthrottled publisher through a link whose
// send queue is tiny: what cannot be sent is dropped, counted per link, shown
// in /api/links and logged; the broker's own leaf connection survives.
func TestOverloadIsCounted(t *testing.T) {
	sink := &testutil.LogSink{}
	n := newTestNet(t, netSpec{
		brokers: chain, links: chainLinks("tcp"),
		tweak: func(c *Config) {
			c.Logger = slog.New(sink)
			if c.Address == "na.c1.a" {
				c.LinkQueueBytes = 64 << 10
			}
		},
	})
	n.waitRoutes()
	received := 0
	var mu sync.Mutex
	sub := n.connect("na.c1.c")
	sub.Subscribe("flood", func(*nats.Msg) { mu.Lock(); received++; mu.Unlock() })
	sub.Flush()
	n.waitInterest("na.c1.a", "flood", "na.c1.c")
	a := n.brokers["na.c1.a"]
	leavesBefore := a.Status().Leaves
	pub := n.connect("na.c1.a")
	payload := make([]byte, 512)
	const total = 200000
	for range total {
		pub.Publish("flood", payload)
	}
	pub.Flush()
	var dropped uint64
	waitFor(t, "drops to be counted", 10*time.Second, func() bool {
		dropped = a.Links()[0].Dropped
		return dropped > 0
	})
	waitFor(t, "the drop in the log", 5*time.Second, func() bool { return sink.Contains("message dropped", "send queue full") })
	// Every message is accounted for: delivered or counted as dropped.
	waitFor(t, "deliveries to settle", 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(received)+a.Links()[0].Dropped == total
	})
	var links []netapi.LinkInfo
	getJSON(t, "http://"+a.HTTPAddr()+"/api/links", &links)
	if links[0].Dropped == 0 || links[0].DroppedBytes == 0 {
		t.Fatalf("/api/links does not show the drops: %+v", links[0])
	}
	if after := a.Status().Leaves; strings.Join(after, ",") != strings.Join(leavesBefore, ",") || sink.Contains("Slow Consumer") {
		t.Fatalf("leaf connection was cut: %v -> %v", leavesBefore, after)
	}
}
