package overlay

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/router"
)

// TestRecordsRoundTrip: a message, a string record and a number record in
// one frame come back as they were sent, in order.
func TestRecordsRoundTrip(t *testing.T) {
	var buf []byte
	m := &Message{Origin: []byte("na.a"), Seq: 99, Fenced: true, Subject: []byte("orders.eu"), Reply: []byte("_INBOX.x"), HasHdr: true, HdrLen: 4, Data: []byte("HDR!body")}
	dests := []Dest{{Broker: []byte("na.c"), Queues: [][]byte{[]byte("workers")}}, {Broker: []byte("na.d"), Exits: []router.Exit{{Broker: "eu.x.a", Link: "l9"}, {Broker: "eu.y.b", Link: "l8"}}, Stream: 7, Num: 42}}
	buf = AppendMsg(buf, m, 7, dests)
	buf = AppendStrRecord(buf, RecSyncReq, "na.z")
	buf = AppendU64Record(buf, RecDataAck, 1<<40)

	var got []RecordType
	err := EachRecord(buf, func(typ RecordType, body []byte) error {
		got = append(got, typ)
		switch typ {
		case RecMsg:
			var m2 Message
			if err := m2.Decode(body); err != nil {
				t.Fatal(err)
			}
			if m2.Seq != 99 || m2.Hops != 7 || string(m2.Subject) != "orders.eu" || string(m2.Reply) != "_INBOX.x" ||
				!m2.HasHdr || m2.HdrLen != 4 || string(m2.Data) != "HDR!body" || len(m2.Dests) != 2 ||
				string(m2.Dests[0].Queues[0]) != "workers" || string(m2.Dests[1].Broker) != "na.d" ||
				len(m2.Dests[0].Exits) != 0 || m2.Dests[0].Stream != 0 || m2.Dests[1].Stream != 7 || m2.Dests[1].Num != 42 || !m2.Fenced || fmt.Sprintf("%s", m2.Dests[1].Exits) != "[{eu.x.a l9} {eu.y.b l8}]" {
				t.Errorf("msg %+v", m2)
			}
		case RecSyncReq:
			if o, err := DecodeStrRecord(body); err != nil || o != "na.z" {
				t.Errorf("string record %q %v", o, err)
			}
		case RecDataAck:
			if n, err := DecodeU64Record(body); err != nil || n != 1<<40 {
				t.Errorf("number record %d %v", n, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []RecordType{RecMsg, RecSyncReq, RecDataAck}; !reflect.DeepEqual(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if n := CountRecords(buf); n != 3 {
		t.Fatalf("counted %d records, want 3", n)
	}
}

// TestForward: a message passed on unchanged spends one hop and nothing
// else changes.
func TestForward(t *testing.T) {
	m := &Message{Origin: []byte("na.a"), Seq: 5, Subject: []byte("s"), Data: []byte("payload")}
	rec := AppendMsg(nil, m, 9, []Dest{{Broker: []byte("na.b")}})
	fwd := AppendForward(nil, rec[RecordHeader:], 8, true) // no streams: nothing to fence
	var got Message
	if err := EachRecord(fwd, func(_ RecordType, body []byte) error { return got.Decode(body) }); err != nil {
		t.Fatal(err)
	}
	again := AppendMsg(nil, &got, 9, got.Dests)
	if got.Hops != 8 || !bytes.Equal(again, rec) {
		t.Fatalf("forwarded with %d hops: %x, want %x", got.Hops, again, rec)
	}
	// A broker on the way fences a message that has a stream.
	rec = AppendMsg(nil, m, 9, []Dest{{Broker: []byte("na.b"), Stream: 3, Num: 1}})
	for _, fence := range []bool{false, true} {
		fwd = AppendForward(nil, rec[RecordHeader:], 8, fence)
		if err := got.Decode(fwd[RecordHeader:]); err != nil || got.Fenced != fence || got.Dests[0].Num != 1 {
			t.Fatalf("forwarded fencing=%v: fenced %v, dest %+v (%v)", fence, got.Fenced, got.Dests[0], err)
		}
	}
}

func TestMalformedRecords(t *testing.T) {
	good := AppendMsg(nil, &Message{Origin: []byte("o"), Subject: []byte("s")}, 1, []Dest{{Broker: []byte("b")}})
	tests := []struct {
		name  string
		frame []byte
	}{
		{"stray bytes", []byte{1, 2}},
		{"length past the end", []byte{9, 0, 0, 1, 0, 1}},
		{"truncated body", append(append([]byte{}, good[:5]...), good[5:8]...)},
		{"unknown flags", AppendRecord(nil, RecMsg, append([]byte{0x80}, good[6:]...))},
		{"empty subject", AppendMsg(nil, &Message{Origin: []byte("o")}, 1, nil)},
		// Number 0 in a stream, a streams flag with no stream, and a
		// fence without streams.
		{"number 0", AppendRecord(nil, RecMsg, []byte{msgHasStreams, 1, 0, 1, 'o', 0, 0, 0, 0, 0, 0, 0, 5, 1, 1, 'b', 0, 3, 0, 1, 's'})},
		{"streams flag, no stream", AppendRecord(nil, RecMsg, []byte{msgHasStreams, 1, 0, 1, 'o', 0, 0, 0, 0, 0, 0, 0, 5, 1, 1, 'b', 0, 0, 1, 's'})},
		{"fence without streams", AppendRecord(nil, RecMsg, []byte{msgFenced, 1, 0, 1, 'o', 0, 0, 0, 0, 0, 0, 0, 5, 1, 1, 'b', 0, 1, 's'})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := EachRecord(tc.frame, func(typ RecordType, body []byte) error {
				var m Message
				return m.Decode(body)
			})
			if err == nil {
				t.Fatal("accepted a malformed frame")
			}
		})
	}
}

// TestMessageClass: a message's priority class survives encoding and
// forwarding, can be read from the record without decoding it, and a
// normal message's record is what it was before classes; a class that
// does not exist is refused.
func TestMessageClass(t *testing.T) {
	plain := AppendMsg(nil, &Message{Origin: []byte("na.a"), Seq: 1, Subject: []byte("s"), Data: []byte("x")}, 3, nil)
	if plain[RecordHeader] != 0 {
		t.Fatalf("a normal message's flags are %#x", plain[RecordHeader])
	}
	for _, c := range sendq.ServiceOrder() {
		rec := AppendMsg(nil, &Message{Origin: []byte("na.a"), Seq: 1, Subject: []byte("s"), Class: c, Data: []byte("x")}, 3, nil)
		fwd := AppendForward(nil, rec[RecordHeader:], 2, false)
		for _, r := range [][]byte{rec, fwd} {
			var m Message
			if err := m.Decode(r[RecordHeader:]); err != nil || m.Class != c {
				t.Fatalf("class %s decoded as %s (%v)", c, m.Class, err)
			}
			if got := RecordClass(r); got != c {
				t.Fatalf("class %s read as %s", c, got)
			}
		}
	}
	bad := bytes.Clone(plain)
	bad[RecordHeader] |= 3 << msgClassShift
	var m Message
	if err := m.Decode(bad[RecordHeader:]); err == nil {
		t.Fatal("class 3 accepted")
	}
	var d Drops
	d.AddRecords(DropLinkDown, slices.Concat(plain, AppendMsg(nil, &Message{Origin: []byte("na.a"), Subject: []byte("s"), Class: sendq.Low}, 3, nil), plain))
	if by := d.ByClass(); by["normal"]["link_down"] != 2 || by["low"]["link_down"] != 1 || by["high"]["link_down"] != 0 || d.Total() != 3 {
		t.Fatalf("drops by class %v", by)
	}
}
