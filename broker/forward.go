package broker

import (
	"bytes"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/overlay"
)

// The data path. A message from a local leaf is matched against the
// interest table; one from a link carries its destinations. Either way the
// broker delivers to its own leaves and groups the remaining destinations
// by next hop, one copy per next hop.

var reservedPrefixBytes = []byte(netapi.Reserved)

// plan is where one message goes from this broker. Each reader goroutine
// owns one and reuses it, so that forwarding does not allocate.
type plan struct {
	leaves []leafDelivery
	dests  []overlay.Dest
	groups []hopGroup
	kick   sendq.Kicker // writers to wake once the reader's batch is done
	// present marks the units of a weights policy that have members.
	present []bool
	// streams, in the plan of a publishing connection's reader, numbers
	// the messages it sends (order.go).
	streams *streams
}

type leafDelivery struct {
	leaf   *leafConn
	queues [][]byte
}

type hopGroup struct {
	link  *link
	dests []overlay.Dest
}

func (p *plan) reset() {
	p.leaves = p.leaves[:0]
	p.dests = p.dests[:0]
	for i := range p.groups {
		p.groups[i].dests = p.groups[i].dests[:0]
	}
	p.groups = p.groups[:0]
}

func (p *plan) addLeaf(l *leafConn, queue []byte) {
	for i := range p.leaves {
		if p.leaves[i].leaf == l {
			if queue != nil {
				p.leaves[i].queues = append(p.leaves[i].queues, queue)
			}
			return
		}
	}
	var d *leafDelivery
	p.leaves, d = overlay.Grow(p.leaves)
	d.leaf, d.queues = l, d.queues[:0]
	if queue != nil {
		d.queues = append(d.queues, queue)
	}
}

func (p *plan) addBroker(addr []byte, queues ...[]byte) *overlay.Dest {
	for i := range p.dests {
		if bytes.Equal(p.dests[i].Broker, addr) {
			p.dests[i].Queues = append(p.dests[i].Queues, queues...)
			return &p.dests[i]
		}
	}
	var d *overlay.Dest
	p.dests, d = overlay.Grow(p.dests)
	d.Broker, d.Queues, d.Exits, d.Stream, d.Num = addr, append(d.Queues[:0], queues...), d.Exits[:0], 0, 0
	return d
}

// group sorts the broker destinations by next hop on a profile's routes,
// steering each through the exits of its way; origin says the message
// entered the network here.
func (p *plan) group(b *Broker, rt *routeTable, profile byte, origin bool) {
	for i := range p.dests {
		d := &p.dests[i]
		l, why := rt.steer(profile, d, origin)
		if l == nil {
			b.stats.noRoute.Add(1)
			b.noteDrop("broker", string(d.Broker), why)
			continue
		}
		g := p.groupFor(l)
		g.dests = append(g.dests, *d)
	}
}

func (p *plan) groupFor(l *link) *hopGroup {
	for i := range p.groups {
		if p.groups[i].link == l {
			return &p.groups[i]
		}
	}
	var g *hopGroup
	p.groups, g = overlay.Grow(p.groups)
	g.link, g.dests = l, g.dests[:0]
	return g
}

// fromLeaf handles a message published at this broker. queues names the
// queue groups the leaf wants served elsewhere (it had no member of them).
func (b *Broker) fromLeaf(l *leafConn, m *overlay.Message, queues [][]byte) {
	// The embedded server enforces who may publish on reserved subjects;
	// other leaves speak for clients the broker knows nothing of.
	if !l.core && bytes.HasPrefix(m.Subject, reservedPrefixBytes) {
		b.stats.reserved.Add(1)
		b.noteDrop("leaf", l.Name(), "publish on a reserved subject")
		return
	}
	if b.endsSubj != nil && l.core && bytes.Equal(m.Subject, b.endsSubj) {
		b.answerEnds(m)
		return
	}
	m.Origin = b.addr
	m.Seq = b.seq.Add(1)
	r := l.cache.get(b.interest, m.Subject)
	m.Profile, m.Class = r.profile, r.class
	p := &l.plan
	p.reset()
	for _, x := range r.leaves {
		if x != l {
			p.addLeaf(x, nil)
		}
	}
	for _, br := range r.brokers {
		p.addBroker(br)
	}
	if origin, ok := b.replies.lookup(m.Subject); ok {
		p.addBroker(origin)
	}
	for _, q := range queues {
		b.pickQueue(p, r, q, l, m.Profile)
	}
	if len(r.core) > 0 {
		b.deliverInternal(m, r.core)
	}
	b.execute(p, m, byte(b.cfg.MaxHops), true)
}

