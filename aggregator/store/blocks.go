package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/wayline/wayline/schema"
)

// Measurements are written one row each (see save.go): that is what
// storing them fast needs. Read back one row each, an hour of a thousand
// links is three quarters of a million rows, and converting rows one at a
// time was most of what a query over it cost. So the compactor (see
// compact.go) packs the rows of each link, reporting broker and window of
// blockSpan into a block, once the window has passed: a row of table
// measurement_blocks. A block's measurements are in two parts, each a
// column, so that a query of the figures alone reads a fifth of the
// bytes:
//
//	figs    byte 2, uvarint count, then for each measurement:
//	        varint   its time minus the one before's (the first's: 0)
//	        uvarint  length, then the state; the same for the monitor state
//	        4 numbers rtt, lat_mean, jitter, loss as stored (NaN for NULL)
//	detail  byte 2, uvarint count of bucket bounds, the bounds (numbers),
//	        then for each measurement:
//	        uvarint  length, then its detail up to its histogram (the
//	                 detail's version, latency summary, counters and
//	                 costs; see codec.go)
//	        uvarint  length, then its histogram: number missing, uvarint
//	                 count of buckets, and for each its bound (uvarint,
//	                 an index into the bounds) and count (number)
//
// Numbers are written as in details, so every value comes back exactly;
// version 1 blocks, from before numbers could be thousandths, are read as
// ever.
// The bounds of a link's buckets are the same from one report to the next,
// so a block lists them once: a bucket then takes two or three bytes
// rather than ten. Figures and detail are apart so that a query of the
// figures alone reads a fifth of the bytes; the detail is one column
// rather than two because the server keeps each long column of a row in
// pages of its own, and a query of the histograms read twice as many
// pages from disk when they were apart.
//
// t0 is the time of the block's first measurement, t1 of its last; all of
// a block's measurements are in one window [w, w+blockSpan) with w a
// multiple of blockSpan, so a block holding measurements of [lo, hi) has
// lo-blockSpan < t0 < hi. A window's measurements of one link and broker
// are one block unless they are more than blockMaxCount or blockMaxBytes,
// when they are several.

// blockSpan is the window of time a block packs.
const blockSpan = int64(5 * time.Minute)

const (
	blockVersion  = 2
	blockMaxCount = 1024
	blockMaxBytes = 1 << 20
)

// window is the start of the window that holds time t.
func window(t int64) int64 {
	w := t - t%blockSpan
	if t%blockSpan < 0 {
		w -= blockSpan
	}
	return w
}

// packed is one measurement as a block holds it: the stored figures, and
// the detail split before its histogram (as splitDetail splits it).
type packed struct {
	t              int64
	state, monitor []byte
	figs           [4]float64 // rtt, lat_mean, jitter, loss; NaN for NULL
	head, hist     []byte
}

// size is about how many bytes p takes in a block.
func (p *packed) size() int {
	return 48 + len(p.state) + len(p.monitor) + len(p.head) + len(p.hist)
}

// encodeBlock packs ps, which are in time order, all in one window. It
// fails when a histogram cannot be read.
func encodeBlock(ps []packed) (figs, detail []byte, err error) {
	n := 0
	for i := range ps {
		n += ps[i].size()
	}
	figs = make([]byte, 0, 16+len(ps)*40)
	figs = append(figs, blockVersion)
	figs = binary.AppendUvarint(figs, uint64(len(ps)))
	// The bounds, each once, in the order they come.
	var (
		bounds  []float64
		boundAt = map[uint64]uint64{} // by the bound's bits
		hists   = make([]schema.Histogram, len(ps))
		hs      slabs
	)
	for i := range ps {
		if err := decodeHistogram(ps[i].hist, &hists[i], &hs); err != nil {
			return nil, nil, fmt.Errorf("measurement at %d: %w", ps[i].t, err)
		}
		for _, b := range hists[i].Buckets {
			if _, ok := boundAt[math.Float64bits(b.LE)]; !ok {
				boundAt[math.Float64bits(b.LE)] = uint64(len(bounds))
				bounds = append(bounds, b.LE)
			}
		}
	}
	detail = make([]byte, 0, 16+9*len(bounds)+n)
	detail = append(detail, blockVersion)
	detail = binary.AppendUvarint(detail, uint64(len(bounds)))
	for _, b := range bounds {
		detail = appendNumber(detail, b)
	}
	prev := ps[0].t
	var hist []byte
	for i := range ps {
		p := &ps[i]
		figs = binary.AppendVarint(figs, p.t-prev)
		prev = p.t
		figs = appendBytes(figs, p.state)
		figs = appendBytes(figs, p.monitor)
		for _, f := range p.figs {
			figs = appendNumber(figs, f)
		}
		detail = appendBytes(detail, p.head)
		hist = appendNumber(hist[:0], hists[i].Missing)
		hist = binary.AppendUvarint(hist, uint64(len(hists[i].Buckets)))
		for _, b := range hists[i].Buckets {
			hist = binary.AppendUvarint(hist, boundAt[math.Float64bits(b.LE)])
			hist = appendNumber(hist, b.Count)
		}
		detail = appendBytes(detail, hist)
	}
	return figs, detail, nil
}

