package broker

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/wayline/wayline/router"
)

func TestRecordsRoundTrip(t *testing.T) {
	var buf []byte
	ls := &linkState{Origin: "na.a", Ver: version{Epoch: 1, Seq: 7}, Profiles: []string{"default", "media"}, Links: []lsLink{{ID: "l1", Peer: "na.b", Up: true, Costs: []float64{1.5, 3}, LatencyMs: 1, JitterMs: 0.1, Loss: 0.01}}}
	buf = appendLinkState(buf, ls)
	u := &interestUpdate{Origin: "na.a", Ver: version{Epoch: 1, Seq: 3}, Ops: []interestOp{{Subject: "a.>", Weight: 1}, {Subject: "q", Queue: "workers", Weight: 3}}}
	buf = appendInterest(buf, u)
	m := &message{Origin: []byte("na.a"), Seq: 99, Subject: []byte("orders.eu"), Reply: []byte("_INBOX.x"), HasHdr: true, HdrLen: 4, Data: []byte("HDR!body")}
	dests := []dest{{Broker: []byte("na.c"), Queues: [][]byte{[]byte("workers")}}, {Broker: []byte("na.d"), Exits: []router.Exit{{Broker: "eu.x.a", Link: "l9"}, {Broker: "eu.y.b", Link: "l8"}}}}
	buf = appendMsg(buf, m, 7, dests)
	buf = appendSyncReq(buf, "na.z")
	sum := &summaryRec{Origin: "na.a.c1.x", Unit: "na.a", Ver: version{Epoch: 1, Seq: 8}, Time: 5, Profiles: []string{"default", "media"},
		Dests: []router.Dest{{Broker: "na.a.c1.y", Costs: []float64{1, 2}}, {Broker: "na.a.c2.z", Costs: []float64{3, math.Inf(1)}}}}
	buf = appendSummary(buf, sum)

	var got []recType
	err := eachRecord(buf, func(typ recType, body []byte) error {
		got = append(got, typ)
		switch typ {
		case recLinkState:
			if ls2, err := decodeLinkState(body); err != nil || !reflect.DeepEqual(ls2, ls) {
				t.Errorf("link state %+v %v", ls2, err)
			}
		case recInterest:
			if u2, err := decodeInterest(body); err != nil || !reflect.DeepEqual(u2, u) {
				t.Errorf("interest %+v %v", u2, err)
			}
		case recMsg:
			var m2 message
			if err := m2.decode(body); err != nil {
				t.Fatal(err)
			}
			if m2.Seq != 99 || m2.Hops != 7 || string(m2.Subject) != "orders.eu" || string(m2.Reply) != "_INBOX.x" ||
				!m2.HasHdr || m2.HdrLen != 4 || string(m2.Data) != "HDR!body" || len(m2.Dests) != 2 ||
				string(m2.Dests[0].Queues[0]) != "workers" || string(m2.Dests[1].Broker) != "na.d" ||
				len(m2.Dests[0].Exits) != 0 || fmt.Sprintf("%s", m2.Dests[1].Exits) != "[{eu.x.a l9} {eu.y.b l8}]" {
				t.Errorf("msg %+v", m2)
			}
		case recSyncReq:
			if o, err := decodeStrRecord(body); err != nil || o != "na.z" {
				t.Errorf("sync %q %v", o, err)
			}
		case recSummary:
			if s2, err := decodeSummary(body); err != nil || !reflect.DeepEqual(s2, sum) {
				t.Errorf("summary %+v %v", s2, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []recType{recLinkState, recInterest, recMsg, recSyncReq, recSummary}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}

func TestMalformedRecords(t *testing.T) {
	good := appendMsg(nil, &message{Origin: []byte("o"), Subject: []byte("s")}, 1, []dest{{Broker: []byte("b")}})
	tests := []struct {
		name  string
		frame []byte
	}{
		{"stray bytes", []byte{1, 2}},
		{"length past the end", []byte{9, 0, 0, 1, 0, 1}},
		{"truncated body", append(append([]byte{}, good[:5]...), good[5:8]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := eachRecord(tc.frame, func(typ recType, body []byte) error {
				var m message
				return m.decode(body)
			})
			if err == nil {
				t.Fatal("accepted a malformed frame")
			}
		})
	}
	// A wildcard subject in a message and a forged count are refused.
	bad := appendMsg(nil, &message{Origin: []byte("o"), Subject: []byte("a.*")}, 1, nil)
	err := eachRecord(bad, func(_ recType, body []byte) error {
		var m message
		if err := m.decode(body); err != nil {
			return err
		}
		return m.validate()
	})
	if err == nil {
		t.Fatal("accepted a wildcard subject")
	}
	forged := appendInterest(nil, &interestUpdate{Origin: "o"})
	forged[len(forged)-1] = 0xff // op count with no ops behind it
	forged = append(forged, 0x7f)
	forged[4]++ // body length
	if err := eachRecord(forged, func(_ recType, body []byte) error { _, err := decodeInterest(body); return err }); err == nil {
		t.Fatal("accepted a forged count")
	}
}

// TestBadSummaries: a summary that lists brokers outside its unit or out
// of order, comes from outside its unit, summarises the root or prices a
// broker at a negative or NaN cost is refused.
func TestBadSummaries(t *testing.T) {
	good := func() *summaryRec {
		return &summaryRec{Origin: "na.a.c1.x", Unit: "na.a", Profiles: []string{"default"},
			Dests: []router.Dest{{Broker: "na.a.c1.y", Costs: []float64{1}}, {Broker: "na.a.c2.z", Costs: []float64{3}}}}
	}
	for _, tc := range []struct {
		name string
		edit func(*summaryRec)
	}{
		{"origin outside its unit", func(s *summaryRec) { s.Origin = "na.b.c1.x" }},
		{"the root", func(s *summaryRec) { s.Unit = "" }},
		{"the origin's own address as unit", func(s *summaryRec) { s.Unit = s.Origin }},
		{"brokers out of order", func(s *summaryRec) { s.Dests[0], s.Dests[1] = s.Dests[1], s.Dests[0] }},
		{"the origin listed", func(s *summaryRec) { s.Dests[0].Broker = "na.a.c1.x" }},
		{"a negative cost", func(s *summaryRec) { s.Dests[1].Costs[0] = -1 }},
		{"a NaN cost", func(s *summaryRec) { s.Dests[1].Costs[0] = math.NaN() }},
		{"a bad address", func(s *summaryRec) { s.Dests[1].Broker = "na.a.C2" }},
	} {
		s := good()
		tc.edit(s)
		if err := eachRecord(appendSummary(nil, s), func(_ recType, body []byte) error { _, err := decodeSummary(body); return err }); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := eachRecord(appendSummary(nil, good()), func(_ recType, body []byte) error { _, err := decodeSummary(body); return err }); err != nil {
		t.Fatalf("good summary refused: %v", err)
	}
}

func TestRelRecvOrders(t *testing.T) {
	r := newRelRecv()
	var got []string
	deliver := func(b []byte) error { got = append(got, string(b)); return nil }
	steps := []struct {
		seq     uint64
		payload string
		ack     uint64
	}{{2, "b", 0}, {1, "a", 2}, {1, "a", 2}, {4, "d", 2}, {3, "c", 4}, {3, "c", 4}}
	for _, s := range steps {
		ack, err := r.receive(s.seq, []byte(s.payload), deliver)
		if err != nil || ack != s.ack {
			t.Fatalf("seq %d: ack %d err %v, want ack %d", s.seq, ack, err, s.ack)
		}
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestDedupWindow(t *testing.T) {
	var d dedupTable
	o := []byte("na.a")
	for _, tc := range []struct {
		seq  uint64
		seen bool
	}{{100, false}, {100, true}, {101, false}, {99, false}, {99, true}, {100 + dedupBits, false}, {101, true}, {5 * dedupBits, false}, {5*dedupBits - 1, false},
		// Older than the window: taken as new, and the window starts again.
		{100, false}, {100, true}, {5 * dedupBits, false}} {
		if got := d.seen(o, tc.seq); got != tc.seen {
			t.Fatalf("seq %d: seen=%v, want %v", tc.seq, got, tc.seen)
		}
	}
	if d.seen([]byte("na.b"), 100) {
		t.Fatal("origins share a window")
	}
}

func TestLeafMsgArgs(t *testing.T) {
	tests := []struct {
		line   string
		hdr    bool
		reply  string
		queues []string
		size   int
		hsize  int
		bad    bool
	}{
		{line: "foo 5", size: 5, hsize: -1},
		{line: "foo bar 5", reply: "bar", size: 5, hsize: -1},
		{line: "foo + bar q1 q2 5", reply: "bar", queues: []string{"q1", "q2"}, size: 5, hsize: -1},
		{line: "foo | q1 5", queues: []string{"q1"}, size: 5, hsize: -1},
		{line: "foo 12 20", hdr: true, size: 20, hsize: 12},
		{line: "foo bar 12 20", hdr: true, reply: "bar", size: 20, hsize: 12},
		{line: "foo + bar q 12 20", hdr: true, reply: "bar", queues: []string{"q"}, size: 20, hsize: 12},
		{line: "foo 30 20", hdr: true, bad: true},
		{line: "foo ? q 5", bad: true},
		{line: "foo x", bad: true},
		{line: "fo*o.> 5", bad: true},
		{line: "5", bad: true},
	}
	for _, tc := range tests {
		var m leafMsg
		err := parseMsgArgs(&m, splitArgs(nil, []byte(tc.line)), tc.hdr)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted", tc.line)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		var qs []string
		for _, q := range m.queues {
			qs = append(qs, string(q))
		}
		if string(m.reply) != tc.reply || !reflect.DeepEqual(qs, tc.queues) || m.size != tc.size || m.hdr != tc.hsize {
			t.Errorf("%q: got reply %q queues %v size %d hdr %d", tc.line, m.reply, qs, m.size, m.hdr)
		}
	}
}

func TestLeafMsgEncoding(t *testing.T) {
	m := &message{Subject: []byte("a.b"), Reply: []byte("r"), Data: []byte("hi")}
	if got := string(appendLeafMsg(nil, m, nil)); got != "LMSG a.b r 2\r\nhi\r\n" {
		t.Fatalf("got %q", got)
	}
	if got := string(appendLeafMsg(nil, m, [][]byte{[]byte("q")})); got != "LMSG a.b + r q 2\r\nhi\r\n" {
		t.Fatalf("got %q", got)
	}
	m.Reply = nil
	m.HasHdr, m.HdrLen = true, 1
	if got := string(appendLeafMsg(nil, m, [][]byte{[]byte("q")})); got != "HMSG a.b | q 1 2\r\nhi\r\n" {
		t.Fatalf("got %q", got)
	}
	if !bytes.Equal(appendLS(nil, true, "s", "q"), []byte("LS+ s q 1\r\n")) || !bytes.Equal(appendLS(nil, false, "s", ""), []byte("LS- s\r\n")) {
		t.Fatal("LS encoding")
	}
}
