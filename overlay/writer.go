package overlay

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/transports"
)

// The session's writer: it drains the queue into frames, keeps what it
// sent until it is acknowledged, and keeps the link alive.

// writeLoop drains the queues into frames, sends keepalives and resends
// unacknowledged control records on lossy links. (watchSilence declares
// the link dead when the peer falls silent.)
func (s *Session) writeLoop() {
	defer close(s.writerDone)
	cfg := &s.cfg
	tickEvery := cfg.Keepalive
	if s.send != nil {
		tickEvery = min(tickEvery, relTick)
	}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	s.out.LockWriter()
	s.lastSend = time.Now()
	s.out.UnlockWriter()
	// With a rate, data waits until paceAt: the time what the session
	// sent before takes at that rate, counted from BytesSent (pacedBytes
	// of it counted so far). paced wakes the writer then.
	var paceAt time.Time
	var paced <-chan time.Time
	pacedBytes := s.stats.BytesSent.Load()
	for {
		select {
		case <-s.out.Kick():
		case <-tick.C:
		case <-paced:
			paced = nil
		case <-s.done:
			return
		}
		now := time.Now()
		// A lossy link's sender takes no more than its queue's worth
		// while its window holds it back, and no more than a take's worth
		// when the queue serves classes, so that it keeps their order.
		withData := s.lossy == nil || s.lossy.waiting() < cfg.QueueBytes
		if withData && s.lossy != nil && s.out.Classed() {
			withData = s.lossy.waiting() < sendq.MaxQuantum
		}
		if cfg.Rate > 0 && withData && now.Before(paceAt) {
			withData = false
			if paced == nil {
				paced = time.After(paceAt.Sub(now))
			}
		}
		s.out.LockWriter()
		err := s.sendTaken(now, withData, true)
		s.out.UnlockWriter()
		if err != nil {
			s.fail(err)
			return
		}
		if cfg.Rate > 0 {
			paceAt, pacedBytes = s.paceAfter(paceAt, pacedBytes, now)
		}
	}
}

// directHeld is the most a session may have sent and not had
// acknowledged for a feeder to send in its writer's place: well under what
// the connection's buffers hold (a socket's send buffer and its peer's
// receive buffer, a quic stream's window), so that the send cannot wait
// on the peer. Past it the writer goroutine sends, as it always may.
const directHeld = 64 << 10

// sendDirect sends what waits in the writer's place, for a feeder that
// found the writer idle (sendq.Queue.SetDirect), and reports whether it
// did. Only a session on a reliable transport without a rate lets feeders
// do so (a lossy one's window and a paced one's clock belong to the
// writer; a quic stream's write waits for its congestion window,
// transports.Info.Paced), and only while little is unacknowledged: a
// feeder is often another link's reader, and two readers each waiting for
// the other's peer to read would stop both links.
func (s *Session) sendDirect() bool {
	select {
	case <-s.done:
		return false
	default:
	}
	if s.kept.held() > directHeld {
		return false
	}
	if err := s.sendTaken(time.Now(), true, false); err != nil {
		s.fail(err)
	}
	return true
}

// sendTaken takes what waits (data too with withData) and sends it, with
// a ping when there is nothing else and the keepalive is due (with
// keepalive); the caller holds the writer lock.
func (s *Session) sendTaken(now time.Time, withData, keepalive bool) error {
	var count int // the message records in data: Send queues one at a time
	// Taken and kept (or handed to the lossy sender) under keepMu, before
	// anything is sent: the owner may take what was not acknowledged
	// (Unacknowledged) at any time, and finds every record either still
	// queued or kept, never between; and a failed send leaves nothing
	// taken and unkept.
	s.keepMu.Lock()
	s.wctrl, s.wdata, count = s.out.TakeCounted(s.wctrl, s.wdata, withData)
	ctrl, data := s.wctrl, s.wdata
	if s.lossy != nil {
		s.lossy.add(data)
		s.wdata = data[:0]
	} else {
		// Kept before it is sent: the peer may acknowledge it before
		// the send returns, and if the send fails it goes to the
		// owner with the rest of what was not acknowledged.
		s.wdata = s.kept.keepCounted(data, count, now)
	}
	s.keepMu.Unlock()
	frames := ctrl
	if s.send != nil {
		frames = s.send.wrap(ctrl, now)
	}
	if s.lossy != nil {
		frames = s.ackEcho.repeat(frames, s.rcpt.acked.Load(), now)
	}
	if keepalive && len(frames)+len(data) == 0 && now.Sub(s.lastSend) >= s.cfg.Keepalive {
		frames = AppendU64Record(frames, RecPing, uint64(now.UnixNano()))
	}
	if err := s.sendRecords(frames); err != nil {
		return err
	}
	sent := len(frames) + len(data)
	var err error
	if s.lossy != nil {
		err = s.sendLossy(now)
		if err == nil {
			err = s.sendTailMark(now)
		}
	} else {
		err = s.sendRecords(data)
	}
	if err != nil {
		return err
	}
	if sent > 0 {
		s.lastSend = now
	}
	return nil
}

