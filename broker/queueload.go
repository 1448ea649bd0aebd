package broker

import (
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
)

// The load policy. Once a second each broker counts the messages its
// clients' members of each load group received (its embedded server
// counts deliveries per subscription, whoever published), reports them
// per member on $WL.qload.<address>, and steps the control loop of every
// load group (router.NextQueueLoadWeights) on the latest figures of every
// broker, its own included. A message published here goes to a member
// broker, this one included, in proportion to its members times its
// weight, and there to one of its members.

// queueLoadInterval is how often figures are measured and reported, and
// weights stepped; queueLoadMaxAge how long a broker's figures count
// when no newer come (it left, or cannot be heard).
const (
	queueLoadInterval = time.Second
	queueLoadMaxAge   = 3 * queueLoadInterval
)

// queueLoad is a broker's state of the load policy. The data path reads
// only the weights, through an atomic pointer.
type queueLoad struct {
	groups map[string]bool // the groups with the load policy

	mu    sync.Mutex
	prev  map[clientSub]int64     // messages each member had received at the last measure
	last  time.Time               // of the last measure
	heard map[string]heardLoad    // every broker's latest figures, by address
	cur   map[string]queueWeights // by group

	weights atomic.Pointer[map[string]queueWeights] // cur, for the data path; never changed once stored
}

// queueWeights are one group's weights by broker address; a broker it
// has none for has 1.
type queueWeights map[string]float64

type clientSub struct {
	cid uint64
	sid string
}

type heardLoad struct {
	at      time.Time
	figures map[string]router.QueueLoadFigure
}

func newQueueLoad(qs []router.QueueGroup) *queueLoad {
	q := &queueLoad{groups: map[string]bool{}, prev: map[clientSub]int64{}, heard: map[string]heardLoad{}}
	for _, g := range qs {
		if g.Policy == router.QueueLoad {
			q.groups[g.Group] = true
		}
	}
	return q
}

// startQueueLoad starts measuring and listening, when some group has the
// load policy.
func (b *Broker) startQueueLoad() {
	if len(b.qload.groups) == 0 {
		return
	}
	b.subscribeInternal(netapi.QueueLoadSubject(">"), b.onQueueLoad)
	b.wg.Go(func() {
		t := time.NewTicker(queueLoadInterval)
		defer t.Stop()
		for {
			select {
			case <-b.ctx.Done():
				return
			case now := <-t.C:
				b.queueLoadTick(now)
			}
		}
	})
}

// queueLoadTick measures and reports this broker's figures, and steps
// the weights.
func (b *Broker) queueLoadTick(now time.Time) {
	own, err := b.measureQueueLoad(now)
	if err != nil {
		b.log.Warn("queue load not measured", slog.Any("err", err))
		return
	}
	for _, f := range own {
		if f.Members > 0 {
			data, _ := json.Marshal(own)
			b.publishInternal(netapi.QueueLoadSubject(b.cfg.Address), "", data)
			break
		}
	}
	b.qload.heardFrom(b.cfg.Address, own, now)
	b.qload.step(now)
}

// measureQueueLoad counts, for each load group, the members among the
// embedded server's clients and what they received since the last
// measure, per member and per second.
func (b *Broker) measureQueueLoad(now time.Time) (map[string]router.QueueLoadFigure, error) {
	// Connz lists leaf connections too, and sizes what it returns by the
	// connections there are, not by the limit: no limit then.
	cz, err := b.ns.Connz(&server.ConnzOptions{SubscriptionsDetail: true, Limit: 1 << 30})
	if err != nil {
		return nil, err
	}
	q := b.qload
	q.mu.Lock()
	defer q.mu.Unlock()
	members, received := map[string]int{}, map[string]int64{}
	seen := make(map[clientSub]int64, len(q.prev))
	for _, c := range cz.Conns {
		if c.Kind != "Client" {
			continue
		}
		for _, sd := range c.SubsDetail {
			if !q.groups[sd.Queue] {
				continue
			}
			k := clientSub{c.Cid, sd.Sid}
			seen[k] = sd.Msgs
			members[sd.Queue]++
			// A member new since the last measure counts whole.
			received[sd.Queue] += max(0, sd.Msgs-q.prev[k])
		}
	}
	elapsed := queueLoadInterval
	if !q.last.IsZero() {
		elapsed = now.Sub(q.last)
	}
	q.prev, q.last = seen, now
	out := make(map[string]router.QueueLoadFigure, len(q.groups))
	for g := range q.groups {
		f := router.QueueLoadFigure{Members: members[g]}
		if f.Members > 0 && elapsed > 0 {
			f.Rate = float64(received[g]) / elapsed.Seconds() / float64(f.Members)
		}
		out[g] = f
	}
	return out, nil
}

