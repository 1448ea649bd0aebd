package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/transports"
)

// testNet is a network of real brokers on loopback for tests.
type testNet struct {
	t       testing.TB
	brokers map[string]*Broker
	cfgs    map[string]*Config
	order   []string
}

// netSpec describes a test network: brokers by address, and links
// "a-b:transport" where a dials b.
type netSpec struct {
	brokers []string
	links   []string
	tweak   func(*Config)
}

func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

var memSeq struct {
	sync.Mutex
	n int
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WAYLINE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestNet(t testing.TB, spec netSpec) *testNet {
	t.Helper()
	n := &testNet{t: t, brokers: map[string]*Broker{}, cfgs: map[string]*Config{}}
	listen := map[string]map[string]string{} // broker -> scheme -> url
	for _, a := range spec.brokers {
		n.order = append(n.order, a)
		n.cfgs[a] = &Config{
			Address:       a,
			Client:        "127.0.0.1:0",
			HTTP:          "127.0.0.1:0",
			Logger:        testLogger(t).With("test", t.Name()),
			Keepalive:     100 * time.Millisecond,
			DeadAfter:     time.Second,
			DialBackoffMax: 500 * time.Millisecond,
		}
		listen[a] = map[string]string{}
	}
	for i, ls := range spec.links {
		ab, scheme, _ := strings.Cut(ls, ":")
		a, b, _ := strings.Cut(ab, "-")
		if scheme == "" {
			scheme = "tcp"
		}
		u, ok := listen[b][scheme]
		if !ok {
			switch scheme {
			case "mem":
				memSeq.Lock()
				memSeq.n++
				u = fmt.Sprintf("mem://%s-%d", b, memSeq.n)
				memSeq.Unlock()
			case "ws":
				u = fmt.Sprintf("ws://127.0.0.1:%d/overlay", freePort(t))
			default:
				u = fmt.Sprintf("%s://127.0.0.1:%d", scheme, freePort(t))
			}
			listen[b][scheme] = u
			n.cfgs[b].Listen = append(n.cfgs[b].Listen, u)
		}
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		n.cfgs[a].Links = append(n.cfgs[a].Links, LinkConfig{ID: id, Peer: b, Transport: scheme, Dial: u})
		n.cfgs[b].Links = append(n.cfgs[b].Links, LinkConfig{ID: id, Peer: a, Transport: scheme})
	}
	for _, a := range n.order {
		if spec.tweak != nil {
			spec.tweak(n.cfgs[a])
		}
		n.start(a)
	}
	t.Cleanup(n.close)
	return n
}

func (n *testNet) start(a string) *Broker {
	n.t.Helper()
	b, err := New(*n.cfgs[a])
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		n.t.Fatal(err)
	}
	n.brokers[a] = b
	// Keep the client port across restarts.
	n.cfgs[a].Client = strings.TrimPrefix(b.ClientURL(), "nats://")
	return b
}

func (n *testNet) close() {
	var wg sync.WaitGroup
	for _, b := range n.brokers {
		wg.Go(b.Close)
	}
	wg.Wait()
}

// connect opens a NATS client to a broker.
func (n *testNet) connect(a string, opts ...nats.Option) *nats.Conn {
	n.t.Helper()
	nc, err := nats.Connect(n.brokers[a].ClientURL(), opts...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(nc.Close)
	return nc
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitInterest waits until broker a knows that broker holder wants subject.
func (n *testNet) waitInterest(a, subject, holder string) {
	n.t.Helper()
	waitFor(n.t, fmt.Sprintf("%s to learn %s wants %s", a, holder, subject), 10*time.Second, func() bool {
		for _, ii := range n.brokers[a].Interest() {
			if ii.Subject == subject {
				for _, x := range ii.Brokers {
					if x == holder {
						return true
					}
				}
			}
		}
		return false
	})
}

// waitRoutes waits until every broker has a route to every other.
func (n *testNet) waitRoutes() {
	n.t.Helper()
	waitFor(n.t, "full routes", 15*time.Second, func() bool {
		for _, b := range n.brokers {
			if len(b.Routes()) != len(n.brokers)-1 {
				return false
			}
		}
		return true
	})
}

var _ = transports.DefaultMaxFrame

func TestChainTCP(t *testing.T) {
	n := newTestNet(t, netSpec{
		brokers: []string{"na.c1.a", "na.c1.b", "na.c1.c"},
		links:   []string{"na.c1.a-na.c1.b:tcp", "na.c1.b-na.c1.c:tcp"},
	})
	n.waitRoutes()
	sub := n.connect("na.c1.c")
	ch := make(chan *nats.Msg, 10)
	if _, err := sub.ChanSubscribe("orders.>", ch); err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	n.waitInterest("na.c1.a", "orders.>", "na.c1.c")
	pub := n.connect("na.c1.a")
	if err := pub.Publish("orders.eu.1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if string(m.Data) != "hello" || m.Subject != "orders.eu.1" {
			t.Fatalf("got %q on %s", m.Data, m.Subject)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message did not arrive")
	}
}