// paceSlack is how far a paced writer may fall behind its rate and catch
// up: the lateness of the timer that wakes it, which would otherwise
// leave the link idle a moment at every take. It is also the most the
// writer sends in a burst beyond its rate.
const paceSlack = 2 * time.Millisecond

// paceAfter moves paceAt on by the time the bytes the session sent since
// pacedBytes of it were counted take at the link's rate, from now less
// paceSlack at the earliest, and returns it with the new count. Every byte
// sent counts, control records and frame headers too, so that at a rate
// equal to the path's nothing queues below the session.
func (s *Session) paceAfter(paceAt time.Time, pacedBytes uint64, now time.Time) (time.Time, uint64) {
	sent := s.stats.BytesSent.Load()
	if sent <= pacedBytes {
		return paceAt, pacedBytes
	}
	if floor := now.Add(-paceSlack); paceAt.Before(floor) {
		paceAt = floor
	}
	return paceAt.Add(time.Duration(float64(sent-pacedBytes) / float64(s.cfg.Rate) * float64(time.Second))), sent
}

// fitRecords is the length of the records at the head of buf that fit in
// limit bytes; a single larger record goes alone.
func fitRecords(buf []byte, limit int) int {
	n := 0
	for n < len(buf) {
		size := RecordHeader + int(binary.BigEndian.Uint32(buf[n+1:]))
		if n > 0 && n+size > limit {
			break
		}
		n += size
	}
	return n
}

// sendLossy sends the message records waiting on a lossy link, as far as
// its window allows, each frame headed by the number of its first record,
// and keeps them until they are acknowledged (sequence.go).
func (s *Session) sendLossy(now time.Time) error {
	frameMax := int(s.frameMax.Load()) - dataSeqSize
	for s.lossy.waiting() > 0 {
		room := lossyWindow - s.kept.held()
		if room <= 0 {
			return nil
		}
		recs := s.lossy.next(room)
		first := s.kept.next()
		for rest := recs; len(rest) > 0; {
			n := fitRecords(rest, frameMax)
			frame := append(appendDataSeq(s.lossyBuf[:0], first), rest[:n]...)
			s.lossyBuf = frame
			if _, err := s.tx.Load().Send(frame); err != nil {
				if !errors.Is(err, transports.ErrFrameTooLarge) {
					return err
				}
				s.dropOverLimit(rest[:n])
			} else {
				s.stats.BytesSent.Add(uint64(len(frame)))
			}
			first += uint64(CountRecords(rest[:n]))
			rest = rest[n:]
		}
		s.kept.keep(recs, now)
	}
	return nil
}

// tailMarkAfter is how long a lossy link's oldest unacknowledged records
// wait before its sender tells the receiver how far it has sent, and how
// often it says so again while they stay unacknowledged.
const tailMarkAfter = 200 * time.Millisecond

// sendTailMark sends, on a lossy link whose oldest unacknowledged records
// have waited tailMarkAfter, a frame of no records headed by the number
// of the next record to be sent. The receiver learns of a loss from the
// gap before a later frame; when the last frames of a burst are lost, no
// frame comes after them, and the loss would go uncounted (and, with the
// window full, the sender would wait for an acknowledgement that never
// comes). The mark is that later frame: the receiver gives up what it
// lacks before it after reorderWait and counts it.
func (s *Session) sendTailMark(now time.Time) error {
	at, ok := s.kept.oldest()
	if !ok || now.Sub(at) < tailMarkAfter || now.Sub(s.tailMarked) < tailMarkAfter {
		return nil
	}
	s.tailMarked = now
	frame := appendDataSeq(nil, s.kept.next())
	if _, err := s.tx.Load().Send(frame); err != nil {
		return err
	}
	s.stats.BytesSent.Add(uint64(len(frame)))
	return nil
}

// sendRecords cuts a run of records into frames of at most frameMax bytes
// (a single larger record travels alone) and sends them.
func (s *Session) sendRecords(buf []byte) error {
	frameMax := int(s.frameMax.Load())
	for len(buf) > 0 {
		n := len(buf)
		if n > frameMax {
			n = fitRecords(buf, frameMax)
		}
		if _, err := s.tx.Load().Send(buf[:n]); err != nil {
			if errors.Is(err, transports.ErrFrameTooLarge) {
				s.dropOverLimit(buf[:n])
				buf = buf[n:]
				continue
			}
			return err
		}
		s.stats.BytesSent.Add(uint64(n))
		buf = buf[n:]
	}
	return nil
}

// dropOverLimit logs and counts the records of a frame the transport
// refused as too large.
func (s *Session) dropOverLimit(recs []byte) {
	s.log.Error("record over the frame limit; dropped", slog.Int("bytes", len(recs)))
	s.stats.Drops.AddRecords(DropFrameLimit, recs)
}
