package linkauth

import (
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/transports"
)

// Dial runs the dialer's side of the handshake on a freshly dialed conn:
// ours names this end, the link and the broker it expects. It returns the
// Conn the session uses (in secret mode one that protects every frame) and
// the acceptor's hello. Outcomes: success; ErrRefused with the acceptor's
// reason; ErrIncompatible when this end refuses the acceptor (version,
// names, link id, mode, certificate), after telling it why;
// ErrUnauthenticated when the acceptor did not prove itself in time; a
// transport error. On error the caller closes conn.
func Dial(conn transports.Conn, ours Hello, cfg Config) (transports.Conn, Hello, error) {
	cfg = cfg.withDefaults()
	info := conn.Info()
	mode := ModeFor(info, cfg)
	to := startTimeout(conn, cfg.Timeout)
	defer to.stop()
	hello := AppendHello(nil, ours)
	rep := startRepeater(conn, info.Reliable, cfg.Resend, hello)
	defer rep.stop()
	chalFrame, chal, err := awaitChallenge(conn, to)
	if err != nil {
		return nil, Hello{}, err
	}
	if reason := checkChallenge(chal, ours, mode, cfg.Version, info); reason != "" {
		_, _ = conn.Send(AppendRefuse(nil, reason))
		return nil, chal.Hello, fmt.Errorf("%w: %s", ErrIncompatible, reason)
	}
	resp := response{Mode: mode}
	if _, err := rand.Read(resp.Nonce[:]); err != nil {
		return nil, chal.Hello, fmt.Errorf("nonce: %w", err)
	}
	var sealed *sealedConn
	if mode == ModeSecret {
		t := transcript(hello, chalFrame, mode, resp.Nonce)
		if resp.Proof, err = dialerProof(cfg.Secret, t); err != nil {
			return nil, chal.Hello, err
		}
		toAcceptor, toDialer, err := frameKeys(cfg.Secret, chal.Nonce, resp.Nonce, t)
		if err != nil {
			return nil, chal.Hello, err
		}
		if sealed, err = newSealed(conn, toAcceptor, toDialer); err != nil {
			return nil, chal.Hello, err
		}
	}
	rep.set(appendResponse(nil, resp))
	out, err := awaitAccept(conn, sealed, to)
	if err != nil {
		return nil, chal.Hello, err
	}
	return withDatagrams(out, conn), chal.Hello, nil
}

// awaitChallenge reads until the acceptor's challenge or refusal; it
// returns the challenge as sent, and decoded.
func awaitChallenge(conn transports.Conn, to *timeout) ([]byte, challenge, error) {
	for {
		f, err := receive(conn)
		if err != nil {
			return nil, challenge{}, to.wrap(err)
		}
		t, body, ok := splitRecord(f.Data)
		switch {
		case ok && t == recRefuse:
			reason, _ := DecodeRefuse(body)
			return nil, challenge{}, fmt.Errorf("%w: %s", ErrRefused, reason)
		case ok && t == recChallenge:
			c, err := decodeChallenge(body)
			if err != nil {
				return nil, challenge{}, fmt.Errorf("handshake: challenge: %w", err)
			}
			return append([]byte(nil), f.Data...), c, nil
		}
		// Anything else is not for us yet: ignore it.
	}
}

// checkChallenge says why the dialer refuses the acceptor's answer, or "".
func checkChallenge(c challenge, ours Hello, mode Mode, version uint16, info transports.Info) string {
	switch {
	case c.Version != version:
		return versionMismatch(c.From, c.Version, ours.From, version)
	case c.From != ours.To:
		return fmt.Sprintf("wrong broker: expected %s, reached %s", ours.To, c.From)
	case c.To != ours.From:
		return fmt.Sprintf("%s answered %s, not %s", c.From, c.To, ours.From)
	case c.LinkID != ours.LinkID:
		return fmt.Sprintf("link id mismatch: asked for %s, got %s", ours.LinkID, c.LinkID)
	case c.Mode != mode:
		return modeMismatch(c.From, c.Mode, ours.From, mode)
	case mode == ModeTLS:
		return checkCert(info, ours.To)
	}
	return ""
}

