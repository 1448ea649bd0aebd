package linkauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/transports"
)

const version = 3

var secret = []byte("a network secret for the tests!!")

// raw is a dialed conn and the conn its listener accepted, before any
// handshake.
type raw struct{ dialer, acceptor transports.Conn }

// connect listens on scheme and dials it. acceptorCfg and dialerCfg carry
// each end's TLS settings.
func connect(t *testing.T, scheme string, acceptorCfg, dialerCfg transports.Config) raw {
	t.Helper()
	u := scheme + "://127.0.0.1:0"
	switch scheme {
	case "mem":
		u = fmt.Sprintf("mem://%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	case "ws":
		u = "ws://127.0.0.1:0/overlay"
	}
	ln, err := transports.Listen(u, acceptorCfg)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	d, err := transports.Dial(context.Background(), ln.URL(), dialerCfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	a, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return raw{d, a}
}

var (
	helloA = Hello{Version: version, From: "na.c1.a", To: "na.c1.b", LinkID: "link-1", Epoch: 11}
	helloB = Hello{Version: version, From: "na.c1.b", To: "na.c1.a", LinkID: "link-1", Epoch: 22}
)

// wantLink is the acceptor's decision: it has link-1 to na.c1.a.
func wantLink(h Hello) (Hello, string) {
	if h.LinkID != "link-1" || h.From != "na.c1.a" || h.To != "na.c1.b" {
		return Hello{}, fmt.Sprintf("na.c1.b has no link %s from %s", h.LinkID, h.From)
	}
	return helloB, ""
}

type result struct {
	conn  transports.Conn
	hello Hello
	err   error
}

// shake runs both sides at once.
func shake(r raw, dcfg, acfg Config, ours Hello) (dialer, acceptor result) {
	var wg sync.WaitGroup
	wg.Go(func() {
		c, h, err := Accept(r.acceptor, acfg, wantLink)
		acceptor = result{c, h, err}
	})
	c, h, err := Dial(r.dialer, ours, dcfg)
	dialer = result{c, h, err}
	wg.Wait()
	return dialer, acceptor
}

// exchange checks that frames cross the authenticated link both ways.
func exchange(t *testing.T, a, b transports.Conn) {
	t.Helper()
	for i, dir := range [][2]transports.Conn{{a, b}, {b, a}, {a, b}} {
		msg := []byte(fmt.Sprintf("frame %d", i))
		if _, err := dir[0].Send(msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		f, err := dir[1].Receive()
		if err != nil || !bytes.Equal(f.Data, msg) {
			t.Fatalf("receive %d: %q, %v", i, f.Data, err)
		}
	}
}

func TestHandshake(t *testing.T) {
	for _, scheme := range []string{"mem", "tcp", "ws", "udp"} {
		for _, sec := range [][]byte{nil, secret} {
			name := fmt.Sprintf("%s/%s", scheme, ModeFor(transports.Info{Scheme: scheme}, Config{Secret: sec}))
			t.Run(name, func(t *testing.T) {
				cfg := Config{Version: version, Secret: sec}
				d, a := shake(connect(t, scheme, transports.Config{}, transports.Config{}), cfg, cfg, helloA)
				if d.err != nil || a.err != nil {
					t.Fatalf("dialer: %v; acceptor: %v", d.err, a.err)
				}
				if d.hello != helloB || a.hello != helloA {
					t.Fatalf("hellos: dialer got %+v, acceptor got %+v", d.hello, a.hello)
				}
				_, sealed := d.conn.(*sealedConn)
				if sealed != (sec != nil) {
					t.Fatalf("dialer's conn is %T with secret %q", d.conn, sec)
				}
				exchange(t, d.conn, a.conn)
			})
		}
	}
}

// tlsConfigs issues a certificate per name from one CA and returns each
// end's transport config.
func tlsConfigs(t *testing.T, names ...string) []transports.Config {
	ca := testutil.NewTestCA(t, t.TempDir())
	var out []transports.Config
	for _, n := range names {
		cert, key := ca.Issue(t, n, n)
		tc, err := transports.LoadTLSConfig(cert, key, ca.File)
		if err != nil {
			t.Fatalf("tls config: %v", err)
		}
		out = append(out, transports.Config{TLS: tc})
	}
	return out
}

func TestTLSCertificateNames(t *testing.T) {
	c := tlsConfigs(t, "na.c1.a", "na.c1.b", "na.c1.c")
	a, b, other := c[0], c[1], c[2]
	cfg := Config{Version: version}
	t.Run("each names its broker", func(t *testing.T) {
		d, acc := shake(connect(t, "tls", b, a), cfg, cfg, helloA)
		if d.err != nil || acc.err != nil {
			t.Fatalf("dialer: %v; acceptor: %v", d.err, acc.err)
		}
		exchange(t, d.conn, acc.conn)
	})
	t.Run("dialer shows another broker's certificate", func(t *testing.T) {
		d, acc := shake(connect(t, "tls", b, other), cfg, cfg, helloA)
		if !errors.Is(acc.err, ErrIncompatible) || !strings.Contains(acc.err.Error(), "does not name na.c1.a") {
			t.Fatalf("acceptor: %v", acc.err)
		}
		if !errors.Is(d.err, ErrRefused) {
			t.Fatalf("dialer: %v", d.err)
		}
	})
	t.Run("acceptor shows another broker's certificate", func(t *testing.T) {
		d, acc := shake(connect(t, "tls", other, a), cfg, cfg, helloA)
		if !errors.Is(d.err, ErrIncompatible) || !strings.Contains(d.err.Error(), "does not name na.c1.b") {
			t.Fatalf("dialer: %v", d.err)
		}
		if !errors.Is(acc.err, ErrRefused) {
			t.Fatalf("acceptor: %v", acc.err)
		}
	})
}

func TestRefusals(t *testing.T) {
	withSecret := Config{Version: version, Secret: secret}
	tests := []struct {
		name             string
		dialer, acceptor Config
		hello            Hello
		dialerErr        error
		acceptorErr      error
		want             string
	}{
		{"wrong secret", Config{Version: version, Secret: []byte("another secret, not the network's")}, withSecret, helloA,
			ErrRefused, ErrUnauthenticated, "does not hold this network's secret"},
		{"dialer without the secret", Config{Version: version}, withSecret, helloA,
			ErrIncompatible, ErrRefused, "na.c1.b requires the network secret and na.c1.a has none"},
		{"acceptor without the secret", withSecret, Config{Version: version}, helloA,
			ErrIncompatible, ErrRefused, "na.c1.a requires the network secret and na.c1.b has none"},
		{"older dialer", Config{Version: 2, Secret: secret}, withSecret, Hello{Version: 2, From: "na.c1.a", To: "na.c1.b", LinkID: "link-1"},
			ErrRefused, ErrIncompatible, "protocol version mismatch: na.c1.a speaks version 2, na.c1.b speaks version 3"},
		{"unknown link", withSecret, withSecret, Hello{Version: version, From: "na.c1.a", To: "na.c1.b", LinkID: "link-9"},
			ErrRefused, ErrIncompatible, "na.c1.b has no link link-9"},
		{"wrong broker", withSecret, withSecret, Hello{Version: version, From: "na.c1.a", To: "na.c1.x", LinkID: "link-1"},
			ErrRefused, ErrIncompatible, "has no link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, a := shake(connect(t, "tcp", transports.Config{}, transports.Config{}), tt.dialer, tt.acceptor, tt.hello)
			if !errors.Is(d.err, tt.dialerErr) || !strings.Contains(d.err.Error(), tt.want) {
				t.Errorf("dialer: %v, want %v with %q", d.err, tt.dialerErr, tt.want)
			}
			if !errors.Is(a.err, tt.acceptorErr) || !strings.Contains(a.err.Error(), tt.want) {
				t.Errorf("acceptor: %v, want %v with %q", a.err, tt.acceptorErr, tt.want)
			}
		})
	}
}

// TestOlderAcceptor: a broker of version 2 reads our hello as its own and
// refuses it with its version message, which the dialer reports.
func TestOlderAcceptor(t *testing.T) {
	r := connect(t, "tcp", transports.Config{}, transports.Config{})
	go func() {
		f, err := r.acceptor.Receive()
		if err != nil {
			return
		}
		_, body, _ := splitRecord(f.Data)
		h, err := DecodeHello(body)
		if err != nil {
			r.acceptor.Send(AppendRefuse(nil, "garbage: "+err.Error()))
			return
		}
		r.acceptor.Send(AppendRefuse(nil, versionMismatch(h.From, h.Version, h.To, 2)))
	}()
	_, _, err := Dial(r.dialer, helloA, Config{Version: version, Secret: secret})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "na.c1.a speaks version 3, na.c1.b speaks version 2") {
		t.Fatalf("dialer: %v", err)
	}
}

// TestImpostor plays a peer that knows everything public (addresses, link
// id, the protocol) but not the secret: it is refused before any frame of
// a session is read, on every transport.
func TestImpostor(t *testing.T) {
	for _, scheme := range []string{"tcp", "ws", "udp"} {
		t.Run(scheme, func(t *testing.T) {
			r := connect(t, scheme, transports.Config{}, transports.Config{})
			done := make(chan error, 1)
			go func() {
				_, _, err := Accept(r.acceptor, Config{Version: version, Secret: secret}, wantLink)
				done <- err
			}()
			r.dialer.Send(AppendHello(nil, helloA))
			f, err := r.dialer.Receive()
			if err != nil {
				t.Fatalf("no challenge: %v", err)
			}
			if typ, _, _ := splitRecord(f.Data); typ != recChallenge {
				t.Fatalf("got record %d, want a challenge", typ)
			}
			// A response with a made-up proof, then session records.
			r.dialer.Send(appendResponse(nil, response{Mode: ModeSecret}))
			r.dialer.Send([]byte{9, 0, 0, 0, 0})
			err = <-done
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("acceptor: %v", err)
			}
		})
	}
}

