package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Hub sends live updates to the pages' WebSocket connections. It follows
// gorilla/websocket's chat example: one goroutine (Run) owns the set of
// connections; each connection has exactly one writer goroutine; its send
// buffer is bounded, and a connection that falls behind is dropped rather
// than allowed to hold up the others or the publisher; every write has a
// deadline, and pings find connections whose peer went away.
//
// An update is a topic and a text (the pages send JSON). A connection
// subscribes to topics by prefix with ?topics=a,b (none: every topic).
type Hub struct {
	cfg        HubConfig
	log        *slog.Logger
	register   chan *conn
	unregister chan *conn
	updates    chan update
	dropped    atomic.Uint64 // connections dropped for falling behind
	lost       atomic.Uint64 // updates the hub itself had no room for
	clients    atomic.Int64
	done       chan struct{}
	upgrader   websocket.Upgrader
}

// HubConfig sets a hub's limits. Zero fields take the defaults in their
// comments.
type HubConfig struct {
	// SendBuffer is the updates a connection may have waiting; one more
	// and it is dropped. Default 64 (a page gets a few updates a second).
	SendBuffer int
	// WriteWait bounds each write. Default 10 s.
	WriteWait time.Duration
	// PingEvery is how often a connection is pinged; one that sends
	// nothing (no pong) for twice as long is closed. Default 30 s.
	PingEvery time.Duration
	// Backlog is the updates the hub holds for Run; past it Publish drops
	// them (and counts them) rather than wait. Default 1024.
	Backlog int
	// CheckOrigin decides whether a connection's Origin is allowed; nil
	// allows the same host only (gorilla's default).
	CheckOrigin func(*http.Request) bool
	Logger      *slog.Logger
}

func (c *HubConfig) defaults() {
	if c.SendBuffer <= 0 {
		c.SendBuffer = 64
	}
	if c.WriteWait <= 0 {
		c.WriteWait = 10 * time.Second
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 30 * time.Second
	}
	if c.Backlog <= 0 {
		c.Backlog = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

type update struct {
	topic string
	data  []byte
}

// conn is one page's connection.
type conn struct {
	ws     *websocket.Conn
	topics []string    // prefixes; empty for all
	send   chan []byte // owned by Run: closed by it alone
}

func (c *conn) wants(topic string) bool {
	if len(c.topics) == 0 {
		return true
	}
	for _, p := range c.topics {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// NewHub makes a hub; Run serves it.
func NewHub(cfg HubConfig) *Hub {
	cfg.defaults()
	return &Hub{
		cfg:        cfg,
		log:        cfg.Logger,
		register:   make(chan *conn),
		unregister: make(chan *conn),
		updates:    make(chan update, cfg.Backlog),
		done:       make(chan struct{}),
		upgrader:   websocket.Upgrader{CheckOrigin: cfg.CheckOrigin},
	}
}

// Run owns the connections until ctx ends, then closes them all.
func (h *Hub) Run(ctx context.Context) {
	defer close(h.done)
	conns := map[*conn]bool{}
	drop := func(c *conn) {
		if conns[c] {
			delete(conns, c)
			close(c.send)
			h.clients.Add(-1)
		}
	}
	for {
		select {
		case <-ctx.Done():
			for c := range conns {
				drop(c)
			}
			return
		case c := <-h.register:
			conns[c] = true
			h.clients.Add(1)
		case c := <-h.unregister:
			drop(c)
		case u := <-h.updates:
			for c := range conns {
				if !c.wants(u.topic) {
					continue
				}
				select {
				case c.send <- u.data:
				default:
					h.dropped.Add(1)
					h.log.Warn("live updates: a connection fell behind; dropped", slog.String("remote", c.ws.RemoteAddr().String()))
					drop(c)
				}
			}
		}
	}
}

// Publish hands an update to every connection subscribed to its topic. It
// never waits: when the hub has no room, the update is counted as lost.
func (h *Hub) Publish(topic string, data []byte) {
	select {
	case h.updates <- update{topic, data}:
	default:
		h.lost.Add(1)
	}
}

// HubStats counts a hub's connections and what it dropped.
type HubStats struct {
	Clients int64  // connections now
	Dropped uint64 // connections dropped for falling behind
	Lost    uint64 // updates the hub had no room for
}

// Stats is the hub's counters.
func (h *Hub) Stats() HubStats {
	return HubStats{Clients: h.clients.Load(), Dropped: h.dropped.Load(), Lost: h.lost.Load()}
}

// ServeHTTP upgrades a request to a WebSocket connection that receives
// the updates of the topics in ?topics= (comma-separated prefixes).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the request
	}
	c := &conn{ws: ws, send: make(chan []byte, h.cfg.SendBuffer)}
	if t := r.URL.Query().Get("topics"); t != "" {
		c.topics = strings.Split(t, ",")
	}
	select {
	case h.register <- c:
	case <-h.done:
		ws.Close()
		return
	}
	go h.writePump(c)
	h.readPump(c)
}

// readPump reads until the connection fails or goes quiet: pages send
// nothing but pongs, which extend the deadline.
func (h *Hub) readPump(c *conn) {
	defer func() {
		select {
		case h.unregister <- c:
		case <-h.done:
		}
		c.ws.Close()
	}()
	c.ws.SetReadLimit(4096)
	wait := 2 * h.cfg.PingEvery
	c.ws.SetReadDeadline(time.Now().Add(wait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(wait)) })
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return
		}
	}
}

// writePump is the connection's one writer: updates as they come, a ping
// every PingEvery, and a close when Run closes send.
func (h *Hub) writePump(c *conn) {
	ping := time.NewTicker(h.cfg.PingEvery)
	defer func() {
		ping.Stop()
		c.ws.Close()
	}()
	for {
		select {
		case data, ok := <-c.send:
			c.ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteWait))
			if !ok {
				c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
				return
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
				return
			}
		case <-ping.C:
			c.ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}
