package overlay

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/transports"
)

// Session is one connection carrying a link, from the end of its
// handshake (package linkauth) to its failure.
// It has one reader goroutine (readLoop, reader.go) and one writer
// goroutine (writeLoop, writer.go), both started and waited for by Run;
// everything else hands the writer records through out.
type Session struct {
	cfg   Config
	h     Handler
	log   *slog.Logger
	stats *Counters
	conn  transports.Conn // the connection as dialed or accepted
	// tx is what frames are sent through: conn itself, or an emulated
	// link around it when the link is emulated.
	tx       atomic.Pointer[txConn]
	info     transports.Info
	out      *sendq.Queue
	frameMax atomic.Int64 // set when the conn is wrapped for emulation, read by the writer
	lastRecv atomic.Int64 // unix ns of the last frame received
	rxTime   time.Time    // when the frame being handled arrived; reader only

	done       chan struct{}
	writerDone chan struct{}
	watchDone  chan struct{}
	closeOnce  sync.Once

	// The out-of-band record waiting to be sent, and whether a goroutine
	// is sending (SendOutOfBand).
	oobMu   sync.Mutex
	oobRec  []byte
	oobBusy bool

	// Owned by the reader.
	rcpt  receipts // message records received, for acknowledgements
	ackAt atomic.Bool
	msg   Message
	recv  *relRecv // nil on reliable transports

	send *relSend // nil on reliable transports
	// kept holds the message records sent until the peer acknowledges
	// them (retain.go). On a lossy transport, reseq puts the records
	// received back in order and lossy holds those waiting for the window
	// (sequence.go); both are nil on a reliable one.
	kept       *retainer
	reseq      *resequencer // the reader's
	lossy      *lossySender // the writer's
	lossyBuf   []byte       // the writer's
	tailMarked time.Time    // when the writer last sent a tail mark (writer.go)
	ackEcho    ackEcho      // the writer's
	// The writer's spare buffers and when it last sent, guarded by out's
	// writer lock: the writer goroutine and the feeders that send in its
	// place (sendq.Queue.SetDirect) take into them.
	wctrl, wdata []byte
	lastSend     time.Time
	// keepMu makes a take from out and the keeping of what it took one
	// step for Unacknowledged (sendTaken).
	keepMu sync.Mutex

	// dgram is the conn's unreliable path, which carries the link's
	// probes, or nil when it has none (see datagram.go).
	dgram         transports.DatagramConn
	datagramsDone chan struct{} // closed when the datagram reader ends
}

// Config is how a session runs.
type Config struct {
	// Logger is the link's: what the session logs, it logs there.
	Logger *slog.Logger
	// Keepalive is how often an idle session sends a ping; DeadAfter is
	// how long the peer may stay silent before the session ends. It must
	// be several Keepalives.
	Keepalive time.Duration
	DeadAfter time.Duration
	// QueueBytes bounds the message records waiting to be sent (see Send).
	QueueBytes int
	// RetainBytes and RetainAge bound the message records the session
	// keeps until the peer acknowledges them (retain.go).
	RetainBytes int
	RetainAge   time.Duration
	// MaxFrame is the largest frame the transport takes.
	MaxFrame int
	// Rate, when not 0, paces what the session sends (its frames, control
	// records included) to that many bytes a second, a take of
	// sendq.PacedTakeTime at a time: a link that cannot carry more then
	// queues in the session's queue, where priority classes are served,
	// rather than in buffers below it that serve everything first in,
	// first out.
	Rate int64
	// Counters is where the session counts; its owner keeps them across
	// sessions.
	Counters *Counters
}

// Handler is what a session hands what it receives to: its owner. The
// session's reader calls its methods one at a time, in the order the
// records arrive; where the transport has datagrams, the datagram reader
// also calls Probe and Discarded, concurrently with the reader.
type Handler interface {
	// Message takes a message record, decoded into m. m and body (the
	// record's body) alias the frame: they are valid until Message
	// returns.
	Message(m *Message, body []byte)
	// Control takes a control record (see RecordType.IsControl), RecBye
	// aside, which ends the session. An error ends the session: one that
	// wraps ErrBadRecord for a malformed record.
	Control(t RecordType, body []byte) error
	// Probe takes the body of a probe record, received at at.
	Probe(body []byte, at time.Time)
	// Flush is called once the records of a frame are handled, so that
	// the writers their handling fed are woken once per frame.
	Flush()
	// Discarded is told of a frame or datagram the session dropped and
	// counted without ending, for a log: reason says what it was.
	Discarded(reason string)
}

// Counters are what the sessions of one link count. Their owner keeps
// them across sessions (a link outlives its connections) and reads them
// at any time.
type Counters struct {
	MsgsSent  atomic.Uint64 // message records queued to be sent
	MsgsRecv  atomic.Uint64 // message records received
	BytesSent atomic.Uint64
	BytesRecv atomic.Uint64
	// Drops are the messages dropped on their way over the link, by
	// reason (drops.go).
	Drops Drops
	// Unprotected counts the message records that fell out of what a
	// session keeps for failover before they were acknowledged.
	Unprotected atomic.Uint64
	// BadFrames counts frames and datagrams refused as malformed, and
	// ForgedFrames those that failed authentication.
	BadFrames    atomic.Uint64
	ForgedFrames atomic.Uint64
}

