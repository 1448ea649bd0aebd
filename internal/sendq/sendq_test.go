package sendq

import (
	"bytes"
	"testing"
)

func appendStr(s string) func([]byte) []byte {
	return func(b []byte) []byte { return append(b, s...) }
}

// TestQueueBounds: data past the limit is refused and counted, and what
// was queued before keeps its order; control data is never refused; a
// closed queue refuses everything and hands back the data it held.
func TestQueueBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		adds    []string
		ok      []bool
		want    string
		dropped uint64
	}{
		{"within the limit", []string{"aaaa", "bbbb"}, []bool{true, true}, "aaaabbbb", 0},
		{"the newest loses", []string{"aaaa", "bbbb", "cc"}, []bool{true, true, false}, "aaaabbbb", 1},
		{"one over the limit alone goes", []string{"aaaaaaaaaaaa"}, []bool{true}, "aaaaaaaaaaaa", 0},
		{"a later small one still fits", []string{"aaaaaaa", "bbbb", "c"}, []bool{true, false, true}, "aaaaaaac", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New(8)
			for i, s := range tc.adds {
				if got := q.Add(appendStr(s)); got != tc.ok[i] {
					t.Fatalf("add %q: %v, want %v", s, got, tc.ok[i])
				}
			}
			q.AddCtrl(appendStr("control past any limit"))
			if q.Queued() != len(tc.want) || q.Dropped() != tc.dropped {
				t.Fatalf("queued %d dropped %d, want %d and %d", q.Queued(), q.Dropped(), len(tc.want), tc.dropped)
			}
			ctrl, data, adds := q.TakeCounted(nil, nil, true)
			if string(ctrl) != "control past any limit" || string(data) != tc.want {
				t.Fatalf("took %q and %q", ctrl, data)
			}
			// The appends taken are those the queue accepted.
			accepted := 0
			for _, ok := range tc.ok {
				if ok {
					accepted++
				}
			}
			if adds != accepted {
				t.Fatalf("took %d appends, want %d", adds, accepted)
			}
			if _, _, adds := q.TakeCounted(nil, nil, true); adds != 0 {
				t.Fatalf("a second take counts %d appends", adds)
			}
		})
	}
}

func TestQueueTakeAndClose(t *testing.T) {
	q := New(1 << 10)
	q.Add(appendStr("data"))
	q.AddCtrl(appendStr("ctrl"))
	// Without data, only the control data is taken.
	ctrl, data := q.Take(make([]byte, 0, 16), make([]byte, 0, 16), false)
	if string(ctrl) != "ctrl" || len(data) != 0 || q.Queued() != 4 {
		t.Fatalf("took %q and %q, %d left", ctrl, data, q.Queued())
	}
	if got := q.TakeData(); string(got) != "data" || q.Queued() != 0 {
		t.Fatalf("took data %q", got)
	}
	q.Add(appendStr("late"))
	if got := q.Close(); !bytes.Equal(got, []byte("late")) {
		t.Fatalf("close handed back %q", got)
	}
	if q.Add(appendStr("x")) || q.Dropped() != 0 {
		t.Fatalf("a closed queue took data (dropped %d)", q.Dropped())
	}
	q.AddCtrl(appendStr("x"))
	if ctrl, data := q.Take(nil, nil, true); len(ctrl)+len(data) != 0 {
		t.Fatalf("a closed queue held %q and %q", ctrl, data)
	}
}

// TestKicker: a writer is woken once per batch, however many times its
// queue was fed, and only at the flush.
func TestKicker(t *testing.T) {
	a, b := New(64), New(64)
	var k Kicker
	for range 3 {
		a.Add(appendStr("x"))
		k.Add(a)
	}
	b.Add(appendStr("y"))
	k.Add(b)
	select {
	case <-a.Kick():
		t.Fatal("woken before the flush")
	default:
	}
	k.Flush()
	for _, q := range []*Queue{a, b} {
		select {
		case <-q.Kick():
		default:
			t.Fatal("not woken by the flush")
		}
		select {
		case <-q.Kick():
			t.Fatal("woken twice")
		default:
		}
	}
	k.Flush()
	select {
	case <-a.Kick():
		t.Fatal("woken by an empty flush")
	default:
	}
}

// TestFlushDirect: FlushDirect sends in the writer's place when the queue
// lets it (SetDirect), the writer lock is free and little waits; it wakes
// the writer when the writer holds the lock, when more than DirectMax
// waits, when the queue serves classes, when the send declines, and for a
// queue without SetDirect. Flush always wakes the writer.
func TestFlushDirect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		direct  bool // SetDirect
		decline bool // the send declines
		locked  bool // the writer holds its lock
		size    int
		class   Class
		flush   bool // Flush, not FlushDirect
		sent    bool
	}{
		{name: "sent in the writer's place", direct: true, size: 100, sent: true},
		{name: "at DirectMax", direct: true, size: DirectMax, sent: true},
		{name: "past DirectMax", direct: true, size: DirectMax + 1},
		{name: "writer busy", direct: true, locked: true, size: 100},
		{name: "declined", direct: true, decline: true, size: 100},
		{name: "classes served", direct: true, size: 100, class: High},
		{name: "no SetDirect", size: 100},
		{name: "Flush", direct: true, size: 100, flush: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New(1 << 20)
			var sent []byte
			if tc.direct {
				q.SetDirect(func() bool {
					if tc.decline {
						return false
					}
					_, sent = q.Take(nil, nil, true)
					return true
				})
			}
			var k Kicker
			q.AddClass(tc.class, appendStr(string(make([]byte, tc.size))))
			k.Add(q)
			if tc.locked {
				q.LockWriter()
			}
			if tc.flush {
				k.Flush()
			} else {
				k.FlushDirect()
			}
			if tc.locked {
				q.UnlockWriter()
			}
			woken := false
			select {
			case <-q.Kick():
				woken = true
			default:
			}
			if got := len(sent) == tc.size; got != tc.sent || woken == tc.sent {
				t.Fatalf("sent directly %v (%d bytes), writer woken %v; want sent %v", got, len(sent), woken, tc.sent)
			}
			if !tc.sent && q.Queued() != tc.size {
				t.Fatalf("%d bytes queued for the writer, want %d", q.Queued(), tc.size)
			}
		})
	}
}
