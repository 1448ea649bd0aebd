// Package testutil holds helpers shared by the tests of several packages.
// It is imported only from _test.go files.
package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// WriteTestCA creates a throwaway CA and one leaf certificate signed by it in
// dir, and returns the PEM file names, ready for transports.LoadTLSConfig.
// Keys are ECDSA P-256. The leaf is valid for 127.0.0.1, ::1 and
// "localhost", and for each of names (broker addresses, which a tls link
// checks), as both server and client, so one set of files serves every end
// of a link. Each call makes a new CA, so two calls with different dirs
// give certificates that do not trust each other.
func WriteTestCA(t testing.TB, dir string, names ...string) (certFile, keyFile, caFile string) {
	t.Helper()
	ca := NewTestCA(t, dir)
	certFile, keyFile = ca.Issue(t, "node", names...)
	return certFile, keyFile, ca.File
}

// TestCA is a throwaway certificate authority that issues leaf
// certificates on demand.
type TestCA struct {
	File string // the CA certificate, PEM
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewTestCA creates a CA whose files go to dir.
func NewTestCA(t testing.TB, dir string) *TestCA {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "wayline test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	file := filepath.Join(dir, "ca.pem")
	writePEM(t, file, "CERTIFICATE", caDER)
	return &TestCA{File: file, dir: dir, cert: ca, key: caKey}
}

// Issue writes a leaf certificate and its key, named base.pem and
// base-key.pem, valid for 127.0.0.1, ::1, "localhost" and names, as server
// and client.
func (ca *TestCA) Issue(t testing.TB, base string, names ...string) (certFile, keyFile string) {
	t.Helper()
	leafKey := newKey(t)
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "wayline test " + base},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     append([]string{"localhost"}, names...),
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca.cert, &leafKey.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create leaf certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatalf("marshal leaf key: %v", err)
	}
	certFile = filepath.Join(ca.dir, base+".pem")
	keyFile = filepath.Join(ca.dir, base+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", leafDER)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("serial number: %v", err)
	}
	return n
}

func writePEM(t testing.TB, name, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}
