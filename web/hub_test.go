package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startHub serves a hub on a test server; the hub stops when t ends.
func startHub(t *testing.T, cfg HubConfig) (*Hub, string) {
	t.Helper()
	h := NewHub(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go h.Run(ctx)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		cancel()
		<-h.done
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func read(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHubDeliversByTopic(t *testing.T) {
	h, url := startHub(t, HubConfig{})
	all := dial(t, url)
	links := dial(t, url+"?topics=link.,route.")
	waitUntil(t, "two connections", func() bool { return h.Stats().Clients == 2 })
	h.Publish("report.na.c1.a", []byte("r1"))
	h.Publish("link.x", []byte("l1"))
	h.Publish("route.na", []byte("t1"))
	h.Publish("report.na.c1.b", []byte("r2"))
	for _, want := range []string{"r1", "l1", "t1", "r2"} {
		if got := read(t, all); got != want {
			t.Fatalf("all topics: got %q, want %q", got, want)
		}
	}
	for _, want := range []string{"l1", "t1"} {
		if got := read(t, links); got != want {
			t.Fatalf("link and route topics: got %q, want %q", got, want)
		}
	}
}

// TestHubDropsASlowConnection: a page that stops reading is dropped once
// its buffer is full, while another keeps getting every update in order.
func TestHubDropsASlowConnection(t *testing.T) {
	h, url := startHub(t, HubConfig{SendBuffer: 8})
	dial(t, url) // never reads
	fast := dial(t, url)
	waitUntil(t, "two connections", func() bool { return h.Stats().Clients == 2 })
	big := strings.Repeat("x", 64<<10)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; h.Stats().Dropped == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the connection that never reads was not dropped: %+v", h.Stats())
		}
		msg := fmt.Sprintf("%d:%s", i, big)
		h.Publish("report", []byte(msg))
		if got := read(t, fast); got != msg {
			t.Fatalf("the reading connection got update %.10q, want %.10q", got, msg)
		}
	}
	waitUntil(t, "one connection left", func() bool { return h.Stats().Clients == 1 })
	if s := h.Stats(); s.Dropped != 1 || s.Lost != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestHubPublishNeverWaits: with Run stopped behind, updates past the
// backlog are counted as lost, and Publish returns at once.
func TestHubPublishNeverWaits(t *testing.T) {
	h := NewHub(HubConfig{Backlog: 2})
	start := time.Now()
	for range 5 {
		h.Publish("x", nil)
	}
	if s := h.Stats(); s.Lost != 3 || time.Since(start) > time.Second {
		t.Errorf("stats %+v after %v", s, time.Since(start))
	}
}

// TestHubPings: a page that answers pings stays connected through a quiet
// spell; one that does not is closed.
func TestHubPings(t *testing.T) {
	h, url := startHub(t, HubConfig{PingEvery: 50 * time.Millisecond})
	alive := dial(t, url)
	got := make(chan string, 1)
	go func() {
		// Reading answers pings (gorilla's default ping handler).
		_, b, err := alive.ReadMessage()
		if err == nil {
			got <- string(b)
		}
		close(got)
	}()
	dial(t, url) // never reads, so never answers a ping
	waitUntil(t, "two connections", func() bool { return h.Stats().Clients == 2 })
	waitUntil(t, "the silent one closed", func() bool { return h.Stats().Clients == 1 })
	time.Sleep(300 * time.Millisecond) // six ping periods
	h.Publish("x", []byte("still here"))
	select {
	case m := <-got:
		if m != "still here" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reading connection got nothing")
	}
}

// TestHubClosesOnStop: when the hub stops, pages are told it is going
// away.
func TestHubClosesOnStop(t *testing.T) {
	h := NewHub(HubConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	go h.Run(ctx)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ws := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http"))
	waitUntil(t, "a connection", func() bool { return h.Stats().Clients == 1 })
	cancel()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("read after stop: %v", err)
	}
	// A connection that comes after the stop is refused at once.
	late, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err == nil {
		late.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := late.ReadMessage(); err == nil {
			t.Fatal("a connection after the stop got a message")
		}
		late.Close()
	}
}
