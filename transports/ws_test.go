package transports

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// rawWS dials a ws listener with a plain gorilla client, to play a
// misbehaving peer.
func rawWS(t *testing.T, cfg Config) (*websocket.Conn, Conn) {
	t.Helper()
	ln, err := Listen(listenURL("ws"), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	raw, _, err := websocket.DefaultDialer.Dial(ln.URL(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw, accept(t, ln)
}

func TestWSOversizedFromPeer(t *testing.T) {
	cfg := testConfig(t)
	raw, server := rawWS(t, cfg)
	// The default dialer's 4 KiB buffer sends this as many WebSocket frames.
	over := randomBytes(cfg.MaxFrame + 10_000)
	for _, msg := range [][]byte{over, []byte("next")} {
		if err := raw.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if r := receive(t, server); !errors.Is(r.err, ErrFrameTooLarge) {
		t.Fatalf("Receive: got %v, want ErrFrameTooLarge", r.err)
	}
	receiveData(t, server, []byte("next"))
	// One byte over the limit, delivered exactly.
	exact := randomBytes(cfg.MaxFrame + 1)
	if err := raw.WriteMessage(websocket.BinaryMessage, exact); err != nil {
		t.Fatalf("write: %v", err)
	}
	if r := receive(t, server); !errors.Is(r.err, ErrFrameTooLarge) {
		t.Fatalf("Receive: got %v, want ErrFrameTooLarge", r.err)
	}
	send(t, server, []byte("reply"))
	typ, got, err := raw.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(got, []byte("reply")) {
		t.Fatalf("read reply: %d %q %v", typ, got, err)
	}
}

func TestWSTextMessageIsDropped(t *testing.T) {
	cfg := testConfig(t)
	raw, server := rawWS(t, cfg)
	if err := raw.WriteMessage(websocket.TextMessage, []byte("hello?")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := raw.WriteMessage(websocket.BinaryMessage, []byte("frame")); err != nil {
		t.Fatalf("write: %v", err)
	}
	receiveData(t, server, []byte("frame"))
}

func TestWSSubprotocolAndPath(t *testing.T) {
	cfg := testConfig(t)
	l := newLink(t, "ws", cfg)
	for _, c := range []Conn{l.client, l.server} {
		if got := c.(*wsConn).ws.Subprotocol(); got != wsSubprotocol {
			t.Errorf("subprotocol %q, want %q", got, wsSubprotocol)
		}
	}
	wrong := strings.TrimSuffix(l.ln.URL(), "/overlay") + "/elsewhere"
	_, err := Dial(context.Background(), wrong, cfg)
	if err == nil || !strings.Contains(err.Error(), http.StatusText(http.StatusNotFound)) {
		t.Fatalf("Dial %s: got %v, want a 404", wrong, err)
	}
}
