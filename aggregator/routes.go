package aggregator

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/schema"
)

// The aggregator keeps every broker's latest routing state (schema.State,
// on $WL.state.<domain>) in memory, notes each change of a next hop as a
// route change, and answers which way a subject's messages go.

// maxRouteChanges bounds the route changes kept, newest first.
const maxRouteChanges = 500

func (a *Aggregator) onState(m *nats.Msg) {
	st, err := schema.DecodeState(m.Data)
	if err != nil {
		a.stats.BadStates.Add(1)
		a.log.Warn("state refused", slog.Any("err", err))
		return
	}
	if a.cfg.Domain != AllDomains && st.Domain != a.cfg.Domain {
		a.stats.BadStates.Add(1)
		a.log.Warn("state of another domain refused", slog.String("broker", st.Broker), slog.String("domain", st.Domain))
		return
	}
	a.mu.Lock()
	prev, had := a.states[st.Broker]
	a.states[st.Broker] = st
	a.setContractsLocked(st)
	var changes []schema.RouteChange
	if had {
		changes = routeChanges(prev, st)
		// Newest first.
		slices.Reverse(changes)
		a.routeLog = append(changes, a.routeLog...)
		if len(a.routeLog) > maxRouteChanges {
			a.routeLog = a.routeLog[:maxRouteChanges]
		}
	}
	a.mu.Unlock()
	switch {
	case len(changes) > 0:
		for _, c := range changes {
			// Debug: the pages and /api/route-changes show every one, and
			// at info a network settling would flood the log.
			a.log.Debug("route changed", slog.String("broker", c.Broker), slog.String("profile", c.Profile),
				slog.String("destination", c.Destination), slog.String("from", c.From), slog.String("to", c.To))
		}
		a.live.Publish("route."+st.Broker, liveEvent("route", st.Broker, st.Seq))
	case !had || !slices.EqualFunc(prev.Links, st.Links, schema.StateLink.Equal) || prev.Clients != st.Clients:
		a.live.Publish("state."+st.Broker, liveEvent("state", st.Broker, st.Seq))
	}
}

// routeChanges lists the next hops that differ between two states of one
// broker, in profile and destination order.
func routeChanges(prev, cur schema.State) []schema.RouteChange {
	type key struct{ profile, contract, dst string }
	old := map[key]schema.Route{}
	for _, r := range prev.Routes {
		old[key{r.Profile, r.Contract, r.Destination}] = r
	}
	var out []schema.RouteChange
	seen := map[key]bool{}
	// A contract's changes are shown under "contract <pattern>".
	name := func(r schema.Route) string {
		if r.Contract != "" {
			return r.Profile + " " + r.Contract
		}
		return r.Profile
	}
	for _, r := range cur.Routes {
		k := key{r.Profile, r.Contract, r.Destination}
		seen[k] = true
		if o, ok := old[k]; !ok || o.NextHop != r.NextHop {
			out = append(out, schema.RouteChange{Time: cur.Time, Broker: cur.Broker, Profile: name(r), Destination: r.Destination, From: o.NextHop, To: r.NextHop, Cost: r.Cost})
		}
	}
	for _, r := range prev.Routes {
		if k := (key{r.Profile, r.Contract, r.Destination}); !seen[k] {
			out = append(out, schema.RouteChange{Time: cur.Time, Broker: cur.Broker, Profile: name(r), Destination: r.Destination, From: r.NextHop})
		}
	}
	slices.SortStableFunc(out, func(x, y schema.RouteChange) int {
		return strings.Compare(x.Profile+"\x00"+x.Destination, y.Profile+"\x00"+y.Destination)
	})
	return out
}

// States is every broker's latest routing state, by address.
func (a *Aggregator) States() []schema.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return byAddress(a.states)
}

// RouteChanges is the route changes seen, newest first, at most limit.
func (a *Aggregator) RouteChanges(limit int) []schema.RouteChange {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.routeLog[:min(limit, len(a.routeLog))])
}

// maxHops bounds a path, as brokers bound a message's hops.
const maxHops = 32

