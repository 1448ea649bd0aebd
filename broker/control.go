package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
)

// The control plane: link state and interest flooded between brokers, and
// the routes computed from them. Everything here runs with b.mu held.

// routeTable is the forwarding state readers use without a lock: for each
// cost profile, then for each delay contract, the routes towards every
// broker this one knows of.
type routeTable struct {
	self   router.Address
	tables []router.Table
	// own holds this broker's links by ID, for the exits it owns: those
	// the map had up, or in standby (standby says which), when the routes
	// were computed. An exit takes only those that were up (see usable):
	// a link whose peer has announced it down or in standby is refused
	// before this broker sees the failure itself.
	own     map[string]*link
	standby map[string]bool
	// firsts are the links some route leaves over, worked out the first
	// time takes asks.
	firstsOnce sync.Once
	firsts     map[string]bool
	// fenceUntil is when the messages sent on these routes stop being
	// fenced (unix ns; order.go), fenceWindow after the ways last moved;
	// 0 once that has passed.
	fenceUntil atomic.Int64
}

// table returns profile p's routes (the default's for an unknown p).
func (rt *routeTable) table(p byte) *router.Table {
	if int(p) >= len(rt.tables) {
		p = 0
	}
	return &rt.tables[p]
}

// reaches reports whether broker dst (an address, as bytes) is reachable
// on profile p.
func (rt *routeTable) reaches(p byte, dst []byte) bool {
	t := rt.table(p)
	a, ok := t.Broker(dst)
	if !ok {
		return false
	}
	_, ok = t.Way(a, false)
	return ok
}

// steer picks the link that takes destination d on its way (see
// router.Steer) and updates d's exits; origin says the message entered
// the network here. It returns nil and why when d cannot go on.
func (rt *routeTable) steer(p byte, d *overlay.Dest, origin bool) (*link, string) {
	t := rt.table(p)
	dst, ok := t.Broker(d.Broker)
	if !ok {
		return nil, "no route"
	}
	id, exits, err := router.Steer(t, rt.self, dst, d.Exits, origin, rt.usable)
	d.Exits = exits
	if err != nil {
		return nil, err.Error()
	}
	if l := rt.own[id]; l != nil {
		return l, ""
	}
	return nil, "no route"
}

// takes reports whether some route of rt leaves over link id.
func (rt *routeTable) takes(id string) bool {
	rt.firstsOnce.Do(func() {
		rt.firsts = map[string]bool{}
		for i := range rt.tables {
			for _, r := range rt.tables[i].Routes() {
				if r.Link != "" {
					rt.firsts[r.Link] = true
				}
			}
		}
	})
	return rt.firsts[id]
}

// usable reports whether this broker's link id may carry messages as an
// exit chosen upstream: it works, and neither end has announced it down.
func (rt *routeTable) usable(id string) bool {
	l := rt.own[id]
	return l != nil && !rt.standby[id] && l.usable()
}

// lsKey names one broker's announcement for one unit.
type lsKey struct{ origin, unit string }

// linkUp installs a new session on its link, sends the peer everything this
// broker knows, and announces the link. It reports false when the broker is
// closing.
func (b *Broker) linkUp(l *link, s *session) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	if old := l.sess.Swap(s); old != nil {
		// The peer came back on a new connection before the old one failed.
		old.Close()
	}
	l.mu.Lock()
	l.since, l.lastErr = time.Now(), ""
	l.mu.Unlock()
	l.ups.Add(1)
	l.log.Info("link up", slog.String("remote", s.Info().Remote))
	l.emuMu.Lock() // read with who set them, and sent in order (setOwnEmulation)
	if e := l.emulation(); e != nil && l.emuOwn.Load() {
		// Conditions set here: the peer dropped what it was told over the
		// old connection (useConfiguredEmulation), and they may have changed
		// since.
		l.sendEmulation(s, *e)
	}
	l.emuMu.Unlock()
	b.kickCosts()
	// Link state first, so that the peer can route to the origins whose
	// interest follows; only what is announced in units the peer belongs to.
	for k, ls := range b.lsdb {
		if within(l.cfg.Peer, k.unit) {
			s.SendControl(func(buf []byte) []byte { return appendLinkState(buf, ls) })
			b.stats.updatesCarried.Add(1)
		}
	}
	for k, sum := range b.sumdb {
		if within(l.cfg.Peer, summaryScope(k.unit)) {
			s.SendControl(func(buf []byte) []byte { return appendSummary(buf, sum) })
			b.stats.updatesCarried.Add(1)
		}
	}
	origins := []string{b.cfg.Address}
	for o := range b.interest.remote {
		origins = append(origins, o)
	}
	for _, o := range origins {
		if ver, ops, ok := b.interest.snapshotOps(b.cfg.Address, o); ok {
			s.SendControl(func(buf []byte) []byte { return appendSnapshot(buf, o, ver, ops) })
		}
	}
	return true
}

