package transports

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzStreamDecode feeds arbitrary bytes to the stream frame decoder. It must
// not panic, must return only frames within the limit, and must make
// progress on every frame. Seeds are in testdata/fuzz/FuzzStreamDecode.
func FuzzStreamDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte, limit uint16) {
		maxFrame := int(limit%1024) + 1
		fr := newFrameReader(bytes.NewReader(stream), maxFrame)
		for frames := 0; ; frames++ {
			if frames > len(stream)/streamHeader {
				t.Fatalf("%d frames from %d bytes", frames, len(stream))
			}
			data, _, err := fr.next()
			if errors.Is(err, ErrFrameTooLarge) {
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errProtocol) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(data) > maxFrame {
				t.Fatalf("frame of %d bytes, limit %d", len(data), maxFrame)
			}
		}
	})
}

// FuzzUDPDatagram feeds arbitrary datagrams to the header parser and the
// reassembler. The input is a sequence of datagrams, each preceded by its
// length in one byte. Parsing must not panic and must round-trip headers;
// reassembly must respect its limits. Seeds are in
// testdata/fuzz/FuzzUDPDatagram.
func FuzzUDPDatagram(f *testing.F) {
	const maxFrame = 300
	f.Fuzz(func(t *testing.T, input []byte) {
		budget := newReassemblyBudget(4 << 10)
		r := newReassembler(maxFrame, time.Second, budget)
		now := time.Now()
		for len(input) > 0 {
			n := min(int(input[0]), len(input)-1)
			b := input[1 : 1+n]
			input = input[1+n:]
			d, err := parseDatagram(b)
			if err != nil {
				if !errors.Is(err, errBadDatagram) {
					t.Fatalf("parse error %v does not wrap errBadDatagram", err)
				}
				continue
			}
			checkRoundTrip(t, b, d)
			if d.typ != udpFrag {
				continue
			}
			now = now.Add(time.Millisecond)
			frame, err := r.add(d, now)
			if err != nil && !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, errBadDatagram) && !errors.Is(err, errReassemblyBudget) {
				t.Fatalf("reassembly error %v", err)
			}
			if len(frame) > maxFrame {
				t.Fatalf("frame of %d bytes, limit %d", len(frame), maxFrame)
			}
			checkHeld(t, r)
			if len(r.partial) > udpMaxPartial || budget.inUse() > budget.limit || r.held != budget.inUse() {
				t.Fatalf("%d partial frames holding %d bytes, budget %d of %d", len(r.partial), r.held, budget.inUse(), budget.limit)
			}
		}
	})
}

// checkRoundTrip re-encodes a parsed datagram and compares it with the input.
func checkRoundTrip(t *testing.T, b []byte, d datagram) {
	t.Helper()
	var enc []byte
	switch d.typ {
	case udpHello, udpHelloAck:
		enc = appendHello(nil, d.typ, d.session)
	case udpData:
		enc = append([]byte{udpData}, d.payload...)
	case udpFrag:
		enc = append(appendFragHeader(nil, d.id, d.index, d.count), d.payload...)
	case udpClose:
		enc = []byte{udpClose}
	}
	if !bytes.Equal(enc, b) {
		t.Fatalf("parsed %x as %+v, which encodes as %x", b, d, enc)
	}
}
