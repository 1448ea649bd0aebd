package transports

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// QUIC always runs TLS 1.3. With Config.TLS, quic:// uses it exactly as
// tls:// does: each side presents its certificate and checks the other's
// against the CA bundle. Without, each listener makes an ephemeral
// self-signed certificate and dialers accept any certificate: the link is
// encrypted, but TLS says nothing about who is at the other end. Links are
// then authenticated above the transport, as on tcp, udp and ws.

// quicALPN names the protocol in the TLS handshake, which QUIC requires.
const quicALPN = "wayline-overlay"

// ephemeralLifetime is how long an ephemeral certificate is valid. Nobody
// checks it; it only has to be a valid certificate.
const ephemeralLifetime = 365 * 24 * time.Hour

// quicServerTLS returns the TLS config of a quic listener.
func quicServerTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLS == nil {
		cert, err := ephemeralCertificate()
		if err != nil {
			return nil, fmt.Errorf("ephemeral certificate: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{quicALPN}}, nil
	}
	if len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil {
		return nil, fmt.Errorf("Config.TLS has no server certificate")
	}
	tc := cfg.TLS.Clone()
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = []string{quicALPN}
	return tc, nil
}

// quicClientTLS returns the TLS config with which a quic dialer reaches
// host.
func quicClientTLS(cfg Config, host string) *tls.Config {
	if cfg.TLS == nil {
		// The listener's certificate is ephemeral: there is nothing to
		// verify it against.
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{quicALPN}}
	}
	tc := cfg.TLS.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = []string{quicALPN}
	return tc
}

// ephemeralCertificate makes a self-signed ECDSA P-256 certificate.
func ephemeralCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "wayline quic ephemeral"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ephemeralLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
