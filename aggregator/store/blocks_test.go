package store

import (
	"bytes"
	"fmt"
	"testing"
)

// blockCases are blocks of the shapes the compactor writes: the links of
// detailCases, one measurement each 5 s, and one alone.
func blockCases(t testing.TB) [][]packed {
	var ps []packed
	for i, l := range detailCases() {
		head, hist, err := splitDetail(appendDetail(nil, &l))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, packed{t: int64(i) * 5e9, state: []byte(l.State), monitor: []byte(l.Monitor),
			figs: [4]float64{l.RTT, l.Latency.Mean, l.Jitter, l.Loss}, head: head, hist: hist})
	}
	return [][]packed{ps, ps[:1]}
}

// TestBlockRoundTrip: a block decodes to what was packed, and each
// measurement's detail parts join into the detail they were split from.
func TestBlockRoundTrip(t *testing.T) {
	for _, ps := range blockCases(t) {
		figs, summ, hist := encodeBlock(ps)
		got, err := decodeBlock(ps[0].t, figs, summ, hist)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", ps); g != w {
			t.Errorf("block:\n got %s\nwant %s", g, w)
		}
		for _, cut := range []int{1, len(figs) / 2, len(figs) - 1} {
			if _, err := decodeBlock(ps[0].t, figs[:cut], summ, hist); err == nil {
				t.Errorf("figs cut to %d of %d bytes decoded", cut, len(figs))
			}
		}
		if _, err := decodeBlock(ps[0].t, figs, summ, append(bytes.Clone(hist), 0)); err == nil {
			t.Error("a histogram part with a byte too many decoded")
		}
	}
	for _, l := range detailCases() {
		d := appendDetail(nil, &l)
		head, hist, err := splitDetail(d)
		if err != nil || !bytes.Equal(append(bytes.Clone(head), hist...), d) {
			t.Errorf("splitDetail(%x) = %x, %x, %v", d, head, hist, err)
		}
	}
}

// FuzzDecodeBlock: a stored block is read back whatever its bytes: it
// decodes or fails with an error, never panics or allocates beyond its
// size, and what decodes packs to the same bytes.
func FuzzDecodeBlock(f *testing.F) {
	for _, ps := range blockCases(f) {
		figs, summ, hist := encodeBlock(ps)
		f.Add(figs, summ, hist)
	}
	f.Fuzz(func(t *testing.T, figs, summ, hist []byte) {
		ps, err := decodeBlock(0, figs, summ, hist)
		if err != nil || len(ps) == 0 {
			return
		}
		if len(ps) > len(figs) {
			t.Fatalf("%d bytes made %d measurements", len(figs), len(ps))
		}
		f2, s2, h2 := encodeBlock(ps)
		back, err := decodeBlock(0, f2, s2, h2)
		if err != nil || fmt.Sprintf("%+v", back) != fmt.Sprintf("%+v", ps) {
			t.Fatalf("decoded to %+v, which came back as %+v, %v", ps, back, err)
		}
	})
}
