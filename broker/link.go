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

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/transports"
)

// link is one overlay link of this broker. It outlives the connections that
// carry it: when a connection fails, the dialing side re-establishes it with
// backoff and the link comes back up with a new session.
type link struct {
	b    *Broker
	cfg  LinkConfig
	log  *slog.Logger
	sess atomic.Pointer[session]              // the live session; nil while down
	emu  atomic.Pointer[transports.Emulation] // emulated conditions; nil for none
	mon  *monitor.Link                        // measurement and liveness
	// stateAt is when the monitor last changed its verdict (unix ns).
	stateAt atomic.Int64
	// excluded takes the link out of routing (a control action).
	excluded atomic.Bool
	monCfg   monitor.Config // the configured measurement, for resets

	msgsSent  atomic.Uint64
	msgsRecv  atomic.Uint64
	bytesSent atomic.Uint64
	bytesRecv atomic.Uint64
	// Messages dropped towards this link: its queue was full, or it went
	// down with messages still queued or in hand.
	dropped      atomic.Uint64
	droppedBytes atomic.Uint64
	ups          atomic.Uint64

	mu      sync.Mutex
	lastErr string
	since   time.Time // when the link last went up or down

	stopOnce sync.Once
}

var (
	// errRefused: the peer refused our handshake, and said why.
	errRefused = errors.New("refused by peer")
	// errIncompatible: we refused the peer's handshake.
	errIncompatible = errors.New("refused the peer")
)

// startupQuiet is how long after a broker starts a link that has never
// been up may fail to connect without a word above debug.
const startupQuiet = 10 * time.Second

// isRefusal reports whether a link failed its handshake for a reason that
// retrying will not cure: a configuration to fix, logged as an error.
func isRefusal(err error) bool {
	return errors.Is(err, errRefused) || errors.Is(err, errIncompatible)
}

func newLink(b *Broker, cfg LinkConfig) *link {
	l := &link{
		b:     b,
		cfg:   cfg,
		log:   b.log.With(slog.String("link", cfg.ID), slog.String("peer", cfg.Peer), slog.String("transport", cfg.Transport)),
		since: time.Now(),
	}
	if cfg.Emulation != nil {
		e := *cfg.Emulation
		l.emu.Store(&e)
	}
	mcfg := b.cfg.Monitor
	if cfg.Monitor != nil {
		mcfg = *cfg.Monitor
	}
	l.monCfg = mcfg
	l.mon = l.newMonitor(mcfg)
	return l
}

// emulation returns the link's emulated conditions, or nil.
func (l *link) emulation() *transports.Emulation { return l.emu.Load() }

func (l *link) setErr(err error) {
	l.mu.Lock()
	l.lastErr = err.Error()
	l.mu.Unlock()
}

// dialLoop keeps the link up for as long as ctx lives.
func (l *link) dialLoop(ctx context.Context) {
	backoff := l.b.cfg.DialBackoffMin
	var lastErr string
	for ctx.Err() == nil {
		s, err := l.dial(ctx)
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
	conn, err := transports.Dial(dctx, l.cfg.Dial, l.b.cfg.Transport)
	if err != nil {
		return nil, err
	}
	h := hello{Version: protoVersion, From: l.b.cfg.Address, To: l.cfg.Peer, LinkID: l.cfg.ID, Epoch: l.b.epoch}
	peer, err := l.b.handshakeDial(conn, h)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("link %s to %s: %w", l.cfg.ID, l.cfg.Dial, err)
	}
	return newSession(l, conn, peer.Epoch, false), nil
}

// handshakeDial sends our hello and waits for the peer's. On lossy links
// the hello is repeated until an answer arrives.
func (b *Broker) handshakeDial(conn transports.Conn, h hello) (hello, error) {
	timer := time.AfterFunc(b.cfg.HandshakeTimeout, func() { _ = conn.Close() })
	defer timer.Stop()
	rec := appendHello(nil, h)
	if _, err := conn.Send(rec); err != nil {
		return hello{}, fmt.Errorf("send hello: %w", err)
	}
	if !conn.Info().Reliable {
		stop := make(chan struct{})
		defer close(stop)
		go resendUntil(conn, rec, stop)
	}
	for {
		f, err := conn.Receive()
		if errors.Is(err, transports.ErrFrameTooLarge) {
			continue
		}
		if err != nil {
			return hello{}, fmt.Errorf("handshake: %w", err)
		}
		var peer *hello
		var refused string
		err = eachRecord(f.Data, func(t recType, body []byte) error {
			switch t {
			case recHello:
				p, err := decodeHello(body)
				if err != nil {
					return err
				}
				peer = &p
			case recRefuse:
				refused, _ = decodeStrRecord(body)
			}
			return nil
		})
		switch {
		case err != nil:
			return hello{}, fmt.Errorf("handshake: %w", err)
		case refused != "":
			return hello{}, fmt.Errorf("%w: %s", errRefused, refused)
		case peer == nil:
			continue // early control traffic on a lossy link; it is resent
		}
		if reason := checkPeerHello(*peer, h); reason != "" {
			_, _ = conn.Send(appendRefuse(nil, reason))
			return hello{}, fmt.Errorf("%w: %s", errIncompatible, reason)
		}
		return *peer, nil
	}
}

