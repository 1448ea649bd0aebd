package overlay

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/transports"
)

// The session's reader: it takes frames from the connection, hands what
// they carry to the handler, and acknowledges what it received.

func (s *Session) readLoop() error {
	for {
		f, err := s.conn.Receive()
		if errors.Is(err, transports.ErrFrameTooLarge) {
			s.log.Warn("peer sent an oversized frame; discarded", slog.Any("err", err))
			continue
		}
		if errors.Is(err, linkauth.ErrForged) {
			s.stats.ForgedFrames.Add(1)
			s.h.Discarded("frame failed authentication")
			continue
		}
		if err != nil {
			return err
		}
		f = transports.StripEmulation(f)
		s.rxTime = f.Received
		s.lastRecv.Store(f.Received.UnixNano())
		s.stats.BytesRecv.Add(uint64(len(f.Data)))
		if s.reseq != nil {
			err = s.handleLossy(f)
		} else {
			err = EachRecord(f.Data, s.handle)
		}
		s.h.Flush()
		s.acknowledge()
		if err != nil {
			if !errors.Is(err, ErrBye) {
				s.stats.BadFrames.Add(1)
			}
			return err
		}
	}
}

func (s *Session) handle(t RecordType, body []byte) error {
	switch t {
	case RecMsg:
		if err := s.msg.Decode(body); err != nil {
			return fmt.Errorf("%w: msg: %w", ErrBadRecord, err)
		}
		s.stats.MsgsRecv.Add(1)
		s.h.Message(&s.msg, body)
		if s.reseq == nil {
			s.rcpt.received.Add(1)
		}
	case RecPing:
		nonce, err := DecodeU64Record(body)
		if err != nil {
			return fmt.Errorf("%w: ping: %w", ErrBadRecord, err)
		}
		s.sendRaw(AppendU64Record(nil, RecPong, nonce))
	case RecPong:
	case RecProbe:
		s.h.Probe(body, s.rxTime)
	case RecRefuse:
		reason, _ := DecodeStrRecord(body)
		return fmt.Errorf("%w: %s", linkauth.ErrRefused, reason)
	case RecCtl:
		if s.recv == nil {
			return fmt.Errorf("%w: reliable envelope on a reliable link", ErrBadRecord)
		}
		seq, inner, err := decodeCtl(body)
		if err != nil {
			return fmt.Errorf("%w: ctl: %w", ErrBadRecord, err)
		}
		ack, err := s.recv.receive(seq, inner, func(rec []byte) error {
			return EachRecord(rec, s.control)
		})
		s.sendRaw(AppendU64Record(nil, RecAck, ack))
		return err
	case RecDataAck:
		n, err := DecodeU64Record(body)
		if err != nil {
			return fmt.Errorf("%w: data ack: %w", ErrBadRecord, err)
		}
		s.kept.ack(n)
		if s.lossy != nil {
			s.out.Signal() // the window has room again
		}
	case RecAck:
		if s.send == nil {
			return fmt.Errorf("%w: ack on a reliable link", ErrBadRecord)
		}
		seq, err := DecodeU64Record(body)
		if err != nil {
			return fmt.Errorf("%w: ack: %w", ErrBadRecord, err)
		}
		s.send.ack(seq)
	default:
		if t.IsControl() {
			return s.control(t, body)
		}
		if linkauth.IsHandshakeRecord(byte(t)) {
			// A repeat of the handshake on a lossy link, which crossed
			// the answer to it.
			return nil
		}
		return fmt.Errorf("%w: unknown record type %d", ErrBadRecord, byte(t))
	}
	return nil
}

// control hands a control record, on its own or out of its envelope, to
// the handler; a goodbye ends the session.
func (s *Session) control(t RecordType, body []byte) error {
	switch {
	case t == RecBye:
		return ErrBye
	case !t.IsControl():
		return fmt.Errorf("%w: %s inside a reliable envelope", ErrBadRecord, t)
	}
	return s.h.Control(t, body)
}

// handleLossy handles a frame of a lossy link: message records in their
// order (sequence.go), anything else at once.
func (s *Session) handleLossy(f transports.Frame) error {
	var err error
	deliver := func(recs []byte) {
		if e := EachRecord(recs, s.handle); e != nil && err == nil {
			err = e
		}
	}
	var lost uint64
	if first, recs, ok := splitDataSeq(f.Data); ok {
		lost = s.reseq.push(first, recs, f.Received, deliver)
	} else {
		err = EachRecord(f.Data, s.handle)
		lost = s.reseq.expire(f.Received, deliver)
	}
	if lost > 0 {
		s.stats.Drops.Add(DropLost, lost, 0)
	}
	s.rcpt.received.Store(s.reseq.handedOn())
	return err
}

// acknowledge tells the peer how many message records this session has
// received: at once when ackEvery have gathered, otherwise within
// ackInterval (see retain.go).
func (s *Session) acknowledge() {
	if n := s.rcpt.due(false); n > 0 {
		s.sendRaw(AppendU64Record(nil, RecDataAck, n))
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
			s.sendRaw(AppendU64Record(nil, RecDataAck, n))
		}
	})
}
