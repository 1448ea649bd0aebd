package transports

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConformance runs the Conn and Listener contract over every transport.
func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, scheme string, cfg Config)
	}{
		{"frames both ways in order", testOrder},
		{"empty frame", testEmptyFrame},
		{"max frame and one byte over", testMaxFrameSize},
		{"fragmented frame", testFragmented},
		{"concurrent sends", testConcurrentSends},
		{"info", testInfo},
		{"received timestamps", testTimestamps},
		{"close reaches the peer", testClose},
		{"close unblocks receive", testCloseUnblocks},
		{"listener close", testListenerClose},
	}
	for _, scheme := range Schemes {
		t.Run(scheme, func(t *testing.T) {
			before := runtime.NumGoroutine()
			cfg := testConfig(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, scheme, cfg) })
			}
			checkGoroutines(t, before)
		})
	}
}

func testOrder(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	for _, dir := range []struct {
		name     string
		from, to Conn
	}{{"client to server", l.client, l.server}, {"server to client", l.server, l.client}} {
		t.Run(dir.name, func(t *testing.T) {
			frames := make([][]byte, 20)
			for i := range frames {
				frames[i] = randomBytes(4 + i*100)
				binary.BigEndian.PutUint32(frames[i], uint32(i))
				send(t, dir.from, frames[i])
			}
			for _, want := range frames {
				receiveData(t, dir.to, want)
			}
		})
	}
}

func testEmptyFrame(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	send(t, l.client, nil)
	send(t, l.client, []byte{})
	send(t, l.client, []byte("after"))
	receiveData(t, l.server, nil)
	receiveData(t, l.server, nil)
	receiveData(t, l.server, []byte("after"))
}

func testMaxFrameSize(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	big := randomBytes(cfg.MaxFrame)
	send(t, l.client, big)
	receiveData(t, l.server, big)

	over := randomBytes(cfg.MaxFrame + 1)
	if _, err := l.client.Send(over); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Send of MaxFrame+1 bytes: got %v, want ErrFrameTooLarge", err)
	}
	// Nothing was sent and the link still works, both ways.
	send(t, l.client, []byte("still up"))
	receiveData(t, l.server, []byte("still up"))
	send(t, l.server, big)
	receiveData(t, l.client, big)
}

// testFragmented sends a frame much larger than one datagram, which udp
// fragments; the other transports simply carry it.
func testFragmented(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	frame := randomBytes(10_000)
	send(t, l.client, frame)
	receiveData(t, l.server, frame)
	send(t, l.server, frame)
	receiveData(t, l.client, frame)
}

