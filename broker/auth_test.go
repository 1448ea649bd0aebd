package broker

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

// The attacks of an outsider who can reach a broker's overlay ports and
// knows everything public (addresses, link ids from GET /api/links, the
// protocol), but not the network's secret or a certificate naming the
// broker it claims to be.

// TestImpostorRefused sends, on tcp, ws and udp, the hello of the real
// peer of a link followed at once by a forged cost update taking the link
// down: the impostor is refused before any record is read, the real link
// stays up on its session, and nothing it said was applied.
func TestImpostorRefused(t *testing.T) {
	for _, tr := range []string{"tcp", "ws", "udp"} {
		t.Run(tr, func(t *testing.T) {
			n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks(tr)[:1]})
			n.waitRoutes()
			b := n.brokers["na.c1.b"]
			link := linkOf(t, b, "na.c1.a")
			ups := b.links[link.ID].ups.Load()
			before := b.Status()
			forged := appendLinkState(nil, &linkState{Origin: "na.c1.a", Unit: "na.c1", Ver: version{Epoch: math.MaxUint64, Seq: 1},
				Profiles: []string{"default"}, Links: []lsLink{{ID: link.ID, Peer: "na.c1.b", Up: false, Costs: []float64{math.Inf(1)}}}})
			for _, attempt := range []string{"no secret", "wrong secret"} {
				conn, err := transports.Dial(context.Background(), b.OverlayURLs()[0], transports.Config{})
				if err != nil {
					t.Fatal(err)
				}
				h := linkauth.Hello{Version: overlay.ProtoVersion, From: "na.c1.a", To: "na.c1.b", LinkID: link.ID, Epoch: math.MaxUint64}
				if attempt == "no secret" {
					conn.Send(linkauth.AppendHello(nil, h))
					conn.Send(forged)
					// The broker answers the hello with a challenge, then
					// closes the connection on the forged record.
					for {
						if _, err := conn.Receive(); err != nil {
							break
						}
					}
				} else {
					_, _, err := linkauth.Dial(conn, h, linkauth.Config{Version: overlay.ProtoVersion, Secret: []byte("a guess at the network secret")})
					if !errors.Is(err, linkauth.ErrRefused) || !strings.Contains(err.Error(), "secret") {
						t.Fatalf("wrong secret: %v", err)
					}
				}
				conn.Close()
			}
			waitFor(t, "the refusals to be counted", 5*time.Second, func() bool { return b.Status().RefusedLinks >= before.RefusedLinks+2 })
			if got := b.links[link.ID].ups.Load(); got != ups || linkOf(t, b, "na.c1.a").State != "up" {
				t.Fatalf("the real link was replaced or taken down: ups %d -> %d, state %s", ups, got, linkOf(t, b, "na.c1.a").State)
			}
			b.mu.Lock()
			ls := b.lsdb[lsKey{"na.c1.a", "na.c1"}]
			b.mu.Unlock()
			if ls == nil || ls.Ver.Epoch == math.MaxUint64 {
				t.Fatalf("the forged cost update was applied: %+v", ls)
			}
			if s := b.Status(); s.BadUpdates != before.BadUpdates {
				t.Fatalf("a record of the impostor was read: bad updates %d -> %d", before.BadUpdates, s.BadUpdates)
			}
		})
	}
}

// TestCertificateOfAnotherBroker plays a broker of the network, c, whose
// certificate comes from the network's CA, dialing b's tls listener: as
// a (whose link it wants) it is refused for the certificate, and as itself
// for not being the link's peer.
func TestCertificateOfAnotherBroker(t *testing.T) {
	ca := testutil.NewTestCA(t, t.TempDir())
	tlsFor := func(addr string) transports.Config {
		cert, key := ca.Issue(t, addr, addr)
		tc, err := transports.LoadTLSConfig(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		return transports.Config{TLS: tc}
	}
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("tls")[:1], tweak: func(c *Config) {
		c.Secret = "" // tls links need none
		c.Transport.TLS = tlsFor(c.Address).TLS
	}})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	link := linkOf(t, b, "na.c1.a")
	stolen := tlsFor("na.c1.c")
	for _, tc := range []struct{ as, want string }{
		{"na.c1.a", "does not name na.c1.a"},
		{"na.c1.c", "not na.c1.c"},
	} {
		conn, err := transports.Dial(context.Background(), b.OverlayURLs()[0], stolen)
		if err != nil {
			t.Fatalf("the tls handshake itself should pass with a certificate of the CA: %v", err)
		}
		_, _, err = linkauth.Dial(conn, linkauth.Hello{Version: overlay.ProtoVersion, From: tc.as, To: "na.c1.b", LinkID: link.ID}, linkauth.Config{Version: overlay.ProtoVersion})
		conn.Close()
		if !errors.Is(err, linkauth.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("as %s: %v, want a refusal with %q", tc.as, err, tc.want)
		}
	}
	if l := linkOf(t, b, "na.c1.a"); l.State != "up" || b.links[link.ID].ups.Load() != 1 {
		t.Fatalf("the real link was disturbed: %+v", l)
	}
}