// linkDown removes a failed session and announces the link's loss, unless
// a newer session already replaced it.
func (b *Broker) linkDown(l *link, s *session, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !l.sess.CompareAndSwap(s, nil) {
		return
	}
	b.keepForRerouteLocked(s)
	s.Retire()
	l.mu.Lock()
	l.since = time.Now()
	if err != nil {
		l.lastErr = err.Error()
	}
	l.mu.Unlock()
	switch {
	case b.closed:
		l.log.Info("link closed")
	case errors.Is(err, overlay.ErrBye), errors.Is(err, io.EOF):
		l.log.Info("link closed by peer")
	default:
		l.log.Warn("link down", slog.Any("err", err))
	}
	b.kickCosts()
}

// within reports whether broker addr belongs to unit ("" is the whole
// network).
func within(addr, unit string) bool {
	return unit == "" || router.Address(addr).Within(router.Address(unit))
}

// floodLocked queues a control record on every live session but one.
func (b *Broker) floodLocked(except *session, enc func([]byte) []byte) {
	b.floodScopedLocked(except, "", enc)
}

// floodScopedLocked queues a control record on every live session but one
// whose peer belongs to unit, and returns how many it went to.
func (b *Broker) floodScopedLocked(except *session, unit string, enc func([]byte) []byte) int {
	n := 0
	for _, l := range b.links {
		if s := l.sess.Load(); s != nil && s != except && within(l.cfg.Peer, unit) {
			s.SendControl(enc)
			n++
		}
	}
	return n
}

// floodUpdateLocked floods a cost update within its unit and counts the
// copies that cross links.
func (b *Broker) floodUpdateLocked(except *session, ls *linkState) {
	n := b.floodScopedLocked(except, ls.Unit, func(buf []byte) []byte { return appendLinkState(buf, ls) })
	b.stats.updatesCarried.Add(uint64(n))
}

// onLinkState takes another broker's cost update. An update that is old,
// out of its scope, about links its origin does not own, or priced with
// negative or NaN costs is ignored and counted.
func (b *Broker) onLinkState(from *session, ls *linkState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ls.Origin == b.cfg.Address {
		b.ownEchoLocked(ls.Unit, ls.Ver, false)
		return
	}
	if !ls.Ver.plausible(time.Now()) {
		b.stats.badUpdates.Add(1)
		b.noteDrop("cost-update", ls.Origin, "epoch in the future")
		return
	}
	if reason := b.checkLinkStateLocked(ls); reason != "" {
		b.stats.badUpdates.Add(1)
		b.noteDrop("cost-update", ls.Origin, reason)
		return
	}
	if cur, ok := b.lsdb[lsKey{ls.Origin, ls.Unit}]; ok && b.staleLocked(ls.Ver, cur.Ver) {
		return
	}
	b.acceptLinkStateLocked(from, ls)
}

// staleLocked reports whether an update at version v brings nothing new
// over the one held at version cur, and counts it when it is older.
func (b *Broker) staleLocked(v, cur version) bool {
	if v.newer(cur) {
		return false
	}
	if v != cur {
		b.stats.staleUpdates.Add(1)
	}
	return true
}

// acceptLinkStateLocked stores a cost update, floods it within its unit,
// shows it to local subscribers and recomputes the routes.
func (b *Broker) acceptLinkStateLocked(from *session, ls *linkState) {
	b.lsdb[lsKey{ls.Origin, ls.Unit}] = ls
	b.bnm.Set(b.announcement(ls))
	b.floodUpdateLocked(from, ls)
	b.publishCostLocal(ls)
	b.recomputeRoutesLocked()
}

