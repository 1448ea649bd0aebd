package transports_test

import (
	"context"
	"testing"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/transports"
)

// TestWriteTestCA checks that the certificates testutil gives other packages
// work for a tls:// link, and that two calls make CAs that do not trust each
// other.
func TestWriteTestCA(t *testing.T) {
	load := func() transports.Config {
		cert, key, ca := testutil.WriteTestCA(t, t.TempDir())
		tc, err := transports.LoadTLSConfig(cert, key, ca)
		if err != nil {
			t.Fatalf("LoadTLSConfig: %v", err)
		}
		return transports.Config{TLS: tc}
	}
	cfg, other := load(), load()
	ln, err := transports.Listen("tls://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	c, err := transports.Dial(context.Background(), ln.URL(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer s.Close()
	if _, err := c.Send([]byte("hi")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if f, err := s.Receive(); err != nil || string(f.Data) != "hi" {
		t.Fatalf("Receive: %q, %v", f.Data, err)
	}
	if c, err := transports.Dial(context.Background(), ln.URL(), other); err == nil {
		c.Close()
		t.Fatalf("Dial with another test CA succeeded")
	}
}
