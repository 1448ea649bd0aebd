package transports

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Reassembly of fragmented udp frames (the FRAG datagrams of udp_wire.go).
//
// A partial frame keeps each fragment as it arrived, in a buffer of the
// fragment's own size, so what it holds grows with the bytes actually
// received and never with what a fragment announces: a 25-byte datagram
// that announces 65,535 fragments costs a bitmap of 8 KiB, not a megabyte.
// The frame itself is allocated only when its last missing fragment
// arrives.
//
// Every byte a partial frame holds is charged to a budget. The links of one
// listener share one budget (Config.ReassemblyBudget), so that a flood of
// fragments from many source addresses holds at most that much however many
// links it opens; a dialed link has a budget of its own. When a fragment
// does not fit, the link's own oldest frames go first, then the fragment's
// frame. A frame older than Config.ReassemblyTimeout is dropped, and a link
// gives back everything it holds when it closes.

const (
	// udpMaxPartial bounds the frames being reassembled per link.
	udpMaxPartial = 64
	// partialOverhead is what a partial frame is charged besides its
	// fragments and its bitmap: the struct and its map entry.
	partialOverhead = 160
	// fragOverhead is what a fragment is charged besides its bytes: its
	// entry in the frame's list, counted twice for the list's growth.
	fragOverhead = 64
)

// errReassemblyBudget marks a fragment dropped because the reassembly
// budget is spent.
var errReassemblyBudget = errors.New("reassembly budget spent")

// reassemblyBudget is the bytes that the partial frames of one or more
// links may hold together.
type reassemblyBudget struct {
	mu    sync.Mutex
	limit int
	held  int
}

func newReassemblyBudget(limit int) *reassemblyBudget { return &reassemblyBudget{limit: limit} }

// take charges n bytes, or reports false when they do not fit.
func (b *reassemblyBudget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.limit {
		return false
	}
	b.held += n
	return true
}

func (b *reassemblyBudget) give(n int) {
	b.mu.Lock()
	b.held -= n
	b.mu.Unlock()
}

// inUse returns the bytes charged now.
func (b *reassemblyBudget) inUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// fragment is one received fragment of a partial frame.
type fragment struct {
	index int
	data  []byte
}

// partialFrame is a fragmented frame being reassembled.
type partialFrame struct {
	count    int
	chunk    int // size of every fragment but the last; 0 until one arrives
	lastLen  int // size of the last fragment; -1 until it arrives
	got      []uint64
	frags    []fragment
	have     int
	started  time.Time
	cost     int  // bytes charged for it
	tooLarge bool // reported once; later fragments are ignored
}

func (p *partialFrame) has(i int) bool { return p.got[i/64]&(1<<(i%64)) != 0 }

// reassembler rebuilds the fragmented frames of one link. Its add runs on
// the link's reader and its release on Close, hence the lock.
type reassembler struct {
	mu       sync.Mutex
	maxFrame int
	timeout  time.Duration
	budget   *reassemblyBudget
	held     int // this link's share of the budget
	closed   bool
	partial  map[uint32]*partialFrame
}

func newReassembler(maxFrame int, timeout time.Duration, budget *reassemblyBudget) *reassembler {
	return &reassembler{
		maxFrame: maxFrame,
		timeout:  timeout,
		budget:   budget,
		partial:  make(map[uint32]*partialFrame),
	}
}

// add files one fragment. Outcomes: the complete frame when d was its last
// missing fragment; nil, nil while the frame is incomplete (or d was a
// duplicate, or the link is closed); an error wrapping ErrFrameTooLarge,
// once per frame, when the frame turns out to exceed maxFrame; an error
// wrapping errBadDatagram when the fragments of one id contradict each
// other, or errReassemblyBudget when the budget has no room for d (either
// way the frame is dropped).
func (r *reassembler) add(d datagram, now time.Time) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil
	}
	p := r.partial[d.id]
	if p != nil && (now.Sub(p.started) > r.timeout || p.count != int(d.count)) {
		// A stale frame, or a new frame that reuses its id.
		r.drop(d.id)
		p = nil
	}
	if p == nil {
		if p = r.start(d, now); p == nil {
			return nil, fmt.Errorf("frame of %d fragments: %w", d.count, errReassemblyBudget)
		}
	}
	index := int(d.index)
	if p.tooLarge || p.has(index) {
		return nil, nil
	}
	if err := p.check(index, len(d.payload), r.maxFrame); err != nil {
		if errors.Is(err, ErrFrameTooLarge) {
			r.discardFragments(p)
			p.tooLarge = true
		} else {
			r.drop(d.id)
		}
		return nil, err
	}
	cost := len(d.payload) + fragOverhead
	if !r.charge(cost, d.id) {
		r.drop(d.id)
		return nil, fmt.Errorf("fragment %d of %d: %w", d.index, d.count, errReassemblyBudget)
	}
	p.cost += cost
	p.frags = append(p.frags, fragment{index: index, data: append([]byte(nil), d.payload...)})
	p.got[index/64] |= 1 << (index % 64)
	p.have++
	if p.have < p.count {
		return nil, nil
	}
	frame := p.assemble()
	r.drop(d.id)
	return frame, nil
}

