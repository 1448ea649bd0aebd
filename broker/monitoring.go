package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wayline/wayline/monitor"
)

// Every link is measured by performance packets that travel as records on
// the link itself, over the same transport (and emulation) as the data:
// as datagrams where the transport has them (see the overlay's
// datagram.go), in-band otherwise. Probes double as heartbeats: the
// monitor's verdict decides whether the link carries routes. A link that
// is down by the monitor's verdict keeps its connection, so that it comes
// back as soon as probes get through again.

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
		s.SendProbe(pkt)
		return nil
	}, time.Now)
}

// Probe handles a performance packet from the peer, received at at. A
// malformed one is counted and dropped; it never closes the link. It is
// called by the session's reader and by its datagram reader.
func (s *session) Probe(body []byte, at time.Time) {
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
		s.SendProbe(reply.Append(nil))
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
	return l.connected() && l.mon.State() != monitor.StateDown
}

// connected reports whether the link could carry messages: it has a
// connection, and no one took it out of routing. One that is connected
// but not usable is in standby: announced down, and taken by routes only
// where nothing else reaches (router.StandbyCost), so that a link its
// monitor judged dead, perhaps wrongly, is not left idle while messages
// it could carry are dropped for want of a route.
func (l *link) connected() bool {
	return l.sess.Load() != nil && !l.excluded.Load()
}

// canStandby reports whether the link, when it is down, is in standby: it
// is connected, and its peer sent something within standbySilence. A link
// silent for longer is taken for dead before its connection is given up,
// so that what it is given is not held, unacknowledged, past what the
// link keeps (RetainAge) and lost uncounted.
func (l *link) canStandby() bool {
	s := l.sess.Load()
	return s != nil && !l.excluded.Load() && s.Silence(time.Now()) < l.b.standbySilence()
}

// inStandby reports whether the link is in standby now: down, and able
// to stand by.
func (l *link) inStandby() bool { return !l.usable() && l.canStandby() }

// standbySilence is how long a link's peer may be silent while the link
// stays in standby: half the shorter of DeadAfter and RetainAge.
func (b *Broker) standbySilence() time.Duration {
	return min(b.cfg.DeadAfter, b.cfg.RetainAge) / 2
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