// recorder keeps a copy of every frame sent through it.
type recorder struct {
	transports.Conn
	mu   sync.Mutex
	sent [][]byte
}

func (r *recorder) Send(b []byte) (time.Time, error) {
	r.mu.Lock()
	r.sent = append(r.sent, append([]byte(nil), b...))
	r.mu.Unlock()
	return r.Conn.Send(b)
}

// TestForgedFrames injects frames under an authenticated session: forged,
// altered and replayed frames are refused one by one, and the session goes
// on.
func TestForgedFrames(t *testing.T) {
	for _, scheme := range []string{"tcp", "udp"} {
		t.Run(scheme, func(t *testing.T) {
			r := connect(t, scheme, transports.Config{}, transports.Config{})
			rec := &recorder{Conn: r.dialer}
			cfg := Config{Version: version, Secret: secret}
			d, a := shake(raw{rec, r.acceptor}, cfg, cfg, helloA)
			if d.err != nil || a.err != nil {
				t.Fatalf("dialer: %v; acceptor: %v", d.err, a.err)
			}
			exchange(t, d.conn, a.conn)
			rec.mu.Lock()
			first := rec.sent[len(rec.sent)-2] // the dialer's first protected frame
			rec.mu.Unlock()
			altered := append([]byte(nil), first...)
			altered[0] ^= 1
			for name, frame := range map[string][]byte{
				"garbage":  []byte("LMSG secret.payroll 5\r\nhello\r\n"),
				"altered":  altered,
				"replayed": first,
				"short":    {1, 2, 3},
			} {
				r.dialer.Send(frame)
				if _, err := a.conn.Receive(); !errors.Is(err, ErrForged) {
					t.Fatalf("%s frame: got %v, want ErrForged", name, err)
				}
			}
			exchange(t, d.conn, a.conn)
		})
	}
}

