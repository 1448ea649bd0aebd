package sendq

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// quantum is the take size of the queues of these tests, whose clock
// stands still so that it stays so.
const quantum = 16 << 10

func newFixed(limit int) *Queue {
	q := New(limit)
	q.now = func() time.Time { return time.Time{} }
	q.quantum = quantum
	return q
}

// rec is an append of n bytes, all the letter of its class and number, so
// that a take can be read back: "h1h1h1".
func rec(tag string, n int) func([]byte) []byte {
	return func(b []byte) []byte { return append(b, strings.Repeat(tag, n/len(tag))...) }
}

// tags splits a take back into the tags of its appends, each n bytes.
func tags(data []byte, n int) []string {
	var out []string
	for len(data) >= n {
		out = append(out, string(data[:2]))
		data = data[n:]
	}
	return out
}

// TestClassOrder: once a queue holds another class than Normal, a take
// serves the classes from the highest, each in the order it was queued,
// and holds at most quantum bytes; the writer is woken again while data
// remains.
func TestClassOrder(t *testing.T) {
	const size = quantum / 4
	q := newFixed(1 << 20)
	for i, c := range []Class{Low, Normal, High, Low, High, Normal} {
		tag := []string{"n", "h", "l"}[c] + string(rune('0'+i))
		if ok, _ := q.AddClass(c, rec(tag, size)); !ok {
			t.Fatalf("append %d refused", i)
		}
	}
	_, data, adds := q.TakeCounted(nil, nil, true)
	if got, want := strings.Join(tags(data, size), " "), "h2 h4 n1 n5"; got != want || adds != 4 {
		t.Fatalf("first take %q (%d appends), want %q", got, adds, want)
	}
	select {
	case <-q.Kick():
	default:
		t.Fatal("data remains but the writer was not woken")
	}
	_, data, adds = q.TakeCounted(data, nil, true)
	if got, want := strings.Join(tags(data, size), " "), "l0 l3"; got != want || adds != 2 || q.Queued() != 0 {
		t.Fatalf("second take %q (%d appends, %d left), want %q", got, adds, q.Queued(), want)
	}
	select {
	case <-q.Kick():
		t.Fatal("woken with nothing left")
	default:
	}
	// An append larger than a take still goes, alone.
	q.AddClass(Low, rec("lx", 2*quantum))
	q.AddClass(Low, rec("ly", 2))
	if _, data, adds = q.TakeCounted(nil, nil, true); len(data) != 2*quantum || adds != 1 {
		t.Fatalf("took %d bytes in %d appends, want the large one alone", len(data), adds)
	}
}

// TestNormalOnlyTakesAll: a queue never given another class than Normal
// hands over everything at once, as a FIFO does, and its buffers are
// swapped, not copied.
func TestNormalOnlyTakesAll(t *testing.T) {
	q := New(1 << 20)
	for range 8 {
		q.Add(rec("n0", quantum/2))
	}
	spare := make([]byte, 0, 8*quantum)
	_, data, adds := q.TakeCounted(nil, spare, true)
	if len(data) != 4*quantum || adds != 8 {
		t.Fatalf("took %d bytes in %d appends, want all", len(data), adds)
	}
	q.Add(rec("n1", 2))
	_, again, _ := q.TakeCounted(nil, nil, true)
	if &again[0] != &spare[:1][0] {
		t.Fatal("the spare buffer was not swapped in")
	}
}

