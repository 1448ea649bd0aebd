package broker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/transports"
)

// session is one connection carrying a link, from handshake to failure.
// It has one reader goroutine (readLoop) and one writer goroutine
// (writeLoop); everything else hands the writer records through out.
type session struct {
	l    *link
	conn transports.Conn // the connection as dialed or accepted
	// tx is what frames are sent through: conn itself, or an emulated
	// link around it when the link is emulated.
	tx        atomic.Pointer[txConn]
	info      transports.Info
	peerEpoch uint64
	acceptor  bool
	out       *sendq.Queue
	frameMax  atomic.Int64 // set when the conn is wrapped for emulation, read by the writer
	lastRecv  atomic.Int64 // unix ns of the last frame received
	rxTime    time.Time    // when the frame being handled arrived; reader only

	done       chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once

	// Owned by the reader.
	rcpt  receipts // message records received, for acknowledgements
	ackAt atomic.Bool
	snap  snapshotAssembly
	cache matchCache
	msg   overlay.Message
	plan  plan
	recv  *relRecv // nil on reliable transports

	send *relSend // nil on reliable transports
	// kept holds the message records sent until the peer acknowledges
	// them (retain.go). On a lossy transport, reseq puts the records
	// received back in order and lossy holds those waiting for the window
	// (sequence.go); both are nil on a reliable one.
	kept     *retainer
	reseq    *resequencer // the reader's
	lossy    *lossySender // the writer's
	lossyBuf []byte       // the writer's

	// dgram is the conn's unreliable path, which carries the link's
	// probes, or nil when it has none (see monitoring.go).
	dgram         transports.DatagramConn
	datagramsDone chan struct{} // closed when the datagram reader ends
}

// txConn holds the Conn a session sends through.
type txConn struct{ transports.Conn }

// errBye ends a session whose peer said goodbye.
var errBye = errors.New("peer closed the link")

// defaultFrame is the frame size used to batch records on transports
// without a preference: large enough to amortise per-frame costs, small
// enough to keep latency low behind a batch.
const defaultFrame = 64 << 10

func newSession(l *link, conn transports.Conn, peerEpoch uint64, acceptor bool) *session {
	info := conn.Info()
	s := &session{
		l:          l,
		conn:       conn,
		info:       info,
		peerEpoch:  peerEpoch,
		acceptor:   acceptor,
		out:        sendq.New(l.b.cfg.LinkQueueBytes),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),

		datagramsDone: make(chan struct{}),
	}
	s.dgram, _ = conn.(transports.DatagramConn)
	frameMax := min(defaultFrame, l.b.cfg.Transport.MaxFrame)
	if info.FrameHint > 0 {
		frameMax = min(frameMax, info.FrameHint)
	}
	s.frameMax.Store(int64(frameMax))
	s.kept = newRetainer(l.b.cfg.RetainBytes, l.b.cfg.RetainAge, &l.unprotected)
	if !info.Reliable {
		s.recv = newRelRecv()
		s.send = &relSend{next: 1}
		s.reseq = newResequencer()
		s.lossy = &lossySender{}
	}
	s.tx.Store(&txConn{conn})
	if e := l.emulation(); e != nil {
		s.emulate(*e)
	}
	s.lastRecv.Store(time.Now().UnixNano())
	return s
}

// emulate gives what this side sends the emulated conditions e: the
// transport's own packets when it can emulate them, so that its recovery
// is what the link sees; otherwise the frames, wrapping the connection in
// an emulated link the first time.
func (s *session) emulate(e transports.Emulation) error {
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
	frameMax := min(int(s.frameMax.Load()), s.l.b.cfg.Transport.MaxFrame-transports.EmulationOverhead)
	if h := ec.Info().FrameHint; h > 0 {
		frameMax = min(frameMax, h)
	}
	s.frameMax.Store(int64(frameMax))
	s.tx.Store(&txConn{ec})
	return nil
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.conn.Close()
		if tx := s.tx.Load().Conn; tx != s.conn {
			_ = tx.Close() // ends the emulation's scheduler
		}
	})
}

