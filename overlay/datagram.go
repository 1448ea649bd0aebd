package overlay

import (
	"errors"
	"fmt"

	"github.com/wayline/wayline/linkauth"
	"github.com/wayline/wayline/transports"
)

// Probes. A link is measured by performance packets (package monitor)
// that travel as records on the link itself, over the same transport (and
// emulation) as the data. Where the transport offers an unreliable path
// beside its reliable one (transports.DatagramConn: quic), probes and
// their answers take it, so that the monitor sees the loss, delay and
// jitter of the network rather than what the transport's retransmissions
// make of them; elsewhere they travel in-band.

// SendProbe sends a performance packet as a datagram where the link has
// them, and in-band otherwise or when it is too large for one.
func (s *Session) SendProbe(pkt []byte) {
	rec := AppendRecord(nil, RecProbe, pkt)
	if s.dgram != nil {
		_, err := s.dgram.SendDatagram(rec)
		if err == nil {
			s.stats.BytesSent.Add(uint64(len(rec)))
		}
		if !errors.Is(err, transports.ErrDatagramTooLarge) {
			return
		}
	}
	s.sendRaw(rec)
}

// startDatagrams starts the reader of the link's datagrams, if it has
// them; datagramsDone is closed when there is none or it ends, with the
// conn.
func (s *Session) startDatagrams() {
	if s.dgram == nil {
		close(s.datagramsDone)
		return
	}
	go func() {
		defer close(s.datagramsDone)
		for {
			f, err := s.dgram.ReceiveDatagram()
			if errors.Is(err, linkauth.ErrForged) {
				s.stats.ForgedFrames.Add(1)
				s.h.Discarded("forged datagram")
				continue
			}
			if err != nil {
				return
			}
			s.onDatagram(f)
		}
	}()
}

// onDatagram handles one datagram from the peer. Datagrams carry probes
// only; anything else is counted and dropped, and never ends the link.
func (s *Session) onDatagram(f transports.Frame) {
	s.lastRecv.Store(f.Received.UnixNano())
	s.stats.BytesRecv.Add(uint64(len(f.Data)))
	err := EachRecord(f.Data, func(t RecordType, body []byte) error {
		if t != RecProbe {
			return fmt.Errorf("%w: %s record in a datagram", ErrBadRecord, t)
		}
		s.h.Probe(body, f.Received)
		return nil
	})
	if err != nil {
		s.stats.BadFrames.Add(1)
		s.h.Discarded("malformed datagram")
	}
}
