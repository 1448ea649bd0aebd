package transports

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"
)

// tls:// is the stream framing over TLS with mutual authentication.
//
// Under TLS 1.3 a client finishes its handshake before the server has checked
// the client's certificate, so a rejected client would only learn of it on
// its first read. To make Dial itself fail, the acceptor sends one empty
// frame once its handshake has succeeded, and Dial waits for it; that frame
// is part of set-up and never reaches Receive.

// tlsCopyMax is the largest frame copied behind its length prefix. TLS
// writes one record per Write call (and per 16 KiB), so copying avoids a
// separate record, and syscall, for the 4-byte prefix.
const tlsCopyMax = 64 << 10

var errNoTLSConfig = errors.New("Config.TLS is required for tls://")

// LoadTLSConfig loads a key pair and a CA bundle (PEM files) and returns a
// config usable on both ends of a link: it presents the certificate, trusts
// servers and clients signed by the CA bundle, and requires clients to
// present a certificate.
func LoadTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load key pair: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: load CA bundle: no PEM certificates in %s", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// dialTLS connects to tls://host:port, verifying the server against
// Config.TLS and presenting its certificate, all within HandshakeTimeout.
func dialTLS(ctx context.Context, u *url.URL, cfg Config) (Conn, error) {
	if cfg.TLS == nil {
		return nil, fmt.Errorf("tls: %w", errNoTLSConfig)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("tls: missing host:port")
	}
	tc := cfg.TLS.Clone()
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	conn := tls.Client(nc, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls: handshake: %w", err)
	}
	if err := awaitAccepted(ctx, conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls: handshake: %w", err)
	}
	return newStreamConn(conn, "tls", cfg, tlsCopyMax), nil
}

// awaitAccepted reads the acceptor's empty frame, or the alert with which it
// rejected our certificate.
func awaitAccepted(ctx context.Context, conn deadlineReader) error {
	if err := readEmptyFrame(ctx, conn); err != nil {
		return fmt.Errorf("waiting for the acceptor to confirm: %w", err)
	}
	return nil
}

// deadlineReader is what readEmptyFrame reads: a TLS connection or a QUIC
// stream.
type deadlineReader interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// readEmptyFrame reads one empty frame, the set-up step of tls and quic,
// before ctx ends.
func readEmptyFrame(ctx context.Context, conn deadlineReader) error {
	deadline, _ := ctx.Deadline()
	conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	var hdr [streamHeader]byte
	_, err := io.ReadFull(conn, hdr[:])
	if !stop() || (err != nil && ctx.Err() != nil) {
		// The deadline was cut short, or may be about to be: give up.
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	if hdr != [streamHeader]byte{} {
		return fmt.Errorf("peer sent %x instead of an empty frame: %w", hdr, errProtocol)
	}
	return conn.SetReadDeadline(time.Time{})
}

// listenTLS binds tls://host:port. Config.TLS must carry a certificate.
func listenTLS(u *url.URL, cfg Config) (Listener, error) {
	if cfg.TLS == nil {
		return nil, fmt.Errorf("tls: %w", errNoTLSConfig)
	}
	if len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil {
		return nil, fmt.Errorf("tls: Config.TLS has no server certificate")
	}
	if u.Host == "" {
		return nil, fmt.Errorf("tls: missing host:port")
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	setup := func(ctx context.Context, nc net.Conn) (*streamConn, error) {
		return acceptTLS(ctx, nc, cfg)
	}
	return newStreamListener(ln, "tls", cfg, tlsCopyMax, setup), nil
}

// acceptTLS runs the server handshake within HandshakeTimeout and confirms
// it to the dialer with an empty frame.
func acceptTLS(ctx context.Context, nc net.Conn, cfg Config) (*streamConn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	conn := tls.Server(nc, cfg.TLS)
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetWriteDeadline(deadline)
	if _, err := conn.Write(make([]byte, streamHeader)); err != nil {
		return nil, fmt.Errorf("handshake: confirm: %w", err)
	}
	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return newStreamConn(conn, "tls", cfg, tlsCopyMax), nil
}
