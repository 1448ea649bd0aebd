package broker

import (
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/schema"
)

// TestOrderBuffer: a broker of the network sends b the messages of one
// stream as if routes had changed. A fenced message waits for those before
// it in its stream, and what comes after it waits behind it; a message
// that is not fenced goes straight through, and one that comes after a
// later one is delivered and counted; a wait for messages that never come
// is given up after orderWait, and counted.
func TestOrderBuffer(t *testing.T) {
	n, b, z := withInsider(t)
	ch := collect(t, n.connect("na.c1.b"), "ord.>", "")
	n.waitInterest("na.c1.a", "ord.>", "na.c1.b")
	send := func(num uint64, fenced bool) {
		t.Helper()
		m := &overlay.Message{Origin: []byte("na.c1.z"), Seq: 1000 + num, Fenced: fenced, Subject: []byte("ord.x"), Data: []byte{byte(num)}}
		if _, err := z.Send(overlay.AppendMsg(nil, m, 8, []overlay.Dest{{Broker: []byte("na.c1.b"), Stream: 5, Num: num}})); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(nums ...byte) {
		t.Helper()
		for _, want := range nums {
			if m := expectMsg(t, ch, 5*time.Second); m.Data[0] != want {
				t.Fatalf("got message %d, want %d", m.Data[0], want)
			}
		}
	}
	quiet := func(d time.Duration) {
		t.Helper()
		select {
		case m := <-ch:
			t.Fatalf("message %d delivered while it should wait", m.Data[0])
		case <-time.After(d):
		}
	}
	counters := func(held, expired, late uint64) {
		t.Helper()
		if st := b.Status(); st.HeldForOrder != held || st.OrderWaitsExpired != expired || st.OutOfOrder != late {
			t.Fatalf("held %d, waits expired %d, out of order %d; want %d, %d, %d", st.HeldForOrder, st.OrderWaitsExpired, st.OutOfOrder, held, expired, late)
		}
	}
	send(1, false)
	send(2, false)
	expect(1, 2)
	send(5, true) // sent on new routes: 3 and 4 are still on the old
	send(6, false)
	quiet(200 * time.Millisecond)
	send(3, false)
	expect(3)
	quiet(100 * time.Millisecond)
	send(4, false)
	expect(4, 5, 6)
	counters(2, 0, 0)

	// The same stream's high class is a stream of its own: a congested
	// link serves it out of turn on purpose.
	high := &overlay.Message{Origin: []byte("na.c1.z"), Seq: 5000, Fenced: true, Class: sendq.High, Subject: []byte("ord.x"), Data: []byte{99}}
	if _, err := z.Send(overlay.AppendMsg(nil, high, 8, []overlay.Dest{{Broker: []byte("na.c1.b"), Stream: 5, Num: 40}})); err != nil {
		t.Fatal(err)
	}
	expect(99)
	counters(2, 0, 0)

	// Not fenced: 7 is lost or late, and when it comes, late, it is
	// delivered and counted.
	send(8, false)
	expect(8)
	send(7, false)
	expect(7)
	counters(2, 0, 1)

	// 9 and 10 never come.
	start := time.Now()
	send(11, true)
	send(12, false)
	expect(11, 12)
	if w := time.Since(start); w < orderWait || w > orderWait+2*time.Second {
		t.Fatalf("waited %v for messages that never came; want %v and a little", w, orderWait)
	}
	send(13, true)
	expect(13)
	counters(4, 1, 1)
	m := metricsText(t, b)
	for _, want := range []string{`wayline_broker_order_total{event="order_waits_expired"} 1`, `wayline_broker_order_total{event="held_for_order"} 4`,
		`wayline_broker_order_total{event="delivered_out_of_order"} 1`, `wayline_broker_dropped_total{reason="no_route"} 0`} {
		if !regexp.MustCompile(regexp.QuoteMeta(want) + "\n").MatchString(m) {
			t.Fatalf("/metrics lacks %s:\n%s", want, m)
		}
	}
}

// TestMessageCountersNamed: the counters a broker's state carries are
// those its schema accepts, every one of them.
func TestMessageCountersNamed(t *testing.T) {
	got := slices.Sorted(maps.Keys(StatusInfo{}.Messages()))
	if want := slices.Sorted(slices.Values(schema.MessageCounters)); !slices.Equal(got, want) {
		t.Fatalf("status counters %v, schema's %v", got, want)
	}
}
