package monitor

import (
	"math"

	"github.com/wayline/wayline/router"
)

// A link's delay distribution (Metrics.Forward) is what delay contracts
// compose along paths, and a contract asks about its tail: the 99th
// percentile of a window of 256 probes rests on two or three of them, and
// moves by tens of percent from one window to the next on a heavy-tailed
// link. So the distribution is drawn from a longer memory, the transit
// times of the latest Config.DistWindow answered probes (2048 by default:
// 20 probes in the 1% tail), which forgets its past as soon as the link
// changes: when the window's delays no longer look drawn from the same
// distribution as the memory's (a Kolmogorov-Smirnov distance far beyond
// what sampling gives, see restartKS), the memory forgets everything and
// starts again from the next probe; until it holds more than the window,
// the distribution is the window's, as it was before the memory. Nor does
// the memory take the link's first window of probes, which meet the start
// of both brokers and of the link (connections, first routes, a busy
// machine's start-up): the window forgets them within a window, and so
// must the distribution.

// restartK sets the distance between the window's n forward delays and
// the memory's distribution of N at which the memory restarts:
// restartK*sqrt(1/n - 1/N), 0.2 for the default 256 and 2048. The window
// is part of the memory, and between two samples of one distribution the
// distance passes that about once in 10^10 snapshots (Kolmogorov's
// distribution); a change of the link shows within a few dozen probes.
const restartK = 3.5

// restartKS is the distance at which a memory of N probes restarts when
// the window has n (see restartK).
func restartKS(n, N int) float64 {
	return restartK * math.Sqrt(1/float64(n)-1/float64(N))
}

// transit is one answered probe's transit times each way, as in sample.
type transit struct {
	seq      uint64
	fwd, rev int64
}

// transitsOf returns the transits of the answered probes ans.
func transitsOf(ans []sample) []transit {
	ts := make([]transit, len(ans))
	for i, s := range ans {
		ts[i] = transit{seq: s.seq, fwd: s.fwd, rev: s.rev}
	}
	return ts
}

// transits is a ring of the latest answered probes' transit times; only
// those from since on count.
type transits struct {
	buf   []transit
	next  int
	n     int
	since uint64
}

func newTransits(size int) *transits { return &transits{buf: make([]transit, size)} }

func (t *transits) add(s sample) {
	t.buf[t.next] = transit{seq: s.seq, fwd: s.fwd, rev: s.rev}
	t.next = (t.next + 1) % len(t.buf)
	t.n = min(t.n+1, len(t.buf))
}

// counted returns a copy of the transits that count.
func (t *transits) counted() []transit {
	out := make([]transit, 0, t.n)
	for _, x := range t.buf[:t.n] {
		if x.seq >= t.since {
			out = append(out, x)
		}
	}
	return out
}

// restart makes the memory count only the probes from seq on.
func (t *transits) restart(seq uint64) { t.since = max(t.since, seq) }

// longForward is the forward distribution of the transits mem, with the
// memory's own clock offset (steadier than the window's) and the window's
// loss, and whether the window's transits win no longer look drawn from
// it: then the memory should restart. The window's distribution is
// compared with the memory's offset too, so that only the delays count,
// not the difference between two estimates of the offset.
func longForward(win, mem []transit, loss float64) (h router.Histogram, changed bool) {
	offset := forwardOffset(mem)
	h = forwardHistogram(mem, offset, loss)
	short := forwardHistogram(win, offset, loss)
	return h, bucketKS(h, short) > restartKS(len(win), len(mem))
}

// bucketKS is the Kolmogorov-Smirnov distance between the arrived parts of
// a and b, read at the bounds of their buckets: within a bucket the two
// cannot be told apart (a steady link's probes share one or two buckets).
func bucketKS(a, b router.Histogram) float64 {
	ta, tb := a.Arrived(), b.Arrived()
	if ta == 0 || tb == 0 {
		return 1
	}
	var ca, cb, d float64
	i, j := 0, 0
	for i < len(a.Buckets) || j < len(b.Buckets) {
		switch {
		case j == len(b.Buckets) || (i < len(a.Buckets) && a.Buckets[i].Index < b.Buckets[j].Index):
			ca += a.Buckets[i].Count
			i++
		case i == len(a.Buckets) || b.Buckets[j].Index < a.Buckets[i].Index:
			cb += b.Buckets[j].Count
			j++
		default:
			ca += a.Buckets[i].Count
			cb += b.Buckets[j].Count
			i++
			j++
		}
		d = max(d, math.Abs(ca/ta-cb/tb))
	}
	return d
}
