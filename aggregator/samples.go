package aggregator

import (
	"strconv"
	"time"

	"github.com/wayline/wayline/schema"
)

// A history view's samples are kept without pointers: an hour of a
// thousand links is three quarters of a million samples, and as
// schema.Link values (eight strings and slices each) the collector scanned
// all of them at every cycle while a query ran, which cost a third of its
// time. A sample's numbers are kept as they are, its strings as indexes in
// its arena's table, and its costs and buckets as ranges of its chunk's.

// sample is one sample's figures.
type sample struct {
	time              int64 // Unix nanoseconds
	rtt, jitter, loss float64
	lat               [6]float64 // min, mean, p50, p90, p99, max
	cnt               [6]uint64  // sent, received, lost, window, reordered, duplicated
	dropped           uint64
	missing           float64
	state, monitor    uint32    // in the arena's strs
	costs, buckets    [2]uint32 // first and count, in the chunk's
}

type sCost struct {
	profile uint32 // in the arena's strs
	value   float64
}

// chunkSamples is how many samples a chunk holds.
const chunkSamples = 4096

type chunk struct {
	samples []sample
	costs   []sCost
	buckets []schema.Bucket
}

// arena holds samples, for one part of a view being built at a time.
type arena struct {
	chunks []*chunk
	strs   []string
	strIdx map[string]uint32
	last   [4]lastStr // the state's, the monitor's and two profiles', as added last
}

// lastStr is a string and its index: samples of a link mostly repeat
// their states and profiles.
type lastStr struct {
	s  string
	i  uint32
	ok bool
}

// sampleRef is where a sample is in its arena.
type sampleRef struct{ chunk, i uint32 }

// strAt is str, first trying the string that the same place (of
// a.last) held last.
func (a *arena) strAt(place int, s string) uint32 {
	if place >= len(a.last) {
		return a.str(s)
	}
	l := &a.last[place]
	if !l.ok || l.s != s {
		*l = lastStr{s, a.str(s), true}
	}
	return l.i
}

func (a *arena) str(s string) uint32 {
	if i, ok := a.strIdx[s]; ok {
		return i
	}
	if a.strIdx == nil {
		a.strIdx = map[string]uint32{}
	}
	i := uint32(len(a.strs))
	a.strs = append(a.strs, s)
	a.strIdx[s] = i
	return i
}

// add keeps the figures f of time t.
func (a *arena) add(t time.Time, f *schema.Link) sampleRef {
	var c *chunk
	if n := len(a.chunks); n > 0 && len(a.chunks[n-1].samples) < chunkSamples {
		c = a.chunks[n-1]
	} else {
		c = &chunk{
			samples: make([]sample, 0, chunkSamples),
			costs:   make([]sCost, 0, chunkSamples*len(f.Costs)),
			buckets: make([]schema.Bucket, 0, chunkSamples*len(f.Histogram.Buckets)),
		}
		a.chunks = append(a.chunks, c)
	}
	s := sample{
		time: t.UnixNano(), rtt: f.RTT, jitter: f.Jitter, loss: f.Loss,
		lat:     [6]float64{f.Latency.Min, f.Latency.Mean, f.Latency.P50, f.Latency.P90, f.Latency.P99, f.Latency.Max},
		cnt:     [6]uint64{f.Samples.Sent, f.Samples.Received, f.Samples.Lost, uint64(int64(f.Samples.Window)), f.Samples.Reordered, f.Samples.Duplicated},
		dropped: f.Dropped, missing: f.Histogram.Missing,
		state: a.strAt(0, f.State), monitor: a.strAt(1, f.Monitor),
		costs:   [2]uint32{uint32(len(c.costs)), uint32(len(f.Costs))},
		buckets: [2]uint32{uint32(len(c.buckets)), uint32(len(f.Histogram.Buckets))},
	}
	for i, k := range f.Costs {
		c.costs = append(c.costs, sCost{a.strAt(2+i, k.Profile), k.Value})
	}
	c.buckets = append(c.buckets, f.Histogram.Buckets...)
	c.samples = append(c.samples, s)
	return sampleRef{uint32(len(a.chunks) - 1), uint32(len(c.samples) - 1)}
}

// get is the sample at r, and its chunk.
func (a *arena) get(r sampleRef) (*sample, *chunk) {
	c := a.chunks[r.chunk]
	return &c.samples[r.i], c
}