// bye tells the peer the link is closing on purpose, then closes it. The
// goodbye bypasses any emulation: it is about the connection, not the
// network being emulated.
func (s *session) bye() {
	_, _ = s.conn.Send(overlay.AppendRecord(nil, overlay.RecBye, nil))
	s.close()
}

// sendRaw sends a record at once, outside the queues: pongs, acks, hellos,
// probes.
func (s *session) sendRaw(rec []byte) {
	if _, err := s.tx.Load().Send(rec); err == nil {
		s.l.bytesSent.Add(uint64(len(rec)))
	}
}

func (s *session) readLoop() error {
	for {
		f, err := s.conn.Receive()
		if errors.Is(err, transports.ErrFrameTooLarge) {
			s.l.log.Warn("peer sent an oversized frame; discarded", slog.Any("err", err))
			continue
		}
		if errors.Is(err, linkauth.ErrForged) {
			s.l.b.stats.forgedFrames.Add(1)
			s.l.b.noteDrop("link", s.l.cfg.ID, "frame failed authentication")
			continue
		}
		if err != nil {
			return err
		}
		f = transports.StripEmulation(f)
		s.rxTime = f.Received
		s.lastRecv.Store(f.Received.UnixNano())
		s.l.bytesRecv.Add(uint64(len(f.Data)))
		if s.reseq != nil {
			err = s.handleLossy(f)
		} else {
			err = overlay.EachRecord(f.Data, s.handle)
		}
		s.plan.kick.Flush()
		s.acknowledge()
		if err != nil {
			if !errors.Is(err, errBye) {
				s.l.b.stats.badFrames.Add(1)
			}
			return err
		}
	}
}

func (s *session) handle(t overlay.RecordType, body []byte) error {
	switch t {
	case overlay.RecMsg:
		if err := s.msg.Decode(body); err != nil {
			return fmt.Errorf("%w: msg: %w", overlay.ErrBadRecord, err)
		}
		s.l.msgsRecv.Add(1)
		s.l.b.fromLink(s, &s.msg, body)
		if s.reseq == nil {
			s.rcpt.received.Add(1)
		}
	case overlay.RecPing:
		nonce, err := overlay.DecodeU64Record(body)
		if err != nil {
			return fmt.Errorf("%w: ping: %w", overlay.ErrBadRecord, err)
		}
		s.sendRaw(overlay.AppendU64Record(nil, overlay.RecPong, nonce))
	case overlay.RecPong:
	case overlay.RecProbe:
		s.onProbe(body, s.rxTime)
	case overlay.RecRefuse:
		reason, _ := overlay.DecodeStrRecord(body)
		return fmt.Errorf("%w: %s", linkauth.ErrRefused, reason)
	case overlay.RecCtl:
		if s.recv == nil {
			return fmt.Errorf("%w: reliable envelope on a reliable link", overlay.ErrBadRecord)
		}
		seq, inner, err := decodeCtl(body)
		if err != nil {
			return fmt.Errorf("%w: ctl: %w", overlay.ErrBadRecord, err)
		}
		ack, err := s.recv.receive(seq, inner, func(rec []byte) error {
			return overlay.EachRecord(rec, s.handleControl)
		})
		s.sendRaw(overlay.AppendU64Record(nil, overlay.RecAck, ack))
		return err
	case overlay.RecDataAck:
		n, err := overlay.DecodeU64Record(body)
		if err != nil {
			return fmt.Errorf("%w: data ack: %w", overlay.ErrBadRecord, err)
		}
		if s.kept != nil {
			s.kept.ack(n)
			if s.lossy != nil {
				s.out.Signal() // the window has room again
			}
		}
	case overlay.RecAck:
		if s.send == nil {
			return fmt.Errorf("%w: ack on a reliable link", overlay.ErrBadRecord)
		}
		seq, err := overlay.DecodeU64Record(body)
		if err != nil {
			return fmt.Errorf("%w: ack: %w", overlay.ErrBadRecord, err)
		}
		s.send.ack(seq)
	default:
		if t.IsControl() {
			return s.handleControl(t, body)
		}
		if linkauth.IsHandshakeRecord(byte(t)) {
			// A repeat of the handshake on a lossy link, which crossed
			// the answer to it.
			return nil
		}
		return fmt.Errorf("%w: unknown record type %d", overlay.ErrBadRecord, byte(t))
	}
	return nil
}

