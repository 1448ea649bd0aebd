package transports

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// frame encodes one length-prefixed frame with an arbitrary announced length.
func rawFrame(announced uint32, payload []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, announced), payload...)
}

func TestFrameReader(t *testing.T) {
	const maxFrame = 100
	big := bytes.Repeat([]byte{7}, 90_000) // larger than the bufio buffer
	concat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	type outcome struct {
		data []byte
		err  error
	}
	tests := []struct {
		name     string
		maxFrame int
		input    []byte
		want     []outcome
	}{
		{"two frames", maxFrame,
			concat(rawFrame(3, []byte("abc")), rawFrame(0, nil)),
			[]outcome{{[]byte("abc"), nil}, {[]byte{}, nil}, {nil, io.EOF}}},
		{"exactly max", maxFrame,
			rawFrame(maxFrame, bytes.Repeat([]byte{1}, maxFrame)),
			[]outcome{{bytes.Repeat([]byte{1}, maxFrame), nil}, {nil, io.EOF}}},
		{"oversized is skipped", maxFrame,
			concat(rawFrame(maxFrame+1, bytes.Repeat([]byte{9}, maxFrame+1)), rawFrame(2, []byte("ok"))),
			[]outcome{{nil, ErrFrameTooLarge}, {[]byte("ok"), nil}, {nil, io.EOF}}},
		{"absurd length", maxFrame,
			rawFrame(absurdFactor*maxFrame+1, []byte("GET / HTTP/1.1")),
			[]outcome{{nil, errProtocol}}},
		{"http request", maxFrame,
			[]byte("GET / HTTP/1.1\r\n\r\n"),
			[]outcome{{nil, errProtocol}}},
		{"short header", maxFrame, []byte{0, 0}, []outcome{{nil, io.ErrUnexpectedEOF}}},
		{"short payload", maxFrame, rawFrame(10, []byte("abc")), []outcome{{nil, io.ErrUnexpectedEOF}}},
		{"short oversized payload", maxFrame, rawFrame(maxFrame+5, []byte("abc")), []outcome{{nil, io.ErrUnexpectedEOF}}},
		{"frame beyond the read buffer", len(big),
			concat(rawFrame(uint32(len(big)), big), rawFrame(1, []byte("x"))),
			[]outcome{{big, nil}, {[]byte("x"), nil}, {nil, io.EOF}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFrameReader(bytes.NewReader(tt.input), tt.maxFrame)
			for i, want := range tt.want {
				data, at, err := fr.next()
				if want.err != nil {
					if !errors.Is(err, want.err) {
						t.Fatalf("frame %d: got error %v, want %v", i, err, want.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(data, want.data) || at.IsZero() {
					t.Fatalf("frame %d: got %d bytes at %v, want %d bytes", i, len(data), at, len(want.data))
				}
			}
		})
	}
}

// rawTCP dials a tcp listener with a plain socket, to play a misbehaving peer.
func rawTCP(t *testing.T, cfg Config) (net.Conn, Conn) {
	t.Helper()
	ln, err := Listen("tcp://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	raw, err := net.Dial("tcp", ln.URL()[len("tcp://"):])
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	server := accept(t, ln)
	return raw, server
}

func TestTCPOversizedFromPeer(t *testing.T) {
	cfg := testConfig(t)
	raw, server := rawTCP(t, cfg)
	over := randomBytes(cfg.MaxFrame + 1000)
	if _, err := raw.Write(append(rawFrame(uint32(len(over)), over), rawFrame(4, []byte("next"))...)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if r := receive(t, server); !errors.Is(r.err, ErrFrameTooLarge) {
		t.Fatalf("Receive: got %v, want ErrFrameTooLarge", r.err)
	}
	receiveData(t, server, []byte("next"))
	// The link still works the other way too.
	send(t, server, []byte("reply"))
	got := make([]byte, 9)
	raw.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.ReadFull(raw, got); err != nil || !bytes.Equal(got, rawFrame(5, []byte("reply"))) {
		t.Fatalf("read reply: %q, %v", got, err)
	}
}

func TestTCPAbsurdLengthClosesLink(t *testing.T) {
	cfg := testConfig(t)
	raw, server := rawTCP(t, cfg)
	if _, err := raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := receive(t, server)
	if !errors.Is(r.err, errProtocol) || errors.Is(r.err, ErrFrameTooLarge) {
		t.Fatalf("Receive: got %v, want a protocol error", r.err)
	}
	if r := receive(t, server); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Receive after protocol error: got %v, want net.ErrClosed", r.err)
	}
	raw.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read: got %v, want io.EOF", err)
	}
}

// TestStreamAllocs checks that the tcp hot path does not allocate per frame.
// A receiver drains the link meanwhile, so its allocations count too.
func TestStreamAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const runs = 200
	cfg := testConfig(t)
	for _, size := range []int{100, 16 << 10} {
		l := newLink(t, "tcp", cfg)
		frame := randomBytes(size)
		done := make(chan error, 1)
		go func() {
			for range runs + 1 { // AllocsPerRun warms up with one extra run
				if _, err := l.server.Receive(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		allocs := testing.AllocsPerRun(runs, func() {
			if _, err := l.client.Send(frame); err != nil {
				t.Fatal(err)
			}
		})
		if err := <-done; err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if allocs != 0 {
			t.Errorf("%d-byte frames: %v allocs per frame sent and received, want 0", size, allocs)
		}
	}
}

// TestSendParts: a frame sent in two parts arrives whole, whether it is
// copied behind its prefix or written with writev, on tcp and tls.
func TestSendParts(t *testing.T) {
	for _, scheme := range []string{"tcp", "tls"} {
		l := newLink(t, scheme, testConfig(t))
		ps, ok := l.client.(PartsSender)
		if !ok {
			t.Fatalf("%s is not a PartsSender", scheme)
		}
		for _, size := range []int{10, tcpCopyMax + 100, testMaxFrame - 24} {
			head, tail := randomBytes(size), randomBytes(24)
			if _, err := ps.SendParts(head, tail); err != nil {
				t.Fatal(err)
			}
			receiveData(t, l.server, append(head, tail...))
			if _, err := ps.SendParts(head, nil); err != nil {
				t.Fatal(err)
			}
			receiveData(t, l.server, head)
		}
		if _, err := ps.SendParts(make([]byte, testMaxFrame), []byte{1}); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("%s: an oversized frame in parts: %v", scheme, err)
		}
	}
}
