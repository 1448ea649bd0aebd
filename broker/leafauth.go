package broker

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nkeys"
)

// Who may attach to the core as a leaf node, and for how long.
//
// The embedded server attaches on a loopback port of its own and proves
// itself with an nkey made up at start: the core's INFO carries a nonce,
// and the embedded server signs it. That connection alone speaks for the
// broker: it may publish on reserved subjects, because the embedded server
// has already checked its clients' permissions. External nats-servers
// attach only where the configuration asks for it (Config.Leaf), with the
// leaf token as their password or token, and never get the broker's
// privileges, whatever name they give.
//
// A connection has leafConnectTimeout to send a valid CONNECT, and only so
// many wait for theirs at once (see admission); until then it reads
// through a small buffer. A leaf that has attached is pinged when idle
// and closed when it stays silent.

const (
	leafConnectTimeout = 5 * time.Second
	// leafConnectBuffer is the read buffer before CONNECT: room for the
	// CONNECT line and little else.
	leafConnectBuffer = 4 << 10
	leafPingEvery     = 30 * time.Second
	leafSilentAfter   = 3 * leafPingEvery
)

// errLeafAuth marks a leaf that did not prove it may attach.
var errLeafAuth = errors.New("leaf not authorized")

// connectInfo is what the core reads of a leaf's CONNECT.
type connectInfo struct {
	Name  string `json:"name"`
	User  string `json:"user"`
	Pass  string `json:"pass"`
	Token string `json:"auth_token"`
	Nkey  string `json:"nkey"`
	Sig   string `json:"sig"`
}

// listenLeaves binds the embedded server's loopback port and, when the
// configuration asks for one, the leaf port for external nats-servers.
func (b *Broker) listenLeaves() error {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return fmt.Errorf("broker %s: core leaf identity: %w", b.cfg.Address, err)
	}
	b.coreKey = kp
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("broker %s: core leaf listener: %w", b.cfg.Address, err)
	}
	b.coreLeafLn = ln
	b.acceptLeaves(ln, false)
	if b.cfg.Leaf == "" {
		return nil
	}
	ext, err := net.Listen("tcp", b.cfg.Leaf)
	if err != nil {
		return fmt.Errorf("broker %s: leaf listener: %w", b.cfg.Address, err)
	}
	b.leafLn = ext
	b.acceptLeaves(ext, true)
	return nil
}

// acceptLeaves serves one leaf listener.
func (b *Broker) acceptLeaves(ln net.Listener, external bool) {
	b.wg.Go(func() {
		places := newAdmission()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			leave, ok := places.enter(conn.RemoteAddr().String())
			if !ok {
				_ = conn.Close()
				b.stats.refusedLeaves.Add(1)
				b.noteDrop("leaf", ln.Addr().String(), "too many connections waiting to sign in")
				continue
			}
			id := b.leafIDs.Add(1)
			b.wg.Go(func() { b.serveLeaf(conn, id, external, leave) })
		}
	})
}

// authorize checks the credentials of a CONNECT: the core's nkey on the
// embedded server's port, the leaf token on the leaf port. It reports
// whether the leaf is the broker's own server.
func (l *leafConn) authorize(c connectInfo) (core bool, err error) {
	if !l.external {
		pub, _ := l.b.coreKey.PublicKey()
		sig, derr := base64.RawURLEncoding.DecodeString(c.Sig)
		if c.Nkey != pub || derr != nil || l.b.coreKey.Verify([]byte(l.nonce), sig) != nil {
			return false, fmt.Errorf("%w: this port is the embedded server's", errLeafAuth)
		}
		return true, nil
	}
	tok := []byte(l.b.cfg.LeafToken)
	if subtle.ConstantTimeCompare([]byte(c.Pass), tok) == 1 || subtle.ConstantTimeCompare([]byte(c.Token), tok) == 1 {
		return false, nil
	}
	return false, fmt.Errorf("%w: wrong or missing leaf token", errLeafAuth)
}

// newNonce returns the random nonce of one INFO.
func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// coreSeed is the seed the embedded server signs the core's nonce with.
func (b *Broker) coreSeed() string {
	seed, _ := b.coreKey.Seed()
	return string(seed)
}

// watchLeaves pings the leaves that have been idle for leafPingEvery and
// closes those silent for leafSilentAfter.
func (b *Broker) watchLeaves(now time.Time) {
	b.mu.Lock()
	var silent []*leafConn
	for l := range b.leaves {
		idle := now.Sub(time.Unix(0, l.lastRead.Load()))
		switch {
		case idle > leafSilentAfter:
			silent = append(silent, l)
		case idle > leafPingEvery && now.Sub(l.lastPing) > leafPingEvery:
			l.lastPing = now
			l.out.AddCtrl(func(b []byte) []byte { return append(b, "PING\r\n"...) })
		}
	}
	b.mu.Unlock()
	for _, l := range silent {
		l.logger().Warn("leaf silent; closed", slog.Duration("silent", leafSilentAfter))
		l.close()
	}
}