// appendHistogram appends h as a detail's histogram part.
func appendHistogram(b []byte, h *schema.Histogram) []byte {
	b = appendNumber(b, h.Missing)
	b = binary.AppendUvarint(b, uint64(len(h.Buckets)))
	for _, k := range h.Buckets {
		b = appendNumber(b, k.LE)
		b = appendNumber(b, k.Count)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// bytes reads what appendBytes wrote; the result shares r's bytes.
func (r *detailReader) bytes(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// blockReader reads a block's measurements in order: figs always, the
// detail when it is not nil.
type blockReader struct {
	figs, detail detailReader
	bounds       []float64
	left, read   int   // measurements not read yet, and read
	t            int64 // the time of the last one read
}

// open starts reading a block whose first measurement is at t0.
func (r *blockReader) open(t0 int64, figs, detail []byte) error {
	*r = blockReader{t: t0, bounds: r.bounds[:0]}
	r.figs.b, r.detail.b = figs, detail
	for _, part := range []*detailReader{&r.figs, &r.detail} {
		if part.b == nil {
			continue
		}
		if len(part.b) == 0 || part.b[0] != 1 && part.b[0] != blockVersion {
			return fmt.Errorf("block: not version 1 or %d", blockVersion)
		}
		part.b = part.b[1:]
	}
	n := r.figs.uvarint("block count")
	// A measurement takes at least 7 bytes of figs.
	if r.figs.err != nil || n > uint64(len(r.figs.b)/7) {
		return fmt.Errorf("block: bad count")
	}
	r.left = int(n)
	if detail != nil {
		for k := r.detail.count("bounds"); k > 0; k-- {
			r.bounds = append(r.bounds, r.detail.number("bound"))
		}
		if r.detail.err != nil {
			return r.detail.err
		}
	}
	return nil
}

// next reads the next measurement into p, whose byte slices then share
// the block's; head and hist stay nil when the detail is not read, and
// hist is as the block holds it (see histogram). It returns false at the
// end of the block, or on an error, which err returns.
func (r *blockReader) next(p *packed) bool {
	if r.left == 0 || r.err() != nil {
		return false
	}
	first := r.read == 0
	r.left--
	r.read++
	d := r.figs.varint("time")
	// t0 is the first measurement's time, and times do not go back.
	if d < 0 || first && d != 0 || r.t > math.MaxInt64-d {
		r.figs.fail("time")
		return false
	}
	r.t += d
	p.t = r.t
	p.state = r.figs.bytes("state")
	p.monitor = r.figs.bytes("monitor")
	for i := range p.figs {
		p.figs[i] = r.figs.number("figure")
	}
	p.head, p.hist = nil, nil
	if r.detail.b != nil {
		p.head = r.detail.bytes("summary")
		p.hist = r.detail.bytes("histogram")
	}
	return r.err() == nil
}

// histogram reads into h a histogram as next left it in a packed
// measurement.
func (r *blockReader) histogram(b []byte, h *schema.Histogram, s *slabs) error {
	d := &detailReader{b: b}
	*h = schema.Histogram{Missing: d.number("histogram")}
	if n := d.count("histogram"); n > 0 {
		h.Buckets = s.takeBuckets(n)
		for i := range h.Buckets {
			k := d.uvarint("bucket")
			if k >= uint64(len(r.bounds)) {
				d.fail("bucket bound")
				break
			}
			h.Buckets[i] = schema.Bucket{LE: r.bounds[k], Count: d.number("bucket")}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("histogram length")
	}
	return d.err
}

// err is the first error of reading the block; at its end, a part with
// bytes left over is one.
func (r *blockReader) err() error {
	for _, part := range []*detailReader{&r.figs, &r.detail} {
		if part.err != nil {
			return part.err
		}
	}
	if r.left == 0 && (len(r.figs.b) > 0 || len(r.detail.b) > 0) {
		return fmt.Errorf("block: bytes after its last measurement")
	}
	return nil
}

// decodeBlock reads a whole block, with its detail, for packing again:
// the measurements' heads share the block's bytes, and their histograms
// are made again as details hold them.
func decodeBlock(t0 int64, figs, detail []byte) ([]packed, error) {
	var r blockReader
	if err := r.open(t0, figs, detail); err != nil {
		return nil, err
	}
	out := make([]packed, 0, r.left)
	var (
		p packed
		h schema.Histogram
	)
	for r.next(&p) {
		if err := r.histogram(p.hist, &h, nil); err != nil {
			return nil, err
		}
		p.hist = appendHistogram(nil, &h)
		out = append(out, p)
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	if r.left > 0 {
		return nil, fmt.Errorf("block: ends before its %d measurements", len(out)+r.left)
	}
	return out, nil
}
