package broker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/overlay"
)

// leafConn is one leafnode connection to the core: the embedded nats-server,
// or an external nats-server attached as a leaf. The core is the hub: it
// learns the leaf's subscriptions from LS+/LS-, tells it which subjects the
// rest of the network wants, and exchanges LMSG/HMSG with it.
type leafConn struct {
	b        *Broker
	id       uint64
	conn     net.Conn
	name     atomic.Pointer[string]      // the leaf's server name, once it has sent CONNECT (read by other goroutines)
	log      atomic.Pointer[slog.Logger] // named by the leaf once it has sent CONNECT (read by other goroutines)
	external bool                        // attached on the leaf port, not the embedded server's
	core     bool                        // the embedded server, proven by its signature
	nonce    string                      // sent in INFO, signed by the embedded server
	// lastRead is when the reader last finished with its input (unix
	// ns); lastPing when the leaf was last pinged for being idle (guarded
	// by b.mu).
	lastRead atomic.Int64
	lastPing time.Time
	// signedIn gives back the connection's place among those waiting to
	// sign in (see admission).
	signedIn func()

	holder holder         // its interest; guarded by b.mu
	adv    map[string]int // interest advertised to it, by entry key, with holder counts; guarded by b.mu

	out *sendq.Queue
	// The writer's spare buffers, guarded by out's writer lock: the
	// writer goroutine and the feeders that send in its place
	// (sendq.Queue.SetDirect) take into them.
	wctrl, wdata []byte
	cache        matchCache // owned by the reader goroutine
	plan         plan       // owned by the reader goroutine

	msgsIn  atomic.Uint64
	msgsOut atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
}

// kickEvery is how many messages a reader handles before it wakes the
// writers it fed, even while more input is waiting.
const kickEvery = 256

// leafReadBuffer is the size of the buffered reader on a leaf connection;
// control lines longer than this are a protocol error.
const leafReadBuffer = 256 << 10

func (b *Broker) serveLeaf(conn net.Conn, id uint64, external bool, signedIn func()) {
	l := &leafConn{
		b:        b,
		id:       id,
		conn:     conn,
		external: external,
		nonce:    newNonce(),
		adv:      make(map[string]int),
		out:      sendq.New(b.cfg.LeafQueueBytes),
		done:     make(chan struct{}),
	}
	remote := conn.RemoteAddr().String()
	l.name.Store(&remote)
	l.out.SetDirect(l.sendDirect)
	l.plan.streams = newStreams()
	l.lastRead.Store(time.Now().UnixNano())
	l.signedIn = signedIn
	defer signedIn() // gives the connection's place back, if CONNECT did not
	l.holder.leaf = l
	l.log.Store(b.log.With(slog.String("leaf", l.Name())))
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = conn.Close()
		return
	}
	b.leaves[l] = struct{}{}
	b.mu.Unlock()
	b.wg.Go(l.writeLoop)
	err := l.readLoop()
	l.close()
	switch {
	case errors.Is(err, errLeafAuth):
		// Anyone who reaches the port can cause this: logged sparingly.
		if missed, ok := b.refusals.allow(time.Now()); ok {
			l.logger().Warn("leaf refused", slog.Any("err", err), slog.String("remote", conn.RemoteAddr().String()), slog.Uint64("not_logged_since", missed))
		}
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
		l.logger().Warn("leaf connection closed", slog.Any("err", err))
	default:
		l.logger().Debug("leaf connection closed")
	}
	b.mu.Lock()
	delete(b.leaves, l)
	if _, ok := b.interest.leaves[l]; ok {
		b.interest.removeLeaf(l)
		b.announceLocalLocked()
	}
	b.mu.Unlock()
}

// info is the hub's INFO. A non-zero client_id and an empty leafnode_urls
// tell the leaf it reached a leafnode port; "headers" enables HMSG; leaving
// out "compression" keeps the stream plain text. The cluster name lets the
// leaf recognise messages that came from this hub and not echo them back.
func (l *leafConn) info() []byte {
	host, port, _ := net.SplitHostPort(l.conn.LocalAddr().String())
	p, _ := strconv.Atoi(port)
	info := map[string]any{
		"nonce":         l.nonce,
		"auth_required": true,
		"server_id":     l.b.serverID,
		"server_name":   l.b.cfg.Address,
		"version":       "2.15.2",
		"proto":         1,
		"go":            runtime.Version(),
		"host":          host,
		"port":          p,
		"headers":       true,
		"max_payload":   l.b.cfg.MaxPayload,
		"client_id":     l.id,
		"leafnode_urls": []string{},
		"cluster":       "wayline-" + l.b.cfg.Address,
	}
	js, _ := json.Marshal(info)
	return fmt.Appendf(nil, "INFO %s\r\n", js)
}

