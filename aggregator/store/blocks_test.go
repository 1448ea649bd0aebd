package store

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/wayline/wayline/schema"
)

// blockCases are blocks of the shapes the compactor writes: the links of
// detailCases, one measurement each 5 s, with bounds shared and not, and
// one alone.
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
	// Bounds that only their bits tell apart.
	h := schema.Histogram{Missing: math.NaN(), Buckets: []schema.Bucket{
		{LE: math.Copysign(0, -1), Count: 1}, {LE: 0, Count: 2}, {LE: math.NaN(), Count: 3}, {LE: math.Inf(1), Count: 4}}}
	last := ps[len(ps)-1]
	last.t += 5e9
	last.hist = appendHistogram(nil, &h)
	ps = append(ps, last)
	return [][]packed{ps, ps[:1]}
}

// TestBlockRoundTrip: a block decodes to what was packed, and each
// measurement's detail parts join into the detail they were split from.
func TestBlockRoundTrip(t *testing.T) {
	for _, ps := range blockCases(t) {
		figs, detail, err := encodeBlock(ps)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeBlock(ps[0].t, figs, detail)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", ps); g != w {
			t.Errorf("block:\n got %s\nwant %s", g, w)
		}
		for _, cut := range []int{1, len(figs) / 2, len(figs) - 1} {
			if _, err := decodeBlock(ps[0].t, figs[:cut], detail); err == nil {
				t.Errorf("figs cut to %d of %d bytes decoded", cut, len(figs))
			}
		}
		for _, cut := range []int{1, len(detail) / 2, len(detail) - 1} {
			if _, err := decodeBlock(ps[0].t, figs, detail[:cut]); err == nil {
				t.Errorf("detail cut to %d of %d bytes decoded", cut, len(detail))
			}
		}
		if _, err := decodeBlock(ps[0].t, figs, append(bytes.Clone(detail), 0)); err == nil {
			t.Error("a detail with a byte too many decoded")
		}
	}
	bad := blockCases(t)[0]
	bad[1].hist = []byte{0x80}
	if _, _, err := encodeBlock(bad); err == nil {
		t.Error("a measurement with a broken histogram packed")
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
		figs, detail, err := encodeBlock(ps)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(figs, detail)
	}
	f.Fuzz(func(t *testing.T, figs, detail []byte) {
		ps, err := decodeBlock(0, figs, detail)
		if err != nil || len(ps) == 0 {
			return
		}
		if len(ps) > len(figs) {
			t.Fatalf("%d bytes made %d measurements", len(figs), len(ps))
		}
		f2, d2, err := encodeBlock(ps)
		if err != nil {
			t.Fatalf("decoded to %+v, which does not pack: %v", ps, err)
		}
		back, err := decodeBlock(0, f2, d2)
		if err != nil || fmt.Sprintf("%+v", back) != fmt.Sprintf("%+v", ps) {
			t.Fatalf("decoded to %+v, which came back as %+v, %v", ps, back, err)
		}
	})
}
