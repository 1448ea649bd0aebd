package broker

import (
	"fmt"
	"testing"
)

// TestSteer: how a broker picks the link for a destination and updates the
// exits the destination carries.
func TestSteer(t *testing.T) {
	self := "eu.g.r0.c2"
	a, b := &link{}, &link{}
	via := []exit{{Broker: []byte("eu.g.r1.c0"), Link: []byte("v0")}}
	rt := &routeTable{
		next: []map[string]hop{{
			"eu.g.r0.c0": {link: a, exits: via}, // through r1, leaving it at r1.c0
			"eu.g.r1":    {link: a},
			"eu.g.r0.c1": {link: b},
		}},
		own: map[string]*link{},
	}
	exits := func(ex ...string) []exit {
		var out []exit
		for i := 0; i+1 < len(ex); i += 2 {
			out = append(out, exit{Broker: []byte(ex[i]), Link: []byte(ex[i+1])})
		}
		return out
	}
	for _, c := range []struct {
		name      string
		dst       string
		exits     []exit
		link      *link
		why       string
		wantExits string
	}{
		{"route without exits", "eu.g.r0.c1", nil, b, "", "[]"},
		{"the route's exits are pushed", "eu.g.r0.c0", nil, a, "", "[{eu.g.r1.c0 v0}]"},
		{"heads for the last exit, keeping it", "eu.g.r0.c1", exits("eu.g.r1.c2", "v2"), a, "", "[{eu.g.r1.c2 v2}]"},
		{"an exit out of reach is dropped", "eu.g.r0.c0", exits("eu.g.r2.c1", "x"), a, "", "[{eu.g.r1.c0 v0}]"},
		{"an own exit whose link is gone is dropped", "eu.g.r0.c1", exits("eu.g.r1.c2", "v2", self, "nolink"), b, "", "[]"},
		{"no route", "na.x.y", nil, nil, "no route", "[]"},
		{"too many exits", "eu.g.r0.c0", exits(repeat(maxExits, "eu.g.r0.c0", "z")...), nil, "too many exits", ""},
	} {
		d := &dest{Broker: []byte(c.dst), Exits: c.exits}
		l, why := rt.steer(self, []byte(self), 0, d)
		if l != c.link || why != c.why {
			t.Errorf("%s: link %p, %q; want %p, %q", c.name, l, why, c.link, c.why)
		}
		if got := fmt.Sprintf("%s", d.Exits); c.wantExits != "" && got != c.wantExits {
			t.Errorf("%s: exits %s, want %s", c.name, got, c.wantExits)
		}
	}
}

// repeat returns n copies of a pair of strings, end to end.
func repeat(n int, x, y string) []string {
	var out []string
	for range n {
		out = append(out, x, y)
	}
	return out
}
