package transports

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/testutil"
)

func udpAddr(t *testing.T, ln Listener) *net.UDPAddr {
	t.Helper()
	addr, err := net.ResolveUDPAddr("udp", strings.TrimPrefix(ln.URL(), "udp://"))
	if err != nil {
		t.Fatalf("resolve %s: %v", ln.URL(), err)
	}
	return addr
}

// rawUDP is a plain socket connected to ln, to play a misbehaving peer.
func rawUDP(t *testing.T, ln Listener) *net.UDPConn {
	t.Helper()
	sock, err := net.DialUDP("udp", nil, udpAddr(t, ln))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { sock.Close() })
	return sock
}

// rawHello sends HELLO with session and waits for the HELLO_ACK.
func rawHello(t *testing.T, sock *net.UDPConn, session uint32) {
	t.Helper()
	if _, err := sock.Write(appendHello(nil, udpHello, session)); err != nil {
		t.Fatalf("hello: %v", err)
	}
	buf := make([]byte, 64)
	sock.SetReadDeadline(time.Now().Add(waitLimit))
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatalf("read hello ack: %v", err)
	}
	if d, err := parseDatagram(buf[:n]); err != nil || d.typ != udpHelloAck || d.session != session {
		t.Fatalf("got %x, want HELLO_ACK for session %d", buf[:n], session)
	}
}

func TestUDPGarbage(t *testing.T) {
	cfg := testConfig(t)
	var logs testutil.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	l := newLink(t, "udp", cfg)
	raw := rawUDP(t, l.ln) // never said HELLO
	garbage := [][]byte{
		{},
		{0},
		{0xff, 1, 2, 3},
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{udpHello, 9, 0, 0, 0, 1},
		{udpHello, udpVersion},
		appendHello(nil, udpHelloAck, 1),
		{udpData, 'x'},
		append(appendFragHeader(nil, 1, 0, 2), 'x'),
		{udpFrag, 0, 0},
		append(appendFragHeader(nil, 1, 5, 2), 'x'),
	}
	for _, g := range garbage {
		if _, err := raw.Write(g); err != nil {
			t.Fatalf("write garbage: %v", err)
		}
	}
	// The established link works both ways, and nothing was accepted.
	send(t, l.client, []byte("still fine"))
	receiveData(t, l.server, []byte("still fine"))
	send(t, l.server, []byte("indeed"))
	receiveData(t, l.client, []byte("indeed"))
	ul := l.ln.(*udpListener)
	ul.mu.Lock()
	peers := len(ul.peers)
	ul.mu.Unlock()
	if peers != 1 {
		t.Fatalf("%d peers, want 1", peers)
	}
	if !strings.Contains(logs.String(), "dropped datagrams") {
		t.Fatalf("no warning logged; log:\n%s", logs.String())
	}
}

