package broker

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/schema"
	"github.com/wayline/wayline/transports"
)

// The answers of the per-broker HTTP API. Field names are a contract;
// fields may be added.

func linkMetrics(m monitor.Metrics) netapi.LinkMetrics {
	return netapi.LinkMetrics{
		RTT: m.RTT,
		Latency: netapi.LatencySummary{
			Min: m.Latency.Min, Mean: m.Latency.Mean, P50: m.Latency.P50,
			P90: m.Latency.P90, P99: m.Latency.P99, Max: m.Latency.Max,
		},
		Jitter:        m.JitterMeanDiff,
		JitterRFC3550: m.JitterRFC3550,
		JitterIPDV:    m.JitterIPDV,
		Loss:          (m.LossForward + m.LossReverse) / 2,
		LossForward:   m.LossForward,
		LossReverse:   m.LossReverse,
		LossRoundTrip: m.Loss,
		Outage:        m.Outage,
		Reordered:     m.Reordered,
		Duplicated:    m.Duplicated,
		Samples:       m.Samples,
		Interval:      float64(m.Interval) / float64(time.Millisecond),
		State:         m.State.String(),
		ProbesSent:    m.Sent,
		ProbesRecvd:   m.Received,
		ProbesLost:    m.Lost,
	}
}

// RouteInfo is one entry of GET /api/routes, and of a broker's state.
type RouteInfo = schema.Route

// InterestInfo is one entry of GET /api/interest.
type InterestInfo struct {
	Subject string   `json:"subject"`
	Queue   string   `json:"queue,omitempty"`
	Brokers []string `json:"brokers"`
}

// StatusInfo is GET /api/status: the broker and its drop counters.
type StatusInfo struct {
	Address    string    `json:"address"`
	Started    time.Time `json:"started"`
	ClientURL  string    `json:"client_url"`
	LeafURL    string    `json:"leaf_url,omitempty"`
	Overlay    []string  `json:"overlay"`
	Leaves     []string  `json:"leaves"`
	NoRoute    uint64    `json:"dropped_no_route"`
	HopLimit   uint64    `json:"dropped_hop_limit"`
	Duplicates uint64    `json:"dropped_duplicates"`
	Reserved   uint64    `json:"dropped_reserved_subject"`
	NoMember   uint64    `json:"dropped_no_queue_member"`
	LeafDrops  uint64    `json:"dropped_leaf_queue_full"`
	// LinkDrops sums the drops of every link by reason (see
	// netapi.LinkInfo), and Rerouted the messages failed links left
	// unacknowledged that were routed again.
	LinkDrops map[string]uint64 `json:"dropped_on_links"`
	// LinkDropsByClass sums them by priority class and reason.
	LinkDropsByClass map[string]map[string]uint64 `json:"dropped_on_links_by_class"`
	Rerouted         uint64                       `json:"rerouted"`
	// HeldForOrder counts the messages for this broker held until those
	// before them in their stream had come, OrderWaitsExpired the times it
	// stopped waiting for those (and delivered what it held without
	// them), and OutOfOrder the messages it delivered after a later one
	// of their stream: see order.go.
	HeldForOrder      uint64 `json:"held_for_order"`
	OrderWaitsExpired uint64 `json:"order_waits_expired"`
	OutOfOrder        uint64 `json:"delivered_out_of_order"`
	BadFrames         uint64 `json:"bad_frames"`
	BadProbes         uint64 `json:"bad_probes"`
	// ForgedFrames counts frames that failed authentication on a link;
	// RefusedLinks inbound links refused or dropped during their handshake
	// (not authenticated, not a link of this broker, garbage, too many at
	// once, or silent); RefusedLeaves leaf connections refused (wrong or
	// no credentials, too many waiting to sign in).
	ForgedFrames  uint64 `json:"forged_frames"`
	RefusedLinks  uint64 `json:"refused_links"`
	RefusedLeaves uint64 `json:"refused_leaves"`
	// DroppedDatagrams counts the datagrams the udp transport of this
	// process dropped: malformed, unexpected, beyond a full queue or the
	// fragment reassembly budget.
	DroppedDatagrams uint64 `json:"dropped_datagrams"`
	// BadInterest counts interest updates refused (an epoch in the
	// future).
	BadInterest uint64 `json:"bad_interest_updates"`
	// Ends is the way from a client through the embedded server into the
	// core and back out, which contract predictions add to every path;
	// absent for a broker without contracts (see ends.go).
	Ends *EndsInfo `json:"ends,omitempty"`
	// Cost updates: refused (not the owner, bad costs, out of scope),
	// stale (older than held), originated here; route computations and
	// their mean time.
	BadUpdates   uint64 `json:"bad_cost_updates"`
	StaleUpdates uint64 `json:"stale_cost_updates"`
	UpdatesSent  uint64 `json:"cost_updates_sent"`
	// UpdatesCarried counts the cost update copies this broker sent
	// across its links, its own and those it passed on. Unit summaries
	// count as cost updates; SummariesSent counts those originated here.
	UpdatesCarried uint64 `json:"cost_updates_carried"`
	SummariesSent  uint64 `json:"summaries_sent"`
	// What the broker's network map is made of: the cost updates and the
	// unit summaries it holds (the latest of each origin and unit), and
	// the brokers the summaries list in all.
	LinkStatesHeld int     `json:"cost_updates_held"`
	SummariesHeld  int     `json:"summaries_held"`
	SummaryEntries int     `json:"summary_entries"`
	Recomputes     uint64  `json:"route_recomputes"`
	RecomputeUs    float64 `json:"route_recompute_mean_us"`
	// RoutesChanged is when a next hop last changed, in any profile.
	RoutesChanged time.Time `json:"routes_changed_at"`
	// Reports are the performance reports sent to the aggregator.
	Reports ReportStats `json:"reports"`
	Replies int64       `json:"reply_routes"`

	// QueueGroups counts, for each queue group with a routing policy,
	// the messages published here by where they went (QueueCounts).
	QueueGroups map[string]map[string]uint64 `json:"queue_groups,omitempty"`
	// BadQueueLoads counts the load reports of queue groups refused:
	// malformed, or published at another broker than the one they name.
	BadQueueLoads uint64 `json:"bad_queue_load_reports"`
}

