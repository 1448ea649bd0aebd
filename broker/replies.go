package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// A reply must not race interest propagation. When a request from broker O
// is delivered here, the reply subject is routed back to O directly, and
// the local leaves are told to forward it, before the request reaches the
// responder. The route lasts ReplyTTL, so that several replies (scatter-
// gather) and slow responders still find their way.

type replyRoute struct {
	reply   string
	origin  []byte
	expires time.Time
	leaves  []*leafConn // leaves told to forward this subject; guarded by Broker.mu
}

type replyTimer struct {
	r        *replyRoute
	deadline time.Time
}

// replyMap holds the reply routes, oldest first for expiry and eviction.
type replyMap struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	m    map[string]*replyRoute
	fifo []replyTimer
	size atomic.Int64 // lets lookups skip the lock when empty
}

func newReplyMap(ttl time.Duration, max int) *replyMap {
	return &replyMap{ttl: ttl, max: max, m: make(map[string]*replyRoute)}
}

// lookup returns the broker a reply subject goes back to.
func (rm *replyMap) lookup(subject []byte) ([]byte, bool) {
	if rm.size.Load() == 0 {
		return nil, false
	}
	rm.mu.Lock()
	r, ok := rm.m[string(subject)]
	rm.mu.Unlock()
	if !ok {
		return nil, false
	}
	return r.origin, true
}

// note records or refreshes a reply route. It returns the route when it is
// new, and any routes evicted to make room.
func (rm *replyMap) note(reply, origin []byte, now time.Time) (added *replyRoute, evicted []*replyRoute) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if r, ok := rm.m[string(reply)]; ok {
		r.expires = now.Add(rm.ttl)
		if string(r.origin) != string(origin) {
			r.origin = append([]byte(nil), origin...)
		}
		return nil, nil
	}
	r := &replyRoute{reply: string(reply), origin: append([]byte(nil), origin...), expires: now.Add(rm.ttl)}
	rm.m[r.reply] = r
	rm.fifo = append(rm.fifo, replyTimer{r: r, deadline: r.expires})
	for len(rm.m) > rm.max && len(rm.fifo) > 0 {
		old := rm.fifo[0].r
		rm.fifo = rm.fifo[1:]
		if rm.m[old.reply] == old {
			delete(rm.m, old.reply)
			evicted = append(evicted, old)
		}
	}
	rm.size.Store(int64(len(rm.m)))
	return r, evicted
}

// expire removes the routes whose time is up.
func (rm *replyMap) expire(now time.Time) (expired []*replyRoute) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for len(rm.fifo) > 0 && !rm.fifo[0].deadline.After(now) {
		t := rm.fifo[0]
		rm.fifo = rm.fifo[1:]
		if rm.m[t.r.reply] != t.r {
			continue
		}
		if t.r.expires.After(now) {
			rm.fifo = append(rm.fifo, replyTimer{r: t.r, deadline: t.r.expires})
			continue
		}
		delete(rm.m, t.r.reply)
		expired = append(expired, t.r)
	}
	if len(rm.fifo) == 0 {
		rm.fifo = nil // let the backing array go
	}
	rm.size.Store(int64(len(rm.m)))
	return expired
}

// noteReply routes a reply subject back to the broker a request came from,
// and tells every local leaf that does not already forward the subject to
// do so.
func (b *Broker) noteReply(reply, origin []byte) {
	added, evicted := b.replies.note(reply, origin, time.Now())
	if added == nil && len(evicted) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgetRepliesLocked(evicted)
	if added == nil {
		return
	}
	r := b.interest.match(added.reply)
	for l := range b.interest.leaves {
		if !r.coveredFor(l) {
			l.advertise(added.reply, "", +1)
			added.leaves = append(added.leaves, l)
		}
	}
}

func (b *Broker) expireReplies(now time.Time) {
	expired := b.replies.expire(now)
	if len(expired) == 0 {
		return
	}
	b.mu.Lock()
	b.forgetRepliesLocked(expired)
	b.mu.Unlock()
}

func (b *Broker) forgetRepliesLocked(routes []*replyRoute) {
	for _, r := range routes {
		for _, l := range r.leaves {
			l.advertise(r.reply, "", -1)
		}
		r.leaves = nil
	}
}