// TestTakePacing: the size of a take follows the rate the writer drains a
// backlogged queue at, TakeTime's worth within MinQuantum and MaxQuantum,
// growing no more than twofold a window; time the queue spent empty is no
// sample.
func TestTakePacing(t *testing.T) {
	var clock time.Time
	q := New(1 << 30)
	q.now = func() time.Time { return clock }
	fill := func() {
		for q.Queued() < 4*MaxQuantum {
			q.AddClass(Low, rec("l0", 500))
		}
	}
	// drain takes from the queue, kept backlogged, for span of the clock,
	// as a writer sending rate bytes a second would, and returns the size
	// of its takes as it goes.
	drain := func(rate float64, span time.Duration) []int {
		var sizes []int
		for end := clock.Add(span); clock.Before(end); {
			fill()
			_, data, _ := q.TakeCounted(nil, nil, true)
			sizes = append(sizes, len(data))
			clock = clock.Add(time.Duration(float64(len(data)) / rate * float64(time.Second)))
		}
		return sizes
	}
	if got := drain(125_000_000, PaceWindow/2); got[len(got)-1] > MinQuantum {
		t.Fatalf("takes of %d bytes before a window was measured, want at most %d", got[len(got)-1], MinQuantum)
	}
	if got := drain(125_000_000, 2*PaceWindow); got[len(got)-1] > 4*MinQuantum {
		t.Fatalf("takes of %d bytes two windows on: more than doubled a window", got[len(got)-1])
	}
	for _, tc := range []struct {
		rate     float64 // bytes per second
		min, max int
	}{
		{125_000_000, MaxQuantum - 500, MaxQuantum}, // 1 Gbit/s: capped
		{1_250_000, 24_500, 25_500},                 // 10 Mbit/s: 25 KB
		{125_000, MinQuantum, MinQuantum + 500},     // 1 Mbit/s: 2.5 KB
		{12_500, MinQuantum - 500, MinQuantum},      // 100 kbit/s: floored
	} {
		sizes := drain(tc.rate, 10*PaceWindow)
		if got := sizes[len(sizes)-1]; got < tc.min || got > tc.max {
			t.Errorf("at %.0f B/s takes of %d bytes, want %d-%d", tc.rate, got, tc.min, tc.max)
		}
	}
	// An idle hour after the queue emptied does not count.
	before := q.quantum
	q.TakeData()
	q.AddClass(Low, rec("l0", 500))
	q.TakeCounted(nil, nil, true)
	clock = clock.Add(time.Hour)
	q.AddClass(Low, rec("l0", 500))
	q.TakeCounted(nil, nil, true)
	if q.quantum != before {
		t.Fatalf("quantum %d after an idle hour, was %d", q.quantum, before)
	}
}

// TestTakeAtRate: a queue told its link's rate takes PacedTakeTime's
// worth of it, whole appends and at least one, whatever rate its writer
// drains it at, and serves its classes in order from the first take.
func TestTakeAtRate(t *testing.T) {
	var clock time.Time
	for _, tc := range []struct {
		rate    int64 // bytes a second
		appends int   // of 500 bytes, in each take
	}{
		{125_000, 1},         // 1 Mbit/s: 250 bytes, so one append
		{1_250_000, 5},       // 10 Mbit/s: 2.5 KB
		{12_500_000, 50},     // 100 Mbit/s: 25 KB
		{1_250_000_000, 131}, // 10 Gbit/s: capped at MaxQuantum
	} {
		q := New(1 << 30)
		q.now = func() time.Time { return clock }
		q.TakeAtRate(tc.rate)
		if !q.Classed() {
			t.Fatalf("rate %d: queue not classed", tc.rate)
		}
		q.AddClass(High, rec("h0", 500))
		for i := range 3 * PaceWindow / TakeTime {
			for q.Queued() < 2*MaxQuantum {
				q.Add(rec("n0", 500))
			}
			_, data, adds := q.TakeCounted(nil, nil, true)
			if adds != tc.appends || len(data) != 500*adds {
				t.Fatalf("rate %d, take %d: %d appends, %d bytes; want %d appends", tc.rate, i, adds, len(data), tc.appends)
			}
			if i == 0 && tags(data, 500)[0] != "h0" {
				t.Fatalf("rate %d: first take begins %q, want the high class", tc.rate, tags(data, 500)[0])
			}
			clock = clock.Add(time.Second) // a slow writer: the quantum stays
		}
	}
}

// TestStarvationBound: with the higher class always waiting, a lower
// class with data waiting gets a take of its own in every StarveTakes
// takes, and no more often.
func TestStarvationBound(t *testing.T) {
	const size = quantum / 2
	q := newFixed(1 << 30)
	for range 100 {
		q.AddClass(Low, rec("l0", size))
	}
	var served []int
	for take := range 5 * StarveTakes {
		// The high class always has more than a take waiting.
		for q.lanes[High].bytes() < 2*quantum {
			q.AddClass(High, rec("h0", size))
		}
		_, data, _ := q.TakeCounted(nil, nil, true)
		for _, tag := range tags(data, size) {
			if tag == "l0" {
				served = append(served, take)
				break
			}
		}
	}
	if len(served) != 5 {
		t.Fatalf("low served in takes %v, want 5 times", served)
	}
	for i, take := range served {
		if want := (i+1)*StarveTakes - 1; take != want {
			t.Fatalf("low served in takes %v, want every %d", served, StarveTakes)
		}
	}
	// Both lower classes starving at once both get out within the bound.
	q = newFixed(1 << 30)
	q.AddClass(Normal, rec("n0", quantum))
	q.AddClass(Low, rec("l0", quantum))
	for take := range StarveTakes {
		for q.lanes[High].bytes() < 2*quantum {
			q.AddClass(High, rec("h0", size))
		}
		q.TakeCounted(nil, nil, true)
		if take < StarveTakes-1 && q.lanes[Normal].appends()+q.lanes[Low].appends() != 2 {
			t.Fatalf("a lower class served early, in take %d", take)
		}
	}
	if q.lanes[Normal].appends()+q.lanes[Low].appends() != 0 {
		t.Fatal("a starving class waited more than StarveTakes takes")
	}
}

