package web

import (
	"cmp"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/wayline/wayline/schema"
)

// The network map: the brokers inside boxes for their units (clusters,
// super-clusters and up, as deep as the addresses go), the links between
// brokers drawn as lines coloured by cost (green cheap, red dear, with a
// legend of the costs), dashed red when down and dotted orange when down
// but in standby (still taken where nothing else reaches); the links and brokers a
// subject's messages pass are drawn in blue under them. A broker and a
// link are links to their pages.
//
// Placement follows one rule at every level, so the same network always
// looks the same: units in name order; the top units side by side in
// columns, the brokers of a unit side by side, any other unit's parts one
// above the other. The map is as wide as the page (at least mapMinW
// units of its viewBox), and a link that would cross a name or a broker
// bows around it.
const (
	mapMinW    = 1160
	mapBrokerR = 11
	slotW      = 100 // a broker's room: its circle and its name below
	slotH      = 66
	unitPad    = 10
	unitLabelH = 22
	unitGap    = 14
	legendH    = 46
)

// mapLink is a link as the map draws it: the report of one end, in the
// worse of its ends' states.
type mapLink struct {
	id, a, b string
	state    linkState
	cost     float64
}

// linkState is a link's state on the map, the better before the worse.
type linkState int

const (
	linkUp      linkState = iota
	linkStandby           // down, but still carrying what nothing else can
	linkDown
)

// reportState reads a link's state as a report (after withStates) spells it.
func reportState(s string) linkState {
	switch s {
	case "up":
		return linkUp
	case standbyState:
		return linkStandby
	}
	return linkDown
}

// routingState reads a link's state as a routing state gives it.
func routingState(up, standby bool) linkState {
	switch {
	case up:
		return linkUp
	case standby:
		return linkStandby
	}
	return linkDown
}

// mapUnit is a unit of the map, or a broker (a leaf).
type mapUnit struct {
	name     string // its address, or the unit's prefix; "" for the whole network
	depth    int
	children []*mapUnit
	w, h     float64 // natural size
	x, y     float64 // where it is placed
	pw, ph   float64 // its placed size
}

func (u *mapUnit) broker() bool { return len(u.children) == 0 }

// across says whether u's parts sit side by side.
func (u *mapUnit) across() bool {
	if u.depth == 0 {
		return true
	}
	for _, c := range u.children {
		if !c.broker() {
			return false
		}
	}
	return true
}

// unitTree is the tree of units of brokers' addresses, in name order.
func unitTree(brokers []string) *mapUnit {
	root := &mapUnit{}
	byName := map[string]*mapUnit{"": root}
	for _, b := range slices.Sorted(slices.Values(brokers)) {
		labels := strings.Split(b, ".")
		parent := root
		for i := range labels {
			name := strings.Join(labels[:i+1], ".")
			u := byName[name]
			if u == nil || i == len(labels)-1 {
				u = &mapUnit{name: name, depth: i + 1}
				byName[name] = u
				parent.children = append(parent.children, u)
			}
			parent = u
		}
	}
	return root
}

// measure sets the natural sizes of u and its parts.
func (u *mapUnit) measure() {
	if u.broker() {
		u.w, u.h = slotW, slotH
		return
	}
	pad, label := float64(unitPad), float64(unitLabelH)
	if u.depth == 0 {
		pad, label = 0, 0
	}
	var sumW, sumH, maxW, maxH float64
	for _, c := range u.children {
		c.measure()
		sumW, sumH = sumW+c.w, sumH+c.h
		maxW, maxH = max(maxW, c.w), max(maxH, c.h)
	}
	gaps := float64(unitGap * (len(u.children) - 1))
	if u.across() {
		u.w, u.h = sumW+gaps+2*pad, label+maxH+2*pad
	} else {
		u.w, u.h = maxW+2*pad, label+sumH+gaps+2*pad
	}
}

