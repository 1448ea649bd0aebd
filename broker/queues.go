package broker

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wayline/wayline/router"
)

// Queue groups: which one member of a group gets a message. The broker
// the message is published at chooses, among its own leaves and the
// brokers that announced members; the broker chosen hands the message to
// one of its own members. A group the routing settings do not list keeps
// the default choice: a member on another local leaf if there is one,
// else a reachable member broker at random in proportion to its member
// count. A listed group is chosen for by its policy (router.QueueGroup):
//
//   - weights: a unit among those with a member the publisher's broker
//     can reach (its own leaves count as members of its unit), with
//     probability weight / the sum of those units' weights; inside the
//     unit, a local member first, else a member broker in proportion to
//     its member count. When no listed unit has a member, the default.
//   - nearest: a local member first, else the member broker whose route
//     costs least on the message's profile, ties at random.
//   - load: a member broker, this one included, in proportion to its
//     members times the weight the load policy's control loop gives it
//     (queueload.go).
//
// No policy reaches a message published on a broker whose own
// nats-server has a member of the group: the server hands it to one of
// those members itself, preferring its own queue subscribers to a leaf
// connection's, and the broker never sees it (the load policy counts it
// in that broker's load, though).

// queuePolicy is one listed group's policy, ready for the data path, and
// the count of its messages by where they went. It is built by New and
// never changes, but for the counts.
type queuePolicy struct {
	split   router.QueueSplit // weights; no units for the other policies
	units   [][]byte          // split's units, to count by without allocating
	nearest bool
	load    bool
	self    int // the unit of this broker in split, -1 for none

	mu     sync.Mutex
	counts map[string]*uint64 // by unit (weights, otherQueueUnit) or broker (nearest, load)
}

// otherQueueUnit counts a weights group's messages that went to a member
// in no listed unit, because no listed unit had one; no address is
// spelled so.
var otherQueueUnit = []byte("(other)")

func newQueuePolicies(self string, qs []router.QueueGroup) map[string]*queuePolicy {
	out := make(map[string]*queuePolicy, len(qs))
	for _, q := range qs {
		qp := &queuePolicy{nearest: q.Policy == router.QueueNearest, load: q.Policy == router.QueueLoad, counts: map[string]*uint64{}}
		qp.split = router.NewQueueSplit(q.Weights)
		qp.self = qp.split.UnitOf([]byte(self))
		for i := range qp.split.Units() {
			qp.units = append(qp.units, []byte(qp.split.Unit(i)))
		}
		out[q.Group] = qp
	}
	return out
}

// count adds one message that went to to.
func (qp *queuePolicy) count(to []byte) {
	qp.mu.Lock()
	if n, ok := qp.counts[string(to)]; ok {
		*n++
	} else {
		n := uint64(1)
		qp.counts[string(to)] = &n
	}
	qp.mu.Unlock()
}

// pickByPolicy chooses the member of a listed group that gets a message
// published on leaf from, adds it to the plan and counts it. It reports
// false when the group has no reachable member left.
func (b *Broker) pickByPolicy(qp *queuePolicy, p *plan, qm *queueMatch, name []byte, from *leafConn, rt *routeTable, profile byte) bool {
	switch {
	case qp.load:
		return b.pickLoad(qp, p, qm, name, from, rt, profile)
	case !qp.nearest:
		return qp.pickWeighted(p, qm, name, from, rt, profile)
	}
	if l := localMember(qm, from); l != nil {
		p.addLeaf(l, name)
		qp.count(b.addr)
		return true
	}
	if addr := nearestMember(qm, rt, profile); addr != nil {
		p.addBroker(addr, name)
		qp.count(addr)
		return true
	}
	return false
}

// pickWeighted is pickByPolicy for weights: a unit among those with a
// member, then a member inside it.
func (qp *queuePolicy) pickWeighted(p *plan, qm *queueMatch, name []byte, from *leafConn, rt *routeTable, profile byte) bool {
	s := &qp.split
	p.present = append(p.present[:0], make([]bool, s.Units())...)
	if qp.self >= 0 && localMembers(qm, from) > 0 {
		p.present[qp.self] = true
	}
	for _, e := range qm.brokers {
		if i := s.UnitOf(e.h.addr); i >= 0 && !p.present[i] && rt.reaches(profile, e.h.addr) {
			p.present[i] = true
		}
	}
	u := s.Choose(p.present, rand.Float64())
	if u < 0 {
		if pickDefault(p, qm, name, from, rt, profile) {
			qp.count(otherQueueUnit)
			return true
		}
		return false
	}
	if u == qp.self {
		if l := localMember(qm, from); l != nil {
			p.addLeaf(l, name)
			qp.count(qp.units[u])
			return true
		}
	}
	if addr := remoteMember(qm, rt, profile, s, u); addr != nil {
		p.addBroker(addr, name)
		qp.count(qp.units[u])
		return true
	}
	// Unreachable: u was chosen for having a member.
	return false
}