// onQueueLoad takes another broker's figures. A report that does not come
// from the broker it names, or that does not parse, is dropped and
// counted.
func (b *Broker) onQueueLoad(m internalMsg) {
	origin, _ := strings.CutPrefix(m.Subject, netapi.QueueLoadSubject(""))
	if origin == b.cfg.Address {
		return
	}
	var figures map[string]router.QueueLoadFigure
	switch {
	case origin != m.Origin:
		b.stats.badQueueLoads.Add(1)
		b.noteDrop("queue-load", m.Origin, "report for another broker")
		return
	case json.Unmarshal(m.Data, &figures) != nil:
		b.stats.badQueueLoads.Add(1)
		b.noteDrop("queue-load", m.Origin, "malformed report")
		return
	}
	b.qload.heardFrom(origin, figures, time.Now())
}

// heardFrom keeps a broker's latest figures of the load groups.
func (q *queueLoad) heardFrom(origin string, figures map[string]router.QueueLoadFigure, now time.Time) {
	h := heardLoad{at: now, figures: make(map[string]router.QueueLoadFigure, len(q.groups))}
	for g, f := range figures {
		if q.groups[g] {
			h.figures[g] = f
		}
	}
	q.mu.Lock()
	q.heard[origin] = h
	q.mu.Unlock()
}

// step forgets figures too old to count and steps every load group's
// weights on the rest.
func (q *queueLoad) step(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for origin, h := range q.heard {
		if now.Sub(h.at) > queueLoadMaxAge {
			delete(q.heard, origin)
		}
	}
	next := make(map[string]queueWeights, len(q.groups))
	for g := range q.groups {
		figures := map[string]router.QueueLoadFigure{}
		for origin, h := range q.heard {
			if f, ok := h.figures[g]; ok {
				figures[origin] = f
			}
		}
		next[g] = router.NextQueueLoadWeights(q.cur[g], figures)
	}
	q.cur = next
	q.weights.Store(&next)
}

// weight returns broker addr's weight in group (1 when it has none).
func (w queueWeights) weight(addr []byte) float64 {
	if v, ok := w[string(addr)]; ok {
		return v
	}
	return 1
}

// pickLoad is pickByPolicy for the load policy: a member broker, this one
// included when another of its leaves has members, in proportion to its
// members times its weight.
func (b *Broker) pickLoad(qp *queuePolicy, p *plan, qm *queueMatch, name []byte, from *leafConn, rt *routeTable, profile byte) bool {
	var w queueWeights
	if all := b.qload.weights.Load(); all != nil {
		w = (*all)[string(name)]
	}
	var local uint64
	for _, e := range qm.leaves {
		if e.h.leaf != from {
			local += uint64(e.weight)
		}
	}
	self := float64(local) * w.weight(b.addr)
	var remote float64
	for _, e := range qm.brokers {
		if rt.reaches(profile, e.h.addr) {
			remote += float64(e.weight) * w.weight(e.h.addr)
		}
	}
	if self+remote <= 0 {
		return false
	}
	x := rand.Float64() * (self + remote)
	if x < self || remote <= 0 {
		p.addLeaf(localMember(qm, from), name)
		qp.count(b.addr)
		return true
	}
	x -= self
	var last []byte
	for _, e := range qm.brokers {
		if !rt.reaches(profile, e.h.addr) {
			continue
		}
		last = e.h.addr
		if x -= float64(e.weight) * w.weight(e.h.addr); x < 0 {
			break
		}
	}
	// last is set, since remote counted some broker; rounding may leave x
	// at the end, which the last broker takes.
	p.addBroker(last, name)
	qp.count(last)
	return true
}
