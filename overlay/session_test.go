package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/transports"
)

// Sessions wired back to back over real connections: mem (reliable) and
// udp on the loopback (lossy). The peer is either another session or the
// test itself, speaking records on the raw connection.

// recorder is a Handler that keeps what its session hands it.
type recorder struct {
	mu       sync.Mutex
	msgs     []string // each message's payload, in order
	controls []string // each sync request's origin, in order
	probes   []string
	flushes  int
}

var _ Handler = (*recorder)(nil)

func (r *recorder) Message(m *Message, _ []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, string(m.Data))
}

func (r *recorder) Control(t RecordType, body []byte) error {
	if t != RecSyncReq {
		return fmt.Errorf("%w: unexpected %s", ErrBadRecord, t)
	}
	origin, err := DecodeStrRecord(body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.controls = append(r.controls, origin)
	return nil
}

func (r *recorder) Probe(body []byte, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.probes = append(r.probes, string(body))
}

func (r *recorder) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushes++
}

func (r *recorder) Discarded(string) {}

// got returns copies of what the recorder kept.
func (r *recorder) got() (msgs, controls, probes []string, flushes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs), slices.Clone(r.controls), slices.Clone(r.probes), r.flushes
}

// end is one side of a link under test.
type end struct {
	s   *Session
	h   *recorder
	c   *Counters
	ran chan error // what Run returned
}

func testConfig(c *Counters) Config {
	return Config{
		Logger:    slog.New(slog.DiscardHandler),
		Keepalive: 50 * time.Millisecond, DeadAfter: 5 * time.Second,
		QueueBytes: 1 << 20, RetainBytes: 1 << 20, RetainAge: time.Minute,
		MaxFrame: transports.DefaultMaxFrame, Counters: c,
	}
}

// start runs a session on conn until the test ends.
func start(t *testing.T, conn transports.Conn, cfg Config) *end {
	t.Helper()
	e := &end{h: &recorder{}, c: cfg.Counters, ran: make(chan error, 1)}
	e.s = NewSession(conn, cfg, e.h)
	go func() { e.ran <- e.s.Run() }()
	t.Cleanup(func() {
		e.s.Close()
		e.wait(t)
	})
	return e
}

// wait returns what Run returned, failing t if it does not end.
func (e *end) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-e.ran:
		e.ran <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
		return nil
	}
}

// connPair opens a link on the transport of listenURL and returns both
// ends; it checks, once the test is over, that no goroutine of it is left.
func connPair(t *testing.T, listenURL string) (dialed, accepted transports.Conn) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		testutil.WaitFor(t, fmt.Sprintf("goroutines back to %d", before), 10*time.Second, func() bool {
			return runtime.NumGoroutine() <= before
		})
	})
	ln, err := transports.Listen(listenURL, transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted1 := make(chan transports.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted1 <- c
	}()
	dialed, err = transports.Dial(context.Background(), ln.URL(), transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialed.Close() })
	// udp accepts a link on its first frame.
	if _, err := dialed.Send(AppendU64Record(nil, RecPong, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case accepted = <-accepted1:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing accepted")
	}
	if accepted == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { accepted.Close() })
	return dialed, accepted
}

func listenURL(t *testing.T, scheme string) string {
	if scheme == "mem" {
		return "mem://overlay-" + t.Name()
	}
	return scheme + "://127.0.0.1:0"
}

// sendMsgs queues messages whose payloads are the numbers from..to-1, and
// wakes the writer.
func sendMsgs(t *testing.T, s *Session, from, to int) {
	t.Helper()
	queueMsgs(t, s, from, to).Flush()
}