// awaitAccept reads until the acceptor accepts or refuses. In secret mode
// the acceptance is the first frame protected under the acceptor's key:
// the acceptor's proof. Should the accept record itself be lost (an
// unreliable transport), the acceptor's next frame proves it and is kept
// for the session.
func awaitAccept(conn transports.Conn, sealed *sealedConn, to *timeout) (transports.Conn, error) {
	for {
		f, err := receive(conn)
		if err != nil {
			if sealed != nil {
				return nil, fmt.Errorf("the acceptor did not prove it holds the network secret: %w: %w", ErrUnauthenticated, to.wrap(err))
			}
			return nil, to.wrap(err)
		}
		t, body, ok := splitRecord(f.Data)
		switch {
		case ok && t == recRefuse:
			reason, _ := DecodeRefuse(body)
			return nil, fmt.Errorf("%w: %s", ErrRefused, reason)
		case ok && t == recChallenge:
			continue // a repeat, answering a repeated hello
		}
		if sealed == nil {
			if ok && t == recAccept {
				return conn, nil
			}
			return &pendingConn{Conn: conn, first: keep(f)}, nil
		}
		data, err := sealed.verify(f.Data)
		if err != nil {
			continue // not from the acceptor
		}
		if t, _, ok := splitRecord(data); !ok || t != recAccept {
			f.Data = data
			sealed.pending = keep(f)
		}
		return sealed, nil
	}
}

// Accept runs the acceptor's side of the handshake on an inbound conn.
// wanted looks at the dialer's hello and returns this end's hello, or why
// the link is refused. It returns the Conn the session uses and the
// dialer's hello. Outcomes: success; ErrGarbage when the dialer did not
// start with a hello; ErrIncompatible when this end refused the dialer
// (version, wanted, mode, certificate) after telling it why;
// ErrUnauthenticated when the dialer failed to prove it holds the secret,
// after telling it; ErrUnanswered when wanted returned Unanswered, having
// told the dialer nothing; ErrRefused when the dialer refused our answer;
// a transport error. On error the caller closes conn.
func Accept(conn transports.Conn, cfg Config, wanted func(Hello) (Hello, string)) (transports.Conn, Hello, error) {
	cfg = cfg.withDefaults()
	info := conn.Info()
	mode := ModeFor(info, cfg)
	to := startTimeout(conn, cfg.Timeout)
	defer to.stop()
	f, err := receive(conn)
	if err != nil {
		return nil, Hello{}, to.wrap(err)
	}
	t, body, ok := splitRecord(f.Data)
	if !ok || t != recHello {
		return nil, Hello{}, fmt.Errorf("%w: a frame of %d bytes", ErrGarbage, len(f.Data))
	}
	dh, err := DecodeHello(body)
	if err != nil {
		return nil, Hello{}, fmt.Errorf("%w: hello: %w", ErrGarbage, err)
	}
	hello := append([]byte(nil), f.Data...)
	ours, reason := acceptHello(dh, mode, cfg.Version, info, wanted)
	if reason == Unanswered {
		return nil, dh, ErrUnanswered
	}
	if reason != "" {
		_, _ = conn.Send(AppendRefuse(nil, reason))
		return nil, dh, fmt.Errorf("%w: %s", ErrIncompatible, reason)
	}
	c := challenge{Hello: ours, Mode: mode}
	if mode == ModeSecret {
		if _, err := rand.Read(c.Nonce[:]); err != nil {
			return nil, dh, fmt.Errorf("nonce: %w", err)
		}
	}
	chal := appendChallenge(nil, c)
	if _, err := conn.Send(chal); err != nil {
		return nil, dh, fmt.Errorf("handshake: %w", err)
	}
	resp, err := awaitResponse(conn, hello, chal, to)
	if err != nil {
		return nil, dh, err
	}
	if resp.Mode != mode {
		reason := modeMismatch(dh.From, resp.Mode, ours.From, mode)
		_, _ = conn.Send(AppendRefuse(nil, reason))
		return nil, dh, fmt.Errorf("%w: %s", ErrIncompatible, reason)
	}
	if mode != ModeSecret {
		if _, err := conn.Send(appendAccept(nil)); err != nil {
			return nil, dh, fmt.Errorf("handshake: %w", err)
		}
		return conn, dh, nil
	}
	sealed, err := checkProof(conn, cfg.Secret, hello, chal, c.Nonce, resp)
	if err != nil {
		return nil, dh, err
	}
	if _, err := sealed.Send(appendAccept(nil)); err != nil {
		return nil, dh, fmt.Errorf("handshake: %w", err)
	}
	return withDatagrams(sealed, conn), dh, nil
}

