package router

import "testing"

func TestRep(t *testing.T) {
	self := Address("na.cgl.c1.a")
	for _, tc := range []struct{ a, want Address }{
		{"na.cgl.c1.b", "na.cgl.c1.b"},
		{"na.cgl.c1.a", "na.cgl.c1.a"},
		{"na.cgl.c2.x", "na.cgl.c2"},
		{"na.isi.c1.a", "na.isi"},
		{"eu.kth.c1.a", "eu"},
		{"na.cg.c1.a", "na.cg"},
		{"na.cgl.c10.a", "na.cgl.c10"},
		{"na", "na"},
		{"na.cgl.c1", "na.cgl.c1"},
	} {
		if got := Rep(self, tc.a); got != tc.want {
			t.Errorf("Rep(%s, %s) = %s, want %s", self, tc.a, got, tc.want)
		}
		if got := string(RepBytes(string(self), []byte(tc.a))); got != string(tc.want) {
			t.Errorf("RepBytes(%s, %s) = %s, want %s", self, tc.a, got, tc.want)
		}
	}
	// Flat addresses: every broker is in the root cluster.
	if got := Rep("a", "b"); got != "b" {
		t.Errorf("flat: %s", got)
	}
	if got := string(RepBytes("a", []byte("b"))); got != "b" {
		t.Errorf("flat bytes: %s", got)
	}
}

func TestCommonUnit(t *testing.T) {
	for _, tc := range []struct{ a, b, want Address }{
		{"na.cgl.c1.a", "na.cgl.c1.b", "na.cgl.c1"},
		{"na.cgl.c1.a", "na.cgl.c2.b", "na.cgl"},
		{"na.cgl.c1.a", "eu.kth.c1.a", ""},
		{"a", "b", ""},
		{"x.a", "x.b", "x"},
		{"x.a", "x.a.b", "x"},
	} {
		if got := CommonUnit(tc.a, tc.b); got != tc.want {
			t.Errorf("CommonUnit(%s, %s) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestRepBytesDoesNotAllocate(t *testing.T) {
	a := []byte("eu.kth.c1.a")
	if n := testing.AllocsPerRun(100, func() { RepBytes("na.cgl.c1.a", a) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
