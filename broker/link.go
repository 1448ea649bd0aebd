package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

// link is one overlay link of this broker. It outlives the connections that
// carry it: when a connection fails, the dialing side re-establishes it with
// backoff and the link comes back up with a new session.
type link struct {
	b    *Broker
	cfg  LinkConfig
	tcfg transports.Config // what it dials with
	log  *slog.Logger
	sess atomic.Pointer[session]              // the live session; nil while down
	emu  atomic.Pointer[transports.Emulation] // emulated conditions; nil for none
	// emuOwn: the conditions were set at this end (SetEmulation), not
	// told by the peer or configured; the peer is told them on each new
	// connection. emuMu makes each change of the conditions and of who
	// set them one step, so that a connection forming while an admin
	// changes them cannot put back the configured ones over the admin's.
	emuOwn atomic.Bool
	emuMu  sync.Mutex
	mon    *monitor.Link // measurement and liveness
	// stateAt is when the monitor last changed its verdict (unix ns).
	stateAt atomic.Int64
	// excluded takes the link out of routing (a control action).
	excluded atomic.Bool
	monCfg   monitor.Config // the configured measurement, for resets
	// preferred is whether the routes last took the link as one that is
	// up (not as a last resort); standby whether it was last announced in
	// standby. Both guarded by b.mu.
	preferred, standby bool

	// What its sessions count, drops by reason included, kept across
	// them; the messages it failed to deliver that went another way
	// (reroute.go); how often it came up.
	counters overlay.Counters
	rerouted atomic.Uint64
	ups      atomic.Uint64

	mu      sync.Mutex
	lastErr string
	since   time.Time // when the link last went up or down

	stopOnce sync.Once
}

// startupQuiet is how long after a broker starts a link that has never
// been up may fail to connect without a word above debug.
const startupQuiet = 10 * time.Second

// isRefusal reports whether a link failed its handshake for a reason that
// retrying will not cure: a configuration to fix, logged as an error.
func isRefusal(err error) bool {
	return errors.Is(err, linkauth.ErrRefused) || errors.Is(err, linkauth.ErrIncompatible) ||
		errors.Is(err, linkauth.ErrUnauthenticated)
}

func newLink(b *Broker, cfg LinkConfig) *link {
	l := &link{
		b:     b,
		cfg:   cfg,
		tcfg:  transportConfig(b.cfg.Transport, cfg),
		log:   b.log.With(slog.String("link", cfg.ID), slog.String("peer", cfg.Peer), slog.String("transport", cfg.Transport)),
		since: time.Now(),
	}
	l.useConfiguredEmulation()
	mcfg := b.cfg.Monitor
	if cfg.Monitor != nil {
		mcfg = *cfg.Monitor
	}
	mcfg.Detector.Ordered = probesInStream(cfg.Transport)
	l.monCfg = mcfg
	l.mon = l.newMonitor(mcfg)
	return l
}

// probesInStream reports whether a transport carries a link's probes in
// the one ordered stream its messages take, so that a stall holds them
// all (monitor.DetectorConfig.Ordered): tcp, tls, ws and mem do; udp
// sends each frame on its own and quic sends probes as datagrams.
func probesInStream(transport string) bool {
	switch transport {
	case "udp", "quic":
		return false
	}
	return true
}

// emulation returns the link's emulated conditions, or nil.
func (l *link) emulation() *transports.Emulation { return l.emu.Load() }

// useConfiguredEmulation makes the topology's conditions the link's. A
// new connection goes back to them unless this end set its own: what the
// peer told this end over an old connection is its to tell again on a new
// one (linkUp), and it may have changed them, or ended an outage, while
// no connection could say so. Kept, a stale outage would drop what this
// end sends on the new connection, its answers included, until told
// otherwise over a connection it keeps from forming.
func (l *link) useConfiguredEmulation() {
	var e *transports.Emulation
	if l.cfg.Emulation != nil {
		c := *l.cfg.Emulation
		e = &c
	}
	l.emu.Store(e)
}

func (l *link) setErr(err error) {
	l.mu.Lock()
	l.lastErr = err.Error()
	l.mu.Unlock()
}

// inOwnOutage reports whether the link is in a full emulated outage set at
// this end. The emulation acts on a connection's frames once it exists; a
// real outage would keep one from forming at all, so such a link is
// neither dialed nor answered. (Only an outage set at this end: one the
// peer set, the peer ends, and it can tell this end only over a
// connection.)
func (l *link) inOwnOutage() bool {
	e := l.emulation()
	return e != nil && e.Down && l.emuOwn.Load()
}

