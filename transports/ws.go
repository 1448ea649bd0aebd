package transports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ws:// carries each frame as one binary WebSocket message, for networks that
// only let HTTP through. The listener is an http.Server serving the upgrade
// at the URL's path.
//
// An oversized message is read up to MaxFrame+1 bytes and the rest is
// discarded, so the link survives it; gorilla's SetReadLimit would close it.

const (
	wsSubprotocol = "wayline"
	// wsWriteTimeout bounds one Send: a peer that takes no data for this
	// long is treated as failed. A write that times out breaks the link.
	wsWriteTimeout = 10 * time.Second
	// wsCloseTimeout bounds sending the close message in Close.
	wsCloseTimeout = time.Second
	// wsBufferSize sizes gorilla's read and write buffers; a batched frame
	// of up to 32 KiB goes out as one WebSocket frame.
	wsBufferSize = 32 << 10
)

// wsConn is a Conn over one WebSocket connection.
type wsConn struct {
	ws       *websocket.Conn
	maxFrame int
	logger   *slog.Logger
	release  func() // set by the listener that accepted the link

	wmu sync.Mutex // gorilla allows one writer at a time

	buf     []byte
	readErr error // sticky: gorilla panics on repeated reads after a failure

	closed atomic.Bool
	once   sync.Once
}

var _ Conn = (*wsConn)(nil)

func newWSConn(ws *websocket.Conn, cfg Config) *wsConn {
	return &wsConn{ws: ws, maxFrame: cfg.MaxFrame, logger: cfg.Logger}
}

func (c *wsConn) remote() string { return c.ws.RemoteAddr().String() }

// Send writes the frame as one binary message within wsWriteTimeout.
func (c *wsConn) Send(frame []byte) (time.Time, error) {
	if len(frame) > c.maxFrame {
		return time.Time{}, fmt.Errorf("ws %s: send %d bytes (limit %d): %w",
			c.remote(), len(frame), c.maxFrame, ErrFrameTooLarge)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return time.Time{}, fmt.Errorf("ws %s: send: %w", c.remote(), net.ErrClosed)
	}
	c.ws.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	if err := c.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		if c.closed.Load() {
			err = net.ErrClosed
		}
		return time.Time{}, fmt.Errorf("ws %s: send: %w", c.remote(), err)
	}
	return time.Now(), nil
}

// Receive returns the next binary message. Text messages are not frames:
// they are dropped with a warning.
func (c *wsConn) Receive() (Frame, error) {
	for c.readErr == nil {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.readErr = fmt.Errorf("ws %s: receive: %w", c.remote(), c.readError(err))
			break
		}
		at := time.Now()
		if typ != websocket.BinaryMessage {
			c.logger.Warn("ws: dropped a non-binary message", "remote", c.remote(), "type", typ)
			if _, err := io.Copy(io.Discard, r); err != nil {
				c.readErr = fmt.Errorf("ws %s: receive: %w", c.remote(), c.readError(err))
			}
			continue
		}
		data, err := c.readMessage(r)
		if errors.Is(err, ErrFrameTooLarge) {
			return Frame{}, fmt.Errorf("ws %s: receive: %w", c.remote(), err)
		}
		if err != nil {
			c.readErr = fmt.Errorf("ws %s: receive: %w", c.remote(), c.readError(err))
			break
		}
		return Frame{Data: data, Received: at}, nil
	}
	return Frame{}, c.readErr
}

// readMessage reads one message into c.buf, growing it up to MaxFrame+1
// bytes; a message longer than MaxFrame is drained and reported.
func (c *wsConn) readMessage(r io.Reader) ([]byte, error) {
	buf := c.buf[:0]
	for {
		if len(buf) > c.maxFrame {
			c.buf = buf[:0]
			n, err := io.Copy(io.Discard, r)
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("peer sent %d bytes (limit %d): %w",
				int64(len(buf))+n, c.maxFrame, ErrFrameTooLarge)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(len(buf), 4096), c.maxFrame+1-len(buf)))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), c.maxFrame+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF && len(buf) <= c.maxFrame {
			c.buf = buf
			return buf, nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
	}
}

