package broker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

// The test network: real brokers on loopback, their clients, and the
// helpers the network tests share.

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

func freePort(t testing.TB) int { return testutil.FreePort(t) }

// testSecret is the network secret of the test networks.
const testSecret = "the secret of the wayline test networks"

// dialAs opens a link to a broker's overlay listener at url as broker
// from, for link id, with the test networks' secret, so that the test can
// play that broker. The link is closed at the end of the test.
func dialAs(t testing.TB, url, from, to, id string) transports.Conn {
	t.Helper()
	conn, err := transports.Dial(context.Background(), url, transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := linkauth.Hello{Version: overlay.ProtoVersion, From: from, To: to, LinkID: id, Epoch: 1}
	sc, _, err := linkauth.Dial(conn, h, linkauth.Config{Version: overlay.ProtoVersion, Secret: []byte(testSecret)})
	if err != nil {
		conn.Close()
		t.Fatalf("link to %s as %s: %v", to, from, err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
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
			Address:        a,
			Secret:         testSecret,
			Client:         "127.0.0.1:0",
			HTTP:           "127.0.0.1:0",
			Logger:         testLogger(t).With("test", t.Name()),
			Keepalive:      100 * time.Millisecond,
			DeadAfter:      time.Second,
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
var waitFor = testutil.WaitFor

// waitInterest waits until broker a knows that broker holder wants subject,
// and a's embedded server has been told to forward it.
func (n *testNet) waitInterest(a, subject, holder string) {
	n.t.Helper()
	defer n.waitServerInterest(a, sampleSubject(subject))
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

// sampleSubject turns a subscription pattern into a subject it matches.
func sampleSubject(pattern string) string {
	toks := strings.Split(pattern, ".")
	for i, t := range toks {
		if t == "*" || t == ">" {
			toks[i] = "x"
		}
	}
	return strings.Join(toks, ".")
}

// waitServerInterest waits until broker a's embedded server forwards
// subject to someone: its leaf connection to the core, or a local client.
func (n *testNet) waitServerInterest(a, subject string) {
	n.t.Helper()
	waitFor(n.t, fmt.Sprintf("%s's server to want %s", a, subject), 10*time.Second, func() bool {
		return n.brokers[a].ns.GlobalAccount().SubscriptionInterest(subject)
	})
}

// waitRoutes waits until every broker has a route to every other.
func (n *testNet) waitRoutes() {
	n.t.Helper()
	waitFor(n.t, "full routes", 15*time.Second, func() bool {
		for _, b := range n.brokers {
			if r, _ := b.RoutesFor(router.DefaultProfileName); len(r) != len(n.brokers)-1 {
				return false
			}
		}
		return true
	})
}

// explain describes what each broker of the network holds and counted,
// for a test that failed to see a message: its routes, its links' states
// and the messages it dropped, routed again or held, where not zero.
func (n *testNet) explain() string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(n.brokers)) {
		br := n.brokers[name]
		st := br.Status()
		fmt.Fprintf(&b, "%s: routes", name)
		for _, r := range br.Routes() {
			fmt.Fprintf(&b, " %v", r.Path)
		}
		for _, l := range br.Links() {
			fmt.Fprintf(&b, "; link to %s %s (sent %d, received %d)", l.Peer, l.State, l.MsgsSent, l.MsgsRecv)
		}
		msgs := st.Messages()
		for _, k := range slices.Sorted(maps.Keys(msgs)) {
			if msgs[k] != 0 {
				fmt.Fprintf(&b, "; %s %d", k, msgs[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(st.LinkDrops)) {
			if st.LinkDrops[k] != 0 {
				fmt.Fprintf(&b, "; link drops %s %d", k, st.LinkDrops[k])
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// collect subscribes and gathers messages on a channel.
func collect(t testing.TB, nc *nats.Conn, subject, queue string) chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 100000)
	var err error
	if queue == "" {
		_, err = nc.ChanSubscribe(subject, ch)
	} else {
		_, err = nc.ChanQueueSubscribe(subject, queue, ch)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func expectMsg(t testing.TB, ch chan *nats.Msg, d time.Duration) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(d):
		t.Fatal("message did not arrive")
		return nil
	}
}

func expectNone(t testing.TB, ch chan *nats.Msg, d time.Duration) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message %q on %s", m.Data, m.Subject)
	case <-time.After(d):
	}
}

var chain = []string{"na.c1.a", "na.c1.b", "na.c1.c"}

func chainLinks(transport string) []string {
	return []string{"na.c1.a-na.c1.b:" + transport, "na.c1.b-na.c1.c:" + transport}
}

func hasInterest(b *Broker, subject string) bool {
	for _, ii := range b.Interest() {
		if ii.Subject == subject {
			return true
		}
	}
	return false
}

// tlsTweak gives every broker a certificate from one test CA that names
// it.
func tlsTweak(t testing.TB) func(*Config) {
	ca := testutil.NewTestCA(t, t.TempDir())
	return func(c *Config) {
		cert, key := ca.Issue(t, c.Address, c.Address)
		tc, err := transports.LoadTLSConfig(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		c.Transport.TLS = tc
	}
}

// appInterest is the interest of applications, without the network's own
// reserved subjects.
func appInterest(b *Broker) []InterestInfo {
	var out []InterestInfo
	for _, ii := range b.Interest() {
		if !strings.HasPrefix(ii.Subject, netapi.Reserved) {
			out = append(out, ii)
		}
	}
	return out
}

func interestHolders(b *Broker, subject string) []string {
	for _, ii := range b.Interest() {
		if ii.Subject == subject {
			return ii.Brokers
		}
	}
	return nil
}
