package broker

import "testing"

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
