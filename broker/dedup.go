package broker

import "sync"

// dedupBits is the width of each origin's dedup window, in messages. It
// must cover the reordering that a route change can cause: messages from
// one origin that arrive over two paths of different delay. 65,536 messages
// is 65 ms at a million messages a second.
const dedupBits = 1 << 16

// maxDedupOrigins bounds the origins one table keeps a window for (8 KiB
// each); past it an arbitrary one is forgotten.
const maxDedupOrigins = 1024

// dedupTable remembers, per origin, which recent sequence numbers were
// delivered here, so that a copy that comes round twice (a transient loop,
// a message routed again after a failover whose first copy did arrive) is
// delivered once, whichever links the copies came by. It is not safe for
// concurrent use; see dedupSet.
//
// A window is moved by the sequence numbers that arrive. A sequence number
// older than the window is taken as new, and the window starts again from
// it: so a sequence number forged far ahead costs its origin at most the
// duplicates the window would have caught, never its messages.
type dedupTable struct {
	m map[string]*dedupWindow
}

type dedupWindow struct {
	max  uint64 // highest sequence number seen
	bits [dedupBits / 64]uint64
}

// seen records (origin, seq) and reports whether it was there already.
func (t *dedupTable) seen(origin []byte, seq uint64) bool {
	w, ok := t.m[string(origin)]
	if !ok {
		if t.m == nil {
			t.m = make(map[string]*dedupWindow)
		}
		if len(t.m) >= maxDedupOrigins {
			for o := range t.m {
				delete(t.m, o)
				break
			}
		}
		w = &dedupWindow{max: seq}
		t.m[string(origin)] = w
		w.set(seq)
		return false
	}
	switch {
	case seq > w.max:
		if seq-w.max >= dedupBits {
			w.bits = [dedupBits / 64]uint64{}
		} else {
			for s := w.max + 1; s < seq; s++ {
				w.clear(s)
			}
		}
		w.max = seq
		w.set(seq)
		return false
	case w.max-seq >= dedupBits:
		w.bits, w.max = [dedupBits / 64]uint64{}, seq
		w.set(seq)
		return false
	case w.has(seq):
		return true
	}
	w.set(seq)
	return false
}

// dedupSet is the broker's dedup tables, one per stripe of origins, so
// that the readers of several links deliver at once.
type dedupSet struct {
	stripes [dedupStripes]struct {
		mu sync.Mutex
		t  dedupTable
	}
}

const dedupStripes = 16

// seen is dedupTable.seen, safe for concurrent use.
func (d *dedupSet) seen(origin []byte, seq uint64) bool {
	s := &d.stripes[originStripe(origin)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.seen(origin, seq)
}

// originStripe is the stripe of a table striped by origin.
func originStripe(origin []byte) uint32 {
	var h uint32 = 2166136261
	for _, c := range origin {
		h = (h ^ uint32(c)) * 16777619
	}
	return h % dedupStripes
}

func (w *dedupWindow) set(s uint64)      { w.bits[(s/64)%(dedupBits/64)] |= 1 << (s % 64) }
func (w *dedupWindow) clear(s uint64)    { w.bits[(s/64)%(dedupBits/64)] &^= 1 << (s % 64) }
func (w *dedupWindow) has(s uint64) bool { return w.bits[(s/64)%(dedupBits/64)]&(1<<(s%64)) != 0 }