// checkLinkStateLocked says why a cost update must be ignored, or "".
func (b *Broker) checkLinkStateLocked(ls *linkState) string {
	if !within(b.cfg.Address, ls.Unit) {
		return "announced outside its unit"
	}
	for _, l := range ls.Links {
		if string(router.CommonUnit(router.Address(ls.Origin), router.Address(l.Peer))) != ls.Unit {
			return fmt.Sprintf("link %s to %s does not belong to unit %q", l.ID, l.Peer, ls.Unit)
		}
		if ends, ok := b.knownLinks[l.ID]; ok && !(ends == [2]string{ls.Origin, l.Peer} || ends == [2]string{l.Peer, ls.Origin}) {
			return fmt.Sprintf("link %s joins %s and %s, not %s", l.ID, ends[0], ends[1], ls.Origin)
		}
		if owner, ok := b.linkOwners[l.ID]; ok && owner != [2]string{ls.Origin, l.Peer} && owner != [2]string{l.Peer, ls.Origin} {
			return fmt.Sprintf("link %s already joins %s and %s", l.ID, owner[0], owner[1])
		}
		for _, c := range l.Costs {
			if math.IsNaN(c) || c < 0 {
				return fmt.Sprintf("link %s: cost %v", l.ID, c)
			}
		}
	}
	for _, l := range ls.Links {
		b.linkOwners[l.ID] = [2]string{ls.Origin, l.Peer}
	}
	return ""
}

// announcement turns a cost update into the network map's terms, with its
// costs in this broker's profile order.
func (b *Broker) announcement(ls *linkState) router.Announcement {
	idx := b.profileIndex(ls.Profiles)
	a := router.Announcement{Origin: router.Address(ls.Origin), Unit: router.Address(ls.Unit)}
	for _, l := range ls.Links {
		al := router.AnnouncedLink{ID: l.ID, Peer: router.Address(l.Peer), Costs: make([]float64, len(b.profiles)), Delay: l.Delay, Standby: l.Standby}
		for i, j := range idx {
			switch {
			case !l.Up:
				al.Costs[i] = math.Inf(1)
			case j >= 0:
				al.Costs[i] = l.Costs[j]
			default:
				// The origin does not know this profile: price the link on
				// the default one rather than leave it out.
				al.Costs[i] = l.Costs[0]
			}
		}
		a.Links = append(a.Links, al)
	}
	return a
}

