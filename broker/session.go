package broker

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

// session is the broker's side of one overlay session (package overlay):
// the link it carries, and what the session's reader goroutine owns while
// it hands the broker what arrives: its forwarding plan, its match cache
// and the interest snapshot it is assembling. It is the session's Handler.
type session struct {
	*overlay.Session
	l     *link
	snap  snapshotAssembly
	cache matchCache
	plan  plan
}

var _ overlay.Handler = (*session)(nil)

// newSession prepares a session of link l on conn, whose peer is
// authenticated, under the link's emulated conditions.
func newSession(l *link, conn transports.Conn) *session {
	cfg := &l.b.cfg
	s := &session{l: l}
	s.Session = overlay.NewSession(conn, overlay.Config{
		Logger:      l.log,
		Keepalive:   cfg.Keepalive,
		DeadAfter:   cfg.DeadAfter,
		QueueBytes:  cfg.LinkQueueBytes,
		RetainBytes: cfg.RetainBytes,
		RetainAge:   cfg.RetainAge,
		MaxFrame:    cfg.Transport.MaxFrame,
		Rate:        l.cfg.Rate / 8,
		Counters:    &l.counters,
	}, s)
	l.emuMu.Lock()
	if !l.emuOwn.Load() {
		l.useConfiguredEmulation()
	}
	if e := l.emulation(); e != nil {
		s.Emulate(*e)
	}
	l.emuMu.Unlock()
	return s
}

// Message forwards and delivers a message that came over the link.
func (s *session) Message(m *overlay.Message, body []byte) { s.l.b.fromLink(s, m, body) }

// Flush sends or wakes the writers the handling of a frame fed
// (sendq.Kicker.FlushDirect).
func (s *session) Flush() { s.plan.kick.FlushDirect() }

// Discarded logs what the session dropped (it counted it).
func (s *session) Discarded(reason string) { s.l.b.noteDrop("link", s.l.cfg.ID, reason) }

// Control takes a control record to the control plane.
func (s *session) Control(t overlay.RecordType, body []byte) error {
	b := s.l.b
	switch t {
	case overlay.RecLinkState:
		ls, err := decodeLinkState(body)
		if err != nil {
			return fmt.Errorf("%w: link-state: %w", overlay.ErrBadRecord, err)
		}
		b.onLinkState(s, ls)
	case overlay.RecSummary:
		sum, err := decodeSummary(body)
		if err != nil {
			return fmt.Errorf("%w: summary: %w", overlay.ErrBadRecord, err)
		}
		b.onSummary(s, sum)
	case overlay.RecInterest:
		u, err := decodeInterest(body)
		if err != nil {
			return fmt.Errorf("%w: interest: %w", overlay.ErrBadRecord, err)
		}
		b.onInterest(s, u)
	case overlay.RecSyncReq:
		origin, err := overlay.DecodeStrRecord(body)
		if err != nil {
			return fmt.Errorf("%w: sync-request: %w", overlay.ErrBadRecord, err)
		}
		b.onSyncReq(s, origin)
	case overlay.RecEmulation:
		var spec transports.EmulationSpec
		if err := json.Unmarshal(body, &spec); err != nil {
			return fmt.Errorf("%w: emulation: %w", overlay.ErrBadRecord, err)
		}
		if err := b.applyPeerEmulation(s, spec); err != nil {
			s.l.log.Warn("peer asked for an emulation this broker refuses", slog.Any("err", err))
		}
	default:
		return fmt.Errorf("%w: %s is no control record of the broker's", overlay.ErrBadRecord, t)
	}
	return nil
}
