package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// errShort is returned when a record body ends before its fields do.
var errShort = errors.New("truncated record")

// reader decodes the fields of one record body. The first failure sticks:
// every later read returns zero values, and err() reports it.
type reader struct {
	b []byte
	e error
}

func (r *reader) fail(err error) {
	if r.e == nil {
		r.e = err
	}
	r.b = nil
}

func (r *reader) err() error { return r.e }

func (r *reader) u8() byte {
	if len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if len(r.b) < 2 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	if n > 1 && r.b[n-1] == 0 {
		// Every value has one encoding; a padded one is not ours.
		r.fail(errors.New("non-minimal varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an element count and checks it against what the remaining
// bytes could possibly hold (each element takes at least minSize bytes), so
// that a forged count cannot make the caller allocate without bound.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(len(r.b)/minSize) {
		r.fail(fmt.Errorf("count %d exceeds record size", n))
		return 0
	}
	return int(n)
}

// bytes reads a uvarint-length-prefixed byte string. The result aliases the
// record.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.bytes()) }

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

// rest returns every byte left in the record.
func (r *reader) rest() []byte {
	v := r.b
	r.b = nil
	return v
}

// done fails unless the record was consumed exactly.
func (r *reader) done() error {
	if r.e == nil && len(r.b) != 0 {
		r.e = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return r.e
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func appendUvarint(b []byte, v uint64) []byte {
	return binary.AppendUvarint(b, v)
}
func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
func appendStr(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
func appendF64(b []byte, v float64) []byte { return appendU64(b, math.Float64bits(v)) }

// grow extends s by one element, reusing the element left in the backing
// array by an earlier use (so that its own slices keep their capacity), and
// returns a pointer to it.
func grow[T any](s []T) ([]T, *T) {
	if len(s) < cap(s) {
		s = s[:len(s)+1]
	} else {
		var zero T
		s = append(s, zero)
	}
	return s, &s[len(s)-1]
}
