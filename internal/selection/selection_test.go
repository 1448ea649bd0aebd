package selection

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNth: the selection agrees with a sort, ties and all.
func TestNth(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	for n := 1; n < 200; n += 7 {
		xs := make([]float64, n)
		ys := make([]int64, n)
		for i := range xs {
			xs[i] = float64(r.IntN(n/3 + 1))
			ys[i] = r.Int64N(int64(n)) - int64(n/2)
		}
		sx, sy := slices.Clone(xs), slices.Clone(ys)
		slices.Sort(sx)
		slices.Sort(sy)
		for k := range n {
			if got := Nth(slices.Clone(xs), k); got != sx[k] {
				t.Fatalf("n %d: %d-th least %v, want %v", n, k, got, sx[k])
			}
			if got := Nth(slices.Clone(ys), k); got != sy[k] {
				t.Fatalf("int64, n %d: %d-th least %v, want %v", n, k, got, sy[k])
			}
		}
	}
}