// queueMsgs queues messages whose payloads are the numbers from..to-1,
// and returns the kicker that wakes the writer.
func queueMsgs(t *testing.T, s *Session, from, to int) *sendq.Kicker {
	t.Helper()
	var k sendq.Kicker
	for i := from; i < to; i++ {
		m := &Message{Origin: []byte("na.a"), Seq: uint64(i), Subject: []byte("s"), Data: []byte(strconv.Itoa(i))}
		if ok, _ := s.Send(sendq.Normal, func(b []byte) []byte { return AppendMsg(b, m, 5, []Dest{{Broker: []byte("na.b")}}) }, &k); !ok {
			t.Fatalf("message %d refused", i)
		}
	}
	return &k
}

func numbers(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// TestSessionRecordsCross: messages, control records and probes sent by
// one session reach the other, each kind in order, and the receiver's
// acknowledgements free everything the sender kept.
func TestSessionRecordsCross(t *testing.T) {
	for _, scheme := range []string{"mem", "udp"} {
		t.Run(scheme, func(t *testing.T) {
			ca, cb := connPair(t, listenURL(t, scheme))
			a := start(t, ca, testConfig(&Counters{}))
			b := start(t, cb, testConfig(&Counters{}))
			const n = 300
			for i := 0; i < n; i += 50 {
				sendMsgs(t, a.s, i, i+50)
				a.s.SendControl(func(buf []byte) []byte { return AppendStrRecord(buf, RecSyncReq, "c"+strconv.Itoa(i)) })
			}
			a.s.SendProbe([]byte("probe"))
			testutil.WaitFor(t, "everything at b", 10*time.Second, func() bool {
				msgs, controls, probes, _ := b.h.got()
				return len(msgs) == n && len(controls) == n/50 && len(probes) == 1
			})
			msgs, controls, probes, flushes := b.h.got()
			if !slices.Equal(msgs, numbers(0, n)) {
				t.Fatalf("messages out of order: %v", msgs)
			}
			if want := []string{"c0", "c50", "c100", "c150", "c200", "c250"}; !slices.Equal(controls, want) || probes[0] != "probe" {
				t.Fatalf("control records %v, probe %q", controls, probes[0])
			}
			if flushes == 0 {
				t.Fatal("the handler was never flushed")
			}
			if a.c.MsgsSent.Load() != n || b.c.MsgsRecv.Load() != n || a.c.BytesSent.Load() == 0 || b.c.BytesRecv.Load() == 0 {
				t.Fatalf("counted %d sent, %d received, %d bytes sent, %d received",
					a.c.MsgsSent.Load(), b.c.MsgsRecv.Load(), a.c.BytesSent.Load(), b.c.BytesRecv.Load())
			}
			testutil.WaitFor(t, "acknowledgements to free what a kept", 5*time.Second, func() bool { return a.s.kept.held() == 0 })
			if recs := a.s.Unacknowledged(); len(recs) != 0 {
				t.Fatalf("%d records unacknowledged after every acknowledgement", CountRecords(recs))
			}
		})
	}
}

// TestSessionLossyKeepsOrder: over a lossy link that loses a fifth of the
// frames one way, control records all arrive, in order; messages arrive in
// order, and every one that does not is counted lost by the receiver.
func TestSessionLossyKeepsOrder(t *testing.T) {
	ca, cb := connPair(t, listenURL(t, "udp"))
	a := start(t, ca, testConfig(&Counters{}))
	b := start(t, cb, testConfig(&Counters{}))
	if err := a.s.Emulate(transports.Emulation{Loss: 0.2}); err != nil {
		t.Fatal(err)
	}
	const batches, per = 50, 10
	var want []string
	for i := range batches {
		sendMsgs(t, a.s, i*per, (i+1)*per)
		origin := "c" + strconv.Itoa(i)
		want = append(want, origin)
		a.s.SendControl(func(buf []byte) []byte { return AppendStrRecord(buf, RecSyncReq, origin) })
		time.Sleep(2 * time.Millisecond) // a frame or so per batch
	}
	// Without loss, one last message shows where the stream ends.
	if err := a.s.Emulate(transports.Emulation{}); err != nil {
		t.Fatal(err)
	}
	const total = batches*per + 1
	sendMsgs(t, a.s, total-1, total)
	testutil.WaitFor(t, "the last message and every control record at b", 10*time.Second, func() bool {
		msgs, controls, _, _ := b.h.got()
		return len(msgs) > 0 && msgs[len(msgs)-1] == strconv.Itoa(total-1) && len(controls) == batches
	})
	msgs, controls, _, _ := b.h.got()
	if !slices.Equal(controls, want) {
		t.Fatalf("control records %v, want %v", controls, want)
	}
	last := -1
	for _, m := range msgs {
		i, _ := strconv.Atoi(m)
		if i <= last {
			t.Fatalf("message %d after %d", i, last)
		}
		last = i
	}
	lost := b.c.Drops.ByReason()["lost_in_transit"]
	if lost == 0 || uint64(len(msgs))+lost != total {
		t.Fatalf("%d received and %d counted lost of %d sent", len(msgs), lost, total)
	}
	testutil.WaitFor(t, "acknowledgements to free what a kept", 5*time.Second, func() bool { return a.s.kept.held() == 0 })
}

// TestSessionLossyCountsTheTail: when the last frames a lossy link sends
// are lost, with nothing sent after them, the receiver still counts them
// lost (the sender's tail mark shows where the stream ends), and the
// sender's window empties.
func TestSessionLossyCountsTheTail(t *testing.T) {
	ca, cb := connPair(t, listenURL(t, "udp"))
	a := start(t, ca, testConfig(&Counters{}))
	b := start(t, cb, testConfig(&Counters{}))
	sendMsgs(t, a.s, 0, 5)
	testutil.WaitFor(t, "the first five messages at b", 5*time.Second, func() bool {
		msgs, _, _, _ := b.h.got()
		return len(msgs) == 5
	})
	if err := a.s.Emulate(transports.Emulation{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	sendMsgs(t, a.s, 5, 15)
	time.Sleep(100 * time.Millisecond) // sent, and lost
	if err := a.s.Emulate(transports.Emulation{}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the ten lost messages counted at b", 5*time.Second, func() bool {
		return b.c.Drops.ByReason()["lost_in_transit"] == 10
	})
	testutil.WaitFor(t, "acknowledgements to free what a kept", 5*time.Second, func() bool { return a.s.kept.held() == 0 })
	if msgs, _, _, _ := b.h.got(); len(msgs) != 5 {
		t.Errorf("b has %d messages, want the first 5", len(msgs))
	}
}

// rawPeer reads the records a session sends on conn, answering nothing.
type rawPeer struct {
	conn transports.Conn
	recs chan recorded
}

type recorded struct {
	t    RecordType
	body []byte
}

func newRawPeer(conn transports.Conn) *rawPeer {
	p := &rawPeer{conn: conn, recs: make(chan recorded, 4096)}
	go func() {
		for {
			f, err := conn.Receive()
			if err != nil {
				close(p.recs)
				return
			}
			_ = EachRecord(f.Data, func(t RecordType, body []byte) error {
				p.recs <- recorded{t, slices.Clone(body)}
				return nil
			})
		}
	}()
	return p
}

// next returns the next record of type t, skipping others.
func (p *rawPeer) next(t *testing.T, typ RecordType) recorded {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r, ok := <-p.recs:
			if !ok {
				t.Fatalf("connection closed before a %s record", typ)
			}
			if r.t == typ {
				return r
			}
		case <-timeout:
			t.Fatalf("no %s record", typ)
		}
	}
}

