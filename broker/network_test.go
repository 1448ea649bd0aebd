package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/router"
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

func freePort(t testing.TB) int { return testutil.FreePort(t) }

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

// waitRoutes waits until every broker has a route to every node of its
// network map: each broker of its cluster and each unit beside its own.
func (n *testNet) waitRoutes() {
	n.t.Helper()
	waitFor(n.t, "full routes", 15*time.Second, func() bool {
		for a, b := range n.brokers {
			nodes := map[router.Address]bool{}
			for o := range n.brokers {
				if o != a {
					nodes[router.Rep(router.Address(a), router.Address(o))] = true
				}
			}
			if r, _ := b.RoutesFor(router.DefaultProfileName); len(r) != len(nodes) {
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

func TestRequestReplyFirstTry(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	resp := n.connect("na.c1.c")
	if _, err := resp.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("re:"), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	resp.Flush()
	n.waitInterest("na.c1.a", "svc.echo", "na.c1.c")
	// Every request comes from a brand-new connection, whose reply inbox
	// nobody beyond A knows about yet.
	for i := range 20 {
		nc := n.connect("na.c1.a")
		m, err := nc.Request("svc.echo", []byte(fmt.Sprint(i)), 2*time.Second)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if want := fmt.Sprintf("re:%d", i); string(m.Data) != want {
			t.Fatalf("reply %q, want %q", m.Data, want)
		}
		nc.Close()
	}
}

func TestHeadersAndReplyPreserved(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	ch := collect(t, n.connect("na.c1.c"), "h.>", "")
	n.waitInterest("na.c1.a", "h.>", "na.c1.c")
	pub := n.connect("na.c1.a")
	msg := nats.NewMsg("h.one")
	msg.Reply = "my.reply.subject"
	msg.Header.Set("X-Trace", "abc 123")
	msg.Header.Add("X-Multi", "1")
	msg.Header.Add("X-Multi", "2")
	msg.Data = []byte("payload")
	if err := pub.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	got := expectMsg(t, ch, 5*time.Second)
	if got.Reply != "my.reply.subject" || string(got.Data) != "payload" {
		t.Fatalf("got reply %q data %q", got.Reply, got.Data)
	}
	if got.Header.Get("X-Trace") != "abc 123" || len(got.Header.Values("X-Multi")) != 2 {
		t.Fatalf("headers lost: %v", got.Header)
	}
}

func TestQueueGroupExactlyOnce(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	var chans []chan *nats.Msg
	for _, a := range chain {
		chans = append(chans, collect(t, n.connect(a), "jobs.*", "workers"))
	}
	for _, a := range chain {
		for _, h := range chain {
			if a != h {
				n.waitInterest(a, "jobs.*", h)
			}
		}
	}
	// Publish from every broker, including ones with a local member, and
	// from a broker-less angle: each message reaches exactly one member.
	const per = 300
	for _, a := range chain {
		pub := n.connect(a)
		for i := range per {
			if err := pub.Publish(fmt.Sprintf("jobs.%d", i), []byte(a)); err != nil {
				t.Fatal(err)
			}
		}
		pub.Flush()
	}
	total := 0
	deadline := time.After(10 * time.Second)
	for total < 3*per {
		select {
		case <-chans[0]:
		case <-chans[1]:
		case <-chans[2]:
		case <-deadline:
			t.Fatalf("received %d of %d", total, 3*per)
		}
		total++
	}
	for _, ch := range chans {
		expectNone(t, ch, 300*time.Millisecond)
	}
}

func TestQueueGroupSpreadsAcrossBrokers(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	b := collect(t, n.connect("na.c1.b"), "work", "workers")
	c := collect(t, n.connect("na.c1.c"), "work", "workers")
	n.waitInterest("na.c1.a", "work", "na.c1.b")
	n.waitInterest("na.c1.a", "work", "na.c1.c")
	pub := n.connect("na.c1.a")
	const total = 400
	for range total {
		pub.Publish("work", []byte("x"))
	}
	pub.Flush()
	waitFor(t, "all queue messages", 10*time.Second, func() bool { return len(b)+len(c) == total })
	if len(b) < total/5 || len(c) < total/5 {
		t.Fatalf("queue members unevenly served: b=%d c=%d", len(b), len(c))
	}
	time.Sleep(200 * time.Millisecond)
	if got := len(b) + len(c); got != total {
		t.Fatalf("%d deliveries for %d messages", got, total)
	}
}

func TestInterestWithdrawal(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	nc := n.connect("na.c1.c")
	sub, err := nc.Subscribe("w.*.x", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	n.waitInterest("na.c1.a", "w.*.x", "na.c1.c")
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	waitFor(t, "withdrawal on unsubscribe", 5*time.Second, func() bool { return !hasInterest(n.brokers["na.c1.a"], "w.*.x") })

	nc2 := n.connect("na.c1.c")
	nc2.Subscribe("gone.>", func(*nats.Msg) {})
	nc2.Flush()
	n.waitInterest("na.c1.a", "gone.>", "na.c1.c")
	nc2.Close()
	waitFor(t, "withdrawal on disconnect", 5*time.Second, func() bool { return !hasInterest(n.brokers["na.c1.a"], "gone.>") })

	// Nothing crosses a link without interest beyond it.
	before := n.brokers["na.c1.a"].Links()[0].MsgsSent
	pub := n.connect("na.c1.a")
	for range 100 {
		pub.Publish("gone.now", nil)
	}
	pub.Flush()
	time.Sleep(100 * time.Millisecond)
	if after := n.brokers["na.c1.a"].Links()[0].MsgsSent; after != before {
		t.Fatalf("%d messages crossed a link without interest", after-before)
	}
}

func hasInterest(b *Broker, subject string) bool {
	for _, ii := range b.Interest() {
		if ii.Subject == subject {
			return true
		}
	}
	return false
}

// gridSpec is a 3x3 grid of brokers, every neighbour linked: a mesh full
// of cycles.
func gridSpec() netSpec {
	var s netSpec
	name := func(r, c int) string { return fmt.Sprintf("eu.g.r%d.c%d", r, c) }
	for r := range 3 {
		for c := range 3 {
			s.brokers = append(s.brokers, name(r, c))
			if c < 2 {
				s.links = append(s.links, name(r, c)+"-"+name(r, c+1)+":tcp")
			}
			if r < 2 {
				s.links = append(s.links, name(r, c)+"-"+name(r+1, c)+":tcp")
			}
		}
	}
	return s
}

// exactlyOnce subscribes on every broker, publishes from every broker, and
// checks that each subscriber got each message exactly once.
func exactlyOnce(t *testing.T, n *testNet) {
	n.waitRoutes()
	subs := map[string]chan *nats.Msg{}
	for _, a := range n.order {
		subs[a] = collect(t, n.connect(a), "mesh.>", "")
	}
	for _, a := range n.order {
		for _, h := range n.order {
			if a != h {
				n.waitInterest(a, "mesh.>", h)
			}
		}
	}
	const per = 50
	for _, a := range n.order {
		pub := n.connect(a)
		for i := range per {
			pub.Publish("mesh."+a, []byte(fmt.Sprint(i)))
		}
		pub.Flush()
	}
	want := per * len(n.order)
	defer func() {
		if t.Failed() {
			for _, a := range n.order {
				t.Logf("%s: %+v", a, n.brokers[a].Status())
			}
		}
	}()
	for _, a := range n.order {
		ch := subs[a]
		seen := map[string]bool{}
		for len(seen) < want {
			m := expectMsg(t, ch, 10*time.Second)
			k := m.Subject + "/" + string(m.Data)
			if seen[k] {
				t.Fatalf("%s got %s twice", a, k)
			}
			seen[k] = true
		}
		expectNone(t, ch, 100*time.Millisecond)
	}
}

func TestDiamondExactlyOnce(t *testing.T) {
	n := newTestNet(t, netSpec{
		brokers: []string{"x.a", "x.b", "x.c", "x.d"},
		links:   []string{"x.a-x.b:tcp", "x.a-x.c:tcp", "x.b-x.d:tcp", "x.c-x.d:tcp"},
	})
	exactlyOnce(t, n)
}

func TestGridExactlyOnce(t *testing.T) {
	exactlyOnce(t, newTestNet(t, gridSpec()))
}

// TestGridSplitCluster: with the link r0.c1-r0.c2 out of routing, the two
// sides of cluster r0 reach each other only through r1, whose brokers see
// r0 as one node and, left to themselves, hand a message back to r0 over
// their nearest link, on the wrong side. The routes name their exits from
// r1, so every message arrives once and none goes round until the hop
// limit drops it.
func TestGridSplitCluster(t *testing.T) {
	n := newTestNet(t, gridSpec())
	n.waitRoutes()
	c1 := n.brokers["eu.g.r0.c1"]
	if err := c1.SetExcluded(linkOf(t, c1, "eu.g.r0.c2").ID, true); err != nil {
		t.Fatal(err)
	}
	crossesR1 := func(from, to string) bool {
		routes, _ := n.brokers[from].RoutesFor(router.DefaultProfileName)
		for _, r := range routes {
			if r.Destination == to {
				return len(r.Exits) == 1 && strings.HasPrefix(r.Exits[0].Broker, "eu.g.r1.")
			}
		}
		return false
	}
	waitFor(t, "routes between the sides of r0 through r1", 15*time.Second, func() bool {
		return crossesR1("eu.g.r0.c2", "eu.g.r0.c0") && crossesR1("eu.g.r0.c2", "eu.g.r0.c1") &&
			crossesR1("eu.g.r0.c1", "eu.g.r0.c2") && crossesR1("eu.g.r0.c0", "eu.g.r0.c2")
	})
	before := map[string]uint64{}
	for a, b := range n.brokers {
		before[a] = b.Status().HopLimit
	}
	exactlyOnce(t, n)
	for a, b := range n.brokers {
		if d := b.Status().HopLimit - before[a]; d != 0 {
			t.Errorf("%s dropped %d messages at the hop limit", a, d)
		}
	}
}

func TestThousandSubjects(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	sub := n.connect("na.c1.c")
	ch := make(chan *nats.Msg, 2000)
	for i := range 1000 {
		if _, err := sub.ChanSubscribe(fmt.Sprintf("s.%d", i), ch); err != nil {
			t.Fatal(err)
		}
	}
	sub.Flush()
	waitFor(t, "1000 subjects at A", 10*time.Second, func() bool { return len(appInterest(n.brokers["na.c1.a"])) == 1000 })
	for i := range 1000 {
		n.waitServerInterest("na.c1.a", fmt.Sprintf("s.%d", i))
	}
	pub := n.connect("na.c1.a")
	for i := range 1000 {
		pub.Publish(fmt.Sprintf("s.%d", i), []byte(fmt.Sprint(i)))
	}
	pub.Flush()
	seen := map[string]bool{}
	for len(seen) < 1000 {
		m := expectMsg(t, ch, 10*time.Second)
		if m.Subject != "s."+string(m.Data) {
			t.Fatalf("message %q on %s", m.Data, m.Subject)
		}
		seen[m.Subject] = true
	}
}

func TestReservedSubjectRefused(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("tcp")[:1]})
	n.waitRoutes()
	// Only the forged subject: brokers publish their states on $WL.state.
	ch := collect(t, n.connect("na.c1.b"), "$WL.cost.>", "")
	n.waitInterest("na.c1.a", "$WL.cost.>", "na.c1.b")
	errs := make(chan error, 1)
	pub := n.connect("na.c1.a", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	pub.Publish("$WL.cost.na", []byte("forged"))
	pub.Flush()
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permission") {
			t.Fatalf("error %v, want a permission violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publisher was not told")
	}
	expectNone(t, ch, 300*time.Millisecond)
}

// tlsTweak gives every broker the same test CA and a certificate from it.
func tlsTweak(t testing.TB) func(*Config) {
	cert, key, ca := testutil.WriteTestCA(t, t.TempDir())
	tc, err := transports.LoadTLSConfig(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.Transport.TLS = tc }
}

// TestChainEveryTransport runs pub/sub, request/reply and queue groups
// across the A-B-C chain over each transport.
func TestChainEveryTransport(t *testing.T) {
	for _, tr := range []string{"tcp", "tls", "udp", "ws", "mem"} {
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
			for {
				m := expectMsg(t, ch, 5*time.Second)
				if string(m.Data) == "after" {
					break
				}
			}
		})
	}
}

func TestExternalLeafNode(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	// A plain nats-server attaches to broker C's core as a leaf node.
	u, _ := url.Parse(n.brokers["na.c1.c"].LeafURL())
	ext, err := server.NewServer(&server.Options{
		ServerName: "external",
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

	extClient, err := nats.Connect(ext.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer extClient.Close()
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

// appInterest is the interest of applications, without the network's own
// reserved subjects.
func appInterest(b *Broker) []InterestInfo {
	var out []InterestInfo
	for _, ii := range b.Interest() {
		if !strings.HasPrefix(ii.Subject, reservedPrefix) {
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

func TestOrderPerPublisher(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	ch := collect(t, n.connect("na.c1.c"), "seq", "")
	n.waitInterest("na.c1.a", "seq", "na.c1.c")
	pub := n.connect("na.c1.a")
	const total = 20000
	for i := range total {
		pub.Publish("seq", []byte(fmt.Sprint(i)))
	}
	pub.Flush()
	for i := range total {
		m := expectMsg(t, ch, 10*time.Second)
		if string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("message %d arrived as %q", i, m.Data)
		}
	}
}

// TestReplyRouteNeedsNoInterest shows that a reply finds its way back when
// the requester's interest in the reply subject has not reached the
// responder's broker: the test takes that interest out of the responder's
// broker by hand, so only the reply route can carry the reply.
func TestReplyRouteNeedsNoInterest(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp")})
	n.waitRoutes()
	resp := n.connect("na.c1.c")
	resp.Subscribe("svc.hidden", func(m *nats.Msg) { m.Respond([]byte("found you")) })
	resp.Flush()
	n.waitInterest("na.c1.a", "svc.hidden", "na.c1.c")

	req := n.connect("na.c1.a")
	const reply = "late.reply"
	ch := collect(t, req, reply, "")
	n.waitInterest("na.c1.c", reply, "na.c1.a")
	c := n.brokers["na.c1.c"]
	c.mu.Lock()
	c.interest.set(&c.interest.remote["na.c1.a"].holder, reply, "", 0)
	c.mu.Unlock()
	waitFor(t, "C's server to stop forwarding the reply subject", 5*time.Second, func() bool {
		return !c.ns.GlobalAccount().SubscriptionInterest(reply)
	})

	if err := req.PublishRequest("svc.hidden", reply, []byte("?")); err != nil {
		t.Fatal(err)
	}
	if m := expectMsg(t, ch, 5*time.Second); string(m.Data) != "found you" {
		t.Fatalf("reply %q", m.Data)
	}
	if c.Status().Replies == 0 {
		t.Fatal("no reply route recorded at the responder's broker")
	}
}
