package linkauth

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/wayline/wayline/transports"
)

// scriptConn plays the other end of a handshake from a script of frames,
// and ends with io.EOF.
type scriptConn struct {
	mu       sync.Mutex
	frames   [][]byte
	reliable bool
}

func (c *scriptConn) Send(b []byte) (time.Time, error) { return time.Now(), nil }

func (c *scriptConn) Receive() (transports.Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.frames) == 0 {
		return transports.Frame{}, io.EOF
	}
	f := c.frames[0]
	c.frames = c.frames[1:]
	return transports.Frame{Data: f, Received: time.Now()}, nil
}

func (c *scriptConn) Info() transports.Info {
	return transports.Info{Scheme: "tcp", Reliable: c.reliable}
}

func (c *scriptConn) Close() error { return nil }

// frames splits fuzz input into frames, each preceded by its length (u16).
func frames(input []byte) [][]byte {
	var out [][]byte
	for len(input) >= 2 {
		n := min(int(binary.BigEndian.Uint16(input)), len(input)-2)
		out = append(out, input[2:2+n])
		input = input[2+n:]
	}
	return out
}

// script joins frames as fuzz input.
func script(fs ...[]byte) []byte {
	var b []byte
	for _, f := range fs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

// FuzzAccept plays arbitrary dialers against the acceptor. Nothing may
// panic, and with the secret no dialer gets in: the proof covers the
// acceptor's fresh nonce, which a script cannot know. Without the secret
// the script may get in, and the conn must then work. Seeds are in
// testdata/fuzz/FuzzAccept.
func FuzzAccept(f *testing.F) {
	hello := AppendHello(nil, helloA)
	f.Add(script(hello))
	f.Add(script(hello, appendResponse(nil, response{Mode: ModeSecret})))
	f.Add(script(hello, hello, appendResponse(nil, response{Mode: ModeNone}), []byte("after")))
	f.Add(script(AppendRefuse(nil, "no")))
	f.Fuzz(func(t *testing.T, input []byte) {
		for _, reliable := range []bool{true, false} {
			c := &scriptConn{frames: frames(input), reliable: reliable}
			if conn, _, err := Accept(c, Config{Version: version, Secret: secret}, wantLink); err == nil {
				t.Fatalf("a scripted dialer got in with the secret: %T", conn)
			}
			c = &scriptConn{frames: frames(input), reliable: reliable}
			conn, _, err := Accept(c, Config{Version: version}, wantLink)
			if err == nil {
				if _, err := conn.Send([]byte("x")); err != nil {
					t.Fatalf("send after the handshake: %v", err)
				}
			}
		}
	})
}

// FuzzDial plays arbitrary acceptors against the dialer, with the same
// rules as FuzzAccept. Seeds are in testdata/fuzz/FuzzDial.
func FuzzDial(f *testing.F) {
	chal := func(m Mode) []byte { return appendChallenge(nil, challenge{Hello: helloB, Mode: m}) }
	f.Add(script(chal(ModeSecret), appendAccept(nil)))
	f.Add(script(chal(ModeNone), appendAccept(nil)))
	f.Add(script(chal(ModeNone), []byte("session")))
	f.Add(script(AppendRefuse(nil, "protocol version mismatch")))
	f.Add(script(chal(ModeSecret), make([]byte, Overhead)))
	f.Fuzz(func(t *testing.T, input []byte) {
		c := &scriptConn{frames: frames(input), reliable: true}
		if conn, _, err := Dial(c, helloA, Config{Version: version, Secret: secret}); err == nil {
			t.Fatalf("a scripted acceptor got in with the secret: %T", conn)
		}
		c = &scriptConn{frames: frames(input), reliable: true}
		if conn, _, err := Dial(c, helloA, Config{Version: version}); err == nil {
			if _, err := conn.Receive(); err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("receive after the handshake: %v", err)
			}
		}
	})
}

// FuzzRecords decodes arbitrary handshake records: nothing panics, and
// what decodes encodes back to the same bytes. Seeds are in
// testdata/fuzz/FuzzRecords.
func FuzzRecords(f *testing.F) {
	f.Add(AppendHello(nil, helloA))
	f.Add(appendChallenge(nil, challenge{Hello: helloB, Mode: ModeSecret}))
	f.Add(appendResponse(nil, response{Mode: ModeSecret}))
	f.Add(AppendRefuse(nil, "why"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		typ, body, ok := splitRecord(frame)
		if !ok {
			return
		}
		var enc []byte
		switch typ {
		case recHello:
			h, err := DecodeHello(body)
			if err != nil {
				return
			}
			enc = AppendHello(nil, h)
		case recChallenge:
			c, err := decodeChallenge(body)
			if err != nil {
				return
			}
			enc = appendChallenge(nil, c)
		case recResponse:
			r, err := decodeResponse(body)
			if err != nil {
				return
			}
			enc = appendResponse(nil, r)
		case recRefuse:
			reason, err := DecodeRefuse(body)
			if err != nil {
				return
			}
			enc = AppendRefuse(nil, reason)
		default:
			return
		}
		if string(enc) != string(frame) {
			t.Fatalf("record %d does not round-trip:\n in  %x\n out %x", typ, frame, enc)
		}
	})
}