// start opens a partial frame for d, first sweeping out stale frames and
// making room among the link's frames; nil when the budget has no room.
func (r *reassembler) start(d datagram, now time.Time) *partialFrame {
	for id, p := range r.partial {
		if now.Sub(p.started) > r.timeout {
			r.drop(id)
		}
	}
	if len(r.partial) >= udpMaxPartial {
		r.drop(r.oldest(d.id))
	}
	p := &partialFrame{
		count:   int(d.count),
		lastLen: -1,
		got:     make([]uint64, (int(d.count)+63)/64),
		started: now,
	}
	p.cost = partialOverhead + 8*len(p.got)
	if !r.charge(p.cost, d.id) {
		return nil
	}
	r.partial[d.id] = p
	return p
}

// charge takes n bytes from the budget for the frame keep, dropping the
// link's other frames, oldest first, while they do not fit.
func (r *reassembler) charge(n int, keep uint32) bool {
	for !r.budget.take(n) {
		if len(r.partial) == 0 || (len(r.partial) == 1 && r.partial[keep] != nil) {
			return false
		}
		r.drop(r.oldest(keep))
	}
	r.held += n
	return true
}

// check validates a new fragment of size n against what the frame's other
// fragments said, and learns the chunk size or the last fragment's size.
func (p *partialFrame) check(index, n, maxFrame int) error {
	if index == p.count-1 {
		switch {
		case p.chunk == 0 && p.count*n > maxFrame:
			// Every other fragment is at least as large as the last one.
			return tooLargeFragments(p.count, n, maxFrame)
		case p.chunk != 0 && n > p.chunk:
			return fmt.Errorf("last fragment of %d bytes, others have %d: %w", n, p.chunk, errBadDatagram)
		case p.chunk != 0 && (p.count-1)*p.chunk+n > maxFrame:
			return fmt.Errorf("peer sent %d bytes in fragments (limit %d): %w", (p.count-1)*p.chunk+n, maxFrame, ErrFrameTooLarge)
		}
		p.lastLen = n
		return nil
	}
	if p.chunk != 0 {
		if n != p.chunk {
			return fmt.Errorf("fragment of %d bytes, others have %d: %w", n, p.chunk, errBadDatagram)
		}
		return nil
	}
	if (p.count-1)*n+1 > maxFrame {
		return tooLargeFragments(p.count, n, maxFrame)
	}
	if p.lastLen >= 0 {
		if p.lastLen > n {
			return fmt.Errorf("last fragment of %d bytes, others have %d: %w", p.lastLen, n, errBadDatagram)
		}
		if size := (p.count-1)*n + p.lastLen; size > maxFrame {
			return fmt.Errorf("peer sent %d bytes in fragments (limit %d): %w", size, maxFrame, ErrFrameTooLarge)
		}
	}
	p.chunk = n
	return nil
}

func tooLargeFragments(count, chunk, maxFrame int) error {
	return fmt.Errorf("peer sent %d fragments of %d bytes (limit %d): %w", count, chunk, maxFrame, ErrFrameTooLarge)
}

// assemble copies the fragments of a complete frame into one buffer.
func (p *partialFrame) assemble() []byte {
	frame := make([]byte, (p.count-1)*p.chunk+p.lastLen)
	for _, f := range p.frags {
		copy(frame[f.index*p.chunk:], f.data)
	}
	return frame
}

// discardFragments frees a frame's fragments, keeping its bitmap so that
// the rest of its fragments are recognised and ignored.
func (r *reassembler) discardFragments(p *partialFrame) {
	freed := p.cost - (partialOverhead + 8*len(p.got))
	p.frags, p.cost = nil, p.cost-freed
	r.held -= freed
	r.budget.give(freed)
}

// oldest returns the id of the oldest partial frame other than keep.
func (r *reassembler) oldest(keep uint32) uint32 {
	var id uint32
	var at time.Time
	found := false
	for i, p := range r.partial {
		if i != keep && (!found || p.started.Before(at)) {
			id, at, found = i, p.started, true
		}
	}
	return id
}

func (r *reassembler) drop(id uint32) {
	if p := r.partial[id]; p != nil {
		r.held -= p.cost
		r.budget.give(p.cost)
		delete(r.partial, id)
	}
}

// release gives back everything the link holds; later fragments are
// ignored.
func (r *reassembler) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.partial {
		r.drop(id)
	}
	r.closed = true
}