// fromLink handles a message that arrived over a link; body is its
// record.
func (b *Broker) fromLink(s *session, m *overlay.Message, body []byte) {
	if b.passOn(s, m, body) {
		return
	}
	p := &s.plan
	p.reset()
	for i := range m.Dests {
		d := &m.Dests[i]
		if !bytes.Equal(d.Broker, b.addr) {
			x := p.addBroker(d.Broker, d.Queues...)
			x.Exits, x.Stream, x.Num = append(x.Exits, d.Exits...), d.Stream, d.Num
			continue
		}
		if err := validateSubjects(m); err != nil {
			b.stats.badFrames.Add(1)
			b.noteDrop("link", s.l.cfg.ID, "malformed message")
			continue
		}
		if b.dedup.seen(m.Origin, m.Seq) {
			b.stats.duplicates.Add(1)
			continue
		}
		if b.takeForOrder(m, d, body) {
			continue
		}
		b.deliverHere(p, &s.cache, m, d)
	}
	if len(p.dests) > 0 && m.Hops == 0 {
		b.stats.hopLimit.Add(uint64(len(p.dests)))
		b.noteDrop("broker", b.cfg.Address, "hop limit reached")
		p.dests = p.dests[:0]
	}
	b.execute(p, m, m.Hops-1, false)
}

// deliverHere plans the delivery of m to this broker's subscribers, d
// being the destination that names this broker, and delivers it to the
// broker's own handlers.
func (b *Broker) deliverHere(p *plan, cache *matchCache, m *overlay.Message, d *overlay.Dest) {
	r := cache.get(b.interest, m.Subject)
	for _, x := range r.leaves {
		p.addLeaf(x, nil)
	}
	for _, q := range d.Queues {
		b.pickQueue(p, r, q, nil, m.Profile)
	}
	if len(m.Reply) > 0 && (len(p.leaves) > 0 || len(r.core) > 0) {
		// Before the request reaches a responder, the broker's own
		// handlers included, make sure its reply will find the way
		// back, whatever interest has propagated.
		b.noteReply(m.Reply, m.Origin)
	}
	if len(r.core) > 0 {
		b.deliverInternal(m, r.core)
	}
}

// passOn forwards a message that is not for this broker and whose
// destinations all share one next hop (a chain, a message for one broker)
// and keep their exits by copying its record: no plan, no re-encoding. It
// reports false when the message needs the general path.
func (b *Broker) passOn(s *session, m *overlay.Message, body []byte) bool {
	if m.Hops == 0 || len(m.Dests) == 0 {
		return false
	}
	rt := b.routes.Load()
	t := rt.table(m.Profile)
	var next *link
	for i := range m.Dests {
		d := &m.Dests[i]
		if bytes.Equal(d.Broker, b.addr) {
			return false
		}
		target, ok := t.Broker(d.Broker)
		if k := len(d.Exits) - 1; k >= 0 {
			if d.Exits[k].Broker == rt.self {
				return false
			}
			target = d.Exits[k].Broker
		}
		if !ok {
			return false
		}
		w, ok := t.Way(target, false)
		l := rt.own[w.Link]
		if !ok || len(w.Exits) > 0 || l == nil || (next != nil && l != next) {
			return false
		}
		next = l
	}
	next.forward(m, body, m.Hops-1, rt.fencing(), &s.plan.kick)
	return true
}

// pickQueue chooses the one member of a queue group that gets a message
// (see queues.go): by the group's policy when the message is published at
// this broker (on leaf from), else by the default choice.
func (b *Broker) pickQueue(p *plan, r *matchResult, name []byte, from *leafConn, profile byte) {
	if qm := r.queue(name); qm != nil {
		rt := b.routes.Load()
		if qp := b.queues[string(name)]; qp != nil && from != nil {
			if b.pickByPolicy(qp, p, qm, name, from, rt, profile) {
				return
			}
		} else if pickDefault(p, qm, name, from, rt, profile) {
			return
		}
	}
	b.stats.noMember.Add(1)
	b.noteDrop("queue", string(name), "no reachable member")
}

// execute carries out a plan: local deliveries, then one copy per next
// hop. origin says the message entered the network here.
func (b *Broker) execute(p *plan, m *overlay.Message, hops byte, origin bool) {
	b.executeOn(b.routes.Load(), p, m, hops, origin)
}

// executeOn is execute on the routes rt.
func (b *Broker) executeOn(rt *routeTable, p *plan, m *overlay.Message, hops byte, origin bool) {
	for i := range p.leaves {
		p.leaves[i].leaf.deliver(m, p.leaves[i].queues, &p.kick)
	}
	if len(p.dests) == 0 {
		return
	}
	p.group(b, rt, m.Profile, origin)
	if origin && p.streams != nil {
		p.streams.number(m, p.groups)
	}
	if origin || !m.Fenced {
		m.Fenced = rt.fencing()
	}
	for i := range p.groups {
		p.groups[i].link.send(m, hops, p.groups[i].dests, &p.kick)
	}
}
