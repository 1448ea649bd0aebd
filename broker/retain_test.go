package broker

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wayline/wayline/overlay"
)

// recs encodes message records standing for the numbers given.
func recs(nums ...int) []byte {
	var b []byte
	for _, n := range nums {
		b = overlay.AppendStrRecord(b, overlay.RecMsg, fmt.Sprint(n))
	}
	return b
}

// names decodes what recs encoded.
func names(b []byte) []string {
	var out []string
	overlay.EachRecord(b, func(_ overlay.RecordType, body []byte) error {
		s, _ := overlay.DecodeStrRecord(body)
		out = append(out, s)
		return nil
	})
	return out
}

func TestRetainer(t *testing.T) {
	var evicted atomic.Uint64
	r := newRetainer(1<<20, time.Minute, &evicted)
	now := time.Now()
	r.keep(recs(1, 2, 3), now)
	r.keep(recs(4, 5), now)
	r.ack(2)
	if got := fmt.Sprint(names(r.unacked())); got != "[3 4 5]" {
		t.Fatalf("unacknowledged %s, want [3 4 5]", got)
	}
	// Numbering goes on after a failover; what came back is gone.
	r.keep(recs(6), now)
	if r.next() != 7 {
		t.Fatalf("next record %d, want 7", r.next())
	}
	r.ack(6)
	if got := names(r.unacked()); len(got) != 0 || r.held() != 0 {
		t.Fatalf("after the last ack: %v, %d bytes held", got, r.held())
	}
	// Acknowledgements past what was sent, or going back, change nothing.
	r.keep(recs(7, 8), now)
	r.ack(100)
	r.ack(3)
	if got := fmt.Sprint(names(r.unacked())); got != "[7 8]" {
		t.Fatalf("unacknowledged %s, want [7 8]", got)
	}
	// Past the bounds, the oldest are given up, and counted.
	small := newRetainer(40, time.Minute, &evicted)
	small.keep(recs(1, 2), now)
	small.keep(recs(3, 4), now)
	small.keep(recs(5, 6), now)
	if evicted.Load() == 0 || len(names(small.unacked())) >= 6 {
		t.Fatalf("nothing evicted past 40 bytes: %d", evicted.Load())
	}
	old := newRetainer(1<<20, time.Second, &evicted)
	before := evicted.Load()
	old.keep(recs(1), now)
	old.keep(recs(2), now.Add(2*time.Second))
	if evicted.Load() != before+1 || fmt.Sprint(names(old.unacked())) != "[2]" {
		t.Fatalf("an old batch was not given up: %d", evicted.Load()-before)
	}
}

func TestResequencer(t *testing.T) {
	q := newResequencer()
	var out []string
	deliver := func(b []byte) { out = append(out, names(b)...) }
	t0 := time.Now()
	lost := q.push(1, recs(1, 2), t0, deliver)
	lost += q.push(5, recs(5), t0, deliver)    // early: waits for 3 and 4
	lost += q.push(3, recs(3, 4), t0, deliver) // fills the gap
	lost += q.push(3, recs(3, 4), t0, deliver) // a copy
	if fmt.Sprint(out) != "[1 2 3 4 5]" || lost != 0 || q.handedOn() != 5 {
		t.Fatalf("handed on %v, lost %d, acknowledged %d", out, lost, q.handedOn())
	}
	// 6 and 7 never come: 8 waits, then they are given up.
	lost = q.push(8, recs(8), t0, deliver)
	if lost != 0 || len(out) != 5 {
		t.Fatalf("8 handed on before its wait: %v", out)
	}
	lost = q.expire(t0.Add(reorderWait+time.Millisecond), deliver)
	if lost != 2 || fmt.Sprint(out) != "[1 2 3 4 5 8]" || q.handedOn() != 8 {
		t.Fatalf("after the wait: handed on %v, lost %d", out, lost)
	}
	// Too many frames waiting: the oldest gap is given up at once.
	for i := range maxHeld + 1 {
		lost = q.push(uint64(10+i), recs(10+i), t0.Add(time.Minute), deliver)
	}
	if lost != 1 || q.handedOn() != uint64(10+maxHeld) {
		t.Fatalf("with %d frames waiting: lost %d, acknowledged %d", maxHeld+1, lost, q.handedOn())
	}
}