// pickDefault is the choice for a group no policy covers: a member on a
// local leaf other than from, else a reachable member broker in
// proportion to its member count.
func pickDefault(p *plan, qm *queueMatch, name []byte, from *leafConn, rt *routeTable, profile byte) bool {
	if l := localMember(qm, from); l != nil {
		p.addLeaf(l, name)
		return true
	}
	if addr := remoteMember(qm, rt, profile, nil, -1); addr != nil {
		p.addBroker(addr, name)
		return true
	}
	return false
}

// localMembers counts the local leaves other than from with a member.
func localMembers(qm *queueMatch, from *leafConn) int {
	n := 0
	for _, e := range qm.leaves {
		if e.h.leaf != from {
			n++
		}
	}
	return n
}

// localMember returns a local leaf other than from with a member, at
// random, or nil.
func localMember(qm *queueMatch, from *leafConn) *leafConn {
	n := localMembers(qm, from)
	if n == 0 {
		return nil
	}
	k := rand.N(n)
	for _, e := range qm.leaves {
		if e.h.leaf == from {
			continue
		}
		if k == 0 {
			return e.h.leaf
		}
		k--
	}
	return nil
}

// remoteMember returns a reachable member broker at random in proportion
// to its member count, among those of split's unit u (when split is not
// nil), or nil.
func remoteMember(qm *queueMatch, rt *routeTable, profile byte, split *router.QueueSplit, u int) []byte {
	in := func(e *entry) bool {
		return (split == nil || split.UnitOf(e.h.addr) == u) && rt.reaches(profile, e.h.addr)
	}
	var total uint64
	for _, e := range qm.brokers {
		if in(e) {
			total += uint64(e.weight)
		}
	}
	if total == 0 {
		return nil
	}
	k := rand.Uint64N(total)
	for _, e := range qm.brokers {
		if !in(e) {
			continue
		}
		if k < uint64(e.weight) {
			return e.h.addr
		}
		k -= uint64(e.weight)
	}
	return nil
}

// nearestMember returns the reachable member broker whose route costs
// least on profile, at random among equals, or nil.
func nearestMember(qm *queueMatch, rt *routeTable, profile byte) []byte {
	t := rt.table(profile)
	best, ties := math.Inf(1), 0
	var pick []byte
	for _, e := range qm.brokers {
		a, ok := t.Broker(e.h.addr)
		if !ok || !rt.reaches(profile, e.h.addr) {
			continue
		}
		c, ok := t.Cost(a)
		switch {
		case !ok || c > best:
		case c < best:
			best, pick, ties = c, e.h.addr, 1
		default:
			// Reservoir sampling keeps each of the ties with equal chance.
			ties++
			if rand.N(ties) == 0 {
				pick = e.h.addr
			}
		}
	}
	return pick
}

// QueueCounts returns, for each queue group the routing settings list,
// how many of the messages published here went where: by unit for a
// weights policy ("(other)" for those sent by the default choice while no
// listed unit had a member), by broker for nearest and load.
func (b *Broker) QueueCounts() map[string]map[string]uint64 {
	if len(b.queues) == 0 {
		return nil
	}
	out := make(map[string]map[string]uint64, len(b.queues))
	for group, qp := range b.queues {
		m := map[string]uint64{}
		qp.mu.Lock()
		for to, n := range qp.counts {
			m[to] = *n
		}
		qp.mu.Unlock()
		out[group] = m
	}
	return out
}

// queueCollector exposes QueueCounts to Prometheus.
type queueCollector struct{ b *Broker }

var descQueue = prometheus.NewDesc("wayline_queue_group_messages_total",
	"Messages published at this broker for a queue group with a routing policy, by where they went: the unit a weights policy chose ((other): no listed unit had a member), or the broker nearest or load chose.",
	[]string{"group", "to"}, nil)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descQueue }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for g, counts := range c.b.QueueCounts() {
		for to, n := range counts {
			ch <- prometheus.MustNewConstMetric(descQueue, prometheus.CounterValue, float64(n), g, to)
		}
	}
}
