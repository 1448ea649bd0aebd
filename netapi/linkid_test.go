package netapi

import (
	"errors"
	"strings"
	"testing"
)

func TestLinkByPrefix(t *testing.T) {
	ids := []string{"f33c176b-ab63-56b1-a827-64013bfd2adf", "f3a0c2d1-0000-4000-8000-000000000001", "ecda7798-7a62-5c09-b4ac-b17b7be55408", "ec",
		"f33c176b-ab63-56b1-a827-64013bfd2adf"} // reported by both its ends
	tests := []struct {
		id, want string
		err      error
	}{
		{"f33c176b", ids[0], nil},
		{ids[1], ids[1], nil},
		{"ecda", ids[2], nil},
		{"ec", "ec", nil}, // a whole id wins over the ids it begins
		{"f3", "", ErrAmbiguousLink},
		{"9", "", ErrUnknownLink},
		{"", "", ErrUnknownLink},
	}
	for _, tt := range tests {
		got, err := LinkByPrefix(tt.id, ids)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("LinkByPrefix(%q) = %q, %v; want %q, %v", tt.id, got, err, tt.want, tt.err)
		}
	}
	_, err := LinkByPrefix("f3", ids)
	if !strings.Contains(err.Error(), ids[0]) || !strings.Contains(err.Error(), ids[1]) {
		t.Errorf("the ambiguous id's error does not list the matches: %v", err)
	}
}
