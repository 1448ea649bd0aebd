package overlay

import (
	"fmt"
	"testing"
	"time"
)

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
