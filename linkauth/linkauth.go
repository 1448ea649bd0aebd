// Package linkauth opens an overlay link: before anything else crosses it,
// the two brokers say who they are and which link they mean, and prove it.
//
// A link is authenticated in one of three ways, chosen by each end from
// the transport and its configuration, and checked to agree:
//
//   - tls: the transport has already run mutual TLS against the network's
//     CA; each end checks that the certificate the other presented names the
//     broker it claims to be (a DNS name equal to its address).
//   - secret: the network shares a secret. The ends run a challenge and
//     response bound to both addresses, the link id, both epochs, the
//     protocol version and a fresh random nonce from each side, and derive
//     a key per direction from the secret and both nonces (HKDF-SHA256).
//     Every frame after that carries a sequence number and an AES-GCM tag
//     (the frame is authenticated, not encrypted): a frame that was forged,
//     altered or replayed is dropped before anyone reads it.
//   - none: neither; the caller allows it only where no one else can reach
//     the link (loopback).
//
// The handshake is four messages, each one frame holding one record in the
// overlay's record framing (type u8, length u32, body):
//
//	dialer   -> acceptor  hello      version, from, to, link id, epoch
//	acceptor -> dialer    challenge  the same of the acceptor, the mode, a nonce
//	dialer   -> acceptor  response   the mode, a nonce, a proof (secret mode)
//	acceptor -> dialer    accept     (in secret mode, the first protected frame)
//
// or a refusal with a reason in place of any of the last three. The hello
// is laid out as in protocol version 2, so brokers of different versions
// refuse each other with a version mismatch rather than fail to parse. On an
// unreliable transport the dialer repeats its last message until it is
// answered, and the acceptor answers a repeated hello again.
//
// The package does no I/O of its own beyond the Conn it is given, and
// decides nothing about which links exist: the acceptor's caller does.
package linkauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wayline/wayline/transports"
)

// Mode is how a link is authenticated.
type Mode uint8

const (
	ModeNone   Mode = 0
	ModeSecret Mode = 1
	ModeTLS    Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeNone:
		return "none"
	case ModeSecret:
		return "secret"
	case ModeTLS:
		return "tls"
	}
	return fmt.Sprintf("mode-%d", uint8(m))
}

// Unanswered, returned by Accept's wanted as the reason, ends the
// handshake without an answer: the dialer sees its connection end, as if
// the path were down, and is not told it was refused (a refusal makes it
// wait its longest before it dials again).
const Unanswered = "\x00unanswered"

var (
	// ErrRefused: the peer refused the handshake and said why.
	ErrRefused = errors.New("refused by peer")
	// ErrIncompatible: this end refused the peer's handshake (a different
	// version, a link it does not have, another mode).
	ErrIncompatible = errors.New("refused the peer")
	// ErrUnauthenticated: the peer could not prove who it claims to be.
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrGarbage: the peer sent something other than the handshake.
	ErrGarbage = errors.New("not a link handshake")
	// ErrUnanswered: this end left the peer's hello unanswered, as
	// Accept's wanted asked (see Unanswered).
	ErrUnanswered = errors.New("left unanswered")
	// ErrForged is returned by Receive on a protected link for a frame that
	// failed authentication (forged, altered or replayed). The frame is
	// dropped, the link stays up, and the next call works normally.
	ErrForged = errors.New("frame failed authentication")
)

// Hello is what one end says of itself.
type Hello struct {
	Version uint16
	From    string // the sender's address
	To      string // the address the sender expects at the other end
	LinkID  string
	Epoch   uint64 // the sender's start time; a restart changes it
}

// Config sets a handshake.
type Config struct {
	// Version is the link protocol version this end speaks.
	Version uint16
	// Secret is the network secret; empty for none. It authenticates
	// links on every transport but tls.
	Secret []byte
	// Timeout bounds the whole handshake; the conn is closed when it runs
	// out. Default 5 s.
	Timeout time.Duration
	// Resend is how often the dialer repeats its last message on an
	// unreliable transport. Default 250 ms.
	Resend time.Duration
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Resend <= 0 {
		c.Resend = 250 * time.Millisecond
	}
	return c
}

// ModeFor returns how a link over a conn with this info is authenticated
// under cfg: by certificate on tls, by the secret when there is one,
// otherwise not at all.
func ModeFor(info transports.Info, cfg Config) Mode {
	switch {
	case info.Scheme == "tls":
		return ModeTLS
	case len(cfg.Secret) > 0:
		return ModeSecret
	}
	return ModeNone
}

// CertNames reports whether cert names broker addr: one of its DNS names is
// the address, exactly (ignoring case; no wildcards).
func CertNames(cert *x509.Certificate, addr string) bool {
	if cert == nil {
		return false
	}
	for _, n := range cert.DNSNames {
		if strings.EqualFold(n, addr) {
			return true
		}
	}
	return false
}

// checkCert says why a tls peer's certificate does not prove that it is
// broker addr, or "".
func checkCert(info transports.Info, addr string) string {
	switch {
	case info.PeerCert == nil:
		return "the tls peer presented no certificate"
	case !CertNames(info.PeerCert, addr):
		return fmt.Sprintf("the certificate presented (subject %q, names %v) does not name %s",
			info.PeerCert.Subject.CommonName, info.PeerCert.DNSNames, addr)
	}
	return ""
}

// versionMismatch is the refusal both ends give for another version.
func versionMismatch(peer string, peerVersion uint16, self string, version uint16) string {
	return fmt.Sprintf("protocol version mismatch: %s speaks version %d, %s speaks version %d", peer, peerVersion, self, version)
}

// modeMismatch says why two ends that authenticate differently cannot
// talk; peer is the end whose mode is peerMode.
func modeMismatch(peer string, peerMode Mode, self string, mode Mode) string {
	switch {
	case peerMode == ModeSecret && mode == ModeNone:
		return fmt.Sprintf("%s requires the network secret and %s has none (secret: in the topology file, or WAYLINE_SECRET)", peer, self)
	case mode == ModeSecret && peerMode == ModeNone:
		return fmt.Sprintf("%s requires the network secret and %s has none (secret: in the topology file, or WAYLINE_SECRET)", self, peer)
	}
	return fmt.Sprintf("%s authenticates the link by %s, %s by %s", peer, peerMode, self, mode)
}