// readError maps a close message from the peer to io.EOF and reads cut short
// by our own Close to net.ErrClosed.
func (c *wsConn) readError(err error) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
		return fmt.Errorf("%v: %w", err, io.EOF)
	}
	return err
}

func (c *wsConn) Info() Info {
	return Info{
		Scheme:   "ws",
		Local:    c.ws.LocalAddr().String(),
		Remote:   c.remote(),
		Reliable: true,
	}
}

// Close sends a close message, best effort, and closes the connection.
func (c *wsConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.closed.Store(true)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wsCloseTimeout))
		err = c.ws.Close()
		if c.release != nil {
			c.release()
		}
	})
	if err != nil {
		return fmt.Errorf("ws %s: close: %w", c.remote(), err)
	}
	return nil
}

// dialWS upgrades an HTTP connection to ws://host:port/path within
// HandshakeTimeout.
func dialWS(ctx context.Context, u *url.URL, cfg Config) (Conn, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("ws: missing host:port")
	}
	target := *u
	if target.Path == "" {
		target.Path = "/"
	}
	d := websocket.Dialer{
		HandshakeTimeout: cfg.HandshakeTimeout,
		Subprotocols:     []string{wsSubprotocol},
		ReadBufferSize:   wsBufferSize,
		WriteBufferSize:  wsBufferSize,
	}
	ws, resp, err := d.DialContext(ctx, target.String(), nil)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("ws: %w", err)
	}
	return newWSConn(ws, cfg), nil
}

// wsListener serves WebSocket upgrades and queues the links for Accept.
type wsListener struct {
	url      string
	path     string
	cfg      Config
	srv      *http.Server
	upgrader websocket.Upgrader
	in       *inbound
	serving  sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup // upgrades in progress; hijacked conns outlive http.Server.Close
}

var _ Listener = (*wsListener)(nil)

// listenWS binds ws://host:port/path; the path defaults to "/".
func listenWS(u *url.URL, cfg Config) (Listener, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("ws: missing host:port")
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("ws: %w", err)
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	l := &wsListener{
		url:  "ws://" + ln.Addr().String() + path,
		path: path,
		cfg:  cfg,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: cfg.HandshakeTimeout,
			Subprotocols:     []string{wsSubprotocol},
			ReadBufferSize:   wsBufferSize,
			WriteBufferSize:  wsBufferSize,
		},
		in: newInbound("ws " + ln.Addr().String()),
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: cfg.HandshakeTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	l.serving.Add(1)
	go func() {
		defer l.serving.Done()
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Warn("ws: serve failed", "listener", l.url, "err", err)
		}
	}()
	return l, nil
}

// ServeHTTP upgrades requests for the listener's path.
func (l *wsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != l.path {
		http.NotFound(w, r)
		return
	}
	if !l.enter() {
		http.Error(w, "listener closed", http.StatusServiceUnavailable)
		return
	}
	defer l.handlers.Done()
	ws, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered the client.
		l.cfg.Logger.Warn("ws: upgrade failed", "listener", l.url, "remote", r.RemoteAddr, "err", err)
		return
	}
	c := newWSConn(ws, l.cfg)
	c.release = func() { l.in.forget(c) }
	if !l.in.offer(c, true) {
		c.Close()
	}
}

// enter registers an upgrade in progress unless the listener is closing.
func (l *wsListener) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.handlers.Add(1)
	return true
}

func (l *wsListener) Accept() (Conn, error) { return l.in.accept() }

func (l *wsListener) URL() string { return l.url }

// Close stops the HTTP server and closes the links accepted through l.
func (l *wsListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.in.close()
	err := l.srv.Close()
	l.handlers.Wait()
	l.serving.Wait()
	if err != nil {
		return fmt.Errorf("%s: close: %w", l.url, err)
	}
	return nil
}
