package broker

import (
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The A-B-C chain over each transport, through a restart of its middle
// broker, and with an external leaf node.

// TestChainEveryTransport runs pub/sub, request/reply and queue groups
// across the A-B-C chain over each transport.
func TestChainEveryTransport(t *testing.T) {
	for _, tr := range []string{"tcp", "tls", "udp", "ws", "quic", "mem"} {
		t.Run(tr, func(t *testing.T) {
			spec := netSpec{brokers: chain, links: chainLinks(tr)}
			if tr == "tls" {
				spec.tweak = tlsTweak(t)
			}
			n := newTestNet(t, spec)
			n.waitRoutes()
			for _, l := range n.brokers["na.c1.b"].Links() {
				if l.Transport != tr || l.State != "up" {
					t.Fatalf("link %+v", l)
				}
			}
			// pub/sub with wildcards
			ch := collect(t, n.connect("na.c1.c"), "orders.>", "")
			// request/reply
			resp := n.connect("na.c1.c")
			resp.Subscribe("svc", func(m *nats.Msg) { m.Respond(m.Data) })
			resp.Flush()
			// queue group with members on all three brokers
			var q []chan *nats.Msg
			for _, a := range chain {
				q = append(q, collect(t, n.connect(a), "q.work", "workers"))
			}
			n.waitInterest("na.c1.a", "orders.>", "na.c1.c")
			n.waitInterest("na.c1.a", "svc", "na.c1.c")
			n.waitInterest("na.c1.c", "q.work", "na.c1.a")

			pub := n.connect("na.c1.a")
			pub.Publish("orders.eu.1", []byte("hello"))
			if m := expectMsg(t, ch, 5*time.Second); string(m.Data) != "hello" {
				t.Fatalf("got %q", m.Data)
			}
			req := n.connect("na.c1.a")
			if m, err := req.Request("svc", []byte("ping"), 3*time.Second); err != nil || string(m.Data) != "ping" {
				t.Fatalf("request: %v", err)
			}
			pubC := n.connect("na.c1.b")
			const total = 30
			for range total {
				pubC.Publish("q.work", nil)
			}
			pubC.Flush()
			waitFor(t, "queue deliveries", 5*time.Second, func() bool { return len(q[0])+len(q[1])+len(q[2]) >= total })
			time.Sleep(100 * time.Millisecond)
			if got := len(q[0]) + len(q[1]) + len(q[2]); got != total {
				t.Fatalf("%d queue deliveries for %d messages", got, total)
			}
		})
	}
}

func TestMiddleBrokerRestart(t *testing.T) {
	for _, tr := range []string{"tcp", "udp"} {
		t.Run(tr, func(t *testing.T) {
			n := newTestNet(t, netSpec{brokers: chain, links: chainLinks(tr)})
			n.waitRoutes()
			sub := n.connect("na.c1.c")
			ch := collect(t, sub, "r.>", "")
			n.waitInterest("na.c1.a", "r.>", "na.c1.c")
			pub := n.connect("na.c1.a")
			pub.Publish("r.1", []byte("before"))
			expectMsg(t, ch, 5*time.Second)

			n.brokers["na.c1.b"].Close()
			waitFor(t, "A to lose its route to C", 5*time.Second, func() bool { return len(n.brokers["na.c1.a"].Routes()) == 0 })
			if hasInterest(n.brokers["na.c1.a"], "r.>") {
				t.Fatal("interest of an unreachable broker still listed")
			}
			n.start("na.c1.b")
			n.waitRoutes()
			n.waitInterest("na.c1.a", "r.>", "na.c1.c")
			pub.Publish("r.2", []byte("after"))
			for deadline := time.After(5 * time.Second); ; {
				select {
				case m := <-ch:
					if string(m.Data) != "after" {
						continue
					}
				case <-deadline:
					t.Fatalf("the message published after the restart did not arrive; the network:\n%s", n.explain())
				}
				break
			}
		})
	}
}

// leafPort gives broker c a leaf port for external nats-servers.
func leafPort(c *Config) {
	if c.Address == "na.c1.c" {
		c.Leaf, c.LeafToken = "127.0.0.1:0", "the leaf token"
	}
}

// attachLeaf starts a plain nats-server named name, attaches it to broker
// b's leaf port with the leaf token, and connects a client to it.
func attachLeaf(t *testing.T, b *Broker, name string) *nats.Conn {
	t.Helper()
	u, _ := url.Parse(b.LeafURL())
	u.User = url.UserPassword("leaf", "the leaf token")
	ext, err := server.NewServer(&server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       -1,
		NoSigs:     true,
		NoLog:      true,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 100 * time.Millisecond,
			Remotes:           []*server.RemoteLeafOpts{{URLs: []*url.URL{u}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ext.Start()
	t.Cleanup(ext.Shutdown)
	if !ext.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	waitFor(t, "external leaf attached", 10*time.Second, func() bool { return ext.NumLeafNodes() == 1 })
	nc, err := nats.Connect(ext.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestExternalLeafNode(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp"), tweak: leafPort})
	n.waitRoutes()
	// A plain nats-server attaches to broker C's core as a leaf node.
	extClient := attachLeaf(t, n.brokers["na.c1.c"], "external")
	// A subscriber on the external server gets messages from A ...
	ch := collect(t, extClient, "ext.>", "")
	n.waitInterest("na.c1.a", "ext.>", "na.c1.c")
	n.connect("na.c1.a").Publish("ext.in", []byte("to-external"))
	if m := expectMsg(t, ch, 5*time.Second); string(m.Data) != "to-external" {
		t.Fatalf("got %q", m.Data)
	}
	// ... and from C's own clients, through the core.
	n.connect("na.c1.c").Publish("ext.local", []byte("local"))
	if m := expectMsg(t, ch, 5*time.Second); string(m.Data) != "local" {
		t.Fatalf("got %q", m.Data)
	}
	// A publisher on the external server reaches subscribers at A and C.
	atA := collect(t, n.connect("na.c1.a"), "from.ext", "")
	atC := collect(t, n.connect("na.c1.c"), "from.ext", "")
	waitFor(t, "interest at the external server", 5*time.Second, func() bool {
		return hasInterest(n.brokers["na.c1.c"], "from.ext") && len(interestHolders(n.brokers["na.c1.c"], "from.ext")) == 2
	})
	extClient.Publish("from.ext", []byte("hi"))
	expectMsg(t, atA, 5*time.Second)
	expectMsg(t, atC, 5*time.Second)
	expectNone(t, atC, 200*time.Millisecond)
}
