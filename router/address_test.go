package router

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		in      string
		wantErr string // substring of the error; "" for success
	}{
		{"na.cgl.c1.b2", ""},
		{"a", ""},
		{"a_b-c.0.z9", ""},
		{long + "." + long + "." + long + "." + strings.Repeat("b", 61), ""}, // 253 bytes
		{"", "address is empty"},
		{"na..b", `address "na..b": label 2 is empty`},
		{".na", `address ".na": label 1 is empty`},
		{"na.", `address "na.": label 2 is empty`},
		{"na.Cgl", `address "na.Cgl": label 2 ("Cgl"): character "C" at position 4 is not allowed`},
		{"na.c gl", `character " " at position 5`},
		{"na.é", `character "é" at position 4`},
		{"na.\xff", `character "\xff" at position 4`},
		{"na.c*", `character "*" at position 5`},
		{"na." + long + "x", "label 2 is 64 bytes long, more than 63"},
		{long + "." + long + "." + long + "." + strings.Repeat("b", 62), "254 bytes long, more than 253"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseAddress(%q): %v", tt.in, err)
				}
				if a.String() != tt.in {
					t.Fatalf("String() = %q, want %q", a, tt.in)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %q, want an error", tt.in, a)
			}
			if !errors.Is(err, ErrBadAddress) {
				t.Errorf("error %v does not wrap ErrBadAddress", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestAddressMethods(t *testing.T) {
	a := Address("na.cgl.c1.b2")
	if got, want := a.Labels(), []string{"na", "cgl", "c1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("Labels() = %q, want %q", got, want)
	}
	if Address("").Labels() != nil {
		t.Errorf(`Address("").Labels() is not nil`)
	}
	for _, tt := range []struct {
		a    Address
		want int
	}{{"", 0}, {"na", 1}, {"na.cgl.c1.b2", 4}} {
		if got := tt.a.Depth(); got != tt.want {
			t.Errorf("%q.Depth() = %d, want %d", tt.a, got, tt.want)
		}
	}
	for depth, want := range map[int]Address{-1: "", 0: "", 1: "na", 2: "na.cgl", 3: "na.cgl.c1", 4: a, 9: a} {
		if got := a.Unit(depth); got != want {
			t.Errorf("Unit(%d) = %q, want %q", depth, got, want)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		a, unit Address
		want    bool
	}{
		{"na.cgl.c1.b", "na.cgl", true},
		{"na.cgl.c1.b", "na.cgl.c1.b", true},
		{"na.cgl.c1.b", "", true},
		{"na.cgl.c1.b", "na.cg", false},
		{"na.cgl.c1.b", "na.cgl.c1.b.x", false},
		{"na.cgl", "na.cgl.c1", false},
		{"na.cgl", "eu.cgl", false},
		{"nax.cgl", "na", false},
	}
	for _, tt := range tests {
		if got := tt.a.Within(tt.unit); got != tt.want {
			t.Errorf("%q.Within(%q) = %v, want %v", tt.a, tt.unit, got, tt.want)
		}
	}
}

// FuzzParseAddress checks that ParseAddress never panics and that what it
// accepts round-trips and holds only valid labels.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"na.cgl.c1.a", "a", "na..b", "NA.b", "a.b-c_d.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("ParseAddress(%q): error %v does not wrap ErrBadAddress", s, err)
			}
			return
		}
		if a.String() != s {
			t.Fatalf("ParseAddress(%q).String() = %q", s, a)
		}
		if len(s) > MaxAddressLen {
			t.Fatalf("ParseAddress accepted %d bytes", len(s))
		}
		labels := a.Labels()
		if len(labels) != a.Depth() || strings.Join(labels, ".") != s {
			t.Fatalf("%q: labels %q do not match depth %d", s, labels, a.Depth())
		}
		for _, l := range labels {
			if l == "" || len(l) > MaxLabelLen || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
				t.Fatalf("%q: accepted bad label %q", s, l)
			}
		}
		for d := 0; d <= a.Depth(); d++ {
			if !a.Within(a.Unit(d)) {
				t.Fatalf("%q is not within its unit %q", s, a.Unit(d))
			}
		}
	})
}
