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

// A burst whose frames the path shuffles within the reordering wait loses
// nothing: hundreds of frames may wait at once behind the first.
func TestResequencerDeepReorder(t *testing.T) {
	q := newResequencer()
	n := 0
	deliver := func(b []byte) { n += CountRecords(b) }
	t0 := time.Now()
	const frames = 800
	var lost uint64
	for i := frames; i >= 1; i-- { // the worst order: the last first
		lost += q.push(uint64(i), recs(i), t0, deliver)
	}
	if lost != 0 || n != frames || q.handedOn() != frames {
		t.Fatalf("%d frames in reverse: handed on %d, lost %d", frames, n, lost)
	}
}

// A lossy link's receiver repeats its latest acknowledgement while
// messages flow, so that a lost one does not stall the sender's window,
// and stops when they stop.
func TestAckEcho(t *testing.T) {
	var e ackEcho
	t0 := time.Now()
	if got := e.repeat(nil, 0, t0); len(got) != 0 {
		t.Fatalf("nothing received, yet an acknowledgement: %x", got)
	}
	got := e.repeat(nil, 7, t0)
	typ, body, ok := firstRecord(got)
	if !ok || typ != RecDataAck || len(body) != 8 || body[7] != 7 {
		t.Fatalf("repeat of 7: %x", got)
	}
	if got := e.repeat(nil, 7, t0.Add(ackEchoEvery/2)); len(got) != 0 {
		t.Fatalf("repeated again within %v", ackEchoEvery)
	}
	if got := e.repeat(nil, 7, t0.Add(ackEchoEvery)); len(got) == 0 {
		t.Fatalf("not repeated after %v", ackEchoEvery)
	}
	if got := e.repeat(nil, 7, t0.Add(ackEchoFor+time.Millisecond)); len(got) != 0 {
		t.Fatalf("still repeated %v after the count last moved", ackEchoFor)
	}
	if got := e.repeat(nil, 9, t0.Add(ackEchoFor+2*time.Millisecond)); len(got) == 0 {
		t.Fatal("a new count is not sent")
	}
}

func firstRecord(b []byte) (RecordType, []byte, bool) {
	var typ RecordType
	var body []byte
	found := false
	_ = EachRecord(b, func(t RecordType, bd []byte) error {
		if !found {
			typ, body, found = t, bd, true
		}
		return nil
	})
	return typ, body, found
}
