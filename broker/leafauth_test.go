package broker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/transports"
)

// leafClient speaks the leafnode protocol by hand on a leaf port.
type leafClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialLeaf(t *testing.T, addr string) *leafClient {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(addr, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lc := &leafClient{conn: c, r: bufio.NewReader(c)}
	if line := lc.line(t); !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("first line %q", line)
	}
	return lc
}

func (lc *leafClient) line(t *testing.T) string {
	t.Helper()
	lc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := lc.r.ReadString('\n')
	if err != nil {
		return "closed: " + err.Error()
	}
	return strings.TrimSpace(s)
}

func (lc *leafClient) send(t *testing.T, format string, args ...any) {
	t.Helper()
	if _, err := fmt.Fprintf(lc.conn, format, args...); err != nil {
		t.Fatal(err)
	}
}

// excludeRequest is a control message taking the link to b out of the
// routes.
func excludeRequest(t *testing.T, b *Broker) []byte {
	t.Helper()
	yes := true
	js, _ := json.Marshal(netapi.CtlRequest{Op: "routing", Link: linkOf(t, b, "na.c1.b").ID, Exclude: &yes})
	return js
}

// TestLeafNameBypass tries what the leaf port used to let anyone do: sign
// in under the broker's own name and publish control messages. A leaf
// with the token is a leaf like any other, whatever its name; one without
// it, or on the embedded server's port, is refused.
func TestLeafNameBypass(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain, links: chainLinks("tcp"), tweak: leafPort})
	n.waitRoutes()
	c := n.brokers["na.c1.c"]
	req := excludeRequest(t, c)
	before := c.Status()

	t.Run("CONNECT with the broker's name", func(t *testing.T) {
		lc := dialLeaf(t, c.LeafURL())
		lc.send(t, "CONNECT {\"name\":%q,\"pass\":\"the leaf token\"}\r\n", c.Address())
		lc.send(t, "LMSG %s %d\r\n%s\r\nPING\r\n", netapi.CtlSubject(c.Address()), len(req), req)
		for line := ""; line != "PONG"; {
			// The hub tells the leaf what the network wants first.
			if line = lc.line(t); !strings.HasPrefix(line, "LS+ ") && line != "PONG" {
				t.Fatalf("got %q, want PONG", line)
			}
		}
	})
	t.Run("a nats-server named after the broker", func(t *testing.T) {
		nc := attachLeaf(t, c, c.Address())
		nc.Publish(netapi.CtlSubject(c.Address()), req)
		nc.Publish(netapi.PerfAckSubject(c.Address()), []byte("1"))
		nc.Flush()
	})
	waitFor(t, "the control messages to be dropped", 5*time.Second, func() bool {
		return c.Status().Reserved >= before.Reserved+3
	})
	if l := linkOf(t, c, "na.c1.b"); l.Excluded {
		t.Fatal("a leaf took the link out of the routes")
	}

	for name, tc := range map[string]struct{ addr, connect string }{
		"wrong token":               {c.LeafURL(), `{"name":"x","pass":"a guess"}`},
		"no credentials":            {c.LeafURL(), `{"name":"na.c1.c"}`},
		"embedded server's port":    {"nats://" + c.coreLeafLn.Addr().String(), `{"name":"na.c1.c","pass":"the leaf token"}`},
		"embedded server's, forged": {"nats://" + c.coreLeafLn.Addr().String(), `{"name":"na.c1.c","nkey":"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4","sig":"AAAA"}`},
	} {
		t.Run(name, func(t *testing.T) {
			lc := dialLeaf(t, tc.addr)
			lc.send(t, "CONNECT %s\r\nLMSG %s %d\r\n%s\r\n", tc.connect, netapi.CtlSubject(c.Address()), len(req), req)
			if line := lc.line(t); !strings.Contains(line, "Authorization Violation") {
				t.Fatalf("got %q", line)
			}
			if line := lc.line(t); !strings.HasPrefix(line, "closed") {
				t.Fatalf("connection stayed open: %q", line)
			}
		})
	}
	if s := c.Status(); s.RefusedLeaves < 4 {
		t.Fatalf("refused leaves counted %d", s.RefusedLeaves)
	}
	// A broker whose configuration asks for no leaf port has none.
	if u := n.brokers["na.c1.a"].LeafURL(); u != "" {
		t.Fatalf("broker a has a leaf port %s", u)
	}
}

// TestSilentConnectionsClosed opens connections that say nothing, and
// connections that trickle a byte at a time, on every port of a broker:
// each is closed after its port's time limit.
func TestSilentConnectionsClosed(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain[:2], links: []string{"na.c1.a-na.c1.b:tcp", "na.c1.a-na.c1.b:ws", "na.c1.a-na.c1.b:udp"},
		tweak: func(c *Config) {
			c.HandshakeTimeout = time.Second
			if c.Address == "na.c1.b" {
				c.Leaf, c.LeafToken = "127.0.0.1:0", "the leaf token"
			}
		}})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	hostOf := func(u string) string { h, _ := url.Parse(u); return h.Host }
	ports := []string{ // client, leaf, core leaf, http, overlay tcp and ws
		hostOf(b.ClientURL()), hostOf(b.LeafURL()), b.coreLeafLn.Addr().String(), b.HTTPAddr(),
		hostOf(b.OverlayURLs()[0]), hostOf(b.OverlayURLs()[1]),
	}
	const limit = 12 * time.Second // the longest limit is the HTTP header's, 5 s, on a busy machine
	var wg sync.WaitGroup
	for _, addr := range ports {
		for _, trickle := range []bool{false, true} {
			wg.Go(func() { testutil.ClosedWithin(t, addr, trickle, limit) })
		}
	}
	// udp: a peer that says HELLO to the transport and nothing to the
	// link is sent away when the handshake times out.
	wg.Go(func() {
		c, err := transports.Dial(context.Background(), b.OverlayURLs()[2], transports.Config{})
		if err != nil {
			t.Errorf("udp: %v", err)
			return
		}
		defer c.Close()
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := c.Receive()
			done <- err
		}()
		select {
		case err := <-done:
			t.Logf("udp: closed after %v: %v", time.Since(start), err)
		case <-time.After(limit):
			t.Errorf("udp: still open after %v", limit)
		}
	})
	wg.Wait()
}
