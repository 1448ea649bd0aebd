package broker

// dedupBits is the width of each origin's dedup window, in messages. It
// must cover the reordering that a route change can cause: messages from
// one origin that arrive over two paths of different delay. 65,536 messages
// is 65 ms at a million messages a second.
const dedupBits = 1 << 16

// maxDedupOrigins bounds the origins one session keeps a window for (8 KiB
// each); past it an arbitrary one is forgotten.
const maxDedupOrigins = 1024

// dedupTable remembers, per origin, which recent sequence numbers were
// delivered here, so that a copy that comes round twice (a transient loop,
// a duplicating link) is delivered once.
//
// Each session keeps its own table, used by its reader alone. A window is
// moved by the sequence numbers that arrive, so a peer that forged a huge
// one would make every later message of that origin look old; per session,
// that can only stop what crosses the forger's own link, which it could
// drop anyway.
type dedupTable struct {
	m map[string]*dedupWindow
}

type dedupWindow struct {
	max  uint64 // highest sequence number seen
	bits [dedupBits / 64]uint64
}

// seen records (origin, seq) and reports whether it was there already.
// A sequence number older than the window counts as seen: it can only be a
// copy that wandered for a long time.
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
		return true
	case w.has(seq):
		return true
	}
	w.set(seq)
	return false
}

func (w *dedupWindow) set(s uint64)      { w.bits[(s/64)%(dedupBits/64)] |= 1 << (s % 64) }
func (w *dedupWindow) clear(s uint64)    { w.bits[(s/64)%(dedupBits/64)] &^= 1 << (s % 64) }
func (w *dedupWindow) has(s uint64) bool { return w.bits[(s/64)%(dedupBits/64)]&(1<<(s%64)) != 0 }