// lossy drops the frames sent through it that drop picks, by the order
// they were sent in (from 0).
type lossy struct {
	transports.Conn
	mu   sync.Mutex
	n    int
	drop func(n int, frame []byte) bool
}

func (l *lossy) Send(b []byte) (time.Time, error) {
	l.mu.Lock()
	n := l.n
	l.n++
	drop := l.drop(n, b)
	l.mu.Unlock()
	if drop {
		return time.Now(), nil
	}
	return l.Conn.Send(b)
}

// TestLossyHandshake loses each handshake message once on udp: the
// dialer's repeats and the acceptor's first frame of the session carry it
// through.
func TestLossyHandshake(t *testing.T) {
	isRecord := func(typ byte) func(int, []byte) bool {
		lost := false
		return func(_ int, b []byte) bool {
			t, _, ok := splitRecord(b)
			if !lost && ok && t == typ {
				lost = true
				return true
			}
			return false
		}
	}
	firstFrame := func(n int, _ []byte) bool { return n == 0 }
	tests := []struct {
		name         string
		sec          []byte
		dialerDrops  func(int, []byte) bool
		acceptorDrop func(int, []byte) bool
	}{
		{"hello lost", secret, isRecord(recHello), nil},
		{"challenge lost", secret, nil, isRecord(recChallenge)},
		{"response lost", secret, isRecord(recResponse), nil},
		{"acceptance lost", secret, nil, func(n int, _ []byte) bool { return n == 1 }},
		{"acceptance lost, no secret", nil, nil, isRecord(recAccept)},
		{"hello lost, no secret", nil, firstFrame, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := connect(t, "udp", transports.Config{}, transports.Config{})
			var dconn, aconn transports.Conn = r.dialer, r.acceptor
			if tt.dialerDrops != nil {
				dconn = &lossy{Conn: r.dialer, drop: tt.dialerDrops}
			}
			if tt.acceptorDrop != nil {
				aconn = &lossy{Conn: r.acceptor, drop: tt.acceptorDrop}
			}
			cfg := Config{Version: version, Secret: tt.sec, Resend: 20 * time.Millisecond}
			var wg sync.WaitGroup
			var a result
			wg.Go(func() {
				c, h, err := Accept(aconn, cfg, wantLink)
				a = result{c, h, err}
				if err == nil {
					// The session starts at once, as a broker's does.
					c.Send([]byte("session frame"))
				}
			})
			c, _, err := Dial(dconn, helloA, cfg)
			wg.Wait()
			if err != nil || a.err != nil {
				t.Fatalf("dialer: %v; acceptor: %v", err, a.err)
			}
			f, err := c.Receive()
			if err != nil || string(f.Data) != "session frame" {
				t.Fatalf("dialer's first frame: %q, %v", f.Data, err)
			}
			if _, err := c.Send([]byte("back")); err != nil {
				t.Fatal(err)
			}
			for {
				f, err := a.conn.Receive()
				if err != nil {
					t.Fatalf("acceptor: %v", err)
				}
				if typ, _, ok := splitRecord(f.Data); ok && IsHandshakeRecord(typ) {
					continue // a repeat that crossed the acceptance
				}
				if string(f.Data) != "back" {
					t.Fatalf("acceptor got %q", f.Data)
				}
				break
			}
		})
	}
}

