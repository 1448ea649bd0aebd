package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

// Every link is measured by performance packets that travel as records on
// the link itself, over the same transport (and emulation) as the data.
// Where the transport offers an unreliable path beside its reliable one
// (transports.DatagramConn: quic), probes and their answers take it, so
// that the monitor sees the loss, delay and jitter of the network rather
// than what the transport's retransmissions make of them; elsewhere they
// travel in-band. Probes double as heartbeats: the monitor's verdict
// decides whether the link carries routes. A link that is down by the
// monitor's verdict keeps its connection, so that it comes back as soon as
// probes get through again.

// errNoSession is returned when a probe finds the link without a connection.
var errNoSession = errors.New("link has no connection")

// newMonitor makes a link's measurement state.
func (l *link) newMonitor(cfg monitor.Config) *monitor.Link {
	cfg.Logger = l.log
	return monitor.NewLink(l.cfg.ID, cfg, func(pkt []byte) error {
		s := l.sess.Load()
		if s == nil {
			return errNoSession
		}
		s.sendProbe(overlay.AppendRecord(nil, overlay.RecProbe, pkt))
		return nil
	}, time.Now)
}

// sendProbe sends a probe record as a datagram where the link has them,
// and in-band otherwise or when it is too large for one.
func (s *session) sendProbe(rec []byte) {
	if s.dgram != nil {
		_, err := s.dgram.SendDatagram(rec)
		if err == nil {
			s.l.bytesSent.Add(uint64(len(rec)))
		}
		if !errors.Is(err, transports.ErrDatagramTooLarge) {
			return
		}
	}
	s.sendRaw(rec)
}

// startDatagrams starts the reader of the link's datagrams, if it has
// them; datagramsDone is closed when there is none or it ends, with the
// conn.
func (s *session) startDatagrams() {
	if s.dgram == nil {
		close(s.datagramsDone)
		return
	}
	go func() {
		defer close(s.datagramsDone)
		for {
			f, err := s.dgram.ReceiveDatagram()
			if errors.Is(err, linkauth.ErrForged) {
				s.l.b.stats.forgedFrames.Add(1)
				s.l.b.noteDrop("link", s.l.cfg.ID, "forged datagram")
				continue
			}
			if err != nil {
				return
			}
			s.onDatagram(f)
		}
	}()
}

// onDatagram handles one datagram from the peer. Datagrams carry probes
// only; anything else is counted and dropped, and never ends the link.
func (s *session) onDatagram(f transports.Frame) {
	s.lastRecv.Store(f.Received.UnixNano())
	s.l.bytesRecv.Add(uint64(len(f.Data)))
	err := overlay.EachRecord(f.Data, func(t overlay.RecordType, body []byte) error {
		if t != overlay.RecProbe {
			return fmt.Errorf("%w: %s record in a datagram", overlay.ErrBadRecord, t)
		}
		s.onProbe(body, f.Received)
		return nil
	})
	if err != nil {
		s.l.b.stats.badFrames.Add(1)
		s.l.b.noteDrop("link", s.l.cfg.ID, "malformed datagram")
	}
}

// onProbe handles a performance packet from the peer, received at at. A
// malformed one is counted and dropped; it never closes the link. It is
// called by the reader and by the datagram reader.
func (s *session) onProbe(body []byte, at time.Time) {
	b := s.l.b
	pkt, err := monitor.DecodePacket(body)
	if err != nil {
		b.stats.badProbes.Add(1)
		b.noteDrop("link", s.l.cfg.ID, "malformed performance packet")
		return
	}
	reply, err := s.l.mon.Receive(pkt, at)
	if err != nil {
		b.stats.badProbes.Add(1)
		b.noteDrop("link", s.l.cfg.ID, "unexpected performance packet")
		return
	}
	if reply != nil {
		reply.T3 = time.Now().UnixNano()
		s.sendProbe(overlay.AppendRecord(nil, overlay.RecProbe, reply.Append(nil)))
	}
}

// watchMonitor follows a link's liveness verdicts and reroutes on them.
func (b *Broker) watchMonitor(ctx context.Context, l *link) {
	events, cancel := l.mon.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			level := slog.LevelInfo
			if ev.To == monitor.StateDown {
				level = slog.LevelWarn
			}
			l.log.Log(ctx, level, "link state", slog.String("from", ev.From.String()), slog.String("to", ev.To.String()), slog.String("reason", ev.Reason))
			l.stateAt.Store(ev.At.UnixNano())
			if ev.To == monitor.StateDown || ev.From == monitor.StateDown {
				b.kickCosts()
			}
		}
	}
}

// usable reports whether the link carries routes: it has a connection, its
// monitor has not declared it down, and no one took it out of routing.
func (l *link) usable() bool {
	return l.sess.Load() != nil && l.mon.State() != monitor.StateDown && !l.excluded.Load()
}

// SetExcluded takes a link out of routing (announced down, whatever its
// measurements say) or puts it back. Outcomes: nil, or an error wrapping
// ErrUnknownLink.
func (b *Broker) SetExcluded(linkID string, exclude bool) error {
	l, err := b.link(linkID)
	if err != nil {
		return err
	}
	if l.excluded.Swap(exclude) != exclude {
		l.log.Info("link routing changed", slog.Bool("excluded", exclude))
		b.kickCosts()
	}
	return nil
}

// MonitoringChange changes how links are measured; nil fields keep their
// values.
type MonitoringChange struct {
	Enabled  *bool
	Interval *time.Duration
	Adaptive *bool
	// Reset puts back the link's configured interval and adaptive mode
	// first (other fields then apply on top).
	Reset bool
}

// SetMonitoring changes measurement for one link, or for every link of the
// broker when linkID is empty. Outcomes: nil; an error wrapping
// ErrUnknownLink; an error wrapping monitor.ErrBadConfig for an interval
// outside [10ms, 60s], in which case nothing changes.
func (b *Broker) SetMonitoring(linkID string, ch MonitoringChange) error {
	var links []*link
	if linkID == "" {
		b.mu.Lock()
		for _, l := range b.links {
			links = append(links, l)
		}
		b.mu.Unlock()
	} else {
		l, err := b.link(linkID)
		if err != nil {
			return err
		}
		links = []*link{l}
	}
	if ch.Interval != nil && (*ch.Interval < monitor.MinInterval || *ch.Interval > monitor.MaxInterval) {
		return fmt.Errorf("%w: interval %v outside [%v, %v]", monitor.ErrBadConfig, *ch.Interval, monitor.MinInterval, monitor.MaxInterval)
	}
	for _, l := range links {
		if ch.Reset {
			if err := l.mon.SetInterval(l.monCfg.Interval); err != nil {
				return err
			}
			l.mon.SetAdaptive(l.monCfg.Adaptive)
		}
		if ch.Interval != nil {
			if err := l.mon.SetInterval(*ch.Interval); err != nil {
				return err
			}
		}
		if ch.Adaptive != nil {
			l.mon.SetAdaptive(*ch.Adaptive)
		}
		if ch.Enabled != nil {
			l.mon.SetEnabled(*ch.Enabled)
		}
		l.log.Info("monitoring changed", slog.Any("enabled", ch.Enabled), slog.Any("interval", ch.Interval), slog.Any("adaptive", ch.Adaptive), slog.Bool("reset", ch.Reset))
	}
	return nil
}
