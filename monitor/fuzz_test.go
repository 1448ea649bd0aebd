package monitor

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodePacket checks that DecodePacket never panics, fails only with
// ErrBadPacket, and accepts only bytes that re-encode identically. The seed
// corpus is in testdata/fuzz/FuzzDecodePacket.
func FuzzDecodePacket(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacket(b)
		if err != nil {
			if !errors.Is(err, ErrBadPacket) {
				t.Fatalf("error %v does not wrap ErrBadPacket", err)
			}
			return
		}
		if again := p.Append(nil); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b)
		}
	})
}
