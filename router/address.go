// Package router owns every routing decision of a Wayline network, as pure
// logic: hierarchical addresses, the broker network map (BNM) with units
// seen as complex nodes and the summaries their borders announce, cost
// profiles, when a cost or a summary is worth announcing (Rules),
// shortest paths and the routes that hold still within a margin, and the
// one rule by which a message is steered through the exits of its route
// (Steer). Brokers feed it what they hear and ask it for next hops; the
// aggregator follows routes with the same code.
//
// It does no I/O, starts no goroutines and keeps no clock: measuring links,
// flooding announcements and forwarding messages belong to the packages
// that use it, and time is whatever its callers say it is, so that every
// rule is tested in simulated time.
package router

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of an address, chosen so that an address fits as one token of a
// NATS subject and reads like a DNS name.
const (
	MaxAddressLen = 253 // bytes in the whole address, dots included
	MaxLabelLen   = 63  // bytes in one label
)

// ErrBadAddress is wrapped by every error ParseAddress returns.
var ErrBadAddress = errors.New("bad address")

// Address is a broker's hierarchical address, most significant label
// first, labels separated by dots: "na.cgl.c1.b2" is broker b2 of cluster
// c1 of super-cluster cgl of super-super-cluster na. Any depth from 1 works.
// A unit is any prefix of an address: "na.cgl" is a super-cluster.
//
// Only ParseAddress checks the syntax; the methods treat an Address as the
// dot-separated string it is.
type Address string

// ParseAddress checks s and returns it as an Address. It fails, with an
// error wrapping ErrBadAddress that names the fault, when s is empty, longer
// than MaxAddressLen bytes, or has a label that is empty, longer than
// MaxLabelLen bytes or holds a byte other than a-z, 0-9, '_' and '-'.
// Upper case is rejected rather than folded, so that two spellings never
// name one broker.
func ParseAddress(s string) (Address, error) {
	if s == "" {
		return "", fmt.Errorf("address is empty: %w", ErrBadAddress)
	}
	if len(s) > MaxAddressLen {
		return "", fmt.Errorf("address %q: %d bytes long, more than %d: %w", s, len(s), MaxAddressLen, ErrBadAddress)
	}
	start := 0
	for n := 1; ; n++ {
		end := strings.IndexByte(s[start:], '.')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		if err := checkLabel(s, n, start, end); err != nil {
			return "", err
		}
		if end == len(s) {
			return Address(s), nil
		}
		start = end + 1
	}
}

// checkLabel checks label n of s, the bytes s[start:end].
func checkLabel(s string, n, start, end int) error {
	label := s[start:end]
	switch {
	case label == "":
		return fmt.Errorf("address %q: label %d is empty: %w", s, n, ErrBadAddress)
	case len(label) > MaxLabelLen:
		return fmt.Errorf("address %q: label %d is %d bytes long, more than %d: %w", s, n, len(label), MaxLabelLen, ErrBadAddress)
	}
	for i := 0; i < len(label); i++ {
		if !labelByte(label[i]) {
			_, size := utf8.DecodeRuneInString(label[i:])
			return fmt.Errorf("address %q: label %d (%q): character %q at position %d is not allowed (want a-z, 0-9, '_' or '-'): %w",
				s, n, label, label[i:i+size], start+i+1, ErrBadAddress)
		}
	}
	return nil
}

func labelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// String returns the address as written.
func (a Address) String() string { return string(a) }

// Labels returns the labels of a, most significant first; nil for "".
func (a Address) Labels() []string {
	if a == "" {
		return nil
	}
	return strings.Split(string(a), ".")
}

// Depth returns the number of labels of a; 0 for "".
func (a Address) Depth() int {
	if a == "" {
		return 0
	}
	return strings.Count(string(a), ".") + 1
}

// Unit returns the unit of a made of its first depth labels: for
// "na.cgl.c1.b2", Unit(2) is "na.cgl". A depth of 0 or less gives "", the
// root unit that holds every address; a depth of Depth() or more gives a.
func (a Address) Unit(depth int) Address {
	if depth <= 0 {
		return ""
	}
	for i := 0; i < len(a); i++ {
		if a[i] == '.' {
			depth--
			if depth == 0 {
				return a[:i]
			}
		}
	}
	return a
}

// Within reports whether a lies in unit, comparing whole labels: a unit
// holds itself, "na.cgl.c1.b" is within "na.cgl" but not within "na.cg",
// and every address is within the root unit "".
func (a Address) Within(unit Address) bool {
	switch {
	case unit == "":
		return true
	case len(a) == len(unit):
		return a == unit
	default:
		return len(a) > len(unit) && a[len(unit)] == '.' && a[:len(unit)] == unit
	}
}