// place puts u at (x, y) in a room w wide and h high: side by side parts
// share the width in proportion to their natural widths and take the
// height of the tallest; stacked parts take the whole width.
func (u *mapUnit) place(x, y, w, h float64) {
	u.x, u.y, u.pw, u.ph = x, y, w, h
	if u.broker() {
		return
	}
	pad, label := float64(unitPad), float64(unitLabelH)
	if u.depth == 0 {
		pad, label = 0, 0
	}
	gaps := float64(unitGap * (len(u.children) - 1))
	inner, top := w-2*pad, y+label+pad
	if u.across() {
		natural := u.w - 2*pad - gaps
		cx := x + pad
		for _, c := range u.children {
			cw := c.w / natural * (inner - gaps)
			c.place(cx, top, cw, h-label-2*pad)
			cx += cw + unitGap
		}
		return
	}
	for _, c := range u.children {
		c.place(x+pad, top, inner, c.h)
		top += c.h + unitGap
	}
}

// obstacle is something a link must not cross: a name (a box) or a
// broker (a circle, box of its centre with r).
type obstacle struct {
	x0, y0, x1, y1 float64
	owner          string // the broker it belongs to, if any
}

func (o obstacle) holds(x, y float64) bool { return x >= o.x0 && x <= o.x1 && y >= o.y0 && y <= o.y1 }

// textBox is about where a name of n characters sits, its baseline at
// (x, y), at the map's 12 px.
func textBox(x, y float64, n int, anchorMiddle bool, owner string) obstacle {
	w := 6.8*float64(n) + 4
	if anchorMiddle {
		x -= w / 2
	}
	return obstacle{x - 2, y - 12, x + w, y + 4, owner}
}

// networkMap draws reps (with the link states of withStates) as an SVG. A
// link is down when either end says so. Links and brokers that only states
// know of are drawn too. route, when not nil, is highlighted.
func networkMap(reps []schema.Report, states []schema.State, route *schema.SubjectRoute) template.HTML {
	brokers, links, profile := mapContents(reps, states)
	onRoute := map[string]bool{} // link ids and broker addresses
	if route != nil {
		for _, p := range route.Paths {
			for _, x := range p.Brokers {
				onRoute[x] = true
			}
			for _, x := range p.Links {
				onRoute[x] = true
			}
		}
	}
	root := unitTree(brokers)
	root.measure()
	w := max(root.w, mapMinW)
	root.place(0, 0, w, root.h)
	var frames strings.Builder
	var obstacles []obstacle
	pos := map[string][2]float64{}
	esc := template.HTMLEscapeString
	var draw func(u *mapUnit)
	draw = func(u *mapUnit) {
		switch {
		case u.broker():
			cx, cy := u.x+u.pw/2, u.y+24
			pos[u.name] = [2]float64{cx, cy}
			r := mapBrokerR + 4.0
			obstacles = append(obstacles, obstacle{cx - r, cy - r, cx + r, cy + r, u.name}, textBox(cx, cy+mapBrokerR+15, len(last(u.name)), true, u.name))
			return
		case u.depth > 0:
			fmt.Fprintf(&frames, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" rx="8" class="unit depth%d" data-unit="%s"/>`,
				u.x, u.y, u.pw, u.ph, min(u.depth, 4), esc(u.name))
			fmt.Fprintf(&frames, `<text x="%.0f" y="%.0f" class="unitname">%s</text>`, u.x+8, u.y+16, esc(u.name))
			obstacles = append(obstacles, textBox(u.x+8, u.y+16, len(u.name), false, ""))
		}
		for _, c := range u.children {
			draw(c)
		}
	}
	draw(root)
	h := root.h
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="map" viewBox="0 0 %.0f %.0f" role="img" aria-label="network map">`, w, h+legendH)
	b.WriteString(frames.String())
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range links {
		if !math.IsNaN(l.cost) && !math.IsInf(l.cost, 0) {
			lo, hi = min(lo, l.cost), max(hi, l.cost)
		}
	}
	avoid := len(links)*len(obstacles) <= 200_000 // beyond, bowing costs more than a page may take
	for _, id := range slices.Sorted(maps.Keys(links)) {
		l := links[id]
		pa, oka := pos[l.a]
		pb, okb := pos[l.b]
		if !oka || !okb {
			continue
		}
		style := fmt.Sprintf(`stroke="%s" stroke-width="3"`, costColor(l.cost, lo, hi))
		title := fmt.Sprintf("%s - %s, cost %.1f", l.a, l.b, l.cost)
		state := "up"
		switch l.state {
		case linkDown:
			state = "down"
			style = `stroke="#b00" stroke-width="3" stroke-dasharray="6 4" class="down"`
			title = fmt.Sprintf("%s - %s, down", l.a, l.b)
		case linkStandby:
			state = "standby"
			style = `stroke="#e80" stroke-width="3" stroke-dasharray="2 4" class="standby"`
			title = fmt.Sprintf("%s - %s, down (standby): taken only where no link that is up reaches", l.a, l.b)
		}
		var d string
		if avoid {
			d = linkPath(pa, pb, l.a, l.b, obstacles)
		} else {
			d = fmt.Sprintf("M%.0f %.0f L%.0f %.0f", pa[0], pa[1], pb[0], pb[1])
		}
		if onRoute[l.id] {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#27f" stroke-width="9" stroke-opacity=".45" class="route" data-route-link="%s"/>`, d, esc(l.id))
		}
		fmt.Fprintf(&b, `<a href="/links/%s"><path d="%s" fill="none" %s data-link="%s" data-state="%s"><title>%s</title></path></a>`,
			esc(url.PathEscape(l.id)), d, style, esc(l.id), state, esc(title))
	}
	for _, name := range slices.Sorted(maps.Keys(pos)) {
		p := pos[name]
		class := "broker"
		if onRoute[name] {
			class = "broker onroute"
		}
		fmt.Fprintf(&b, `<a href="/brokers/%s"><circle cx="%.0f" cy="%.0f" r="%d" class="%s" data-broker="%s"><title>%s</title></circle>`+
			`<text x="%.0f" y="%.0f" class="brokername" text-anchor="middle">%s</text></a>`,
			esc(url.PathEscape(name)), p[0], p[1], mapBrokerR, class, esc(name), esc(name), p[0], p[1]+mapBrokerR+15, esc(last(name)))
	}
	mapLegend(&b, h, lo, hi, profile, route != nil)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// mapContents gathers the brokers and links of reps and states, and the
