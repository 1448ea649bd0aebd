package broker

import (
	"errors"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/wayline/wayline/router"
)

// The control plane: link state and interest flooded between brokers, and
// the routes computed from them. Everything here runs with b.mu held.

// routeTable is the forwarding state readers use without a lock.
type routeTable struct {
	table router.Table
	next  map[string]*link // destination broker -> first link
}

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
		old.close()
	}
	l.mu.Lock()
	l.since, l.lastErr = time.Now(), ""
	l.mu.Unlock()
	l.ups.Add(1)
	l.log.Info("link up", slog.String("remote", s.info.Remote))
	b.updateOwnLinkStateLocked()
	// Link state first, so that the peer can route to the origins whose
	// interest follows.
	for _, ls := range b.lsdb {
		s.out.addCtrl(func(buf []byte) []byte { return appendLinkState(buf, ls) })
	}
	origins := []string{b.cfg.Address}
	for o := range b.interest.remote {
		origins = append(origins, o)
	}
	for _, o := range origins {
		if ver, ops, ok := b.interest.snapshotOps(b.cfg.Address, o); ok {
			s.out.addCtrl(func(buf []byte) []byte { return appendSnapshot(buf, o, ver, ops) })
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
	if n := s.out.close(); n > 0 {
		l.droppedBytes.Add(uint64(n))
	}
	l.mu.Lock()
	l.since = time.Now()
	if err != nil {
		l.lastErr = err.Error()
	}
	l.mu.Unlock()
	switch {
	case b.closed:
		l.log.Info("link closed")
	case errors.Is(err, errBye), errors.Is(err, io.EOF):
		l.log.Info("link closed by peer")
	default:
		l.log.Warn("link down", slog.Any("err", err))
	}
	b.updateOwnLinkStateLocked()
}

// updateOwnLinkStateLocked publishes this broker's links that are up.
func (b *Broker) updateOwnLinkStateLocked() {
	own := b.lsdb[b.cfg.Address]
	ls := &linkState{Origin: b.cfg.Address, Ver: version{Epoch: b.epoch, Seq: own.Ver.Seq + 1}}
	for _, l := range b.links {
		if l.usable() {
			ls.Links = append(ls.Links, lsLink{ID: l.cfg.ID, Peer: l.cfg.Peer, Cost: 1})
		}
	}
	sort.Slice(ls.Links, func(i, j int) bool { return ls.Links[i].ID < ls.Links[j].ID })
	b.lsdb[b.cfg.Address] = ls
	b.floodLocked(nil, func(buf []byte) []byte { return appendLinkState(buf, ls) })
	b.recomputeRoutesLocked()
}

// floodLocked queues a control record on every live session but one.
func (b *Broker) floodLocked(except *session, enc func([]byte) []byte) {
	for _, l := range b.links {
		if s := l.sess.Load(); s != nil && s != except {
			s.out.addCtrl(enc)
		}
	}
}

// onLinkState takes another broker's link state.
func (b *Broker) onLinkState(from *session, ls *linkState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ls.Origin == b.cfg.Address {
		return // our own, or an earlier run's; ours is authoritative
	}
	if cur, ok := b.lsdb[ls.Origin]; ok && !ls.Ver.newer(cur.Ver) {
		return
	}
	b.lsdb[ls.Origin] = ls
	b.floodLocked(from, func(buf []byte) []byte { return appendLinkState(buf, ls) })
	b.recomputeRoutesLocked()
}

// onInterest takes another broker's interest delta or snapshot part.
func (b *Broker) onInterest(from *session, u *interestUpdate) {
	if u.Origin == b.cfg.Address {
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
		from.out.addCtrl(func(buf []byte) []byte { return appendSyncReq(buf, u.Origin) })
	}
}

// onSyncReq answers a neighbour that missed part of an origin's interest.
func (b *Broker) onSyncReq(from *session, origin string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ver, ops, ok := b.interest.snapshotOps(b.cfg.Address, origin); ok {
		from.out.addCtrl(func(buf []byte) []byte { return appendSnapshot(buf, origin, ver, ops) })
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
	}
}

// recomputeRoutesLocked rebuilds the routes from the link-state database.
// A link counts only when both of its ends announce it, so a broker that
// died (and can no longer withdraw its own links) drops out at once.
func (b *Broker) recomputeRoutesLocked() {
	var links []router.Link
	for origin, ls := range b.lsdb {
		for _, l := range ls.Links {
			if origin > l.Peer || !b.announces(l.Peer, l.ID, origin) {
				continue
			}
			links = append(links, router.Link{ID: l.ID, A: router.Address(origin), B: router.Address(l.Peer), Cost: l.Cost, Up: true})
		}
	}
	t := router.ShortestPaths(router.NewGraph(links), router.Address(b.cfg.Address))
	rt := &routeTable{table: t, next: make(map[string]*link)}
	for _, r := range t.Routes() {
		if l, ok := b.links[r.Link]; ok && r.Destination != router.Address(b.cfg.Address) {
			rt.next[string(r.Destination)] = l
		}
	}
	b.routes.Store(rt)
	b.noteReachabilityLocked(time.Now())
}

// announces reports whether broker addr lists link id towards peer.
func (b *Broker) announces(addr, id, peer string) bool {
	ls, ok := b.lsdb[addr]
	if !ok {
		return false
	}
	for _, l := range ls.Links {
		if l.ID == id && l.Peer == peer {
			return true
		}
	}
	return false
}

// noteReachabilityLocked starts or stops the purge clock of every remote
// broker this broker knows of.
func (b *Broker) noteReachabilityLocked(now time.Time) {
	rt := b.routes.Load()
	note := func(addr string) {
		if _, ok := rt.next[addr]; ok || addr == b.cfg.Address {
			delete(b.unreachable, addr)
		} else if _, ok := b.unreachable[addr]; !ok {
			b.unreachable[addr] = now
		}
	}
	for addr := range b.interest.remote {
		note(addr)
	}
	for addr := range b.lsdb {
		note(addr)
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
		delete(b.lsdb, addr)
		delete(b.unreachable, addr)
	}
}
