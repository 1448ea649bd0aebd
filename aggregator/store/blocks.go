package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Measurements are written one row each (see save.go): that is what
// storing them fast needs. Read back one row each, an hour of a thousand
// links is three quarters of a million rows, and converting rows one at a
// time was most of what a query over it cost. So the compactor (see
// compact.go) packs the rows of each link, reporting broker and window of
// blockSpan into a block, once the window has passed: a row of table
// measurement_blocks. A block's measurements are in three parts, each a
// column, so that a query reads only the parts it needs:
//
//	figs  byte 1, uvarint count, then for each measurement:
//	      varint   its time minus the one before's (the first's: 0)
//	      uvarint  length, then the state; the same for the monitor state
//	      4 numbers rtt, lat_mean, jitter, loss as stored (NaN for NULL)
//	summ  byte 1, then for each: uvarint length, then its detail up to
//	      its histogram (the detail's version, latency summary, counters
//	      and costs; see codec.go)
//	hist  byte 1, then for each: uvarint length, then the rest of its
//	      detail (histogram samples missing and buckets)
//
// Numbers are written as in details, so every value comes back exactly.
// t0 is the time of the block's first measurement, t1 of its last; all of
// a block's measurements are in one window [w, w+blockSpan) with w a
// multiple of blockSpan, so a block holding measurements of [lo, hi) has
// lo-blockSpan < t0 < hi. A window's measurements of one link and broker
// are one block unless they are more than blockMaxCount or blockMaxBytes,
// when they are several.

// blockSpan is the window of time a block packs.
const blockSpan = int64(5 * time.Minute)

const (
	blockVersion  = 1
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
// the detail split before its histogram.
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

// encodeBlock packs ps, which are in time order, all in one window.
func encodeBlock(ps []packed) (figs, summ, hist []byte) {
	n := 0
	for i := range ps {
		n += ps[i].size()
	}
	figs = make([]byte, 0, 16+len(ps)*40)
	summ = make([]byte, 0, 1+n)
	hist = make([]byte, 0, 1+n/2)
	figs = append(figs, blockVersion)
	figs = binary.AppendUvarint(figs, uint64(len(ps)))
	summ = append(summ, blockVersion)
	hist = append(hist, blockVersion)
	prev := ps[0].t
	for i := range ps {
		p := &ps[i]
		figs = binary.AppendVarint(figs, p.t-prev)
		prev = p.t
		figs = appendBytes(figs, p.state)
		figs = appendBytes(figs, p.monitor)
		for _, f := range p.figs {
			figs = appendNumber(figs, f)
		}
		summ = appendBytes(summ, p.head)
		hist = appendBytes(hist, p.hist)
	}
	return figs, summ, hist
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

// blockReader reads a block's measurements in order: figs always, summ
// and hist when they are not nil.
type blockReader struct {
	figs, summ, hist detailReader
	left, read       int   // measurements not read yet, and read
	t                int64 // the time of the last one read
}

// open starts reading a block whose first measurement is at t0.
func (r *blockReader) open(t0 int64, figs, summ, hist []byte) error {
	*r = blockReader{t: t0}
	r.figs.b, r.summ.b, r.hist.b = figs, summ, hist
	for _, part := range []*detailReader{&r.figs, &r.summ, &r.hist} {
		if part.b == nil {
			continue
		}
		if len(part.b) == 0 || part.b[0] != blockVersion {
			return fmt.Errorf("block: not version %d", blockVersion)
		}
		part.b = part.b[1:]
	}
	n := r.figs.uvarint("block count")
	// A measurement takes at least 7 bytes of figs.
	if r.figs.err != nil || n > uint64(len(r.figs.b)/7) {
		return fmt.Errorf("block: bad count")
	}
	r.left = int(n)
	return nil
}

// next reads the next measurement into p, whose byte slices then share
// the block's; head and hist stay nil when their part is not read. It
// returns false at the end of the block, or on an error, which err
// returns.
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
	if r.summ.b != nil {
		p.head = r.summ.bytes("summary")
	}
	if r.hist.b != nil {
		p.hist = r.hist.bytes("histogram")
	}
	return r.err() == nil
}

// err is the first error of reading the block; at its end, a part with
// bytes left over is one.
func (r *blockReader) err() error {
	for _, part := range []*detailReader{&r.figs, &r.summ, &r.hist} {
		if part.err != nil {
			return part.err
		}
	}
	if r.left == 0 && (len(r.figs.b) > 0 || len(r.summ.b) > 0 || len(r.hist.b) > 0) {
		return fmt.Errorf("block: bytes after its last measurement")
	}
	return nil
}

// decodeBlock reads a whole block, with its three parts, for packing
// again; the measurements share the block's bytes.
func decodeBlock(t0 int64, figs, summ, hist []byte) ([]packed, error) {
	var r blockReader
	if err := r.open(t0, figs, summ, hist); err != nil {
		return nil, err
	}
	out := make([]packed, 0, r.left)
	var p packed
	for r.next(&p) {
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