func (s *session) handleControl(t overlay.RecordType, body []byte) error {
	b := s.l.b
	switch t {
	case overlay.RecLinkState:
		ls, err := decodeLinkState(body)
		if err != nil {
			return fmt.Errorf("%w: link-state: %w", overlay.ErrBadRecord, err)
		}
		b.onLinkState(s, ls)
	case overlay.RecSummary:
		sum, err := decodeSummary(body)
		if err != nil {
			return fmt.Errorf("%w: summary: %w", overlay.ErrBadRecord, err)
		}
		b.onSummary(s, sum)
	case overlay.RecInterest:
		u, err := decodeInterest(body)
		if err != nil {
			return fmt.Errorf("%w: interest: %w", overlay.ErrBadRecord, err)
		}
		b.onInterest(s, u)
	case overlay.RecSyncReq:
		origin, err := overlay.DecodeStrRecord(body)
		if err != nil {
			return fmt.Errorf("%w: sync-request: %w", overlay.ErrBadRecord, err)
		}
		b.onSyncReq(s, origin)
	case overlay.RecBye:
		return errBye
	case overlay.RecEmulation:
		var spec transports.EmulationSpec
		if err := json.Unmarshal(body, &spec); err != nil {
			return fmt.Errorf("%w: emulation: %w", overlay.ErrBadRecord, err)
		}
		if err := b.applyPeerEmulation(s, spec); err != nil {
			s.l.log.Warn("peer asked for an emulation this broker refuses", slog.Any("err", err))
		}
	default:
		return fmt.Errorf("%w: %s inside a reliable envelope", overlay.ErrBadRecord, t)
	}
	return nil
}

// writeLoop drains the queues into frames, sends keepalives, resends
// unacknowledged control records on lossy links, and declares the link
// dead when the peer falls silent.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	cfg := &s.l.b.cfg
	tickEvery := cfg.Keepalive
	if s.send != nil {
		tickEvery = min(tickEvery, relTick)
	}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var ctrl, data []byte
	lastSend := time.Now()
	for {
		select {
		case <-s.out.Kick():
		case <-tick.C:
		case <-s.done:
			return
		}
		now := time.Now()
		if silent := now.Sub(time.Unix(0, s.lastRecv.Load())); silent > cfg.DeadAfter {
			s.l.log.Warn("peer silent; link declared down", slog.Duration("silent", silent))
			s.close()
			return
		}
		// A lossy link's sender takes no more than its queue's worth
		// while its window holds it back.
		withData := s.lossy == nil || s.lossy.waiting() < cfg.LinkQueueBytes
		ctrl, data = s.out.Take(ctrl, data, withData)
		frames := ctrl
		if s.send != nil {
			frames = s.send.wrap(ctrl, now)
		}
		if len(frames)+len(data) == 0 && now.Sub(lastSend) >= cfg.Keepalive {
			frames = overlay.AppendU64Record(frames, overlay.RecPing, uint64(now.UnixNano()))
		}
		if err := s.sendRecords(frames); err != nil {
			s.fail(err)
			return
		}
		sent := len(frames) + len(data)
		var err error
		if s.lossy != nil {
			s.lossy.add(data)
			data = data[:0]
			err = s.sendLossy(now)
		} else {
			err = s.sendRecords(data)
			if err == nil {
				data = s.kept.keep(data, now)
			}
		}
		if err != nil {
			s.fail(err)
			return
		}
		if sent > 0 {
			lastSend = now
		}
	}
}

