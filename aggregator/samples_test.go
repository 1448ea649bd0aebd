package aggregator

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/wayline/wayline/schema"
)

// TestArenaKeepsEveryFigure: samples of every shape, over several chunks,
// come back as they went in.
func TestArenaKeepsEveryFigure(t *testing.T) {
	reps := schema.Synthetic(1, 7, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	var ar arena
	var refs []sampleRef
	var want []schema.Link
	for i := range 3*chunkSamples + 5 {
		f := reps[0].Links[i%7]
		f.Costs = f.Costs[:i%3]
		f.Histogram.Buckets = f.Histogram.Buckets[:i%11]
		f.Samples.Window = -i
		f.RTT, f.Loss = math.NaN(), math.Copysign(0, -1)
		f.State = fmt.Sprint("state", i%5)
		if i%4 == 0 {
			f.Costs = append(f.Costs[:len(f.Costs):len(f.Costs)], schema.Cost{Profile: "p" + fmt.Sprint(i%9), Value: math.Inf(-1)})
		}
		refs = append(refs, ar.add(time.Unix(0, int64(i)), &f))
		want = append(want, f)
	}
	if len(ar.chunks) != 4 {
		t.Errorf("%d chunks, want 4", len(ar.chunks))
	}
	for i, r := range refs {
		got := ar.link(r, &want[i])
		if s, _ := ar.get(r); s.time != int64(i) {
			t.Fatalf("sample %d: time %d", i, s.time)
		}
		// %+v: NaN as NaN, and nil and empty slices alike.
		if g, w := fmt.Sprintf("%+v", *got), fmt.Sprintf("%+v", want[i]); g != w {
			t.Fatalf("sample %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

// TestNumWritesLikeFormatFloat: whole numbers, written the quick way,
// read as FormatFloat writes them.
func TestNumWritesLikeFormatFloat(t *testing.T) {
	for _, v := range []float64{0, 1, -1, 45, 99, 100, -100, 1e15, -1e15, 1<<53 - 1, 1 << 53, 1e20, 123456789012, 0.5, math.Copysign(0, -1)} {
		if g, w := num(v), strconv.FormatFloat(v, 'f', -1, 64); g != w {
			t.Errorf("num(%v) = %q, want %q", v, g, w)
		}
	}
}
