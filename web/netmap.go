package web

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/wayline/wayline/schema"
)

// The network map: brokers grouped into their clusters, the clusters into
// their super-clusters side by side, and the links between brokers drawn
// as lines coloured by cost (green cheap, red dear) and dashed red when
// down; the links and brokers a subject's messages pass are drawn in blue
// over them. A broker and a link are links to their pages.
const (
	mapColW    = 300 // a super-cluster's column
	mapBoxH    = 90  // a cluster's box
	mapPad     = 20
	mapBrokerR = 9
)

// mapLink is a link as the map draws it: the report of one end.
type mapLink struct {
	id, a, b string
	up       bool
	cost     float64
}

// networkMap draws reps (with the link states of withStates) as an SVG. A
// link is down when either end says so. Links and brokers that only states
// know of are drawn too. route, when not nil, is highlighted.
func networkMap(reps []schema.Report, states []schema.State, route *schema.SubjectRoute) template.HTML {
	brokers := map[string]bool{}
	links := map[string]mapLink{}
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
	for _, st := range states {
		brokers[st.Broker] = true
	}
	for _, r := range reps {
		brokers[r.Broker] = true
		for _, l := range r.Links {
			brokers[l.B] = true
			ml := mapLink{id: l.ID, a: r.Broker, b: l.B, up: l.State == "up", cost: math.NaN()}
			if len(l.Costs) > 0 {
				ml.cost = l.Costs[0].Value
			}
			if prev, ok := links[l.ID]; ok {
				ml.up = ml.up && prev.up // down if either end says so
				ml.a, ml.b = prev.a, prev.b
			}
			links[l.ID] = ml
		}
	}
	for _, st := range states {
		for _, l := range st.Links {
			if prev, ok := links[l.ID]; ok {
				if prev.a != st.Broker && prev.b == st.Broker {
					prev.up = prev.up && l.Up
					links[l.ID] = prev
				}
				continue
			}
			brokers[l.Peer] = true
			links[l.ID] = mapLink{id: l.ID, a: st.Broker, b: l.Peer, up: l.Up, cost: math.NaN()}
		}
	}
	delete(brokers, "")
	// Columns by super-cluster, boxes by cluster, in name order.
	names := make([]string, 0, len(brokers))
	for b := range brokers {
		names = append(names, b)
	}
	slices.Sort(names)
	type box struct {
		name    string
		brokers []string
	}
	var supers []string
	clusters := map[string][]*box{}
	byName := map[string]*box{}
	for _, b := range names {
		sc, cl := prefix(b, 2), prefix(b, 3)
		if _, ok := clusters[sc]; !ok {
			supers = append(supers, sc)
		}
		bx := byName[cl]
		if bx == nil {
			bx = &box{name: cl}
			byName[cl] = bx
			clusters[sc] = append(clusters[sc], bx)
		}
		bx.brokers = append(bx.brokers, b)
	}
	pos := map[string][2]float64{}
	rowsMax := 0
	var frames strings.Builder
	for i, sc := range supers {
		x := float64(mapPad + i*mapColW)
		rowsMax = max(rowsMax, len(clusters[sc]))
		fmt.Fprintf(&frames, `<text x="%.0f" y="%d" class="super">%s</text>`, x, mapPad, template.HTMLEscapeString(sc))
		for j, bx := range clusters[sc] {
			y := float64(mapPad + 10 + j*(mapBoxH+mapPad))
			fmt.Fprintf(&frames, `<rect x="%.0f" y="%.0f" width="%d" height="%d" rx="8" class="cluster"/>`, x, y, mapColW-2*mapPad, mapBoxH)
			fmt.Fprintf(&frames, `<text x="%.0f" y="%.0f" class="clustername">%s</text>`, x+6, y+14, template.HTMLEscapeString(bx.name))
			step := float64(mapColW-2*mapPad) / float64(len(bx.brokers)+1)
			for k, b := range bx.brokers {
				pos[b] = [2]float64{x + step*float64(k+1), y + mapBoxH/2 + 8}
			}
		}
	}
	w := mapPad*2 + len(supers)*mapColW
	h := mapPad*3 + rowsMax*(mapBoxH+mapPad)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="map" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="network map">`, w, h, w, h)
	b.WriteString(frames.String())
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range links {
		if !math.IsNaN(l.cost) && !math.IsInf(l.cost, 0) {
			lo, hi = min(lo, l.cost), max(hi, l.cost)
		}
	}
	ids := make([]string, 0, len(links))
	for id := range links {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		l := links[id]
		pa, oka := pos[l.a]
		pb, okb := pos[l.b]
		if !oka || !okb {
			continue
		}
		style := fmt.Sprintf(`stroke="%s" stroke-width="3"`, costColor(l.cost, lo, hi))
		title := fmt.Sprintf("%s - %s, cost %.1f", l.a, l.b, l.cost)
		state := "up"
		if !l.up {
			state = "down"
			style = `stroke="#b00" stroke-width="3" stroke-dasharray="6 4" class="down"`
			title = fmt.Sprintf("%s - %s, down", l.a, l.b)
		}
		d := linkPath(pa, pb, pos)
		if onRoute[l.id] {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#27f" stroke-width="9" stroke-opacity=".45" class="route" data-route-link="%s"/>`,
				d, template.HTMLEscapeString(l.id))
		}
		fmt.Fprintf(&b, `<a href="/links/%s"><path d="%s" fill="none" %s data-link="%s" data-state="%s"><title>%s</title></path></a>`,
			template.HTMLEscapeString(url.PathEscape(l.id)), d, style,
			template.HTMLEscapeString(l.id), state, template.HTMLEscapeString(title))
	}
	for _, name := range names {
		p := pos[name]
		class := "broker"
		if onRoute[name] {
			class = "broker onroute"
		}
		fmt.Fprintf(&b, `<a href="/brokers/%s"><circle cx="%.0f" cy="%.0f" r="%d" class="%s" data-broker="%s"><title>%s</title></circle>`+
			`<text x="%.0f" y="%.0f" class="brokername" text-anchor="middle">%s</text></a>`,
			template.HTMLEscapeString(url.PathEscape(name)), p[0], p[1], mapBrokerR, class, template.HTMLEscapeString(name),
			template.HTMLEscapeString(name), p[0], p[1]+mapBrokerR+12, template.HTMLEscapeString(last(name)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// linkPath is the SVG path of a link between the brokers at pa and pb: a
// straight line, or, when that would pass over another broker (of pos),
// a curve that bows away from it, so that no link seems to end at a
// broker it does not reach.
func linkPath(pa, pb [2]float64, pos map[string][2]float64) string {
	dx, dy := pb[0]-pa[0], pb[1]-pa[1]
	length := math.Hypot(dx, dy)
	if length == 0 {
		return fmt.Sprintf("M%.0f %.0f L%.0f %.0f", pa[0], pa[1], pb[0], pb[1])
	}
	// The broker nearest the line decides the side the curve bows to,
	// away from it (above the line for one right on it); ties go to the
	// first by position, so that every drawing of a map is the same.
	side, nearest := 0.0, math.Inf(1)
	var at [2]float64
	for _, p := range pos {
		if p == pa || p == pb {
			continue
		}
		// Where along the segment p is closest, and how far from it.
		t := ((p[0]-pa[0])*dx + (p[1]-pa[1])*dy) / (length * length)
		if t <= 0 || t >= 1 {
			continue
		}
		cross := (dx*(p[1]-pa[1]) - dy*(p[0]-pa[0])) / length
		d := math.Abs(cross)
		if d >= mapBrokerR+6 || d > nearest || d == nearest && (p[0] > at[0] || p[0] == at[0] && p[1] > at[1]) {
			continue
		}
		nearest, at, side = d, p, -1
		if cross < 0 {
			side = 1
		}
	}
	if side == 0 {
		return fmt.Sprintf("M%.0f %.0f L%.0f %.0f", pa[0], pa[1], pb[0], pb[1])
	}
	// The control point sits off the midpoint, across the line; the curve
	// passes half as far from the line as its control point.
	bend := max(2*(mapBrokerR+14), 0.25*length) * side
	cx, cy := (pa[0]+pb[0])/2-dy/length*bend, (pa[1]+pb[1])/2+dx/length*bend
	return fmt.Sprintf("M%.0f %.0f Q%.0f %.0f %.0f %.0f", pa[0], pa[1], cx, cy, pb[0], pb[1])
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

// prefix is the first n labels of an address.
func prefix(addr string, n int) string {
	labels := strings.SplitN(addr, ".", n+1)
	if len(labels) <= n {
		return addr
	}
	return strings.Join(labels[:n], ".")
}

// last is an address's last label.
func last(addr string) string {
	if i := strings.LastIndexByte(addr, '.'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