// profile the links' costs are of.
func mapContents(reps []schema.Report, states []schema.State) (brokers []string, links map[string]mapLink, profile string) {
	seen := map[string]bool{}
	links = map[string]mapLink{}
	for _, st := range states {
		seen[st.Broker] = true
	}
	for _, r := range reps {
		seen[r.Broker] = true
		for _, l := range r.Links {
			seen[l.B] = true
			ml := mapLink{id: l.ID, a: r.Broker, b: l.B, state: reportState(l.State), cost: math.NaN()}
			if len(l.Costs) > 0 {
				ml.cost = l.Costs[0].Value
				profile = cmp.Or(profile, l.Costs[0].Profile)
			}
			if prev, ok := links[l.ID]; ok {
				ml.state = max(ml.state, prev.state) // down if either end says so
				ml.a, ml.b = prev.a, prev.b
			}
			links[l.ID] = ml
		}
	}
	for _, st := range states {
		for _, l := range st.Links {
			if prev, ok := links[l.ID]; ok {
				if prev.a != st.Broker && prev.b == st.Broker {
					prev.state = max(prev.state, routingState(l.Up, l.Standby))
					links[l.ID] = prev
				}
				continue
			}
			seen[l.Peer] = true
			links[l.ID] = mapLink{id: l.ID, a: st.Broker, b: l.Peer, state: routingState(l.Up, l.Standby), cost: math.NaN()}
		}
	}
	delete(seen, "")
	return slices.Collect(maps.Keys(seen)), links, profile
}

