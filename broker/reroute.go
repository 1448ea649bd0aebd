package broker

import "github.com/wayline/wayline/overlay"

// Failover without loss, the broker's part: what a failed link's session
// did not deliver (see the overlay's retain.go) is routed again over the
// routes that avoid the link, before any newer message takes them.

// reclaimLocked has link id give up what it holds when the routes no
// longer take it as they did: once when it goes from up to standby, and
// every time while no route takes it (no connection, taken out of
// routing, down in the map and not in standby, or in standby where every
// destination has another way). What it held goes the new ways, which
// may be the same link (its destinations drop what arrives twice). A
// link in standby that routes still take keeps what it holds: it would
// only come back to it. (A message a reader sent over the link on routes
// it read just before they changed is taken back at the next review.)
func (b *Broker) reclaimLocked(id string, l *link) {
	preferred := l.usable() && b.bnm.LinkUp(id)
	was := l.preferred
	l.preferred = preferred
	if preferred {
		return
	}
	rt := b.routes.Load()
	if was || !b.carriesLocked(id, l) || rt == nil || !rt.takes(id) {
		b.keepForRerouteLocked(l.sess.Load())
	}
}

// carriesLocked reports whether the routes may take link id: it is up at
// both ends, or in standby in the map.
func (b *Broker) carriesLocked(id string, l *link) bool {
	if !l.connected() {
		return false
	}
	return l.usable() && b.bnm.LinkUp(id) || b.bnm.LinkStandby(id)
}

// keepForRerouteLocked takes what session s sent and its peer did not
// acknowledge, and what waits in its queue, to be routed again with the
// next routes.
func (b *Broker) keepForRerouteLocked(s *session) {
	if s == nil {
		return
	}
	recs := s.Unacknowledged()
	s.l.rerouted.Add(uint64(overlay.CountRecords(recs)))
	b.reroute = append(b.reroute, recs...)
}

// rerouteLocked routes again, on rt, the messages that failed links left
// unacknowledged, before any newer message takes rt: so that they keep
// their order. A message rt still sends over a link that is failing (the
// news has not changed the routes yet) waits for the next routes rather
// than go back into that link.
func (b *Broker) rerouteLocked(rt *routeTable) {
	recs := b.reroute
	b.reroute = nil
	var held []byte
	p := &b.reroutePlan
	m := &b.rerouteMsg
	_ = overlay.EachRecord(recs, func(t overlay.RecordType, body []byte) error {
		if t != overlay.RecMsg || m.Decode(body) != nil {
			return nil
		}
		// It leaves after messages sent on the new routes may have: its
		// destinations must put it back in its place.
		m.Fenced = true
		p.reset()
		for i := range m.Dests {
			d := &m.Dests[i]
			x := p.addBroker(d.Broker, d.Queues...)
			x.Exits, x.Stream, x.Num = append(x.Exits, d.Exits...), d.Stream, d.Num
		}
		p.group(b, rt, m.Profile, false)
		for i := range p.groups {
			g := &p.groups[i]
			if !b.carriesLocked(g.link.cfg.ID, g.link) {
				held = overlay.AppendMsg(held, m, m.Hops, g.dests)
				continue
			}
			b.stats.rerouted.Add(uint64(len(g.dests)))
			g.link.send(m, m.Hops, g.dests, &p.kick)
		}
		p.kick.Flush()
		return nil
	})
	b.reroute = append(b.reroute, held...)
}