// txConn holds the Conn a session sends through.
type txConn struct{ transports.Conn }

// ErrBye ends a session whose peer said goodbye.
var ErrBye = errors.New("peer closed the link")

// defaultFrame is the frame size used to batch records on transports
// without a preference: large enough to amortise per-frame costs, small
// enough to keep latency low behind a batch.
const defaultFrame = 64 << 10

// NewSession prepares a session on conn, a connection whose peer is
// authenticated; nothing is read or sent until Run.
func NewSession(conn transports.Conn, cfg Config, h Handler) *Session {
	info := conn.Info()
	s := &Session{
		cfg:        cfg,
		h:          h,
		log:        cfg.Logger,
		stats:      cfg.Counters,
		conn:       conn,
		info:       info,
		out:        sendq.New(cfg.QueueBytes),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		watchDone:  make(chan struct{}),

		datagramsDone: make(chan struct{}),
	}
	if cfg.Rate > 0 {
		s.out.TakeAtRate(cfg.Rate)
	}
	if info.Reliable && !info.Paced && cfg.Rate == 0 {
		s.out.SetDirect(s.sendDirect)
	}
	s.dgram, _ = conn.(transports.DatagramConn)
	frameMax := min(defaultFrame, cfg.MaxFrame)
	if info.FrameHint > 0 {
		frameMax = min(frameMax, info.FrameHint)
	}
	s.frameMax.Store(int64(frameMax))
	s.kept = newRetainer(cfg.RetainBytes, cfg.RetainAge, &cfg.Counters.Unprotected)
	if !info.Reliable {
		s.recv = newRelRecv()
		s.send = &relSend{next: 1}
		s.reseq = newResequencer()
		s.lossy = &lossySender{}
	}
	s.tx.Store(&txConn{conn})
	s.lastRecv.Store(time.Now().UnixNano())
	return s
}

// Run serves the session until it ends: the connection fails, the peer
// says goodbye (ErrBye), falls silent for DeadAfter or sends a malformed
// record, or Close is called. It returns once the session's goroutines
// have ended, with the reader's reason. What the session did not deliver
// stays in it for its owner to take (Unacknowledged).
func (s *Session) Run() error {
	go s.writeLoop()
	go s.watchSilence()
	s.startDatagrams()
	err := s.readLoop()
	s.Close()
	<-s.writerDone
	<-s.watchDone
	<-s.datagramsDone
	return err
}

// watchSilence closes the session once the peer has sent nothing for
// DeadAfter. It is a goroutine of its own, not the writer's business: a
// writer can wait in a send for as long as the connection lets it (a quic
// stream's write waits for a congestion window that an outage never
// opens), and a dead peer must not keep the link up that long.
func (s *Session) watchSilence() {
	defer close(s.watchDone)
	tick := time.NewTicker(min(s.cfg.Keepalive, s.cfg.DeadAfter/2))
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-tick.C:
			if silent := s.Silence(now); silent > s.cfg.DeadAfter {
				s.log.Warn("peer silent; link declared down", slog.Duration("silent", silent))
				s.Close()
				return
			}
		}
	}
}

// Info describes the connection.
func (s *Session) Info() transports.Info { return s.info }

// Emulate gives what this side sends the emulated conditions e: the
// transport's own packets when it can emulate them, so that its recovery
// is what the link sees; otherwise the frames, wrapping the connection in
// an emulated link the first time.
func (s *Session) Emulate(e transports.Emulation) error {
	if pe, ok := s.conn.(transports.PacketEmulator); ok {
		return pe.EmulatePackets(e)
	}
	if ec, ok := s.tx.Load().Conn.(*transports.EmulatedConn); ok {
		return ec.SetEmulation(e)
	}
	ec, err := transports.Emulate(s.conn, e)
	if err != nil {
		return err
	}
	// Frames shrink before the writer can send through the emulated link.
	frameMax := min(int(s.frameMax.Load()), s.cfg.MaxFrame-transports.EmulationOverhead)
	if h := ec.Info().FrameHint; h > 0 {
		frameMax = min(frameMax, h)
	}
	s.frameMax.Store(int64(frameMax))
	s.tx.Store(&txConn{ec})
	return nil
}

// EmulatesPackets reports whether emulation acts on the transport's own
// packets (quic) rather than on the frames, so that nothing sent on the
// connection bypasses it.
func (s *Session) EmulatesPackets() bool {
	_, ok := s.conn.(transports.PacketEmulator)
	return ok
}

// HandOffLateness is how late the emulation of what this side sends
// handed on its latest frames or packets (transports.LatenessReporter),
// nil when the link is not emulated.
func (s *Session) HandOffLateness() []time.Duration {
	for _, c := range []transports.Conn{s.tx.Load().Conn, s.conn} {
		if lr, ok := c.(transports.LatenessReporter); ok {
			return lr.HandOffLateness()
		}
	}
	return nil
}

