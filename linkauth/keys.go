package linkauth

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// The secret mode's cryptography, all from the standard library: the
// transcript is SHA-256 over everything both ends said up to the dialer's
// proof; the proof is HMAC-SHA256 of the transcript under a key derived
// from the secret; each direction's frame key is derived (HKDF-SHA256)
// from the secret, salted with both nonces, for that direction and that
// transcript. The acceptor proves itself with its first frame, which only
// a holder of the secret can protect under the acceptor's key.

const transcriptLabel = "wayline link handshake v3"

// transcript binds the hello and the challenge, as sent, and the dialer's
// mode and nonce.
func transcript(hello, chal []byte, mode Mode, nonceD [nonceSize]byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(transcriptLabel))
	for _, part := range [][]byte{hello, chal} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	h.Write([]byte{byte(mode)})
	h.Write(nonceD[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// dialerProof is the dialer's proof that it holds the secret.
func dialerProof(secret []byte, t [sha256.Size]byte) ([proofSize]byte, error) {
	var out [proofSize]byte
	k, err := hkdf.Key(sha256.New, secret, nil, "wayline link dialer proof", 32)
	if err != nil {
		return out, fmt.Errorf("derive proof key: %w", err)
	}
	m := hmac.New(sha256.New, k)
	m.Write(t[:])
	m.Sum(out[:0])
	return out, nil
}

// frameKeys derives the key of each direction of one session.
func frameKeys(secret []byte, nonceA, nonceD [nonceSize]byte, t [sha256.Size]byte) (toAcceptor, toDialer []byte, err error) {
	salt := append(append(make([]byte, 0, 2*nonceSize), nonceA[:]...), nonceD[:]...)
	toAcceptor, err = hkdf.Key(sha256.New, secret, salt, "wayline link frames to the acceptor "+string(t[:]), 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive frame keys: %w", err)
	}
	toDialer, err = hkdf.Key(sha256.New, secret, salt, "wayline link frames to the dialer "+string(t[:]), 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive frame keys: %w", err)
	}
	return toAcceptor, toDialer, nil
}
