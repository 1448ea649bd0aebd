package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
)

// TestSteer: a broker steers a destination by router.Steer over its own
// links: the link it gets back is its own, an exit of its own whose link
// cannot carry messages is dropped, and a destination it does not know
// has no route.
func TestSteer(t *testing.T) {
	self := router.Address("eu.g.r0.c0")
	m := router.NewBNM(self, 1, 0)
	ann := func(origin, unit router.Address, links ...router.AnnouncedLink) {
		m.Set(router.Announcement{Origin: origin, Unit: unit, Links: links})
	}
	al := func(id string, peer router.Address) router.AnnouncedLink {
		return router.AnnouncedLink{ID: id, Peer: peer, Costs: []float64{1}}
	}
	ann(self, "eu.g.r0", al("h0", "eu.g.r0.c1"))
	ann("eu.g.r0.c1", "eu.g.r0", al("h0", self))
	ann(self, "eu.g", al("v0", "eu.g.r1.c0"))
	ann("eu.g.r1.c0", "eu.g", al("v0", self))
	h0, v0 := &link{}, &link{} // with no session: down
	rt := &routeTable{self: self, tables: m.Tables(), own: map[string]*link{"h0": h0, "v0": v0}}
	for _, c := range []struct {
		name      string
		dst       string
		exits     []router.Exit
		link      *link
		why       string
		wantExits string
	}{
		{"a route of the cluster", "eu.g.r0.c1", nil, h0, "", "[]"},
		{"a route over a link of its own", "eu.g.r1.c0", nil, v0, "", "[]"},
		{"an own exit whose link is down is dropped", "eu.g.r0.c1", []router.Exit{{Broker: self, Link: "v0"}}, h0, "", "[]"},
		{"no route", "na.x.y", nil, nil, "no route", "[]"},
	} {
		d := &overlay.Dest{Broker: []byte(c.dst), Exits: c.exits}
		l, why := rt.steer(0, d, false)
		if l != c.link || why != c.why {
			t.Errorf("%s: link %p, %q; want %p, %q", c.name, l, why, c.link, c.why)
		}
		if got := fmt.Sprint(d.Exits); got != c.wantExits {
			t.Errorf("%s: exits %s, want %s", c.name, got, c.wantExits)
		}
	}
}

// TestSteerRefusesStandby: an exit of this broker's takes its own link
// while the route table has it up, and is dropped (the destination routed
// afresh) once the table has it in standby, though the link's own monitor
// has not seen a failure yet: its peer has.
func TestSteerRefusesStandby(t *testing.T) {
	self := router.Address("eu.g.r0.c0")
	m := router.NewBNM(self, 1, 0)
	m.Set(router.Announcement{Origin: self, Unit: "eu.g.r0", Links: []router.AnnouncedLink{{ID: "h0", Peer: "eu.g.r0.c1", Costs: []float64{1}}}})
	m.Set(router.Announcement{Origin: "eu.g.r0.c1", Unit: "eu.g.r0", Links: []router.AnnouncedLink{{ID: "h0", Peer: self, Costs: []float64{1}}}})
	h0 := &link{}
	v0 := &link{mon: monitor.NewLink("v0", monitor.DefaultLocalConfig(), func([]byte) error { return nil }, time.Now)}
	v0.sess.Store(&session{}) // connected, its monitor not down: usable
	for _, standby := range []bool{false, true} {
		rt := &routeTable{self: self, tables: m.Tables(), own: map[string]*link{"h0": h0, "v0": v0}, standby: map[string]bool{"v0": standby}}
		d := &overlay.Dest{Broker: []byte("eu.g.r0.c1"), Exits: []router.Exit{{Broker: self, Link: "v0"}}}
		l, why := rt.steer(0, d, false)
		want := v0
		if standby {
			want = h0
		}
		if l != want || why != "" {
			t.Errorf("standby %v: link %p, %q; want %p", standby, l, why, want)
		}
	}
}