// link is the sample at r as a link's figures, with id the link's id,
// ends and transport.
func (a *arena) link(r sampleRef, id *schema.Link) *schema.Link {
	s, c := a.get(r)
	l := &schema.Link{ID: id.ID, A: id.A, B: id.B, Transport: id.Transport,
		State: a.strs[s.state], Monitor: a.strs[s.monitor], RTT: s.rtt, Jitter: s.jitter, Loss: s.loss, Dropped: s.dropped,
		Latency: schema.Summary{Min: s.lat[0], Mean: s.lat[1], P50: s.lat[2], P90: s.lat[3], P99: s.lat[4], Max: s.lat[5]},
		Samples: schema.Samples{Sent: s.cnt[0], Received: s.cnt[1], Lost: s.cnt[2], Window: int(int64(s.cnt[3])),
			Reordered: s.cnt[4], Duplicated: s.cnt[5]},
		Histogram: schema.Histogram{Missing: s.missing},
	}
	for _, k := range c.costs[s.costs[0] : s.costs[0]+s.costs[1]] {
		l.Costs = append(l.Costs, schema.Cost{Profile: a.strs[k.profile], Value: k.value})
	}
	if s.buckets[1] > 0 {
		l.Histogram.Buckets = append([]schema.Bucket(nil), c.buckets[s.buckets[0]:s.buckets[0]+s.buckets[1]]...)
	}
	return l
}

// figs are the figures a navigator is in: a link's, or a sample's.
type figs struct {
	l  *schema.Link // a link's, or the link's of a sample (id, ends, transport)
	s  *sample      // a sample's
	c  *chunk
	ar *arena
}

func (n *nav) figs() figs {
	l := n.link()
	if n.s < 0 {
		return figs{l: l.fig}
	}
	s, c := l.ar.get(l.samples[n.s])
	return figs{l: l.fig, s: s, c: c, ar: l.ar}
}

func (f figs) costLen() int {
	if f.s != nil {
		return int(f.s.costs[1])
	}
	return len(f.l.Costs)
}

func (f figs) cost(i int) (profile string, value float64) {
	if f.s != nil {
		k := f.c.costs[int(f.s.costs[0])+i]
		return f.ar.strs[k.profile], k.value
	}
	return f.l.Costs[i].Profile, f.l.Costs[i].Value
}

func (f figs) bucketLen() int {
	if f.s != nil {
		return int(f.s.buckets[1])
	}
	return len(f.l.Histogram.Buckets)
}

func (f figs) bucket(i int) schema.Bucket {
	if f.s != nil {
		return f.c.buckets[int(f.s.buckets[0])+i]
	}
	return f.l.Histogram.Buckets[i]
}

func (f figs) missing() float64 {
	if f.s != nil {
		return f.s.missing
	}
	return f.l.Histogram.Missing
}

// hasHistogram says whether the histogram element is written: not when
// it is empty, as in report documents.
func (f figs) hasHistogram() bool { return f.missing() != 0 || f.bucketLen() > 0 }

// latency is latencyAttrs[i].
func (f figs) latency(i int) float64 {
	if f.s != nil {
		return f.s.lat[i]
	}
	s := &f.l.Latency
	return [...]float64{s.Min, s.Mean, s.P50, s.P90, s.P99, s.Max}[i]
}

// count is samplesAttrs[i], as text.
func (f figs) count(i int) string {
	if f.s != nil {
		if i == 3 {
			return strconv.FormatInt(int64(f.s.cnt[3]), 10)
		}
		return unum(f.s.cnt[i])
	}
	s := &f.l.Samples
	if i == 3 {
		return strconv.Itoa(s.Window)
	}
	return unum([...]uint64{s.Sent, s.Received, s.Lost, 0, s.Reordered, s.Duplicated}[i])
}

// attr is linkAttrs[i], as text. A sample has its link's id, ends and
// transport.
func (f figs) attr(i int) string {
	l := f.l
	switch i {
	case 0:
		return l.ID
	case 1:
		return l.A
	case 2:
		return l.B
	case 3:
		return l.Transport
	}
	state, monitor, rtt, jitter, loss, dropped := l.State, l.Monitor, l.RTT, l.Jitter, l.Loss, l.Dropped
	if s := f.s; s != nil {
		state, monitor, rtt, jitter, loss, dropped = f.ar.strs[s.state], f.ar.strs[s.monitor], s.rtt, s.jitter, s.loss, s.dropped
	}
	switch i {
	case 4:
		return state
	case 5:
		return monitor
	case 6:
		return num(rtt)
	case 7:
		return num(jitter)
	case 8:
		return num(loss)
	}
	return unum(dropped)
}
