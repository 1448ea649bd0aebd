package overlay

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// recs encodes message records standing for the numbers given.
func recs(nums ...int) []byte {
	var b []byte
	for _, n := range nums {
		b = AppendStrRecord(b, RecMsg, fmt.Sprint(n))
	}
	return b
}

// names decodes what recs encoded.
func names(b []byte) []string {
	var out []string
	EachRecord(b, func(_ RecordType, body []byte) error {
		s, _ := DecodeStrRecord(body)
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

// TestRetainerSpares: the buffers of acknowledged batches come back to the
// writer to fill again: four larger ones, and small ones up to spareMax,
// so that a link sending a message at a time allocates nothing per
// message however many wait for their acknowledgement; the larger ones
// come back first.
func TestRetainerSpares(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n, size   int
		wantCount int
	}{
		{"small ones, up to spareMax and four", 300, 256, spareMax + 4},
		{"large ones, four", 10, spareSmall + 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var evicted atomic.Uint64
			r := newRetainer(1<<30, time.Minute, &evicted)
			now := time.Now()
			for range tc.n {
				r.keep(append(make([]byte, 0, tc.size), recs(1)...), now)
			}
			r.ack(r.sent)
			got := 0
			for r.keep(recs(1), now) != nil {
				got++
			}
			if got != tc.wantCount {
				t.Errorf("%d buffers came back, want %d", got, tc.wantCount)
			}
		})
	}
	var evicted atomic.Uint64
	r := newRetainer(1<<30, time.Minute, &evicted)
	now := time.Now()
	r.keep(append(make([]byte, 0, 256), recs(1)...), now)
	r.keep(append(make([]byte, 0, spareSmall+1), recs(2)...), now)
	r.ack(2)
	if got := cap(r.keep(recs(3), now)); got != spareSmall+1 {
		t.Errorf("the first buffer back holds %d bytes, want the larger one's %d", got, spareSmall+1)
	}
}