// ackThenLeave has a send messages 1 to n to the raw peer on cb, which
// reads them, acknowledges the first acked, waits for a's pong to know a
// has read the acknowledgement, and goes away; it returns when a's
// session has ended.
func ackThenLeave(t *testing.T, a *end, cb transports.Conn, peer *rawPeer, n, acked int) {
	t.Helper()
	sendMsgs(t, a.s, 1, n+1)
	for range n {
		peer.next(t, RecMsg)
	}
	if _, err := cb.Send(append(AppendU64Record(nil, RecDataAck, uint64(acked)), AppendU64Record(nil, RecPing, 7)...)); err != nil {
		t.Fatal(err)
	}
	peer.next(t, RecPong)
	cb.Close()
	if err := a.wait(t); err == nil {
		t.Fatal("the session ended without a reason")
	}
}

// handedBack is the data of the messages s hands back, in order.
func handedBack(t *testing.T, s *Session) []string {
	t.Helper()
	var got []string
	if err := EachRecord(s.Unacknowledged(), func(_ RecordType, body []byte) error {
		var m Message
		err := m.Decode(body)
		got = append(got, string(m.Data))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSessionHandsBackUnacknowledged: a session whose peer acknowledged
// some of its messages and then went away hands back the others, and
// what was still queued, in order; once retired it refuses messages, and
// counts those that came in between as dropped with the link down.
func TestSessionHandsBackUnacknowledged(t *testing.T) {
	ca, cb := connPair(t, listenURL(t, "mem"))
	a := start(t, ca, testConfig(&Counters{}))
	peer := newRawPeer(cb)
	// The peer acknowledges four of ten and goes away.
	ackThenLeave(t, a, cb, peer, 10, 4)
	// Queued after the end, before the owner takes what is left.
	sendMsgs(t, a.s, 11, 13)
	if got, want := handedBack(t, a.s), numbers(5, 13); !slices.Equal(got, want) {
		t.Fatalf("handed back %v, want %v", got, want)
	}
	sendMsgs(t, a.s, 13, 14)
	a.s.Retire()
	var k sendq.Kicker
	if ok, _ := a.s.Send(sendq.Normal, func(b []byte) []byte { return b }, &k); ok {
		t.Fatal("a retired session took a message")
	}
	if d := a.c.Drops.ByReason()["link_down"]; d != 1 {
		t.Fatalf("%d counted dropped with the link down, want 1", d)
	}
}

// slowSend is a conn whose sends return a while after the frame left.
type slowSend struct {
	transports.Conn
	after time.Duration
}

func (c slowSend) Send(frame []byte) (time.Time, error) {
	at, err := c.Conn.Send(frame)
	time.Sleep(c.after)
	return at, err
}

// TestSessionAckDuringSend: a peer may acknowledge messages before the
// send that carried them has returned; the acknowledgement counts, and a
// session that ends then has nothing to hand back.
func TestSessionAckDuringSend(t *testing.T) {
	ca, cb := connPair(t, listenURL(t, "mem"))
	a := start(t, slowSend{ca, 200 * time.Millisecond}, testConfig(&Counters{}))
	peer := newRawPeer(cb)
	ackThenLeave(t, a, cb, peer, 10, 10)
	if recs := a.s.Unacknowledged(); len(recs) != 0 {
		t.Fatalf("%d acknowledged records handed back", CountRecords(recs))
	}
}

// failSend is a conn whose sends all fail.
type failSend struct{ transports.Conn }

func (failSend) Send([]byte) (time.Time, error) { return time.Time{}, errors.New("broken pipe") }

// TestSessionSendFails: messages whose send failed are handed back with
// the rest when the session ends, not lost.
func TestSessionSendFails(t *testing.T) {
	ca, _ := connPair(t, listenURL(t, "mem"))
	a := start(t, failSend{ca}, testConfig(&Counters{}))
	sendMsgs(t, a.s, 1, 11)
	if err := a.wait(t); err == nil {
		t.Fatal("the session ended without a reason")
	}
	if got, want := handedBack(t, a.s), numbers(1, 11); !slices.Equal(got, want) {
		t.Fatalf("handed back %v, want %v", got, want)
	}
}

// TestSessionControlSendFails: messages taken with control records whose
// send failed are handed back too (they were once taken and neither sent
// nor kept).
func TestSessionControlSendFails(t *testing.T) {
	ca, _ := connPair(t, listenURL(t, "mem"))
	s := NewSession(failSend{ca}, testConfig(&Counters{}), &recorder{})
	s.SendControl(func(b []byte) []byte { return AppendU64Record(b, RecPing, 1) })
	sendMsgs(t, s, 1, 11) // taken with the ping at the writer's first wake
	ran := make(chan error, 1)
	go func() { ran <- s.Run() }()
	select {
	case err := <-ran:
		if err == nil {
			t.Fatal("the session ended without a reason")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}
	if got, want := handedBack(t, s), numbers(1, 11); !slices.Equal(got, want) {
		t.Fatalf("handed back %v, want %v", got, want)
	}
}

// stuckSend is a conn whose sends wait until it is closed, as a quic
// stream's writes wait through an outage for a congestion window.
type stuckSend struct {
	transports.Conn
	closed chan struct{}
	once   *sync.Once
}

func newStuckSend(c transports.Conn) stuckSend {
	return stuckSend{c, make(chan struct{}), &sync.Once{}}
}

func (c stuckSend) Send([]byte) (time.Time, error) {
	<-c.closed
	return time.Time{}, net.ErrClosed
}

func (c stuckSend) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestSessionSilentWhileSendWaits: a peer that falls silent ends the
// session after DeadAfter even while a send waits on the connection, and
// neither an out-of-band record nor a goodbye waits with it.
func TestSessionSilentWhileSendWaits(t *testing.T) {
	t.Run("silent", testSilentWhileSendWaits)
	t.Run("goodbye", testByeWhileSendWaits)
}

func testSilentWhileSendWaits(t *testing.T) {
	ca, cb := connPair(t, listenURL(t, "mem"))
	cfg := testConfig(&Counters{})
	cfg.DeadAfter = 300 * time.Millisecond
	begin := time.Now()
	a := start(t, newStuckSend(ca), cfg)
	newRawPeer(cb)
	sendMsgs(t, a.s, 1, 3) // the writer waits in its send
	oob := time.Now()
	a.s.SendOutOfBand(AppendRecord(nil, RecPing, nil))
	a.s.SendOutOfBand(AppendRecord(nil, RecPing, nil))
	if d := time.Since(oob); d > 100*time.Millisecond {
		t.Errorf("SendOutOfBand waited %v on a send that cannot go", d)
	}
	a.wait(t)
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("a session silent for DeadAfter %v ended after %v", cfg.DeadAfter, d)
	}
}

func testByeWhileSendWaits(t *testing.T) {
	cc, cd := connPair(t, listenURL(t, "mem"))
	b := start(t, newStuckSend(cc), testConfig(&Counters{}))
	newRawPeer(cd)
	bye := time.Now()
	b.s.Bye()
	if d := time.Since(bye); d > byeWait+time.Second {
		t.Errorf("Bye took %v on a connection that takes nothing", d)
	}
	b.wait(t)
}

// TestSessionEnds: why a session ends, as Run says it.
func TestSessionEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		peer []byte // what the peer sends; nil: nothing at all
		want error
	}{
		{"goodbye", AppendRecord(nil, RecBye, nil), ErrBye},
		{"malformed record", AppendRecord(nil, RecMsg, []byte{1, 2, 3}), ErrBadRecord},
		{"unknown record", AppendRecord(nil, 99, nil), ErrBadRecord},
		{"envelope on a reliable link", appendCtl(nil, 1, AppendStrRecord(nil, RecSyncReq, "x")), ErrBadRecord},
		{"refusal", AppendStrRecord(nil, RecRefuse, "no"), linkauth.ErrRefused},
		{"silence", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := connPair(t, listenURL(t, "mem"))
			cfg := testConfig(&Counters{})
			cfg.DeadAfter = 300 * time.Millisecond
			begin := time.Now()
			a := start(t, ca, cfg)
			newRawPeer(cb)
			if tc.peer != nil {
				if _, err := cb.Send(tc.peer); err != nil {
					t.Fatal(err)
				}
			}
			err := a.wait(t)
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("ended with %v, want %v", err, tc.want)
			case tc.want == nil && time.Since(begin) < cfg.DeadAfter:
				t.Fatalf("ended after %v of silence, before %v: %v", time.Since(begin), cfg.DeadAfter, err)
			}
			bad := uint64(0)
			if errors.Is(tc.want, ErrBadRecord) || errors.Is(tc.want, linkauth.ErrRefused) {
				bad = 1
			}
			if got := a.c.BadFrames.Load(); got != bad {
				t.Fatalf("%d bad frames counted, want %d", got, bad)
			}
		})
	}
}