// RouteOf follows, hop by hop through each broker's own route table as the
// brokers forward, the way a message on subject published at broker from
// takes to every broker whose clients subscribe to it.
func RouteOf(states []schema.State, subject, from string) (schema.SubjectRoute, error) {
	byAddr := make(map[string]*schema.State, len(states))
	for i := range states {
		byAddr[states[i].Broker] = &states[i]
	}
	src, ok := byAddr[from]
	if !ok {
		return schema.SubjectRoute{}, fmt.Errorf("no state from broker %q", from)
	}
	if subject == "" || strings.ContainsAny(subject, "*> \t") {
		return schema.SubjectRoute{}, fmt.Errorf("subject %q: want a literal subject (no wildcards or spaces)", subject)
	}
	out := schema.SubjectRoute{Subject: subject, From: from, Profile: profileOf(src, subject), Contract: contractOf(src, subject)}
	if out.Contract != "" {
		out.Profile = schema.ContractProfile
	}
	for _, st := range states {
		if !slices.ContainsFunc(st.Subjects, func(p string) bool { return server.SubjectMatchesFilter(subject, p) }) {
			continue
		}
		out.Paths = append(out.Paths, follow(byAddr, out, st.Broker))
	}
	return out, nil
}

// contractOf is the pattern of the delay contract a broker routes subject
// by (the first its routes list that matches), "" for none.
func contractOf(st *schema.State, subject string) string {
	for _, r := range st.Routes {
		if r.Contract != "" && server.SubjectMatchesFilter(subject, r.Contract) {
			return r.Contract
		}
	}
	return ""
}

// profileOf is the cost profile a broker routes subject on, contracts
// aside.
func profileOf(st *schema.State, subject string) string {
	for _, sp := range st.Profiles {
		if server.SubjectMatchesFilter(subject, sp.Subject) {
			return sp.Profile
		}
	}
	if len(st.Routes) > 0 {
		return st.Routes[0].Profile
	}
	return ""
}

// follow walks from broker sr.From to broker to as brokers forward sr's
// subject, with router.Steer over each broker's routes: on its profile,
// or for a delay contract, the contract's route where the message enters
// (which pins its whole path) and the first profile's elsewhere.
func follow(byAddr map[string]*schema.State, sr schema.SubjectRoute, to string) schema.SubjectPath {
	from := sr.From
	p := schema.SubjectPath{To: to, Brokers: []string{from}}
	cur := from
	var exits []router.Exit
	seen := map[string]bool{}
	for range maxHops {
		if cur == to {
			p.Reached = true
			return p
		}
		// A broker holding the same exits twice would go round forever.
		state := fmt.Sprint(cur, exits)
		st := byAddr[cur]
		if seen[state] || st == nil {
			return p
		}
		seen[state] = true
		ways := stateWays{st: st, profile: sr.Profile}
		if sr.Contract != "" {
			ways = stateWays{st: st, contract: sr.Contract}
			if len(st.Routes) > 0 {
				ways.profile = st.Routes[0].Profile
			}
		}
		link, next, err := router.Steer(ways, router.Address(cur), router.Address(to), exits, cur == from,
			func(id string) bool { return peerOf(st, id) != "" })
		if err != nil {
			return p
		}
		exits = next
		peer := peerOf(st, link)
		if peer == "" {
			return p
		}
		p.Brokers = append(p.Brokers, peer)
		p.Links = append(p.Links, link)
		cur = peer
	}
	return p
}

// peerOf is the broker at the other end of one of st's links, "" when st
// has no such link up or in standby.
func peerOf(st *schema.State, id string) string {
	for _, l := range st.Links {
		if l.ID == id && (l.Up || l.Standby) {
			return l.Peer
		}
	}
	return ""
}

// stateWays is a broker's routes on one profile as its state shows them:
// the routes it holds. It passes the messages of other brokers on along
// its cheapest routes, which the state does not carry; the two differ
// only while a held route is within its margin of a cheaper one.
type stateWays struct {
	st      *schema.State
	profile string
	// contract, when set, names the delay contract whose route a message
	// takes where it enters the network.
	contract string
}

func (w stateWays) Way(target router.Address, origin bool) (router.Way, bool) {
	for _, r := range w.st.Routes {
		mine := r.Profile == w.profile && r.Contract == ""
		if w.contract != "" && origin {
			mine = r.Contract == w.contract
		}
		if mine && r.Destination == string(target) {
			way := router.Way{Link: r.Link}
			for _, e := range r.Exits {
				way.Exits = append(way.Exits, router.Exit{Broker: router.Address(e.Broker), Link: e.Link})
			}
			return way, true
		}
	}
	return router.Way{}, false
}