// TestUnanswered: an acceptor whose wanted returns Unanswered tells the
// dialer nothing; closing the conn, as its caller does, ends the dialer's
// handshake with a transport error, not a refusal (which would make it
// wait its longest before dialing again).
func TestUnanswered(t *testing.T) {
	r := connect(t, "tcp", transports.Config{}, transports.Config{})
	cfg := Config{Version: version, Secret: secret, Timeout: 5 * time.Second}
	var acceptErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _, acceptErr = Accept(r.acceptor, cfg, func(Hello) (Hello, string) { return Hello{}, Unanswered })
		r.acceptor.Close()
	})
	_, _, err := Dial(r.dialer, helloA, cfg)
	wg.Wait()
	if !errors.Is(acceptErr, ErrUnanswered) {
		t.Errorf("acceptor: %v, want %v", acceptErr, ErrUnanswered)
	}
	if err == nil || errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "unanswered") {
		t.Errorf("dialer: %v, want the connection's end without a refusal", err)
	}
}

func TestTimeout(t *testing.T) {
	r := connect(t, "tcp", transports.Config{}, transports.Config{})
	start := time.Now()
	_, _, err := Accept(r.acceptor, Config{Version: version, Secret: secret, Timeout: 200 * time.Millisecond}, wantLink)
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("silent dialer: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestWindow(t *testing.T) {
	var w window
	accept := func(seq uint64) bool {
		if !w.fresh(seq) {
			return false
		}
		w.mark(seq)
		return true
	}
	steps := []struct {
		seq  uint64
		want bool
	}{
		{5, true}, {5, false}, {3, true}, {3, false}, {4, true}, {6, true},
		{6 + replayWindow, true}, {6, false}, {7, true}, {7, false}, {6 + replayWindow, false},
		{1 << 40, true}, {1<<40 - replayWindow, false}, {1<<40 - replayWindow + 1, true},
	}
	for i, s := range steps {
		if got := accept(s.seq); got != s.want {
			t.Fatalf("step %d: seq %d accepted %v, want %v", i, s.seq, got, s.want)
		}
	}
}

// nopConn accepts every frame and sends nothing.
type nopConn struct{ transports.Conn }

func (nopConn) Send(b []byte) (time.Time, error) { return time.Time{}, nil }
func (nopConn) Info() transports.Info            { return transports.Info{Scheme: "tcp", Reliable: true} }

// BenchmarkProtect measures what protecting and checking one frame costs,
// for a batch of messages as a busy link sends them and for a single
// probe.
func BenchmarkProtect(b *testing.B) {
	key := make([]byte, 32)
	for _, size := range []int{64 << 10, 200} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			tx, _ := newSealed(nopConn{}, key, key)
			rx, _ := newSealed(nopConn{}, key, key)
			frame := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				tx.Send(frame)
				if _, err := rx.verify(tx.sbuf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestQUICDatagrams: on a secret-mode link over quic, the transport's
// datagrams (which carry the link's probes) and its packet emulation stay
// available, datagrams are protected like frames, and a datagram sent
// outside the protection is refused as forged.
func TestQUICDatagrams(t *testing.T) {
	cfg := Config{Version: version, Secret: secret}
	r := connect(t, "quic", transports.Config{}, transports.Config{})
	d, a := shake(r, cfg, cfg, helloA)
	if d.err != nil || a.err != nil {
		t.Fatalf("dialer: %v; acceptor: %v", d.err, a.err)
	}
	exchange(t, d.conn, a.conn)
	dd, ok := d.conn.(transports.DatagramConn)
	ad, ok2 := a.conn.(transports.DatagramConn)
	if !ok || !ok2 {
		t.Fatalf("conns %T and %T carry no datagrams", d.conn, a.conn)
	}
	if _, ok := d.conn.(transports.PacketEmulator); !ok {
		t.Fatalf("conn %T does not emulate packets", d.conn)
	}
	for i := range 3 {
		msg := []byte(fmt.Sprintf("probe %d", i))
		if _, err := dd.SendDatagram(msg); err != nil {
			t.Fatal(err)
		}
		f, err := ad.ReceiveDatagram()
		if err != nil || !bytes.Equal(f.Data, msg) {
			t.Fatalf("datagram %d: %q, %v", i, f.Data, err)
		}
	}
	raw := r.dialer.(transports.DatagramConn)
	if _, err := raw.SendDatagram([]byte("a datagram with no tag, or a forged one of 24+ bytes")); err != nil {
		t.Fatal(err)
	}
	if _, err := ad.ReceiveDatagram(); !errors.Is(err, ErrForged) {
		t.Fatalf("unprotected datagram: %v, want ErrForged", err)
	}
}