// TestSessionPaced: a session with a rate sends its messages no faster
// than it, nor much slower, and all of them, in order.
func TestSessionPaced(t *testing.T) {
	ca, cb := connPair(t, listenURL(t, "mem"))
	cfg := testConfig(&Counters{})
	cfg.Rate = 20_000 // bytes a second
	a := start(t, ca, cfg)
	b := start(t, cb, testConfig(&Counters{}))
	const n = 400
	start := time.Now()
	sendMsgs(t, a.s, 0, n)
	testutil.WaitFor(t, "every message at b", 20*time.Second, func() bool {
		msgs, _, _, _ := b.h.got()
		return len(msgs) == n
	})
	took := time.Since(start)
	if msgs, _, _, _ := b.h.got(); !slices.Equal(msgs, numbers(0, n)) {
		t.Fatalf("messages out of order: %v", msgs)
	}
	// What was sent, less what the first take (at most a quantum) could
	// send at once.
	bytes := float64(b.c.BytesRecv.Load())
	if want := time.Duration((bytes - float64(sendq.MinQuantum)) / float64(cfg.Rate) * float64(time.Second)); took < want || took < 200*time.Millisecond {
		t.Fatalf("%.0f bytes in %v at %d bytes a second: faster than %v", bytes, took, cfg.Rate, want)
	}
	// Nor much slower: the timer's lateness is caught up (paceSlack).
	if ideal := time.Duration(bytes / float64(cfg.Rate) * float64(time.Second)); took > 3*ideal {
		t.Fatalf("%.0f bytes in %v at %d bytes a second: more than thrice the %v the rate allows", bytes, took, cfg.Rate, ideal)
	}
}