// mapLegend draws, below the map at y, the colours of costs from lo to
// hi, a link down, one in standby, and the route when there is one.
func mapLegend(b *strings.Builder, y, lo, hi float64, profile string, route bool) {
	y += 18
	b.WriteString(`<g class="legend">`)
	b.WriteString(`<defs><linearGradient id="costscale"><stop offset="0" stop-color="rgb(40,170,60)"/><stop offset="1" stop-color="rgb(240,50,60)"/></linearGradient></defs>`)
	label := "link cost"
	if profile != "" {
		label += " (profile " + profile + ")"
	}
	fmt.Fprintf(b, `<text x="0" y="%.0f" class="legendtitle">%s</text>`, y+4, template.HTMLEscapeString(label))
	x := 8 + 7.0*float64(len(label))
	if math.IsInf(lo, 1) {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f">not known yet</text>`, x, y+4)
		x += 110
	} else {
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="220" height="10" fill="url(#costscale)"/>`, x, y-6)
		for i, f := range []float64{0, 0.5, 1} {
			anchor := [...]string{"start", "middle", "end"}[i]
			fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="%s" class="costtick">%s</text>`, x+220*f, y+20, anchor, trimFloat(lo+f*(hi-lo)))
		}
		x += 250
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#b00" stroke-width="3" stroke-dasharray="6 4"/><text x="%.0f" y="%.0f">down</text>`, x, y, x+36, y, x+42, y+4)
	x += 90
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#e80" stroke-width="3" stroke-dasharray="2 4"/><text x="%.0f" y="%.0f">standby</text>`, x, y, x+36, y, x+42, y+4)
	x += 110
	if route {
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#27f" stroke-width="9" stroke-opacity=".45"/><text x="%.0f" y="%.0f">the subject's route</text>`, x, y, x+36, y, x+42, y+4)
	}
	b.WriteString(`</g>`)
}

// linkPath is the SVG path of the link from a at pa to b at pb: a
// straight line, or, when that would cross an obstacle (a name, or a
// broker other than a and b), the least bowed of a few curves, each side
// in turn, that crosses none; the straight line when every one does.
// Every drawing of a map is the same.
func linkPath(pa, pb [2]float64, a, b string, obstacles []obstacle) string {
	dx, dy := pb[0]-pa[0], pb[1]-pa[1]
	length := math.Hypot(dx, dy)
	straight := fmt.Sprintf("M%.0f %.0f L%.0f %.0f", pa[0], pa[1], pb[0], pb[1])
	if length == 0 {
		return straight
	}
	var near []obstacle
	for _, o := range obstacles {
		if o.owner != a && o.owner != b || o.owner == "" {
			near = append(near, o)
		}
	}
	// A control point off the midpoint, across the line: the curve passes
	// half as far from the line.
	for _, f := range []float64{0, 0.12, -0.12, 0.22, -0.22, 0.34, -0.34, 0.5, -0.5, 0.7, -0.7} {
		bend := f * length
		if f != 0 && math.Abs(bend) < 40 {
			bend = math.Copysign(40, f)
		}
		cx, cy := (pa[0]+pb[0])/2-dy/length*bend, (pa[1]+pb[1])/2+dx/length*bend
		if !crosses(pa, [2]float64{cx, cy}, pb, near) {
			if f == 0 {
				return straight
			}
			return fmt.Sprintf("M%.0f %.0f Q%.0f %.0f %.0f %.0f", pa[0], pa[1], cx, cy, pb[0], pb[1])
		}
	}
	return straight
}

// crosses says whether the quadratic curve from p0 through control c to p1
// passes through any of obstacles, tried at 48 points along it.
func crosses(p0, c, p1 [2]float64, obstacles []obstacle) bool {
	for i := 1; i < 48; i++ {
		t := float64(i) / 48
		x := (1-t)*(1-t)*p0[0] + 2*(1-t)*t*c[0] + t*t*p1[0]
		y := (1-t)*(1-t)*p0[1] + 2*(1-t)*t*c[1] + t*t*p1[1]
		for _, o := range obstacles {
			if o.holds(x, y) {
				return true
			}
		}
	}
	return false
}

// costColor is a cost's colour between lo (green) and hi (red); grey when
// unknown.
func costColor(c, lo, hi float64) string {
	if math.IsNaN(c) || math.IsInf(c, 0) {
		return "#999"
	}
	f := 0.0
	if hi > lo {
		f = (c - lo) / (hi - lo)
	}
	return fmt.Sprintf("rgb(%d,%d,60)", int(40+200*f), int(170-120*f))
}

// last is an address's last label.
func last(addr string) string {
	if i := strings.LastIndexByte(addr, '.'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
