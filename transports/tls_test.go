package transports

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// otherCA returns a config whose certificate and CA are unrelated to the
// ones of testConfig.
func otherCA(t *testing.T) *tls.Config {
	t.Helper()
	cert, key, ca := writeTestPKI(t, t.TempDir())
	cfg, err := LoadTLSConfig(cert, key, ca)
	if err != nil {
		t.Fatalf("LoadTLSConfig: %v", err)
	}
	return cfg
}

func TestTLSWrongCA(t *testing.T) {
	cfg := testConfig(t)
	ln, err := Listen("tls://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	stranger := otherCA(t)
	// A client that trusts the server but presents a certificate from
	// another CA: under TLS 1.3 its own handshake succeeds, and Dial must
	// still fail.
	trusting := stranger.Clone()
	trusting.RootCAs = cfg.TLS.RootCAs
	tests := []struct {
		name string
		tls  *tls.Config
	}{
		{"everything from another CA", stranger},
		{"client certificate from another CA", trusting},
		{"client certificate from another CA, TLS 1.2", func() *tls.Config {
			c := trusting.Clone()
			c.MaxVersion = tls.VersionTLS12
			return c
		}()},
		{"no client certificate", &tls.Config{RootCAs: cfg.TLS.RootCAs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := cfg
			bad.TLS = tt.tls
			c, err := Dial(context.Background(), ln.URL(), bad)
			if err == nil {
				c.Close()
				t.Fatalf("Dial with a certificate from another CA succeeded")
			}
			t.Logf("Dial: %v", err)
		})
	}
	// The listener is unharmed.
	c, err := Dial(context.Background(), ln.URL(), cfg)
	if err != nil {
		t.Fatalf("Dial with the right CA: %v", err)
	}
	defer c.Close()
	server := accept(t, ln)
	defer server.Close()
	send(t, c, []byte("trusted"))
	receiveData(t, server, []byte("trusted"))
}

func TestTLSConfigRequired(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLS = nil
	if _, err := Listen("tls://127.0.0.1:0", cfg); !errors.Is(err, errNoTLSConfig) {
		t.Errorf("Listen: got %v, want errNoTLSConfig", err)
	}
	if _, err := Dial(context.Background(), "tls://127.0.0.1:1", cfg); !errors.Is(err, errNoTLSConfig) {
		t.Errorf("Dial: got %v, want errNoTLSConfig", err)
	}
	cfg.TLS = &tls.Config{}
	if _, err := Listen("tls://127.0.0.1:0", cfg); err == nil {
		t.Errorf("Listen without a certificate succeeded")
	}
}

func TestLoadTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := writeTestPKI(t, dir)
	notPEM := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadTLSConfig(cert, key, ca)
	if err != nil {
		t.Fatalf("LoadTLSConfig: %v", err)
	}
	if len(cfg.Certificates) != 1 || cfg.RootCAs == nil || cfg.ClientCAs == nil ||
		cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("config %+v", cfg)
	}
	for _, files := range [][3]string{
		{filepath.Join(dir, "missing.pem"), key, ca},
		{cert, filepath.Join(dir, "missing.pem"), ca},
		{cert, key, filepath.Join(dir, "missing.pem")},
		{cert, key, notPEM},
		{key, cert, ca},
	} {
		if _, err := LoadTLSConfig(files[0], files[1], files[2]); err == nil {
			t.Errorf("LoadTLSConfig%q succeeded", files)
		}
	}
}

// TestTLSPeerCert checks that both ends of a tls link see the certificate
// the other presented, and that other transports show none.
func TestTLSPeerCert(t *testing.T) {
	cfg := testConfig(t)
	l := newLink(t, "tls", cfg)
	for name, c := range map[string]Conn{"dialer": l.client, "acceptor": l.server} {
		cert := c.Info().PeerCert
		if cert == nil || cert.Subject.CommonName != "transports test node" {
			t.Errorf("%s: peer certificate %v", name, cert)
		}
	}
	plain := newLink(t, "tcp", cfg)
	if cert := plain.client.Info().PeerCert; cert != nil {
		t.Errorf("tcp: peer certificate %v", cert.Subject)
	}
}
