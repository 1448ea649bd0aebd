package router

import "testing"

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
