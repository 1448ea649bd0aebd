package topology

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
)

// linkNamespace is the namespace of derived link IDs,
// 5ee187c7-1ba1-488c-9530-b75d8a035e30, chosen at random once. Changing it
// changes every derived link ID.
var linkNamespace = [16]byte{0x5e, 0xe1, 0x87, 0xc7, 0x1b, 0xa1, 0x48, 0x8c, 0x95, 0x30, 0xb7, 0x5d, 0x8a, 0x03, 0x5e, 0x30}

// uuidV5 returns the name-based UUID (version 5, SHA-1; RFC 9562 section
// 5.5) of name in namespace ns, in lower case.
func uuidV5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // variant 10
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	hex.Encode(b[9:13], u[4:6])
	hex.Encode(b[14:18], u[6:8])
	hex.Encode(b[19:23], u[8:10])
	hex.Encode(b[24:36], u[10:16])
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	return string(b[:])
}

// parseUUID returns s in lower case, and fails unless s is a UUID written
// as 8-4-4-4-12 hexadecimal digits. Any version is accepted.
func parseUUID(s string) (string, error) {
	ok := len(s) == 36
	for i := 0; ok && i < len(s); i++ {
		switch c := s[i]; i {
		case 8, 13, 18, 23:
			ok = c == '-'
		default:
			ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
		}
	}
	if !ok {
		return "", fmt.Errorf("%q is not a UUID (want 8-4-4-4-12 hexadecimal digits)", s)
	}
	return strings.ToLower(s), nil
}
