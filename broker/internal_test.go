package broker

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wayline/wayline/netapi"
)

// TestInternalSubscriber checks that the broker receives messages for its
// own subscriptions from clients anywhere, that only admin clients may send
// them, and that its replies come back.
func TestInternalSubscriber(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp"), tweak: func(c *Config) { c.AdminToken = "s3cret" }})
	n.waitRoutes()
	c := n.brokers["na.c1.c"]
	got := make(chan internalMsg, 10)
	c.subscribeInternal("$WL.test.c", func(m internalMsg) {
		got <- m
		if m.Reply != "" {
			c.publishInternal(m.Reply, "", append([]byte("ack:"), m.Data...))
		}
	})
	n.waitInterest("na.c1.a", "$WL.test.c", "na.c1.c")
	admin := n.connect("na.c1.a", nats.UserInfo(netapi.AdminUser, "s3cret"))
	reply, err := admin.Request("$WL.test.c", []byte("hi"), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Data) != "ack:hi" {
		t.Fatalf("reply %q", reply.Data)
	}
	m := <-got
	if m.Origin != "na.c1.a" || string(m.Data) != "hi" {
		t.Fatalf("internal message %+v", m)
	}
	// A local admin client reaches it too; an ordinary client does not.
	if _, err := n.connect("na.c1.c", nats.UserInfo(netapi.AdminUser, "s3cret")).Request("$WL.test.c", []byte("local"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	<-got
	n.connect("na.c1.a").Publish("$WL.test.c", []byte("forged"))
	select {
	case m := <-got:
		t.Fatalf("an ordinary client reached the broker: %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := nats.Connect(n.brokers["na.c1.a"].ClientURL(), nats.UserInfo(netapi.AdminUser, "wrong")); err == nil {
		t.Fatal("a wrong admin token was accepted")
	}
}