func TestUDPOversizedFromPeer(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxFrame = 3000
	ln, err := Listen("udp://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	raw := rawUDP(t, ln)
	rawHello(t, raw, 1)
	server := accept(t, ln)
	// An oversized frame in fragments, then a good frame.
	chunk := make([]byte, 1000)
	for i := range uint16(4) {
		raw.Write(append(appendFragHeader(nil, 77, i, 4), chunk...))
	}
	raw.Write([]byte{udpData, 'o', 'k'})
	if r := receive(t, server); !errors.Is(r.err, ErrFrameTooLarge) {
		t.Fatalf("Receive: got %v, want ErrFrameTooLarge", r.err)
	}
	receiveData(t, server, []byte("ok"))
	// An oversized DATA datagram, from a peer with a larger MaxFrame.
	raw.Write(append([]byte{udpData}, make([]byte, cfg.MaxFrame+1)...))
	raw.Write([]byte{udpData, 'o', 'k'})
	if r := receive(t, server); !errors.Is(r.err, ErrFrameTooLarge) {
		t.Fatalf("Receive: got %v, want ErrFrameTooLarge", r.err)
	}
	receiveData(t, server, []byte("ok"))
}

func TestUDPDialNoListener(t *testing.T) {
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := sock.LocalAddr().String()
	sock.Close()
	start := time.Now()
	_, err = Dial(context.Background(), "udp://"+addr, testConfig(t))
	if err == nil {
		t.Fatalf("Dial to a closed port succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "nobody listens") {
		t.Fatalf("Dial: got %v, want a clear refusal", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Dial took %v to fail", d)
	}
}

func TestUDPDialNoAnswer(t *testing.T) {
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer silent.Close()
	cfg := testConfig(t)
	cfg.HandshakeTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), "udp://"+silent.LocalAddr().String(), cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: got %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Dial took %v to give up", d)
	}
	// It retried: several HELLOs are waiting.
	silent.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	hellos := 0
	buf := make([]byte, 64)
	for {
		if _, err := silent.Read(buf); err != nil {
			break
		}
		hellos++
	}
	if hellos < 2 {
		t.Fatalf("%d HELLOs sent, want retries", hellos)
	}
}

// TestUDPSessions checks that a retried HELLO does not make a second link
// and that a new session from the same address replaces the old link.
func TestUDPSessions(t *testing.T) {
	cfg := testConfig(t)
	ln, err := Listen("udp://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	raw := rawUDP(t, ln)
	rawHello(t, raw, 1)
	rawHello(t, raw, 1) // as if the first ack was lost
	old := accept(t, ln)
	rawHello(t, raw, 2) // the dialer restarted on the same port
	fresh := accept(t, ln)
	if r := receive(t, old); !errors.Is(r.err, io.EOF) {
		t.Fatalf("old link Receive: got %v, want io.EOF", r.err)
	}
	raw.Write([]byte{udpData, 'h', 'i'})
	receiveData(t, fresh, []byte("hi"))
	ul := ln.(*udpListener)
	ul.mu.Lock()
	peers := len(ul.peers)
	ul.mu.Unlock()
	if peers != 1 {
		t.Fatalf("%d peers, want 1", peers)
	}
}

// TestUDPRestartedDialer: a dialer that vanished without CLOSE and came back
// from a new port is simply a new link.
func TestUDPRestartedDialer(t *testing.T) {
	cfg := testConfig(t)
	l := newLink(t, "udp", cfg)
	l.client.(*udpConn).shutdown() // crash: the socket goes, no CLOSE is sent
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	again, err := Dial(ctx, l.ln.URL(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer again.Close()
	server := accept(t, l.ln)
	defer server.Close()
	if server.Info().Remote == l.server.Info().Remote {
		t.Fatalf("new link has the old address %s", server.Info().Remote)
	}
	send(t, again, []byte("back"))
	receiveData(t, server, []byte("back"))
}

// TestUDPPeerGone: when the peer's socket disappears, the dialer's connected
// socket gets ECONNREFUSED and Receive reports the link as failed.
func TestUDPPeerGone(t *testing.T) {
	fake, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go func() { // answer one HELLO, then vanish
		buf := make([]byte, 64)
		n, from, err := fake.ReadFromUDP(buf)
		if err == nil {
			if d, err := parseDatagram(buf[:n]); err == nil && d.typ == udpHello {
				fake.WriteToUDP(appendHello(nil, udpHelloAck, d.session), from)
			}
		}
		fake.Close()
	}()
	client, err := Dial(context.Background(), "udp://"+fake.LocalAddr().String(), testConfig(t))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer client.Close()
	// Keep sending until a datagram finds the socket gone and provokes the
	// ICMP error.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			client.Send([]byte("anyone?"))
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	if r := receive(t, client); !errors.Is(r.err, syscall.ECONNREFUSED) {
		t.Fatalf("Receive: got %v, want ECONNREFUSED", r.err)
	}
}

func TestUDPReceiveQueueBounded(t *testing.T) {
	cfg := testConfig(t).withDefaults()
	ln, err := Listen("udp://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	raw := rawUDP(t, ln)
	rawHello(t, raw, 1)
	server := accept(t, ln)
	q := server.(*udpConn).src.(*peerQueue)
	queued := 0
	depth := udpQueueDepth(cfg)
	for range depth + 100 {
		if q.push([]byte{udpData, 1}, time.Now()) {
			queued++
		}
	}
	if queued != depth {
		t.Fatalf("queued %d datagrams, want the limit %d", queued, depth)
	}
}