// TestSessionDirectSend: a feeder that finds the writer idle sends in its
// place (sendq.Kicker.FlushDirect): the messages reach the peer with no
// writer goroutine running, and are kept until acknowledged; once more
// than directHeld is unacknowledged, the feeder wakes the writer instead
// and sends nothing itself.
func TestSessionDirectSend(t *testing.T) {
	ca, cb := connPair(t, listenURL(t, "mem"))
	s := NewSession(ca, testConfig(&Counters{}), &recorder{}) // not run: no writer
	peer := newRawPeer(cb)
	queueMsgs(t, s, 1, 4).FlushDirect()
	for _, want := range numbers(1, 4) {
		var m Message
		if err := m.Decode(peer.next(t, RecMsg).body); err != nil || string(m.Data) != want {
			t.Fatalf("received %q (%v), want %s", m.Data, err, want)
		}
	}
	if held := s.kept.held(); held == 0 {
		t.Fatal("messages sent directly were not kept until acknowledged")
	}
	select {
	case <-s.out.Kick():
		t.Fatal("the writer was woken for messages a feeder sent")
	default:
	}
	s.kept.keep(AppendStrRecord(nil, RecMsg, strings.Repeat("x", directHeld)), time.Now())
	queueMsgs(t, s, 4, 5).FlushDirect()
	select {
	case <-s.out.Kick():
	case <-time.After(5 * time.Second):
		t.Fatal("past directHeld unacknowledged, the writer was not woken")
	}
	select {
	case r := <-peer.recs:
		t.Fatalf("past directHeld unacknowledged, the feeder sent a %s record itself", r.t)
	case <-time.After(100 * time.Millisecond):
	}
}
