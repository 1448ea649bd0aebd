package overlay

import (
	"bytes"
	"testing"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/router"
)

// decodeFrame runs the overlay's decoders over a frame, as a session's
// reader would: messages, the numbers of pings, pongs, acknowledgements
// and data sequences, refusals, and the records inside reliable
// envelopes. Control records are the broker's (its FuzzControlRecords).
func decodeFrame(frame []byte) error {
	var m Message
	return EachRecord(frame, func(t RecordType, body []byte) error {
		var err error
		switch t {
		case RecMsg:
			err = m.Decode(body)
		case RecRefuse:
			_, err = DecodeStrRecord(body)
		case RecPing, RecPong, RecAck, RecDataAck, RecDataSeq:
			_, err = DecodeU64Record(body)
		case RecCtl:
			var inner []byte
			if _, inner, err = decodeCtl(body); err == nil {
				err = decodeFrame(inner)
			}
		}
		return err
	})
}

// FuzzFrame feeds arbitrary frames to the overlay decoders: they may
// refuse a frame, never crash, and what they accept re-encodes to the same
// bytes.
func FuzzFrame(f *testing.F) {
	f.Add(AppendMsg(nil, &Message{Origin: []byte("na.a"), Seq: 1, Subject: []byte("a.b"), Reply: []byte("r"), HasHdr: true, HdrLen: 1, Data: []byte("hx")}, 3, []Dest{{Broker: []byte("na.b"), Queues: [][]byte{[]byte("q")}}}))
	f.Add(AppendMsg(nil, &Message{Origin: []byte("na.a"), Seq: 2, Subject: []byte("a.b"), Data: []byte("x")}, 9, []Dest{{Broker: []byte("na.b")}, {Broker: []byte("eu.c.d"), Exits: []router.Exit{{Broker: "eu.x.a", Link: "l9"}}}}))
	f.Add(AppendMsg(nil, &Message{Origin: []byte("na.a"), Seq: 3, Subject: []byte("alerts.x"), Class: sendq.High, Data: []byte("x")}, 4, nil))
	f.Add(AppendMsg(nil, &Message{Origin: []byte("na.a"), Seq: 4, Fenced: true, Subject: []byte("a.b"), Data: []byte("x")}, 4, []Dest{{Broker: []byte("na.b"), Stream: 9, Num: 300}, {Broker: []byte("na.c")}}))
	f.Add(appendCtl(nil, 1, AppendStrRecord(nil, RecSyncReq, "na.a")))
	f.Add(append(AppendU64Record(nil, RecDataSeq, 7), AppendU64Record(nil, RecDataAck, 3)...))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if err := decodeFrame(frame); err != nil {
			return
		}
		// Messages that decode re-encode identically.
		_ = EachRecord(frame, func(typ RecordType, body []byte) error {
			if typ != RecMsg {
				return nil
			}
			var m Message
			if m.Decode(body) != nil {
				t.Fatal("decoded once, not twice")
			}
			dests := append([]Dest(nil), m.Dests...)
			again := AppendMsg(nil, &m, m.Hops, dests)
			if !bytes.Equal(again[RecordHeader:], body) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again[RecordHeader:], body)
			}
			return nil
		})
	})
}