// acceptHello checks the dialer's hello; it returns this end's hello, or
// why the link is refused.
func acceptHello(h Hello, mode Mode, version uint16, info transports.Info, wanted func(Hello) (Hello, string)) (Hello, string) {
	if h.Version != version {
		return Hello{}, versionMismatch(h.From, h.Version, h.To, version)
	}
	ours, reason := wanted(h)
	if reason != "" {
		return Hello{}, reason
	}
	if mode == ModeTLS {
		return ours, checkCert(info, h.From)
	}
	return ours, ""
}

// awaitResponse reads until the dialer's response, answering a repeated
// hello with the challenge again.
func awaitResponse(conn transports.Conn, hello, chal []byte, to *timeout) (response, error) {
	for {
		f, err := receive(conn)
		if err != nil {
			return response{}, to.wrap(err)
		}
		t, body, ok := splitRecord(f.Data)
		switch {
		case ok && t == recHello && string(f.Data) == string(hello):
			if _, err := conn.Send(chal); err != nil {
				return response{}, fmt.Errorf("handshake: %w", err)
			}
		case ok && t == recRefuse:
			reason, _ := DecodeRefuse(body)
			return response{}, fmt.Errorf("%w: %s", ErrRefused, reason)
		case ok && t == recResponse:
			r, err := decodeResponse(body)
			if err != nil {
				return response{}, fmt.Errorf("%w: response: %w", ErrGarbage, err)
			}
			return r, nil
		default:
			return response{}, fmt.Errorf("%w: a frame of %d bytes where the response belongs", ErrGarbage, len(f.Data))
		}
	}
}

// checkProof verifies the dialer's proof and sets up the protected conn.
func checkProof(conn transports.Conn, secret, hello, chal []byte, nonceA [nonceSize]byte, resp response) (*sealedConn, error) {
	t := transcript(hello, chal, resp.Mode, resp.Nonce)
	want, err := dialerProof(secret, t)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(want[:], resp.Proof[:]) {
		const reason = "authentication failed: the dialer does not hold this network's secret"
		_, _ = conn.Send(AppendRefuse(nil, reason))
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, reason)
	}
	toAcceptor, toDialer, err := frameKeys(secret, nonceA, resp.Nonce, t)
	if err != nil {
		return nil, err
	}
	return newSealed(conn, toDialer, toAcceptor)
}

// receive returns the next frame, skipping oversized ones.
func receive(conn transports.Conn) (transports.Frame, error) {
	for {
		f, err := conn.Receive()
		if errors.Is(err, transports.ErrFrameTooLarge) {
			continue
		}
		return f, err
	}
}

// repeater sends the dialer's latest message again until stopped, on an
// unreliable transport: any message and any answer may be lost.
type repeater struct {
	conn transports.Conn
	mu   sync.Mutex
	msg  []byte
	done chan struct{}
	wg   sync.WaitGroup
}

// startRepeater sends msg, and keeps sending the latest message every
// interval unless the transport is reliable.
func startRepeater(conn transports.Conn, reliable bool, every time.Duration, msg []byte) *repeater {
	r := &repeater{conn: conn, msg: msg, done: make(chan struct{})}
	_, _ = conn.Send(msg)
	if reliable {
		return r
	}
	r.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				r.mu.Lock()
				msg := r.msg
				r.mu.Unlock()
				if _, err := conn.Send(msg); err != nil && !errors.Is(err, transports.ErrFrameTooLarge) {
					return
				}
			}
		}
	})
	return r
}

// set sends a new message, which from now on is the one repeated.
func (r *repeater) set(msg []byte) {
	r.mu.Lock()
	r.msg = msg
	r.mu.Unlock()
	_, _ = r.conn.Send(msg)
}

func (r *repeater) stop() {
	close(r.done)
	r.wg.Wait()
}

// timeout closes a handshake's conn when its time runs out, and words the
// error that follows.
type timeout struct {
	t     *time.Timer
	after time.Duration
	fired atomic.Bool
}

func startTimeout(conn transports.Conn, after time.Duration) *timeout {
	to := &timeout{after: after}
	to.t = time.AfterFunc(after, func() {
		to.fired.Store(true)
		_ = conn.Close()
	})
	return to
}

func (to *timeout) stop() { to.t.Stop() }

// wrap explains a failed read: the time ran out, or the transport failed.
func (to *timeout) wrap(err error) error {
	if to.fired.Load() {
		return fmt.Errorf("handshake: no answer within %v: %w", to.after, err)
	}
	return fmt.Errorf("handshake: %w", err)
}
