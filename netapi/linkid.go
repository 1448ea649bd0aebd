package netapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Link ids are UUIDs, long to type; wherever a link id is taken (the
// brokers' HTTP API and control messages, the command line, the pages),
// any unique beginning of one will do, as the 8 characters 'wayline
// links' prints.

var (
	// ErrUnknownLink: no link has the id, nor an id that begins with it.
	ErrUnknownLink = errors.New("unknown link")
	// ErrAmbiguousLink: more than one link's id begins with the id given.
	ErrAmbiguousLink = errors.New("ambiguous link id")
)

// LinkByPrefix finds the link id that id names among ids (which may hold
// an id more than once): id itself, or the one id that begins with it. Outcomes: the full id; an error wrapping
// ErrUnknownLink; an error wrapping ErrAmbiguousLink that lists the ids
// that match.
func LinkByPrefix(id string, ids []string) (string, error) {
	var matches []string
	for _, x := range ids {
		if x == id {
			return x, nil
		}
		if id != "" && strings.HasPrefix(x, id) {
			matches = append(matches, x)
		}
	}
	slices.Sort(matches)
	matches = slices.Compact(matches) // ids may come from several lists
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w %q", ErrUnknownLink, id)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("%w %q: it begins %d links' ids: %s; give more of it", ErrAmbiguousLink, id, len(matches), strings.Join(matches, ", "))
}