func (l *leafConn) readLoop() error {
	l.out.AddCtrl(func(b []byte) []byte { return append(b, l.info()...) })
	_ = l.conn.SetReadDeadline(time.Now().Add(leafConnectTimeout))
	r := bufio.NewReaderSize(l.conn, leafConnectBuffer)
	var (
		args      [][]byte
		lm        leafMsg
		m         overlay.Message
		line      []byte
		connected bool
	)
	var lsDirty bool
	batch := 0
	for {
		if r.Buffered() == 0 || batch >= kickEvery {
			// The input at hand is handled: wake the writers it fed, and
			// announce a burst of subscriptions in one delta.
			l.plan.kick.FlushDirect()
			l.lastRead.Store(time.Now().UnixNano())
			batch = 0
			if lsDirty && r.Buffered() == 0 {
				l.b.flushLocalInterest()
				lsDirty = false
			}
		}
		raw, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return fmt.Errorf("%w: control line over %d bytes", errLeafProto, r.Size())
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("%w: no CONNECT within %v", errLeafAuth, leafConnectTimeout)
			}
			return err
		}
		line = append(line[:0], trimCRLF(raw)...)
		op, rest := leafOp(line)
		if !connected && op != opConnect && op != opPing && op != opPong {
			return fmt.Errorf("%w: %q before CONNECT", errLeafProto, firstWord(line))
		}
		switch op {
		case opLMSG, opHMSG:
			args = splitArgs(args, rest)
			if err := parseMsgArgs(&lm, args, op == opHMSG); err != nil {
				return err
			}
			if lm.size > l.b.cfg.MaxPayload {
				return fmt.Errorf("%w: message of %d bytes over the %d limit", errLeafProto, lm.size, l.b.cfg.MaxPayload)
			}
			data, err := readPayload(r, lm.size)
			if err != nil {
				return err
			}
			l.msgsIn.Add(1)
			batch++
			m.Subject, m.Reply, m.Data = lm.subject, lm.reply, data
			m.HasHdr, m.HdrLen = lm.hdr >= 0, max(lm.hdr, 0)
			l.b.fromLeaf(l, &m, lm.queues)
		case opLSAdd, opLSDel:
			subject, queue, weight, err := parseLS(splitArgs(args, rest), op == opLSAdd)
			if err != nil {
				return err
			}
			if !localOnly(subject) {
				l.b.mu.Lock()
				l.b.interest.set(&l.holder, subject, queue, weight)
				l.b.mu.Unlock()
				lsDirty = true
			}
		case opPing:
			l.out.AddCtrl(func(b []byte) []byte { return append(b, "PONG\r\n"...) })
		case opConnect:
			if connected {
				return fmt.Errorf("%w: second CONNECT", errLeafProto)
			}
			if err := l.connect(rest); err != nil {
				// Straight to the socket: the connection closes next. A
				// Write is never interleaved with the writer's.
				_ = l.conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = l.conn.Write([]byte("-ERR 'Authorization Violation'\r\n"))
				return err
			}
			connected = true
			l.signedIn()
			_ = l.conn.SetReadDeadline(time.Time{})
			r = growReader(r, l.conn)
		case opErr:
			l.logger().Warn("leaf reported an error", slog.String("err", string(rest)))
		case opPong, opInfo, opOK:
		default:
			l.out.AddCtrl(func(b []byte) []byte { return append(b, "-ERR 'Unknown Protocol Operation'\r\n"...) })
			return fmt.Errorf("%w: unknown operation %q", errLeafProto, firstWord(line))
		}
	}
}

// Name is the leaf's server name, or its remote address before it has
// sent CONNECT with one.
func (l *leafConn) Name() string {
	if p := l.name.Load(); p != nil {
		return *p
	}
	return ""
}

// logger is the leaf's logger; the broker's for a leaf made without one
// (tests).
func (l *leafConn) logger() *slog.Logger {
	if lg := l.log.Load(); lg != nil {
		return lg
	}
	if l.b != nil {
		return l.b.log
	}
	return slog.Default()
}

