package broker

import (
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server/gsl"
	"github.com/wayline/wayline/internal/sendq"
)

// holder is anything that holds subscription interest: a remote broker, or
// one of this broker's leaf connections (the embedded server, or an external
// nats-server attached as a leaf).
type holder struct {
	broker  string    // remote broker's address; empty for a leaf
	addr    []byte    // broker as bytes, for message records
	leaf    *leafConn // nil for a remote broker
	core    bool      // the broker itself, for its internal subscriptions
	entries map[string]*entry
}

// local reports whether the holder is part of this broker.
func (h *holder) local() bool { return h.leaf != nil || h.core }

// entry is one (subject, queue) a holder wants, with the queue's weight
// (its number of members; 1 for plain subscriptions).
type entry struct {
	h       *holder
	subject string
	queue   string
	weight  uint32
}

// entryKey joins subject and queue; neither may contain a space.
func entryKey(subject, queue string) string { return subject + " " + queue }

// remoteOrigin is what this broker knows of another broker's interest.
type remoteOrigin struct {
	holder
	ver version
}

// interestDB is the broker's view of who wants which subjects. It is
// guarded by Broker.mu, except for matching, which is safe at any time.
type interestDB struct {
	sl  *gsl.GenericSublist[*entry]
	gen atomic.Uint64 // bumped on every change that can alter a match

	remote map[string]*remoteOrigin
	leaves map[*leafConn]struct{}
	core   holder // the broker's own subscriptions
	// profileOf says which cost profile a subject routes on; set once,
	// before the broker starts.
	profileOf func(subject string) byte
	// classOf says which priority class a subject has; set once, before
	// the broker starts, when priorities are configured.
	classOf func(subject string) sendq.Class

	// local aggregates the leaves' interest: what this broker announces.
	local   map[string]interestOp
	pending map[string]interestOp // local changes not yet announced
	ver     version               // version of the announced local interest
}

func newInterestDB(epoch uint64) *interestDB {
	return &interestDB{
		sl:      gsl.NewSublist[*entry](),
		remote:  make(map[string]*remoteOrigin),
		leaves:  make(map[*leafConn]struct{}),
		local:   make(map[string]interestOp),
		pending: make(map[string]interestOp),
		ver:     version{Epoch: epoch},
		core:    holder{core: true, entries: make(map[string]*entry)},
	}
}

// set gives h's entry (subject, queue) a weight, 0 removing it, and keeps
// the sublist and every leaf's advertised interest in step.
func (db *interestDB) set(h *holder, subject, queue string, weight uint32) {
	key := entryKey(subject, queue)
	e, had := h.entries[key]
	switch {
	case weight == 0 && !had:
		return
	case weight == 0:
		delete(h.entries, key)
		// Remove cannot fail for an entry we inserted.
		_ = db.sl.Remove(subject, e)
		db.gen.Add(1)
		db.advertise(h, subject, queue, -1)
	case had:
		// Entries are immutable once in the sublist, because readers hold
		// them in their caches without a lock; a new weight is a new entry.
		ne := &entry{h: h, subject: subject, queue: queue, weight: weight}
		if err := db.sl.Insert(subject, ne); err != nil {
			return
		}
		_ = db.sl.Remove(subject, e)
		h.entries[key] = ne
		db.gen.Add(1)
	default:
		e = &entry{h: h, subject: subject, queue: queue, weight: weight}
		if err := db.sl.Insert(subject, e); err != nil {
			return
		}
		if h.entries == nil {
			h.entries = make(map[string]*entry)
		}
		h.entries[key] = e
		db.gen.Add(1)
		db.advertise(h, subject, queue, +1)
	}
	if h.local() {
		db.aggregate(subject, queue, key)
	}
}

// advertise tells every leaf other than h's own about a change in the
// interest it must forward messages for.
func (db *interestDB) advertise(h *holder, subject, queue string, delta int) {
	for l := range db.leaves {
		if l != h.leaf {
			l.advertise(subject, queue, delta)
		}
	}
}

// aggregate recomputes the local interest for one key from every leaf and
// the broker's own subscriptions, and records a pending announcement when
// it changed.
func (db *interestDB) aggregate(subject, queue, key string) {
	var w uint32
	if e, ok := db.core.entries[key]; ok {
		w += e.weight
	}
	for l := range db.leaves {
		if e, ok := l.holder.entries[key]; ok {
			w += e.weight
		}
	}
	if queue == "" && w > 1 {
		w = 1
	}
	if db.local[key].Weight == w {
		return
	}
	op := interestOp{Subject: subject, Queue: queue, Weight: w}
	if w == 0 {
		delete(db.local, key)
	} else {
		db.local[key] = op
	}
	db.pending[key] = op
}

// takeDelta returns the pending local changes as the next delta, or nil.
func (db *interestDB) takeDelta(origin string) *interestUpdate {
	if len(db.pending) == 0 {
		return nil
	}
	db.ver.Seq++
	u := &interestUpdate{Origin: origin, Ver: db.ver, Ops: make([]interestOp, 0, len(db.pending))}
	for k, op := range db.pending {
		u.Ops = append(u.Ops, op)
		delete(db.pending, k)
	}
	sortOps(u.Ops)
	return u
}

func sortOps(ops []interestOp) {
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Subject != ops[j].Subject {
			return ops[i].Subject < ops[j].Subject
		}
		return ops[i].Queue < ops[j].Queue
	})
}

// addLeaf registers a local leaf and advertises to it everything every
// other holder wants.
func (db *interestDB) addLeaf(l *leafConn) {
	db.leaves[l] = struct{}{}
	db.eachEntry(func(e *entry) {
		if e.h.leaf != l {
			l.advertise(e.subject, e.queue, +1)
		}
	})
}

