package transports

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitLimit bounds every wait in the tests; generous for a busy machine.
const waitLimit = 5 * time.Second

// testMaxFrame keeps frames of MaxFrame bytes cheap to test.
const testMaxFrame = 64 << 10

var memNames atomic.Int64

// listenURL is an address for scheme on the loopback with a free port, or a
// fresh mem name.
func listenURL(scheme string) string {
	switch scheme {
	case "mem":
		return fmt.Sprintf("mem://test-%d", memNames.Add(1))
	case "ws":
		return "ws://127.0.0.1:0/overlay"
	default:
		return scheme + "://127.0.0.1:0"
	}
}

// testConfig is the configuration of the tests: small frames, TLS set up,
// warnings sent to the test log.
func testConfig(t testing.TB) Config {
	return Config{
		MaxFrame:          testMaxFrame,
		TLS:               testTLS(t),
		Datagram:          1400,
		ReassemblyTimeout: time.Second,
		HandshakeTimeout:  waitLimit,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

var (
	tlsOnce sync.Once
	tlsDir  string
	tlsErr  error
)

// testTLS returns a config from certificates made once per test binary.
func testTLS(t testing.TB) *tls.Config {
	t.Helper()
	tlsOnce.Do(func() {
		tlsDir, tlsErr = os.MkdirTemp("", "wayline-transports-tls")
		if tlsErr == nil {
			writeTestPKI(t, tlsDir)
		}
	})
	if tlsErr != nil {
		t.Fatalf("tls temp dir: %v", tlsErr)
	}
	cfg, err := LoadTLSConfig(filepath.Join(tlsDir, "node.pem"), filepath.Join(tlsDir, "node-key.pem"), filepath.Join(tlsDir, "ca.pem"))
	if err != nil {
		t.Fatalf("LoadTLSConfig: %v", err)
	}
	return cfg
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tlsDir != "" {
		os.RemoveAll(tlsDir)
	}
	os.Exit(code)
}

// writeTestPKI writes a new CA (ca.pem) and a leaf signed by it (node.pem,
// node-key.pem) to dir: ECDSA P-256, IP SAN 127.0.0.1, usable as server and
// client. It mirrors internal/testutil.WriteTestCA, which this package's
// tests cannot import: testutil is free to depend on packages that depend on
// transports, which would make an import cycle.
func writeTestPKI(t testing.TB, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatalf("test PKI: %v", err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "transports test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + 1),
		Subject:      pkix.Name{CommonName: "transports test node"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	must(err)
	certFile, keyFile, caFile = filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"), filepath.Join(dir, "ca.pem")
	for name, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
	} {
		must(os.WriteFile(name, pem.EncodeToMemory(block), 0o600))
	}
	return certFile, keyFile, caFile
}

// link is a dialed Conn, the Conn its listener accepted, and the listener.
type link struct {
	client, server Conn
	ln             Listener
}

// newLink listens on scheme, dials it and accepts; everything is closed at
// the end of the test.
func newLink(t testing.TB, scheme string, cfg Config) link {
	t.Helper()
	ln, err := Listen(listenURL(scheme), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	client, err := Dial(ctx, ln.URL(), cfg)
	if err != nil {
		t.Fatalf("Dial %s: %v", ln.URL(), err)
	}
	t.Cleanup(func() { client.Close() })
	server := accept(t, ln)
	t.Cleanup(func() { server.Close() })
	return link{client: client, server: server, ln: ln}
}

func accept(t testing.TB, ln Listener) Conn {
	t.Helper()
	type result struct {
		c   Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		return r.c
	case <-time.After(waitLimit):
		t.Fatalf("Accept: nothing within %v", waitLimit)
		return nil
	}
}

// received is the outcome of one Receive, with the data copied.
type received struct {
	data []byte
	at   time.Time
	err  error
}

// receive calls c.Receive once with a time limit.
func receive(t testing.TB, c Conn) received {
	t.Helper()
	return receiveBy(t, "Receive", c.Receive)
}

// receiveBy calls next (named what) once with a time limit.
func receiveBy(t testing.TB, what string, next func() (Frame, error)) received {
	t.Helper()
	ch := make(chan received, 1)
	go func() {
		f, err := next()
		ch <- received{data: bytes.Clone(f.Data), at: f.Received, err: err}
	}()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("%s: nothing within %v", what, waitLimit)
		return received{}
	}
}

// receiveData expects the next frame to be want.
func receiveData(t testing.TB, c Conn, want []byte) received {
	t.Helper()
	r := receive(t, c)
	if r.err != nil {
		t.Fatalf("Receive: %v", r.err)
	}
	if !bytes.Equal(r.data, want) {
		t.Fatalf("Receive: got %d bytes %.16x..., want %d bytes %.16x...", len(r.data), r.data, len(want), want)
	}
	return r
}

func send(t testing.TB, c Conn, frame []byte) time.Time {
	t.Helper()
	at, err := c.Send(frame)
	if err != nil {
		t.Fatalf("Send %d bytes: %v", len(frame), err)
	}
	return at
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// checkGoroutines fails t if the number of goroutines does not come back to
// at most before.
func checkGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, want at most %d\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
