package broker

import (
	"bytes"

	"github.com/wayline/wayline/internal/sendq"
)

// matchResult is everyone who wants a literal subject, grouped the way the
// forwarding code needs them.
type matchResult struct {
	profile byte        // the cost profile the subject routes on
	class   sendq.Class // its priority class on congested links
	core    []*entry    // the broker's own subscriptions
	leaves  []*leafConn // local leaves with plain subscribers
	brokers [][]byte    // remote brokers with plain subscribers
	queues  []queueMatch
}

// queueMatch is the members of one queue group that match a subject.
type queueMatch struct {
	name    string
	leaves  []*entry // local members
	brokers []*entry // remote members, weighted by their member counts
}

func (r *matchResult) queue(name []byte) *queueMatch {
	for i := range r.queues {
		if r.queues[i].name == string(name) {
			return &r.queues[i]
		}
	}
	return nil
}

// coveredFor reports whether some holder other than leaf l has plain
// interest, i.e. whether l has been told to forward the subject.
func (r *matchResult) coveredFor(l *leafConn) bool {
	if len(r.brokers) > 0 || len(r.core) > 0 {
		return true
	}
	for _, x := range r.leaves {
		if x != l {
			return true
		}
	}
	return false
}

func (db *interestDB) match(subject string) *matchResult {
	r := &matchResult{}
	db.sl.Match(subject, func(e *entry) {
		if e.queue == "" {
			if e.h.core {
				r.core = append(r.core, e)
				return
			}
			if e.h.leaf != nil {
				r.leaves = appendUniqueLeaf(r.leaves, e.h.leaf)
			} else {
				r.brokers = appendUniqueAddr(r.brokers, e.h.addr)
			}
			return
		}
		q := r.queueByName(e.queue)
		if e.h.leaf != nil {
			q.leaves = append(q.leaves, e)
		} else {
			q.brokers = append(q.brokers, e)
		}
	})
	return r
}

func (r *matchResult) queueByName(name string) *queueMatch {
	for i := range r.queues {
		if r.queues[i].name == name {
			return &r.queues[i]
		}
	}
	r.queues = append(r.queues, queueMatch{name: name})
	return &r.queues[len(r.queues)-1]
}

func appendUniqueLeaf(s []*leafConn, l *leafConn) []*leafConn {
	for _, x := range s {
		if x == l {
			return s
		}
	}
	return append(s, l)
}

func appendUniqueAddr(s [][]byte, v []byte) [][]byte {
	for _, x := range s {
		if bytes.Equal(x, v) {
			return s
		}
	}
	return append(s, v)
}

// matchCache is one goroutine's cache of match results, dropped whenever
// the interest changes. Each reader owns one, so lookups take no lock.
type matchCache struct {
	gen uint64
	m   map[string]*matchResult
}

// maxCachedSubjects bounds a match cache; past it the cache starts over.
const maxCachedSubjects = 8192

func (c *matchCache) get(db *interestDB, subject []byte) *matchResult {
	if g := db.gen.Load(); g != c.gen || c.m == nil || len(c.m) >= maxCachedSubjects {
		c.m = make(map[string]*matchResult)
		c.gen = g
	}
	if r, ok := c.m[string(subject)]; ok {
		return r
	}
	s := string(subject)
	r := db.match(s)
	if db.profileOf != nil {
		r.profile = db.profileOf(s)
	}
	if db.classOf != nil {
		r.class = db.classOf(s)
	}
	c.m[s] = r
	return r
}