// errEmulatedOutage is why a link whose emulation has it down is not
// dialed.
var errEmulatedOutage = errors.New("emulated outage (down)")

// dialLoop keeps the link up for as long as ctx lives.
func (l *link) dialLoop(ctx context.Context) {
	backoff := l.b.cfg.DialBackoffMin
	var lastErr string
	for ctx.Err() == nil {
		var s *session
		var err error
		if l.inOwnOutage() {
			err = errEmulatedOutage
		} else {
			s, err = l.dial(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.setErr(err)
			level, what := slog.LevelInfo, "link not established; dialing again"
			switch {
			case isRefusal(err):
				level = slog.LevelError
			case l.ups.Load() == 0 && time.Since(time.Unix(0, int64(l.b.epoch))) < startupQuiet:
				// Brokers of a network start in any order: a peer not
				// listening yet is expected, not news.
				level, what = slog.LevelDebug, "peer not listening yet; dialing again"
			}
			if msg := what + err.Error(); msg != lastErr {
				l.log.Log(ctx, level, what, slog.Any("err", err))
				lastErr = msg
			}
			wait := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, l.b.cfg.DialBackoffMax)
			if isRefusal(err) {
				wait = l.b.cfg.DialBackoffMax
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		lastErr = ""
		backoff = l.b.cfg.DialBackoffMin
		l.run(s)
	}
}

func (l *link) dial(ctx context.Context) (*session, error) {
	dctx, cancel := context.WithTimeout(ctx, l.b.cfg.HandshakeTimeout)
	defer cancel()
	conn, err := transports.Dial(dctx, l.cfg.Dial, l.tcfg)
	if err != nil {
		return nil, err
	}
	h := linkauth.Hello{Version: overlay.ProtoVersion, From: l.b.cfg.Address, To: l.cfg.Peer, LinkID: l.cfg.ID, Epoch: l.b.epoch}
	sc, _, err := linkauth.Dial(conn, h, l.b.authConfig())
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("link %s to %s: %w", l.cfg.ID, l.cfg.Dial, err)
	}
	return newSession(l, sc), nil
}

// transportConfig is the transport settings a link dials with: on tls the
// peer's certificate must name the peer's address, not its host.
func transportConfig(cfg transports.Config, lc LinkConfig) transports.Config {
	if lc.Transport == "tls" && cfg.TLS != nil {
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.ServerName = lc.Peer
	}
	return cfg
}

// authConfig is how this broker authenticates its links.
func (b *Broker) authConfig() linkauth.Config {
	return linkauth.Config{Version: overlay.ProtoVersion, Secret: []byte(b.cfg.Secret), Timeout: b.cfg.HandshakeTimeout}
}

// acceptLink authenticates an inbound connection, then serves its link;
// done is called once the handshake is over.
func (b *Broker) acceptLink(conn transports.Conn, done func()) {
	info := conn.Info()
	var l *link
	sc, h, err := linkauth.Accept(conn, b.authConfig(), func(h linkauth.Hello) (linkauth.Hello, string) {
		found, reason := b.checkDialerHello(h, info.Scheme)
		if reason != "" {
			return linkauth.Hello{}, reason
		}
		if found.inOwnOutage() {
			return linkauth.Hello{}, linkauth.Unanswered
		}
		l = found
		return linkauth.Hello{Version: overlay.ProtoVersion, From: b.cfg.Address, To: h.From, LinkID: h.LinkID, Epoch: b.epoch}, ""
	})
	done()
	if errors.Is(err, linkauth.ErrUnanswered) {
		_ = conn.Close()
		b.log.Debug("inbound link left unanswered: emulated outage", slog.String("link", h.LinkID), slog.String("from", h.From))
		return
	}
	if err != nil {
		_ = conn.Close()
		b.refusedLink(info.Remote, h.From, err)
		return
	}
	l.run(newSession(l, sc))
}

// refusedLink counts and logs an inbound link that did not get through
// its handshake. Anyone who reaches a listener can make one, so at most
// refusalBurst are logged per refusalWindow; the next line counts the
// others.
func (b *Broker) refusedLink(remote, from string, err error) {
	if !errors.Is(err, linkauth.ErrRefused) { // the peer refused us
		b.stats.refusedLinks.Add(1)
	}
	missed, ok := b.refusals.allow(time.Now())
	if !ok {
		return
	}
	log := b.log.With(slog.String("remote", remote), slog.String("from", from), slog.Any("err", err))
	if missed > 0 {
		log = log.With(slog.Uint64("not_logged_since", missed))
	}
	switch {
	case errors.Is(err, linkauth.ErrGarbage):
		log.Warn("inbound link sent garbage; closed")
	case errors.Is(err, linkauth.ErrUnauthenticated), errors.Is(err, linkauth.ErrIncompatible):
		log.Error("refused inbound link")
	case errors.Is(err, linkauth.ErrRefused):
		log.Error("inbound link refused our answer")
	default:
		log.Debug("inbound link closed before its handshake")
	}
}

// checkDialerHello finds the link an inbound hello asks for; it returns why
// the link must be refused, or "".
func (b *Broker) checkDialerHello(h linkauth.Hello, scheme string) (*link, string) {
	if h.To != b.cfg.Address {
		return nil, fmt.Sprintf("wrong broker: expected %s, reached %s", h.To, b.cfg.Address)
	}
	b.mu.Lock()
	l, ok := b.links[h.LinkID]
	closed := b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Sprintf("%s is shutting down", b.cfg.Address)
	case !ok:
		return nil, fmt.Sprintf("%s has no link %s", b.cfg.Address, h.LinkID)
	case l.cfg.Peer != h.From:
		return nil, fmt.Sprintf("link %s joins %s and %s, not %s", h.LinkID, b.cfg.Address, l.cfg.Peer, h.From)
	case l.cfg.Dial != "":
		return nil, fmt.Sprintf("link %s is dialed by %s, not by %s", h.LinkID, b.cfg.Address, h.From)
	case l.cfg.Transport != scheme:
		return nil, fmt.Sprintf("link %s runs over %s, not %s", h.LinkID, l.cfg.Transport, scheme)
	}
	return l, ""
}