// removeLeaf withdraws everything a departing leaf wanted.
func (db *interestDB) removeLeaf(l *leafConn) {
	for _, e := range l.holder.entries {
		db.set(&l.holder, e.subject, e.queue, 0)
	}
	delete(db.leaves, l)
}

func (db *interestDB) eachEntry(fn func(*entry)) {
	for _, e := range db.core.entries {
		fn(e)
	}
	for l := range db.leaves {
		for _, e := range l.holder.entries {
			fn(e)
		}
	}
	for _, o := range db.remote {
		for _, e := range o.entries {
			fn(e)
		}
	}
}

// applyResult says what became of a remote update.
type applyResult int

const (
	applyStale   applyResult = iota // old or our own; nothing changed
	applyDone                       // applied; flood it onward
	applyGap                        // a delta beyond what we hold; ask for a snapshot
	applyPartial                    // a snapshot part, held until its last part
)

// applyDelta applies a remote delta on top of the origin's current state.
func (db *interestDB) applyDelta(u *interestUpdate) applyResult {
	o := db.origin(u.Origin)
	if !u.Ver.newer(o.ver) {
		return applyStale
	}
	if u.Ver.Epoch != o.ver.Epoch || u.Ver.Seq != o.ver.Seq+1 {
		return applyGap
	}
	for _, op := range u.Ops {
		db.set(&o.holder, op.Subject, op.Queue, op.Weight)
	}
	o.ver = u.Ver
	return applyDone
}

// applySnapshot replaces the origin's state with a complete snapshot.
func (db *interestDB) applySnapshot(origin string, ver version, ops []interestOp) applyResult {
	o := db.origin(origin)
	if !ver.newer(o.ver) {
		return applyStale
	}
	want := make(map[string]struct{}, len(ops))
	for _, op := range ops {
		if op.Weight > 0 {
			want[entryKey(op.Subject, op.Queue)] = struct{}{}
		}
	}
	for k, e := range o.entries {
		if _, ok := want[k]; !ok {
			db.set(&o.holder, e.subject, e.queue, 0)
		}
	}
	for _, op := range ops {
		db.set(&o.holder, op.Subject, op.Queue, op.Weight)
	}
	o.ver = ver
	return applyDone
}

func (db *interestDB) origin(addr string) *remoteOrigin {
	o, ok := db.remote[addr]
	if !ok {
		o = &remoteOrigin{holder: holder{broker: addr, addr: []byte(addr), entries: make(map[string]*entry)}}
		db.remote[addr] = o
	}
	return o
}

// purge forgets a remote broker entirely, as if it had never announced
// anything; a later snapshot from it applies whatever its version.
func (db *interestDB) purge(addr string) {
	o, ok := db.remote[addr]
	if !ok {
		return
	}
	for _, e := range o.entries {
		db.set(&o.holder, e.subject, e.queue, 0)
	}
	delete(db.remote, addr)
}

// snapshotOps lists an origin's current interest; ok is false when this
// broker knows nothing of it.
func (db *interestDB) snapshotOps(self, origin string) (ver version, ops []interestOp, ok bool) {
	if origin == self {
		for _, op := range db.local {
			ops = append(ops, op)
		}
		sortOps(ops)
		return db.ver, ops, true
	}
	o, found := db.remote[origin]
	if !found || o.ver == (version{}) {
		return version{}, nil, false
	}
	for _, e := range o.entries {
		ops = append(ops, interestOp{Subject: e.subject, Queue: e.queue, Weight: e.weight})
	}
	sortOps(ops)
	return o.ver, ops, true
}

// snapshotPartBytes bounds the ops of one snapshot part so that every part
// fits comfortably in a frame.
const snapshotPartBytes = 32 << 10

// appendSnapshot encodes a snapshot as one or more interest records.
func appendSnapshot(b []byte, origin string, ver version, ops []interestOp) []byte {
	flags := byte(interestSnapshot | interestFirst)
	for {
		size, n := 0, 0
		for n < len(ops) && (n == 0 || size+len(ops[n].Subject)+len(ops[n].Queue)+12 <= snapshotPartBytes) {
			size += len(ops[n].Subject) + len(ops[n].Queue) + 12
			n++
		}
		if n == len(ops) {
			flags |= interestLast
		}
		b = appendInterest(b, &interestUpdate{Origin: origin, Ver: ver, Flags: flags, Ops: ops[:n]})
		ops = ops[n:]
		flags = interestSnapshot
		if len(ops) == 0 {
			return b
		}
	}
}

// snapshotAssembly collects the parts of one snapshot arriving on a link.
type snapshotAssembly struct {
	origin string
	ver    version
	ops    []interestOp
}

// maxSnapshotOps bounds a snapshot being assembled, so that a peer cannot
// grow it without limit.
const maxSnapshotOps = 1 << 20

// add takes one part; it returns the complete snapshot once the last part
// is in, or an error for parts out of sequence.
func (a *snapshotAssembly) add(u *interestUpdate) (done bool, err error) {
	if u.Flags&interestFirst != 0 {
		a.origin, a.ver, a.ops = u.Origin, u.Ver, a.ops[:0]
	} else if a.origin != u.Origin || a.ver != u.Ver {
		return false, fmt.Errorf("snapshot part of %s %v out of sequence", u.Origin, u.Ver)
	}
	if len(a.ops)+len(u.Ops) > maxSnapshotOps {
		a.origin = ""
		return false, fmt.Errorf("snapshot of %s exceeds %d entries", u.Origin, maxSnapshotOps)
	}
	a.ops = append(a.ops, u.Ops...)
	return u.Flags&interestLast != 0, nil
}
