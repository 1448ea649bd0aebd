package broker

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

// ErrUnknownLink is returned for a link id the broker does not have, and
// ErrAmbiguousLink for one that begins the ids of several of its links.
var (
	ErrUnknownLink   = netapi.ErrUnknownLink
	ErrAmbiguousLink = netapi.ErrAmbiguousLink
)

// SetEmulation changes a link's emulated conditions at run time: the fields
// spec names change, the others keep their values. Both directions change:
// the broker applies the result to what it sends and tells the peer to do
// the same for its direction, without waiting for it to go (a quic
// stream through an outage may hold it). The message to the peer bypasses
// the emulation of frames, so that a link can be brought back from a full
// outage; on quic, whose packets are emulated, it goes with them, and the
// peer is not told of an outage (see sendEmulation). It returns the
// resulting emulation.
func (b *Broker) SetEmulation(linkID string, spec transports.EmulationSpec) (transports.Emulation, error) {
	l, err := b.link(linkID)
	if err != nil {
		return transports.Emulation{}, err
	}
	e, err := l.setOwnEmulation(spec)
	if err != nil {
		return e, err
	}
	l.log.Info("emulation changed", slog.String("emulation", describe(e)))
	b.kickState()
	return e, nil
}

// setOwnEmulation changes the fields spec names, makes the result this
// end's own conditions and tells the peer, if connected. Telling under
// emuMu keeps the peer's order of changes this end's: of two changes made
// at once, the one stored last is the one sent last. It returns the
// result, or the conditions as they stay and why.
func (l *link) setOwnEmulation(spec transports.EmulationSpec) (transports.Emulation, error) {
	l.emuMu.Lock()
	defer l.emuMu.Unlock()
	var base transports.Emulation
	if cur := l.emulation(); cur != nil {
		base = *cur
	}
	e, err := spec.Apply(base)
	if err != nil {
		return base, fmt.Errorf("link %s: emulation: %w", l.cfg.ID, err)
	}
	if err := l.setEmulation(e); err != nil {
		return base, err
	}
	l.emuOwn.Store(true)
	if s := l.sess.Load(); s != nil {
		l.sendEmulation(s, e)
	}
	return e, nil
}

// sendEmulation tells the peer over s to apply e to its direction. The
// message bypasses the emulation of frames, so that a link can be brought
// back from a full outage. Where the emulation acts on the transport's
// packets (quic) nothing bypasses it: a message sent into an outage set
// here arrives after it has ended, and a peer told of the outage then
// would start one of its own, cutting off the message that ends it. So
// there the peer is not told of an outage: this end dropping all it sends
// is the outage, and the peer hears nothing, as in a real one.
func (l *link) sendEmulation(s *session, e transports.Emulation) {
	if s.EmulatesPackets() {
		e.Down = false
	}
	js, _ := json.Marshal(transports.SpecOf(e))
	s.SendOutOfBand(overlay.AppendRecord(nil, overlay.RecEmulation, js))
}

// setEmulation records e as the link's conditions and applies it to the
// live session, if any.
func (l *link) setEmulation(e transports.Emulation) error {
	l.emu.Store(&e)
	if s := l.sess.Load(); s != nil {
		if err := s.Emulate(e); err != nil {
			return fmt.Errorf("link %s: emulation: %w", l.cfg.ID, err)
		}
	}
	return nil
}

// applyPeerEmulation takes the conditions the peer set on the link.
func (b *Broker) applyPeerEmulation(s *session, spec transports.EmulationSpec) error {
	e, err := spec.Apply(transports.Emulation{})
	if err != nil {
		return err
	}
	if changed, err := s.l.setPeerEmulation(e); !changed || err != nil {
		return err
	}
	s.l.log.Info("emulation changed by peer", slog.String("emulation", describe(e)))
	b.kickState()
	return nil
}

// setPeerEmulation makes e the link's conditions, as the peer's, unless
// they are e already; it reports whether they changed.
func (l *link) setPeerEmulation(e transports.Emulation) (bool, error) {
	l.emuMu.Lock()
	defer l.emuMu.Unlock()
	if cur := l.emulation(); cur != nil && emulationEqual(*cur, e) {
		return false, nil
	}
	if err := l.setEmulation(e); err != nil {
		return false, err
	}
	l.emuOwn.Store(false)
	return true, nil
}

func emulationEqual(a, b transports.Emulation) bool {
	ja, _ := json.Marshal(transports.SpecOf(a))
	jb, _ := json.Marshal(transports.SpecOf(b))
	return string(ja) == string(jb)
}

// link returns the link whose id is id, or the one whose id begins with
// it (see netapi.LinkByPrefix).
func (b *Broker) link(id string) (*link, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.links[id]; ok {
		return l, nil
	}
	full, err := netapi.LinkByPrefix(id, slices.Collect(maps.Keys(b.links)))
	if err != nil {
		return nil, err
	}
	return b.links[full], nil
}

// LinkID is the full id of the link that id names, as link finds it.
func (b *Broker) LinkID(id string) (string, error) {
	l, err := b.link(id)
	if err != nil {
		return "", err
	}
	return l.cfg.ID, nil
}

// describe summarises an emulation on one line.
func describe(e transports.Emulation) string {
	spec := transports.SpecOf(e)
	return spec.String()
}