// run serves one session until it fails, then marks the link down.
func (l *link) run(s *session) {
	if !l.b.linkUp(l, s) {
		s.Close()
		return
	}
	err := s.Run()
	l.b.linkDown(l, s, err)
}

// send queues a message for the next hop across this link; k wakes the
// writer once the caller's batch is done.
func (l *link) send(m *overlay.Message, hops byte, dests []overlay.Dest, k *sendq.Kicker) {
	l.enqueue(m, k, func(b []byte) []byte { return overlay.AppendMsg(b, m, hops, dests) })
}

func (l *link) enqueue(m *overlay.Message, k *sendq.Kicker, enc func([]byte) []byte) {
	s := l.sess.Load()
	if s == nil {
		l.counters.Drops.AddClass(overlay.DropLinkDown, m.Class, 1, uint64(len(m.Data)))
		l.b.noteDrop("link", l.cfg.ID, "link down")
		return
	}
	ok, evicted := s.Send(m.Class, enc, k)
	if evicted > 0 {
		l.b.noteDrop("link", l.cfg.ID, "send queue full: lower class evicted")
	}
	if ok {
		return
	}
	l.counters.Drops.AddClass(overlay.DropQueueFull, m.Class, 1, uint64(len(m.Data)))
	l.b.noteDrop("link", l.cfg.ID, "send queue full")
}

// forward queues a received message record, unchanged but for its hop
// budget, for the next hop across this link.
func (l *link) forward(m *overlay.Message, body []byte, hops byte, fence bool, k *sendq.Kicker) {
	l.enqueue(m, k, func(b []byte) []byte { return overlay.AppendForward(b, body, hops, fence) })
}

// shutdown tells the peer this link is closing on purpose and closes it.
func (l *link) shutdown() {
	l.stopOnce.Do(func() {
		if s := l.sess.Load(); s != nil {
			s.Bye()
		}
	})
}

// state returns "up" or "down" and how long the link has been so.
func (l *link) state() (string, time.Time, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess.Load() != nil {
		return "up", l.since, ""
	}
	return "down", l.since, l.lastErr
}

// A refusal log lets refusalBurst lines through per refusalWindow.
const (
	refusalWindow = 10 * time.Second
	refusalBurst  = 10
)

// refusalLog limits how often inbound links refused in their handshake
// are logged.
type refusalLog struct {
	mu     sync.Mutex
	start  time.Time // of the current window
	logged int
	missed uint64
}

// allow reports whether a refusal may be logged now and, if so, how many
// were not since the last one logged.
func (r *refusalLog) allow(now time.Time) (missed uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.start) >= refusalWindow {
		r.start, r.logged = now, 0
	}
	if r.logged >= refusalBurst {
		r.missed++
		return 0, false
	}
	r.logged++
	missed, r.missed = r.missed, 0
	return missed, true
}