// connect checks the leaf's credentials and registers it.
func (l *leafConn) connect(js []byte) error {
	var c connectInfo
	if err := json.Unmarshal(js, &c); err != nil {
		return fmt.Errorf("%w: CONNECT: %w", errLeafProto, err)
	}
	core, err := l.authorize(c)
	if err != nil {
		l.b.stats.refusedLeaves.Add(1)
		return err
	}
	l.core = core
	if c.Name != "" {
		l.name.Store(&c.Name)
		l.log.Store(l.b.log.With(slog.String("leaf", c.Name)))
	}
	l.logger().Debug("leaf attached", slog.String("remote", l.conn.RemoteAddr().String()), slog.Bool("core", core))
	l.b.mu.Lock()
	l.b.interest.addLeaf(l)
	l.b.mu.Unlock()
	if core {
		l.b.leafOnce.Do(func() { close(l.b.leafReady) })
	}
	return nil
}

// growReader gives a leaf that signed in the full read buffer, keeping
// what the small one had read ahead.
func growReader(small *bufio.Reader, conn net.Conn) *bufio.Reader {
	ahead, _ := small.Peek(small.Buffered())
	var src io.Reader = conn
	if len(ahead) > 0 {
		src = io.MultiReader(bytes.NewReader(append([]byte(nil), ahead...)), conn)
	}
	return bufio.NewReaderSize(src, leafReadBuffer)
}

// readPayload returns the next size bytes and the CRLF after them. The slice
// is valid until the next read.
func readPayload(r *bufio.Reader, size int) ([]byte, error) {
	var data []byte
	if size+2 <= r.Size() {
		p, err := r.Peek(size + 2)
		if err != nil {
			return nil, err
		}
		data = p
		_, _ = r.Discard(size + 2)
	} else {
		data = make([]byte, size+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
	}
	if data[size] != '\r' || data[size+1] != '\n' {
		return nil, fmt.Errorf("%w: payload not followed by CRLF", errLeafProto)
	}
	return data[:size], nil
}

func trimCRLF(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

func firstWord(line []byte) string {
	if len(line) > 16 {
		line = line[:16]
	}
	return string(line)
}

// advertise counts one more (or one fewer) holder of an entry that this
// leaf must forward messages for, and tells the leaf on the first and the
// last. Called with b.mu held.
func (l *leafConn) advertise(subject, queue string, delta int) {
	key := entryKey(subject, queue)
	n := l.adv[key] + delta
	switch {
	case n <= 0:
		delete(l.adv, key)
		if n == 0 && delta < 0 {
			l.out.AddCtrl(func(b []byte) []byte { return appendLS(b, false, subject, queue) })
		}
	case n == 1 && delta > 0:
		l.adv[key] = n
		l.out.AddCtrl(func(b []byte) []byte { return appendLS(b, true, subject, queue) })
	default:
		l.adv[key] = n
	}
}

// deliver queues a message for the leaf, for its plain subscribers and the
// given queue groups; k wakes the writer once the caller's batch is done.
func (l *leafConn) deliver(m *overlay.Message, queues [][]byte, k *sendq.Kicker) {
	if l.out.Add(func(b []byte) []byte { return appendLeafMsg(b, m, queues) }) {
		l.msgsOut.Add(1)
		k.Add(l.out)
	} else {
		l.b.noteDrop("leaf", l.Name(), "leaf send queue full")
	}
}

// leafWriteTimeout bounds one write to a leaf; a leaf that takes longer is
// cut off and reconnects.
const leafWriteTimeout = 10 * time.Second

func (l *leafConn) writeLoop() {
	for {
		select {
		case <-l.out.Kick():
		case <-l.done:
			return
		}
		l.out.LockWriter()
		err := l.sendTaken()
		l.out.UnlockWriter()
		if err != nil {
			l.logger().Warn("write to leaf failed", slog.Any("err", err))
			l.close()
			return
		}
	}
}

// sendDirect sends what waits in the writer's place (sendq.Queue.SetDirect).
// A leaf reads what the core sends without waiting on anything else (the
// embedded server queues for its slow clients rather than stop reading),
// and a write that does wait is cut off by leafWriteTimeout, which closes
// the connection, as the writer's would.
func (l *leafConn) sendDirect() bool {
	if err := l.sendTaken(); err != nil {
		l.logger().Warn("write to leaf failed", slog.Any("err", err))
		l.close()
	}
	return true
}

// sendTaken takes what waits and writes it, holding the writer lock.
func (l *leafConn) sendTaken() error {
	l.wctrl, l.wdata = l.out.Take(l.wctrl, l.wdata, true)
	if len(l.wctrl)+len(l.wdata) == 0 {
		return nil
	}
	_ = l.conn.SetWriteDeadline(time.Now().Add(leafWriteTimeout))
	bufs := net.Buffers{l.wctrl, l.wdata}
	_, err := bufs.WriteTo(l.conn)
	return err
}

func (l *leafConn) close() {
	l.closeOnce.Do(func() {
		close(l.done)
		l.out.Close()
		_ = l.conn.Close()
	})
}