// sendLossy sends the message records waiting on a lossy link, as far as
// its window allows, each frame headed by the number of its first record,
// and keeps them until they are acknowledged (sequence.go).
func (s *session) sendLossy(now time.Time) error {
	frameMax := int(s.frameMax.Load()) - dataSeqSize
	for s.lossy.waiting() > 0 {
		room := lossyWindow - s.kept.held()
		if room <= 0 {
			return nil
		}
		recs := s.lossy.next(room)
		first := s.kept.next()
		for rest := recs; len(rest) > 0; {
			n := 0
			for n < len(rest) {
				size := overlay.RecordHeader + int(binary.BigEndian.Uint32(rest[n+1:]))
				if n > 0 && n+size > frameMax {
					break
				}
				n += size
			}
			frame := append(appendDataSeq(s.lossyBuf[:0], first), rest[:n]...)
			s.lossyBuf = frame
			if _, err := s.tx.Load().Send(frame); err != nil {
				if !errors.Is(err, transports.ErrFrameTooLarge) {
					return err
				}
				s.l.log.Error("record over the frame limit; dropped", slog.Int("bytes", n))
				s.l.drops.add(dropFrameLimit, uint64(overlay.CountRecords(rest[:n])), uint64(n))
			} else {
				s.l.bytesSent.Add(uint64(len(frame)))
			}
			first += uint64(overlay.CountRecords(rest[:n]))
			rest = rest[n:]
		}
		s.kept.keep(recs, now)
	}
	return nil
}

// handleLossy handles a frame of a lossy link: message records in their
// order (sequence.go), anything else at once.
func (s *session) handleLossy(f transports.Frame) error {
	var err error
	deliver := func(recs []byte) {
		if e := overlay.EachRecord(recs, s.handle); e != nil && err == nil {
			err = e
		}
	}
	var lost uint64
	if first, recs, ok := splitDataSeq(f.Data); ok {
		lost = s.reseq.push(first, recs, f.Received, deliver)
	} else {
		err = overlay.EachRecord(f.Data, s.handle)
		lost = s.reseq.expire(f.Received, deliver)
	}
	if lost > 0 {
		s.l.drops.add(dropLost, lost, 0)
	}
	s.rcpt.received.Store(s.reseq.handedOn())
	return err
}

// acknowledge tells the peer how many message records this session has
// received: at once when ackEvery have gathered, otherwise within
// ackInterval (see retain.go).
func (s *session) acknowledge() {
	if n := s.rcpt.due(false); n > 0 {
		s.sendRaw(overlay.AppendU64Record(nil, overlay.RecDataAck, n))
		return
	}
	if s.rcpt.received.Load() == s.rcpt.acked.Load() || !s.ackAt.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(ackInterval, func() {
		s.ackAt.Store(false)
		select {
		case <-s.done:
			return
		default:
		}
		if n := s.rcpt.due(true); n > 0 {
			s.sendRaw(overlay.AppendU64Record(nil, overlay.RecDataAck, n))
		}
	})
}

func (s *session) fail(err error) {
	select {
	case <-s.done:
		// Already closing: the failure is a consequence, not news.
	default:
		s.l.log.Warn("send failed; link down", slog.Any("err", err))
	}
	s.close()
}

// sendRecords cuts a run of records into frames of at most frameMax bytes
// (a single larger record travels alone) and sends them.
func (s *session) sendRecords(buf []byte) error {
	frameMax := int(s.frameMax.Load())
	for len(buf) > 0 {
		n := 0
		for n < len(buf) {
			size := overlay.RecordHeader + int(binary.BigEndian.Uint32(buf[n+1:]))
			if n > 0 && n+size > frameMax {
				break
			}
			n += size
		}
		if _, err := s.tx.Load().Send(buf[:n]); err != nil {
			if errors.Is(err, transports.ErrFrameTooLarge) {
				s.l.log.Error("record over the frame limit; dropped", slog.Int("bytes", n))
				s.l.drops.add(dropFrameLimit, uint64(overlay.CountRecords(buf[:n])), uint64(n))
				buf = buf[n:]
				continue
			}
			return err
		}
		s.l.bytesSent.Add(uint64(n))
		buf = buf[n:]
	}
	return nil
}