// testConcurrentSends has several goroutines send frames at once; each
// frame carries its sender, sequence number and a checksum. A window bounds
// the frames in flight so that udp on a busy machine does not overflow its
// socket buffers.
func testConcurrentSends(t *testing.T, scheme string, cfg Config) {
	const senders, perSender, window = 4, 25, 16
	l := newLink(t, scheme, cfg)
	tokens := make(chan struct{}, window)
	for range window {
		tokens <- struct{}{}
	}
	stop := make(chan struct{})
	defer close(stop) // frees the senders if the test fails early
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range perSender {
				select {
				case <-tokens:
				case <-stop:
					return
				}
				if _, err := l.client.Send(checkedFrame(s, seq)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	next := make([]int, senders)
	for range senders * perSender {
		r := receive(t, l.server)
		if r.err != nil {
			t.Fatalf("Receive: %v", r.err)
		}
		s, seq, ok := parseCheckedFrame(r.data)
		if !ok {
			t.Fatalf("corrupt frame of %d bytes", len(r.data))
		}
		if seq != next[s] {
			t.Fatalf("sender %d: got frame %d, want %d", s, seq, next[s])
		}
		next[s]++
		tokens <- struct{}{}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Send: %v", err)
	}
}

// checkedFrame is sender(1) seq(4) payload crc32(4), with a size that
// varies across one datagram.
func checkedFrame(sender, seq int) []byte {
	n := 9 + rand.IntN(2500)
	b := randomBytes(n)
	b[0] = byte(sender)
	binary.BigEndian.PutUint32(b[1:], uint32(seq))
	binary.BigEndian.PutUint32(b[n-4:], crc32.ChecksumIEEE(b[:n-4]))
	return b
}

func parseCheckedFrame(b []byte) (sender, seq int, ok bool) {
	if len(b) < 9 || crc32.ChecksumIEEE(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return 0, 0, false
	}
	return int(b[0]), int(binary.BigEndian.Uint32(b[1:])), true
}

func testInfo(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	ci, si := l.client.Info(), l.server.Info()
	for _, info := range []Info{ci, si} {
		if info.Scheme != scheme {
			t.Errorf("Scheme = %q, want %q", info.Scheme, scheme)
		}
		if info.Reliable != (scheme != "udp") {
			t.Errorf("Reliable = %v for %s", info.Reliable, scheme)
		}
		if info.Paced != (scheme == "quic") {
			t.Errorf("Paced = %v for %s", info.Paced, scheme)
		}
		wantHint := 0
		if scheme == "udp" {
			wantHint = cfg.Datagram - 1
		}
		if info.FrameHint != wantHint {
			t.Errorf("FrameHint = %d, want %d", info.FrameHint, wantHint)
		}
		if info.Local == "" || info.Remote == "" {
			t.Errorf("Info %+v: empty address", info)
		}
	}
	if ci.Remote != si.Local || ci.Local != si.Remote {
		t.Errorf("client %+v and server %+v do not mirror each other", ci, si)
	}
}

func testTimestamps(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	var last time.Time
	for i := range 10 {
		before := time.Now()
		sent := send(t, l.client, []byte{byte(i)})
		if sent.Before(before) {
			t.Fatalf("Send returned %v, before the call at %v", sent, before)
		}
		r := receiveData(t, l.server, []byte{byte(i)})
		if r.at.IsZero() || r.at.Before(before) || r.at.After(time.Now()) {
			t.Fatalf("Received = %v, want between %v and now", r.at, before)
		}
		if r.at.Before(last) {
			t.Fatalf("Received went back: %v after %v", r.at, last)
		}
		last = r.at
	}
}

func testClose(t *testing.T, scheme string, cfg Config) {
	for _, dir := range []string{"client closes", "server closes"} {
		t.Run(dir, func(t *testing.T) {
			l := newLink(t, scheme, cfg)
			closer, peer := l.client, l.server
			if dir == "server closes" {
				closer, peer = l.server, l.client
			}
			send(t, closer, []byte("last words"))
			if err := closer.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			receiveData(t, peer, []byte("last words"))
			if r := receive(t, peer); !errors.Is(r.err, io.EOF) {
				t.Fatalf("peer Receive after Close: got %v, want io.EOF", r.err)
			}
			if _, err := closer.Send([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Send after Close: got %v, want net.ErrClosed", err)
			}
			if r := receive(t, closer); !errors.Is(r.err, net.ErrClosed) {
				t.Fatalf("Receive after Close: got %v, want net.ErrClosed", r.err)
			}
			if err := closer.Close(); err == nil {
				t.Fatalf("second Close: got nil, want an error")
			}
		})
	}
}

func testCloseUnblocks(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := l.server.Receive()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Receive block
	l.server.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Receive after Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Close did not unblock Receive")
	}
}

// testListenerClose checks that Close unblocks Accept, ends the links the
// listener accepted and refuses new dials.
func testListenerClose(t *testing.T, scheme string, cfg Config) {
	l := newLink(t, scheme, cfg)
	addr := l.ln.URL()
	done := make(chan error, 1)
	go func() {
		_, err := l.ln.Accept()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Accept block
	if err := l.ln.Close(); err != nil {
		t.Fatalf("Listener.Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Listener.Close did not unblock Accept")
	}
	if r := receive(t, l.client); !errors.Is(r.err, io.EOF) {
		t.Fatalf("client Receive after Listener.Close: got %v, want io.EOF", r.err)
	}
	if r := receive(t, l.server); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("accepted link Receive after Listener.Close: got %v, want net.ErrClosed", r.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if c, err := Dial(ctx, addr, cfg); err == nil {
		c.Close()
		t.Fatalf("Dial %s after Listener.Close succeeded", addr)
	}
}

func TestUnknownScheme(t *testing.T) {
	if _, err := Dial(context.Background(), "carrier-pigeon://coop", Config{}); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("Dial: got %v, want ErrUnknownScheme", err)
	}
	if _, err := Listen("carrier-pigeon://coop", Config{}); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("Listen: got %v, want ErrUnknownScheme", err)
	}
}

func TestListenerURL(t *testing.T) {
	cfg := testConfig(t)
	for _, scheme := range Schemes {
		t.Run(scheme, func(t *testing.T) {
			ln, err := Listen(listenURL(scheme), cfg)
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			defer ln.Close()
			u, err := url.Parse(ln.URL())
			if err != nil {
				t.Fatalf("URL() = %q: %v", ln.URL(), err)
			}
			if scheme == "mem" {
				return
			}
			if u.Scheme != scheme || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
				t.Fatalf("URL() = %q, want %s://127.0.0.1 and the bound port", u, scheme)
			}
			if scheme == "ws" && u.Path != "/overlay" {
				t.Fatalf("URL() = %q, want path /overlay", u)
			}
		})
	}
}

// TestDialContext: a peer that never completes the handshake makes Dial fail
// when the caller's context ends, long before HandshakeTimeout.
func TestDialContext(t *testing.T) {
	cfg := testConfig(t)
	cfg.HandshakeTimeout = time.Minute
	tcp, err := net.Listen("tcp", "127.0.0.1:0") // completes TCP connects, then says nothing
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer udp.Close()
	for _, addr := range []string{
		"tls://" + tcp.Addr().String(),
		"ws://" + tcp.Addr().String() + "/",
		"udp://" + udp.LocalAddr().String(),
		"quic://" + udp.LocalAddr().String(),
	} {
		t.Run(addr[:strings.Index(addr, ":")], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			c, err := Dial(ctx, addr, cfg)
			if err == nil {
				c.Close()
				t.Fatalf("Dial to a silent peer succeeded")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("Dial took %v, want about 200ms: %v", d, err)
			}
			t.Logf("Dial: %v", err)
		})
	}
}