// Close ends the session: Run returns. It is safe to call more than once.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.conn.Close()
		if tx := s.tx.Load().Conn; tx != s.conn {
			_ = tx.Close() // ends the emulation's scheduler
		}
	})
}

// byeWait bounds how long Bye waits for its goodbye to be taken by the
// connection before it closes the session anyway.
const byeWait = time.Second

// Bye tells the peer the link is closing on purpose, then closes it. The
// goodbye bypasses any emulation: it is about the connection, not the
// network being emulated. A connection that takes nothing (a quic stream
// through an outage) gets byeWait, then is closed without it.
func (s *Session) Bye() {
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		_, _ = s.conn.Send(AppendRecord(nil, RecBye, nil))
	}()
	t := time.NewTimer(byeWait)
	defer t.Stop()
	select {
	case <-sent:
	case <-t.C:
	}
	s.Close()
}

// Send queues a message record of class c, which enc appends, behind
// those of its class queued before it; k wakes the writer once the
// caller's batch is done. It reports false, having queued nothing, when
// the queue is full or retired: the caller counts the drop. The records
// of lower classes it evicted to make room (see sendq.Queue) it counts
// here, as send queue drops by class, and reports how many for a log.
func (s *Session) Send(c sendq.Class, enc func([]byte) []byte, k *sendq.Kicker) (ok bool, evicted int) {
	ok, ev := s.out.AddClass(c, enc)
	if ev.Any() {
		for x := range sendq.NumClasses {
			if n := ev.Appends[x]; n > 0 {
				s.stats.Drops.AddClass(DropQueueFull, x, uint64(n), uint64(ev.Bytes[x]))
				evicted += n
			}
		}
	}
	if !ok {
		return false, evicted
	}
	s.stats.MsgsSent.Add(1)
	k.Add(s.out)
	return true, evicted
}

// SendControl queues a control record, which enc appends. Control records
// are never dropped, and go before the messages waiting.
func (s *Session) SendControl(enc func([]byte) []byte) { s.out.AddCtrl(enc) }

// SendOutOfBand sends a record on the connection itself, ahead of
// anything queued and bypassing any emulation of frames, so that it gets
// through an emulated outage. On a lossy link it is sent a few times: the
// peer must apply it idempotently. It does not wait: a goroutine sends,
// for as long as the connection makes it wait (a quic stream through an
// outage may, until the outage ends or the session closes). A record
// given while an earlier one is still being sent replaces any other that
// waits: only the latest is sure to go, so each must say all its kind
// says (an emulation record carries the whole emulation).
func (s *Session) SendOutOfBand(rec []byte) {
	s.oobMu.Lock()
	s.oobRec = rec
	busy := s.oobBusy
	s.oobBusy = true
	s.oobMu.Unlock()
	if !busy {
		go s.sendOutOfBand()
	}
}

func (s *Session) sendOutOfBand() {
	n := 1
	if s.send != nil {
		n = 3
	}
	for {
		s.oobMu.Lock()
		rec := s.oobRec
		s.oobRec = nil
		if rec == nil {
			s.oobBusy = false
			s.oobMu.Unlock()
			return
		}
		s.oobMu.Unlock()
		for range n {
			if _, err := s.conn.Send(rec); err != nil {
				break
			}
		}
	}
}

// sendRaw sends a record at once, outside the queues: pongs, acks, probes.
func (s *Session) sendRaw(rec []byte) {
	if _, err := s.tx.Load().Send(rec); err == nil {
		s.stats.BytesSent.Add(uint64(len(rec)))
	}
}

// Queued is the bytes of message records waiting to be sent.
func (s *Session) Queued() int { return s.out.Queued() }

// Unacknowledged takes out every message record the session sent and its
// peer did not acknowledge, then those still waiting to be sent, oldest
// first, as one run of records for its owner to route again. The session
// forgets them, and goes on (a link the routes stopped taking may still be
// up).
func (s *Session) Unacknowledged() []byte {
	s.keepMu.Lock()
	defer s.keepMu.Unlock()
	recs := s.kept.unacked()
	if s.lossy != nil {
		recs = append(recs, s.lossy.takeAll()...)
	}
	return append(recs, s.out.TakeData()...)
}

// Retire refuses every later message record, and counts those that came
// since the owner last took them (Unacknowledged) as dropped with the
// link down. The owner retires a session that has ended once no one can
// find it any more.
func (s *Session) Retire() {
	if data := s.out.Close(); len(data) > 0 {
		s.stats.Drops.AddRecords(DropLinkDown, data)
	}
}

// Silence is how long the peer has sent nothing, as of now.
func (s *Session) Silence(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, s.lastRecv.Load()))
}

func (s *Session) fail(err error) {
	select {
	case <-s.done:
		// Already closing: the failure is a consequence, not news.
	default:
		s.log.Warn("send failed; link down", slog.Any("err", err))
	}
	s.Close()
}