// TestDropOrder: a full queue makes room for a higher class by evicting
// the newest appends of the lowest class first, counting them by class;
// an append that lower classes cannot make room for is dropped and
// counted; what remains keeps its order.
func TestDropOrder(t *testing.T) {
	const size = 4
	for _, tc := range []struct {
		name    string
		adds    []string // tags: class letter and number
		ok      string   // "y" accepted, "n" refused, per add
		left    string   // what a take gives, in order
		dropped [NumClasses]uint64
		evicted [NumClasses]int
	}{
		{"high evicts the newest low", []string{"l1", "l2", "l3", "h1"}, "yyyy", "h1 l1 l2", [NumClasses]uint64{Low: 1}, [NumClasses]int{Low: 1}},
		{"high evicts low before normal", []string{"n1", "l1", "n2", "h1", "h2"}, "yyyyy", "h1 h2 n1", [NumClasses]uint64{Low: 1, Normal: 1}, [NumClasses]int{Low: 1, Normal: 1}},
		{"normal evicts low", []string{"l1", "n1", "l2", "n2"}, "yyyy", "n1 n2 l1", [NumClasses]uint64{Low: 1}, [NumClasses]int{Low: 1}},
		{"low is dropped at a full queue", []string{"h1", "n1", "l1", "l2"}, "yyyn", "h1 n1 l1", [NumClasses]uint64{Low: 1}, [NumClasses]int{}},
		{"normal does not evict high", []string{"h1", "h2", "h3", "n1"}, "yyyn", "h1 h2 h3", [NumClasses]uint64{Normal: 1}, [NumClasses]int{}},
		{"high does not evict high", []string{"l1", "h1", "h2", "h3", "h4"}, "yyyyn", "h1 h2 h3", [NumClasses]uint64{High: 1, Low: 1}, [NumClasses]int{Low: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New(3 * size)
			var evicted [NumClasses]int
			for i, tag := range tc.adds {
				c := map[byte]Class{'h': High, 'n': Normal, 'l': Low}[tag[0]]
				got, ev := q.AddClass(c, rec(tag, size))
				if got != (tc.ok[i] == 'y') {
					t.Fatalf("add %s: %v", tag, got)
				}
				for x := range NumClasses {
					if ev.Bytes[x] != ev.Appends[x]*size || (ev.Appends[x] > 0 && !slices.Contains(c.below(), x)) {
						t.Fatalf("add %s evicted %+v", tag, ev)
					}
					evicted[x] += ev.Appends[x]
				}
			}
			if q.Queued() > 3*size {
				t.Fatalf("%d bytes queued past the limit", q.Queued())
			}
			_, data, adds := q.TakeCounted(nil, nil, true)
			if got := strings.Join(tags(data, size), " "); got != tc.left || adds != len(tags(data, size)) {
				t.Fatalf("took %q in %d appends, want %q", got, adds, tc.left)
			}
			var total uint64
			for c := range NumClasses {
				if q.DroppedClass(c) != tc.dropped[c] || evicted[c] != tc.evicted[c] {
					t.Fatalf("class %s: dropped %d, evicted %d; want %d and %d", c, q.DroppedClass(c), evicted[c], tc.dropped[c], tc.evicted[c])
				}
				total += tc.dropped[c]
			}
			if q.Dropped() != total {
				t.Fatalf("dropped %d in all, want %d", q.Dropped(), total)
			}
		})
	}
}

// TestTakeDataByClass: what a link that goes down leaves queued comes
// back whole, the highest class first, whatever the takes took before.
func TestTakeDataByClass(t *testing.T) {
	q := New(1 << 20)
	q.AddClass(Low, rec("l1", 2))
	q.AddClass(High, rec("h1", 2))
	q.AddClass(Normal, rec("n1", 2))
	if got := string(q.TakeData()); got != "h1n1l1" || q.Queued() != 0 {
		t.Fatalf("took %q, %d left", got, q.Queued())
	}
	q.AddClass(Low, rec("l2", 2))
	if got := string(q.Close()); got != "l2" {
		t.Fatalf("close handed back %q", got)
	}
}

func TestParseClass(t *testing.T) {
	for _, c := range ServiceOrder() {
		if got, err := ParseClass(c.String()); err != nil || got != c {
			t.Fatalf("%s: %v %v", c, got, err)
		}
	}
	if _, err := ParseClass("urgent"); err == nil {
		t.Fatal("an unknown class was accepted")
	}
}
