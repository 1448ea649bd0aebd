package monitor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func TestPacketRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
	}{
		{"request", Packet{Type: PacketProbe, Seq: 1, T1: 1_700_000_000_123_456_789, Interval: 1000}},
		{"response", Packet{Type: PacketProbe, Response: true, Seq: 7, T1: 5, T2: -3, T3: 9, Interval: 100, Count: 6}},
		{"padded", Packet{Type: PacketProbe, Seq: 2, T1: 1, Pad: 1000}},
		{"extremes", Packet{Type: PacketProbe, Response: true, Seq: math.MaxUint64, T1: math.MinInt64, T2: math.MaxInt64, T3: -1, Interval: math.MaxUint32, Count: math.MaxUint32, Pad: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("record header")
			b := tt.p.Append(bytes.Clone(prefix))
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("Append clobbered the prefix")
			}
			b = b[len(prefix):]
			if len(b) != tt.p.Len() {
				t.Fatalf("encoded %d bytes, Len says %d", len(b), tt.p.Len())
			}
			got, err := DecodePacket(b)
			if err != nil {
				t.Fatalf("DecodePacket: %v", err)
			}
			if got != tt.p {
				t.Fatalf("round trip: got %+v, want %+v", got, tt.p)
			}
		})
	}
}

func TestDecodePacketMalformed(t *testing.T) {
	valid := func() []byte {
		p := Packet{Type: PacketProbe, Seq: 1, T1: 10}
		return p.Append(nil)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(valid()) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", valid()[:PacketSize-1]},
		{"long", append(valid(), 0)},
		{"pad longer than data", edit(func(b []byte) []byte { b[43] = 4; return append(b, 0, 0) })},
		{"type 0", edit(func(b []byte) []byte { b[0] = 0; return b })},
		{"type 2", edit(func(b []byte) []byte { b[0] = 2; return b })},
		{"reserved flag", edit(func(b []byte) []byte { b[1] = 0x02; return b })},
		{"response and reserved flag", edit(func(b []byte) []byte { b[1] = 0x81; return b })},
		{"seq 0", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[2:], 0); return b })},
		{"request with T2", edit(func(b []byte) []byte { b[25] = 1; return b })},
		{"request with T3", edit(func(b []byte) []byte { b[33] = 1; return b })},
		{"request with count", edit(func(b []byte) []byte { b[41] = 1; return b })},
		{"non-zero padding", edit(func(b []byte) []byte { b[43] = 2; return append(b, 0, 7) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DecodePacket(tt.b)
			if !errors.Is(err, ErrBadPacket) {
				t.Fatalf("DecodePacket = %+v, %v; want ErrBadPacket", p, err)
			}
		})
	}
}

// TestProbeBudget checks the arithmetic of the PacketSize comment: at the
// default interval, probes and responses stay under 1% of 1 Mbit/s.
func TestProbeBudget(t *testing.T) {
	const recordOverhead, transportHeader = 9, 60 // worst cases
	bitsPerPacket := (PacketSize + recordOverhead + transportHeader) * 8
	perSecond := 2 * bitsPerPacket * int(DefaultLANConfig().Interval.Seconds())
	if perSecond >= 10_000 {
		t.Fatalf("probe traffic %d bit/s, want < 10000", perSecond)
	}
}
