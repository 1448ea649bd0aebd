package linkauth

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The handshake's records, in the overlay's record framing: type u8, body
// length u32 (big-endian), body. Strings are a uvarint length and the
// bytes; integers are big-endian.
//
//	hello      1   version u16 | from | to | link id | epoch u64
//	refuse     2   reason
//	challenge  14  version u16 | from | to | link id | epoch u64 | mode u8 | nonce [32]
//	response   15  mode u8 | nonce [32] | proof [32]
//	accept     16  (empty)
//
// Every handshake frame holds exactly one record.
const (
	recHello     = 1
	recRefuse    = 2
	recChallenge = 14
	recResponse  = 15
	recAccept    = 16

	recordHeader = 5
	nonceSize    = 32
	proofSize    = 32
	// maxField bounds a string of the handshake; addresses and link ids
	// are far shorter, and a refusal's reason is cut to it.
	maxField = 1024
)

// IsHandshakeRecord reports whether a record type belongs to the
// handshake. A session that is already up ignores such records: on an
// unreliable transport they are repeats that crossed the last answer.
func IsHandshakeRecord(t byte) bool {
	switch t {
	case recHello, recChallenge, recResponse, recAccept:
		return true
	}
	return false
}

var errMalformed = errors.New("malformed handshake record")

type challenge struct {
	Hello
	Mode  Mode
	Nonce [nonceSize]byte
}

type response struct {
	Mode  Mode
	Nonce [nonceSize]byte
	Proof [proofSize]byte
}

func beginRecord(b []byte, t byte) ([]byte, int) {
	return append(b, t, 0, 0, 0, 0), len(b)
}

func endRecord(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-recordHeader))
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHelloFields(b []byte, h Hello) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = appendStr(b, h.From)
	b = appendStr(b, h.To)
	b = appendStr(b, h.LinkID)
	return binary.BigEndian.AppendUint64(b, h.Epoch)
}

// AppendHello encodes a hello record, laid out as every protocol version
// has it.
func AppendHello(b []byte, h Hello) []byte {
	b, s := beginRecord(b, recHello)
	return endRecord(appendHelloFields(b, h), s)
}

func appendChallenge(b []byte, c challenge) []byte {
	b, s := beginRecord(b, recChallenge)
	b = appendHelloFields(b, c.Hello)
	b = append(b, byte(c.Mode))
	b = append(b, c.Nonce[:]...)
	return endRecord(b, s)
}

func appendResponse(b []byte, r response) []byte {
	b, s := beginRecord(b, recResponse)
	b = append(b, byte(r.Mode))
	b = append(b, r.Nonce[:]...)
	b = append(b, r.Proof[:]...)
	return endRecord(b, s)
}

// AppendRefuse encodes a refusal; a reason longer than the handshake's
// field limit is cut.
func AppendRefuse(b []byte, reason string) []byte {
	if len(reason) > maxField {
		reason = reason[:maxField]
	}
	b, s := beginRecord(b, recRefuse)
	return endRecord(appendStr(b, reason), s)
}

func appendAccept(b []byte) []byte {
	b, s := beginRecord(b, recAccept)
	return endRecord(b, s)
}

// splitRecord returns the type and body of a frame that holds exactly one
// record; ok is false for anything else.
func splitRecord(frame []byte) (t byte, body []byte, ok bool) {
	if len(frame) < recordHeader {
		return 0, nil, false
	}
	n := binary.BigEndian.Uint32(frame[1:])
	if uint64(n) != uint64(len(frame)-recordHeader) {
		return 0, nil, false
	}
	return frame[0], frame[recordHeader:], true
}

// reader decodes one record body; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) take(n int) []byte {
	if len(r.b) < n {
		r.fail(fmt.Errorf("%w: truncated", errMalformed))
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte         { return r.take(1)[0] }
func (r *reader) u16() uint16      { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u64() uint64      { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) fixed(dst []byte) { copy(dst, r.take(len(dst))) }

func (r *reader) str() string {
	n, k := binary.Uvarint(r.b)
	switch {
	case k <= 0:
		r.fail(fmt.Errorf("%w: bad length", errMalformed))
		return ""
	case k > 1 && r.b[k-1] == 0:
		r.fail(fmt.Errorf("%w: non-minimal length", errMalformed))
		return ""
	case n > maxField:
		r.fail(fmt.Errorf("%w: a field of %d bytes", errMalformed, n))
		return ""
	}
	r.b = r.b[k:]
	return string(r.take(int(n)))
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errMalformed, len(r.b))
	}
	return r.err
}

func (r *reader) hello() Hello {
	return Hello{Version: r.u16(), From: r.str(), To: r.str(), LinkID: r.str(), Epoch: r.u64()}
}

// DecodeHello decodes a hello record's body.
func DecodeHello(body []byte) (Hello, error) {
	r := reader{b: body}
	h := r.hello()
	return h, r.done()
}

func decodeChallenge(body []byte) (challenge, error) {
	r := reader{b: body}
	c := challenge{Hello: r.hello(), Mode: Mode(r.u8())}
	r.fixed(c.Nonce[:])
	return c, r.done()
}

func decodeResponse(body []byte) (response, error) {
	r := reader{b: body}
	resp := response{Mode: Mode(r.u8())}
	r.fixed(resp.Nonce[:])
	r.fixed(resp.Proof[:])
	return resp, r.done()
}

// DecodeRefuse decodes a refusal's body.
func DecodeRefuse(body []byte) (string, error) {
	r := reader{b: body}
	reason := r.str()
	return reason, r.done()
}
