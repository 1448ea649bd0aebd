package overlay

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"
)

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

// TestReliableControlOverLoss runs the control envelopes through a channel
// that loses, duplicates and reorders: every record arrives once, in order.
func TestReliableControlOverLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var send relSend
	send.next = 1
	recv := newRelRecv()
	var got []string
	var want []string
	var wire [][]byte
	now := time.Unix(1000, 0)
	for step := 0; step < 2000; step++ {
		now = now.Add(relTick)
		var ctrl []byte
		if step < 500 {
			s := strconv.Itoa(step)
			want = append(want, s)
			ctrl = AppendStrRecord(ctrl, RecSyncReq, s)
		}
		out := send.wrap(ctrl, now)
		_ = EachRecord(out, func(_ RecordType, body []byte) error {
			if rng.Float64() < 0.3 {
				return nil // lost
			}
			wire = append(wire, append([]byte(nil), body...))
			if rng.Float64() < 0.1 {
				wire = append(wire, append([]byte(nil), body...)) // duplicated
			}
			return nil
		})
		rng.Shuffle(len(wire), func(i, j int) { wire[i], wire[j] = wire[j], wire[i] })
		for _, body := range wire {
			seq, inner, err := decodeCtl(body)
			if err != nil {
				t.Fatal(err)
			}
			ack, err := recv.receive(seq, inner, func(rec []byte) error {
				return EachRecord(rec, func(_ RecordType, b []byte) error {
					o, err := DecodeStrRecord(b)
					got = append(got, o)
					return err
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if rng.Float64() < 0.7 {
				send.ack(ack) // acks are lossy too
			}
		}
		wire = wire[:0]
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %d records, want %d in order", len(got), len(want))
	}
	if len(send.unacked) != 0 {
		t.Fatalf("%d envelopes never acknowledged", len(send.unacked))
	}
}
