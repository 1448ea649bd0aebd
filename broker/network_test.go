package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Pub/sub between brokers: delivery, request/reply, queue groups, interest
// and its withdrawal, ordering.

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