// onInterest takes another broker's interest delta or snapshot part.
func (b *Broker) onInterest(from *session, u *interestUpdate) {
	if u.Origin == b.cfg.Address {
		return
	}
	if !u.Ver.plausible(time.Now()) {
		b.stats.badInterest.Add(1)
		b.noteDrop("interest", u.Origin, "epoch in the future")
		return
	}
	if u.Flags&interestSnapshot != 0 {
		done, err := from.snap.add(u)
		if err != nil {
			from.l.log.Warn("bad interest snapshot", slog.Any("err", err))
			return
		}
		if !done {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		ver, ops := from.snap.ver, from.snap.ops
		if b.interest.applySnapshot(u.Origin, ver, ops) == applyDone {
			b.floodLocked(from, func(buf []byte) []byte { return appendSnapshot(buf, u.Origin, ver, ops) })
			b.noteReachabilityLocked(time.Now())
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.interest.applyDelta(u) {
	case applyDone:
		b.floodLocked(from, func(buf []byte) []byte { return appendInterest(buf, u) })
	case applyGap:
		from.SendControl(func(buf []byte) []byte { return appendSyncReq(buf, u.Origin) })
	}
}

// onSyncReq answers a neighbour that missed part of an origin's interest.
func (b *Broker) onSyncReq(from *session, origin string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ver, ops, ok := b.interest.snapshotOps(b.cfg.Address, origin); ok {
		from.SendControl(func(buf []byte) []byte { return appendSnapshot(buf, origin, ver, ops) })
	}
}

// flushLocalInterest announces the leaves' latest subscription changes.
func (b *Broker) flushLocalInterest() {
	b.mu.Lock()
	b.announceLocalLocked()
	b.mu.Unlock()
}

func (b *Broker) announceLocalLocked() {
	if u := b.interest.takeDelta(b.cfg.Address); u != nil {
		b.floodLocked(nil, func(buf []byte) []byte { return appendInterest(buf, u) })
		// The state message lists the clients' subjects.
		b.kickState()
	}
}

// recomputeRoutesLocked rebuilds every profile's routes from the network
// map, and announces the summaries that changed with them.
func (b *Broker) recomputeRoutesLocked() {
	start := time.Now()
	rt := &routeTable{self: router.Address(b.cfg.Address), tables: b.bnm.Tables(), own: make(map[string]*link, len(b.links))}
	if cs := b.cfg.Routing.Contracts; len(cs) > 0 {
		rt.tables = append(rt.tables, b.bnm.ContractTables(b.cfg.Routing.contracts(), rt.tables[0])...)
	}
	for id, l := range b.links {
		switch {
		case b.bnm.LinkUp(id):
			rt.own[id] = l
		case b.bnm.LinkStandby(id):
			rt.own[id] = l
			if rt.standby == nil {
				rt.standby = map[string]bool{}
			}
			rt.standby[id] = true
		}
	}
	old, now := b.routes.Load(), time.Now()
	var change router.WayChange
	if old != nil {
		change = compareWays(old, rt)
	}
	if old == nil || !change.Same() {
		b.stats.routesChanged.Store(now.UnixNano())
		b.kickState()
	}
	switch {
	case change.Moved:
		// Messages sent now may overtake those sent the old ways.
		rt.fenceUntil.Store(now.Add(fenceWindow).UnixNano())
	case old != nil && old.fencing():
		rt.fenceUntil.Store(old.fenceUntil.Load())
	}
	b.routes.Store(rt)
	// A link the routes no longer take as they did (its own monitor, or
	// its peer's, declared it down) gives up what it holds to them.
	for id, l := range b.links {
		b.reclaimLocked(id, l)
	}
	if len(b.reroute) > 0 {
		b.rerouteLocked(rt)
	}
	b.stats.recomputes.Add(1)
	b.stats.recomputeNanos.Add(uint64(time.Since(start)))
	b.noteReachabilityLocked(time.Now())
	b.announceSummariesLocked(time.Now(), false)
}

// compareWays says how rt's ways differ from old's (router.CompareWays),
// over every profile.
func compareWays(old, rt *routeTable) router.WayChange {
	c := router.WayChange{Reach: len(old.tables) != len(rt.tables)}
	for p := range min(len(old.tables), len(rt.tables)) {
		d := rt.tables[p].CompareWays(old.tables[p])
		c.Reach, c.Moved = c.Reach || d.Reach, c.Moved || d.Moved
	}
	return c
}

// noteReachabilityLocked starts or stops the purge clock of every remote
// broker this broker knows of.
func (b *Broker) noteReachabilityLocked(now time.Time) {
	rt := b.routes.Load()
	note := func(addr string) {
		if addr == b.cfg.Address || rt.reaches(0, []byte(addr)) {
			delete(b.unreachable, addr)
		} else if _, ok := b.unreachable[addr]; !ok {
			b.unreachable[addr] = now
		}
	}
	for addr := range b.interest.remote {
		note(addr)
	}
	for k := range b.lsdb {
		note(k.origin)
	}
	for k := range b.sumdb {
		note(k.origin)
	}
}

// purgeUnreachable forgets brokers that stayed unreachable for PurgeAfter:
// their interest is withdrawn from the leaves, and what they announced
// is dropped, so that whatever they announce when they return applies.
func (b *Broker) purgeUnreachable(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for addr, since := range b.unreachable {
		if now.Sub(since) < b.cfg.PurgeAfter {
			continue
		}
		b.log.Info("forgetting unreachable broker", slog.String("peer", addr), slog.Duration("unreachable", now.Sub(since)))
		b.interest.purge(addr)
		for k := range b.lsdb {
			if k.origin == addr {
				delete(b.lsdb, k)
			}
		}
		for k := range b.sumdb {
			if k.origin == addr {
				delete(b.sumdb, k)
			}
		}
		b.bnm.Forget(router.Address(addr))
		delete(b.unreachable, addr)
	}
}