// withInsider starts brokers a and b, joined by a link, and gives b a
// link to a broker z that the test plays: a broker of the network, which
// holds its secret. It returns the network, b, and z's end of its link.
func withInsider(t *testing.T) (*testNet, *Broker, transports.Conn) {
	const zid = "00000000-0000-4000-8000-00000000f0f0"
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("tcp")[:1], tweak: func(c *Config) {
		if c.Address == "na.c1.b" {
			c.Links = append(c.Links, LinkConfig{ID: zid, Peer: "na.c1.z", Transport: "tcp"})
		}
	}})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	return n, b, dialAs(t, b.OverlayURLs()[0], "na.c1.z", "na.c1.b", zid)
}

// TestForgedSequenceNumber: a broker of the network (it holds the secret)
// sends b a message that claims to come from a with the highest sequence
// number there is. Dedup is per session, so a's own messages, which reach
// b over its own link, still get through.
func TestForgedSequenceNumber(t *testing.T) {
	n, b, z := withInsider(t)
	ch := collect(t, n.connect("na.c1.b"), "pay.>", "")
	n.waitInterest("na.c1.a", "pay.>", "na.c1.b")
	forged := &overlay.Message{Origin: []byte("na.c1.a"), Seq: math.MaxUint64 - 1, Subject: []byte("pay.forged"), Data: []byte("x")}
	if _, err := z.Send(overlay.AppendMsg(nil, forged, 8, []overlay.Dest{{Broker: []byte("na.c1.b")}})); err != nil {
		t.Fatal(err)
	}
	if m := expectMsg(t, ch, 5*time.Second); m.Subject != "pay.forged" {
		t.Fatalf("got %s", m.Subject)
	}
	pub := n.connect("na.c1.a")
	for i := range 3 {
		pub.Publish("pay.real", []byte{byte(i)})
		if m := expectMsg(t, ch, 5*time.Second); m.Subject != "pay.real" || m.Data[0] != byte(i) {
			t.Fatalf("got %s %v", m.Subject, m.Data)
		}
	}
	if d := b.Status().Duplicates; d != 0 {
		t.Fatalf("%d of a's messages taken for duplicates", d)
	}
}

// TestEpochFromTheFuture: a broker of the network relays a cost update and
// an interest update of a with an epoch no clock can have; both are
// refused and counted, and a's own updates keep applying.
func TestEpochFromTheFuture(t *testing.T) {
	n, b, z := withInsider(t)
	ab := linkOf(t, b, "na.c1.a").ID
	before := b.Status()
	future := version{Epoch: math.MaxUint64 - 1, Seq: 1}
	z.Send(appendLinkState(nil, &linkState{Origin: "na.c1.a", Unit: "na.c1", Ver: future, Profiles: []string{"default"},
		Links: []lsLink{{ID: ab, Peer: "na.c1.b", Up: false, Costs: []float64{math.Inf(1)}}}}))
	z.Send(appendInterest(nil, &interestUpdate{Origin: "na.c1.a", Ver: future, Flags: interestSnapshot | interestFirst | interestLast}))
	waitFor(t, "the updates to be refused", 5*time.Second, func() bool {
		s := b.Status()
		return s.BadUpdates > before.BadUpdates && s.BadInterest > before.BadInterest
	})
	ch := collect(t, n.connect("na.c1.a"), "still.here", "")
	n.waitInterest("na.c1.b", "still.here", "na.c1.a")
	n.connect("na.c1.b").Publish("still.here", []byte("x"))
	expectMsg(t, ch, 5*time.Second)
}

// TestUnauthenticatedOnlyOnLoopback: without a network secret a broker
// refuses to start with a tcp, udp or ws listener or link off loopback,
// and says why; with one, or on loopback, or over tls, it starts.
func TestUnauthenticatedOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		listen string
		dial   string
		want   string
	}{
		{"loopback", "", "tcp://127.0.0.1:7000", "udp://localhost:7001", ""},
		{"exposed listener", "", "tcp://0.0.0.0:7000", "", "listener 0.0.0.0:7000 is not a loopback address"},
		{"exposed link", "", "", "ws://10.1.2.3:7001/overlay", "dials 10.1.2.3:7001 is not a loopback address"},
		{"tls needs no secret", "", "tls://0.0.0.0:7000", "", ""},
		{"with a secret", testSecret, "tcp://0.0.0.0:7000", "udp://10.1.2.3:7001", ""},
		{"short secret", "s3cret", "", "", "the network secret has 6 bytes; it needs at least 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Address: "na.c1.a", Client: "127.0.0.1:0", Secret: tt.secret}
			if tt.listen != "" {
				cfg.Listen = []string{tt.listen}
			}
			if tt.dial != "" {
				cfg.Links = []LinkConfig{{ID: "l1", Peer: "na.c1.b", Transport: "tcp", Dial: tt.dial}}
			}
			_, err := New(cfg)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{Address: "na.c1.a", Client: "127.0.0.1:0", Leaf: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "leaf token") {
		t.Fatalf("a leaf port without a token: %v", err)
	}
}