// Links describes every link of the broker, sorted by peer.
func (b *Broker) Links() []netapi.LinkInfo {
	b.mu.Lock()
	links := make([]*link, 0, len(b.links))
	for _, l := range b.links {
		links = append(links, l)
	}
	b.mu.Unlock()
	out := make([]netapi.LinkInfo, 0, len(links))
	for _, l := range links {
		state, since, lastErr := l.state()
		info := netapi.LinkInfo{
			ID: l.cfg.ID, Peer: l.cfg.Peer, Transport: l.cfg.Transport,
			State: state, Since: since, Dialer: l.cfg.Dial != "", LastError: lastErr,
			MsgsSent: l.counters.MsgsSent.Load(), MsgsRecv: l.counters.MsgsRecv.Load(),
			BytesSent: l.counters.BytesSent.Load(), BytesRecv: l.counters.BytesRecv.Load(),
			Dropped: l.counters.Drops.Total(), Drops: l.counters.Drops.ByReason(), DroppedBytes: l.counters.Drops.Bytes(),
			DropsByClass: l.counters.Drops.ByClass(),
			Rerouted:     l.rerouted.Load(), Unprotected: l.counters.Unprotected.Load(),
			Ups: l.ups.Load(), Excluded: l.excluded.Load(),
			Metrics: linkMetrics(l.mon.Snapshot()),
		}
		if at := l.stateAt.Load(); at != 0 {
			info.Metrics.StateSince = time.Unix(0, at)
		}
		if e := l.emulation(); e != nil {
			spec := transports.SpecOf(*e)
			info.Emulation = &spec
		}
		if !l.usable() {
			info.State = "down"
		}
		info.Standby = l.inStandby()
		if s := l.sess.Load(); s != nil {
			info.QueueBytes = s.Queued()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Routes lists the route to every node of the broker's network map (each
// broker of its cluster, and each unit beside one of its own), for every
// cost profile, or for the one named profile ("" for all). It reports
// false for an unknown profile.
func (b *Broker) Routes() []RouteInfo {
	out, _ := b.RoutesFor("")
	return out
}

// RoutesFor is Routes for one profile, or for all when profile is "";
// the profile "contract" lists the routes of the delay contracts.
func (b *Broker) RoutesFor(profile string) ([]RouteInfo, bool) {
	rt := b.routes.Load()
	out := []RouteInfo{}
	found := profile == ""
	for p, t := range rt.tables[:min(len(rt.tables), len(b.profiles))] {
		name := b.profiles[p].Name
		if profile != "" && name != profile {
			continue
		}
		found = true
		for _, r := range t.Routes() {
			if string(r.Destination) != b.cfg.Address {
				out = append(out, routeInfo(r, name))
			}
		}
	}
	if profile != "" && profile != router.ContractProfileName {
		return out, found
	}
	found = found || len(b.cfg.Routing.Contracts) > 0
	for i, c := range b.cfg.Routing.Contracts {
		if len(b.profiles)+i >= len(rt.tables) {
			break
		}
		for _, r := range rt.tables[len(b.profiles)+i].ContractRoutes() {
			if string(r.Destination) == b.cfg.Address {
				continue
			}
			ri := routeInfo(r.Route, router.ContractProfileName)
			ri.Contract, ri.Prediction = c.Subject, prediction(c.Contract, r)
			out = append(out, ri)
		}
	}
	return out, found
}

// routeInfo is how the API shows a route.
func routeInfo(r router.Route, profile string) RouteInfo {
	path := make([]string, len(r.Path))
	for i, a := range r.Path {
		path[i] = string(a)
	}
	var exits []schema.RouteExit
	for _, e := range r.Exits {
		exits = append(exits, schema.RouteExit{Broker: string(e.Broker), Link: e.Link})
	}
	return RouteInfo{Destination: string(r.Destination), NextHop: string(r.NextHop), Link: r.Link, Cost: r.Cost, Path: path, Profile: profile, Exits: exits}
}

// cdfLevels are the fractions at which a prediction samples its path's
// distribution for the pages.
var cdfLevels = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999}

// prediction is how the API shows what a contract route promises.
func prediction(c router.Contract, r router.ContractRoute) *schema.Prediction {
	p := r.Prediction
	out := &schema.Prediction{Status: p.Status, Loss: p.Loss}
	for i, bd := range c.Within {
		pb := schema.PredictedBound{P: 100 * bd.P, Ms: bd.Ms, Reached: min(100, 100*p.Reached[i])}
		if d := p.Delay[i]; !math.IsInf(d, 0) && !math.IsNaN(d) {
			pb.PredictedMs = &d
		}
		out.Bounds = append(out.Bounds, pb)
	}
	for _, q := range cdfLevels {
		if ms := r.Delay.Quantile(q); r.Delay.Total() > 0 && !math.IsInf(ms, 0) {
			out.CDF = append(out.CDF, schema.CDFPoint{Ms: ms, P: 100 * q})
		}
	}
	return out
}

// Interest lists the subjects wanted anywhere in the network, with the
// reachable brokers that want them ("local" entries are this broker's).
func (b *Broker) Interest() []InterestInfo {
	rt := b.routes.Load()
	b.mu.Lock()
	byKey := map[string]*InterestInfo{}
	add := func(subject, queue, broker string) {
		k := entryKey(subject, queue)
		ii, ok := byKey[k]
		if !ok {
			ii = &InterestInfo{Subject: subject, Queue: queue}
			byKey[k] = ii
		}
		for _, x := range ii.Brokers {
			if x == broker {
				return
			}
		}
		ii.Brokers = append(ii.Brokers, broker)
	}
	for _, op := range b.interest.local {
		add(op.Subject, op.Queue, b.cfg.Address)
	}
	for addr, o := range b.interest.remote {
		if !rt.reaches(0, []byte(addr)) {
			continue
		}
		for _, e := range o.entries {
			add(e.subject, e.queue, addr)
		}
	}
	b.mu.Unlock()
	out := make([]InterestInfo, 0, len(byKey))
	for _, ii := range byKey {
		sort.Strings(ii.Brokers)
		out = append(out, *ii)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := strings.Compare(out[i].Subject, out[j].Subject); c != 0 {
			return c < 0
		}
		return out[i].Queue < out[j].Queue
	})
	return out
}

// Messages is what the broker did with messages itself rather than on a
// link, by the names of its JSON fields (schema.MessageCounters): its own
// drops, the messages routed again, and those held for order.
func (s StatusInfo) Messages() map[string]uint64 {
	return map[string]uint64{
		"dropped_no_route": s.NoRoute, "dropped_hop_limit": s.HopLimit, "dropped_duplicates": s.Duplicates,
		"dropped_reserved_subject": s.Reserved, "dropped_no_queue_member": s.NoMember, "dropped_leaf_queue_full": s.LeafDrops,
		"rerouted": s.Rerouted, "held_for_order": s.HeldForOrder, "order_waits_expired": s.OrderWaitsExpired,
		"delivered_out_of_order": s.OutOfOrder,
	}
}

// Status reports the broker's addresses and drop counters.
func (b *Broker) Status() StatusInfo {
	b.mu.Lock()
	var leaves []string
	var leafDrops uint64
	for l := range b.leaves {
		leaves = append(leaves, l.Name())
		leafDrops += l.out.Dropped()
	}
	linkDrops, classDrops := map[string]uint64{}, map[string]map[string]uint64{}
	badFrames, forgedFrames := b.stats.badFrames.Load(), uint64(0)
	for _, l := range b.links {
		for name, n := range l.counters.Drops.ByReason() {
			linkDrops[name] += n
		}
		for class, by := range l.counters.Drops.ByClass() {
			if classDrops[class] == nil {
				classDrops[class] = map[string]uint64{}
			}
			for name, n := range by {
				classDrops[class][name] += n
			}
		}
		badFrames += l.counters.BadFrames.Load()
		forgedFrames += l.counters.ForgedFrames.Load()
	}
	lsHeld, sumHeld, entries := len(b.lsdb), len(b.sumdb), 0
	for _, s := range b.sumdb {
		entries += len(s.Dests)
	}
	b.mu.Unlock()
	sort.Strings(leaves)
	return StatusInfo{
		Address:           b.cfg.Address,
		Started:           time.Unix(0, int64(b.epoch)),
		ClientURL:         b.ClientURL(),
		LeafURL:           b.LeafURL(),
		Overlay:           b.OverlayURLs(),
		Leaves:            leaves,
		NoRoute:           b.stats.noRoute.Load(),
		HopLimit:          b.stats.hopLimit.Load(),
		Duplicates:        b.stats.duplicates.Load(),
		Reserved:          b.stats.reserved.Load(),
		NoMember:          b.stats.noMember.Load(),
		LeafDrops:         leafDrops,
		LinkDrops:         linkDrops,
		LinkDropsByClass:  classDrops,
		Rerouted:          b.stats.rerouted.Load(),
		HeldForOrder:      b.stats.heldForOrder.Load(),
		OrderWaitsExpired: b.stats.orderGaveUp.Load(),
		OutOfOrder:        b.stats.outOfOrder.Load(),
		BadFrames:         badFrames,
		BadProbes:         b.stats.badProbes.Load(),
		ForgedFrames:      forgedFrames,
		RefusedLinks:      b.stats.refusedLinks.Load(),
		RefusedLeaves:     b.stats.refusedLeaves.Load(),
		DroppedDatagrams:  transports.DroppedDatagrams(),
		BadInterest:       b.stats.badInterest.Load(),
		BadUpdates:        b.stats.badUpdates.Load(),
		StaleUpdates:      b.stats.staleUpdates.Load(),
		UpdatesSent:       b.stats.updatesSent.Load(),
		UpdatesCarried:    b.stats.updatesCarried.Load(),
		SummariesSent:     b.stats.summariesSent.Load(),
		LinkStatesHeld:    lsHeld,
		SummariesHeld:     sumHeld,
		SummaryEntries:    entries,
		Recomputes:        b.stats.recomputes.Load(),
		RecomputeUs:       meanMicros(b.stats.recomputeNanos.Load(), b.stats.recomputes.Load()),
		RoutesChanged:     time.Unix(0, b.stats.routesChanged.Load()),
		Reports:           b.reportStats(),
		Replies:           b.replies.size.Load(),
		QueueGroups:       b.QueueCounts(),
		BadQueueLoads:     b.stats.badQueueLoads.Load(),
		Ends:              b.endsInfo(),
	}
}

func meanMicros(nanos, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(nanos) / float64(n) / 1e3
}

// ContractRoute returns the route of the delay contract whose subject
// pattern is subject towards broker dst, with its path's composed delay
// distribution and what that promises; false when there is no such
// contract or route.
func (b *Broker) ContractRoute(subject, dst string) (router.ContractRoute, bool) {
	rt := b.routes.Load()
	for i, c := range b.cfg.Routing.Contracts {
		if c.Subject == subject && len(b.profiles)+i < len(rt.tables) {
			return rt.tables[len(b.profiles)+i].LookupContract(router.Address(dst))
		}
	}
	return router.ContractRoute{}, false
}
