package overlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// errShort is returned when a record body ends before its fields do.
var errShort = errors.New("truncated record")

// Reader decodes the fields of one record body. The first failure sticks:
// every later read returns zero values, and Err reports it.
type Reader struct {
	b []byte
	e error
}

// NewReader reads the fields of body.
func NewReader(body []byte) Reader { return Reader{b: body} }

// Fail makes err the reader's failure, unless it has one already.
func (r *Reader) Fail(err error) {
	if r.e == nil {
		r.e = err
	}
	r.b = nil
}

// Err is the reader's first failure, or nil.
func (r *Reader) Err() error { return r.e }

// U8 reads a byte.
func (r *Reader) U8() byte {
	if len(r.b) < 1 {
		r.Fail(errShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// U64 reads a big-endian 64-bit number.
func (r *Reader) U64() uint64 {
	if len(r.b) < 8 {
		r.Fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// Uvarint reads a uvarint, refusing a padded one.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail(errShort)
		return 0
	}
	if n > 1 && r.b[n-1] == 0 {
		// Every value has one encoding; a padded one is not ours.
		r.Fail(errors.New("non-minimal varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads an element count and checks it against what the remaining
// bytes could possibly hold (each element takes at least minSize bytes), so
// that a forged count cannot make the caller allocate without bound.
func (r *Reader) Count(minSize int) int {
	n := r.Uvarint()
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(len(r.b)/minSize) {
		r.Fail(fmt.Errorf("count %d exceeds record size", n))
		return 0
	}
	return int(n)
}

// Bytes reads a uvarint-length-prefixed byte string. The result aliases the
// record.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if n > uint64(len(r.b)) {
		r.Fail(errShort)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Str reads a uvarint-length-prefixed string.
func (r *Reader) Str() string { return string(r.Bytes()) }

// F64 reads a float64 as its IEEE 754 bits.
func (r *Reader) F64() float64 { return math.Float64frombits(r.U64()) }

// Rest returns every byte left in the record.
func (r *Reader) Rest() []byte {
	v := r.b
	r.b = nil
	return v
}

// Done fails unless the record was consumed exactly.
func (r *Reader) Done() error {
	if r.e == nil && len(r.b) != 0 {
		r.e = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return r.e
}

// AppendU64 appends what Reader.U64 reads.
func AppendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// AppendUvarint appends what Reader.Uvarint reads.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendBytes appends what Reader.Bytes reads.
func AppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendStr appends what Reader.Str reads.
func AppendStr(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendF64 appends what Reader.F64 reads.
func AppendF64(b []byte, v float64) []byte { return AppendU64(b, math.Float64bits(v)) }

// Grow extends s by one element, reusing the element left in the backing
// array by an earlier use (so that its own slices keep their capacity), and
// returns a pointer to it: decoding into reused values does not allocate.
func Grow[T any](s []T) ([]T, *T) {
	if len(s) < cap(s) {
		s = s[:len(s)+1]
	} else {
		var zero T
		s = append(s, zero)
	}
	return s, &s[len(s)-1]
}
