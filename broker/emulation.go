package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/wayline/wayline/transports"
)

// ErrUnknownLink is returned for a link id the broker does not have.
var ErrUnknownLink = errors.New("unknown link")

// SetEmulation changes a link's emulated conditions at run time: the fields
// spec names change, the others keep their values. Both directions change:
// the broker applies the result to what it sends and tells the peer to do
// the same for its direction. The message to the peer bypasses the
// emulation, so that a link can be brought back from a full outage. It
// returns the resulting emulation.
func (b *Broker) SetEmulation(linkID string, spec transports.EmulationSpec) (transports.Emulation, error) {
	l, err := b.link(linkID)
	if err != nil {
		return transports.Emulation{}, err
	}
	var base transports.Emulation
	if cur := l.emulation(); cur != nil {
		base = *cur
	}
	e, err := spec.Apply(base)
	if err != nil {
		return base, fmt.Errorf("link %s: emulation: %w", linkID, err)
	}
	if err := l.setEmulation(e); err != nil {
		return base, err
	}
	if s := l.sess.Load(); s != nil {
		js, _ := json.Marshal(transports.SpecOf(e))
		rec := appendEmulationRecord(nil, js)
		if s.send != nil {
			// On a lossy transport say it a few times; the peer applies it
			// idempotently.
			for range 3 {
				_, _ = s.conn.Send(rec)
			}
		} else {
			_, _ = s.conn.Send(rec)
		}
	}
	l.log.Info("emulation changed", slog.String("emulation", describe(e)))
	return e, nil
}

// setEmulation records e as the link's conditions and applies it to the
// live session, if any.
func (l *link) setEmulation(e transports.Emulation) error {
	l.emu.Store(&e)
	if s := l.sess.Load(); s != nil {
		if err := s.emulate(e); err != nil {
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
	if cur := s.l.emulation(); cur != nil && emulationEqual(*cur, e) {
		return nil
	}
	if err := s.l.setEmulation(e); err != nil {
		return err
	}
	s.l.log.Info("emulation changed by peer", slog.String("emulation", describe(e)))
	return nil
}

func emulationEqual(a, b transports.Emulation) bool {
	ja, _ := json.Marshal(transports.SpecOf(a))
	jb, _ := json.Marshal(transports.SpecOf(b))
	return string(ja) == string(jb)
}

func appendEmulationRecord(b, js []byte) []byte {
	b, s := beginRecord(b, recEmulation)
	b = append(b, js...)
	return endRecord(b, s)
}

// link returns the link with the given id.
func (b *Broker) link(id string) (*link, error) {
	b.mu.Lock()
	l, ok := b.links[id]
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownLink, id)
	}
	return l, nil
}

// describe summarises an emulation on one line.
func describe(e transports.Emulation) string {
	spec := transports.SpecOf(e)
	return spec.String()
}