func resendUntil(conn transports.Conn, rec []byte, stop chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := conn.Send(rec); err != nil {
				return
			}
		}
	}
}

// checkPeerHello checks the acceptor's answer against what the dialer
// expected; it returns why the link must be refused, or "".
func checkPeerHello(peer, ours hello) string {
	switch {
	case peer.Version != protoVersion:
		return fmt.Sprintf("protocol version mismatch: %s speaks version %d, %s speaks version %d", peer.From, peer.Version, ours.From, protoVersion)
	case peer.From != ours.To:
		return fmt.Sprintf("wrong broker: expected %s, reached %s", ours.To, peer.From)
	case peer.LinkID != ours.LinkID:
		return fmt.Sprintf("link id mismatch: asked for %s, got %s", ours.LinkID, peer.LinkID)
	}
	return ""
}

// acceptLink runs the acceptor's side of the handshake on an inbound
// connection, then serves the link.
func (b *Broker) acceptLink(conn transports.Conn) {
	timer := time.AfterFunc(b.cfg.HandshakeTimeout, func() { _ = conn.Close() })
	remote := conn.Info().Remote
	var h hello
	for {
		f, err := conn.Receive()
		if errors.Is(err, transports.ErrFrameTooLarge) {
			continue
		}
		if err != nil {
			timer.Stop()
			_ = conn.Close()
			b.log.Debug("inbound link closed before its handshake", slog.String("remote", remote), slog.Any("err", err))
			return
		}
		var found bool
		err = eachRecord(f.Data, func(t recType, body []byte) error {
			if t != recHello {
				return fmt.Errorf("expected hello, got %s", t)
			}
			var derr error
			h, derr = decodeHello(body)
			found = derr == nil
			return derr
		})
		if err != nil || !found {
			timer.Stop()
			b.stats.badFrames.Add(1)
			b.log.Warn("inbound link sent garbage; closed", slog.String("remote", remote), slog.Any("err", err))
			_ = conn.Close()
			return
		}
		break
	}
	timer.Stop()
	l, reason := b.checkDialerHello(h, conn.Info().Scheme)
	if reason != "" {
		b.log.Error("refused inbound link", slog.String("remote", remote), slog.String("from", h.From), slog.String("reason", reason))
		_, _ = conn.Send(appendRefuse(nil, reason))
		_ = conn.Close()
		return
	}
	reply := hello{Version: protoVersion, From: b.cfg.Address, To: h.From, LinkID: h.LinkID, Epoch: b.epoch}
	if _, err := conn.Send(appendHello(nil, reply)); err != nil {
		_ = conn.Close()
		return
	}
	l.run(newSession(l, conn, h.Epoch, true))
}

// checkDialerHello finds the link an inbound hello asks for; it returns why
// the link must be refused, or "".
func (b *Broker) checkDialerHello(h hello, scheme string) (*link, string) {
	if h.Version != protoVersion {
		return nil, fmt.Sprintf("protocol version mismatch: %s speaks version %d, %s speaks version %d", h.From, h.Version, b.cfg.Address, protoVersion)
	}
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
		s.close()
		return
	}
	go s.writeLoop()
	s.startDatagrams()
	err := s.readLoop()
	s.close()
	<-s.writerDone
	<-s.datagramsDone
	l.b.linkDown(l, s, err)
}

// send queues a message for the next hop across this link; k wakes the
// writer once the caller's batch is done.
func (l *link) send(m *message, hops byte, dests []dest, k *kicker) {
	l.enqueue(m, k, func(b []byte) []byte { return appendMsg(b, m, hops, dests) })
}

func (l *link) enqueue(m *message, k *kicker, enc func([]byte) []byte) {
	s := l.sess.Load()
	if s == nil {
		l.dropped.Add(1)
		l.droppedBytes.Add(uint64(len(m.Data)))
		l.b.noteDrop("link", l.cfg.ID, "link down")
		return
	}
	if s.out.add(enc) {
		l.msgsSent.Add(1)
		k.add(s.out)
		return
	}
	l.dropped.Add(1)
	l.droppedBytes.Add(uint64(len(m.Data)))
	l.b.noteDrop("link", l.cfg.ID, "send queue full")
}

// forward queues a received message record, unchanged but for its hop
// budget, for the next hop across this link.
func (l *link) forward(m *message, body []byte, hops byte, k *kicker) {
	l.enqueue(m, k, func(b []byte) []byte { return appendForward(b, body, hops) })
}

// shutdown tells the peer this link is closing on purpose and closes it.
func (l *link) shutdown() {
	l.stopOnce.Do(func() {
		if s := l.sess.Load(); s != nil {
			s.bye()
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
