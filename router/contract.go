package router

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wayline/wayline/internal/selection"
)

// A Contract states what a subject's messages need of their path as a
// distribution, in the quality-attenuation sense: a fraction of messages
// within each delay, and at most so much lost. A message that never
// arrives counts against every bound, so "99% within 100 ms" also asks
// that less than 1% be lost.
type Contract struct {
	Within  []Bound // by ascending P
	MaxLoss float64 // a fraction in [0, 1]; 1 asks nothing of loss
}

// Bound asks that a fraction P of messages (0 < P < 1) arrive within Ms
// milliseconds.
type Bound struct {
	P, Ms float64
}

// Validate checks that c asks something sensible: at least one bound,
// fractions in (0, 1) and delays > 0, both rising from bound to bound, and
// a loss in [0, 1].
func (c Contract) Validate() error {
	if len(c.Within) == 0 {
		return errors.New("no bound: give within, like [{p: 99, ms: 100}]")
	}
	for i, b := range c.Within {
		if !(b.P > 0 && b.P < 1) {
			return fmt.Errorf("within[%d]: p %v%% is not between 0 and 100", i, b.P*100)
		}
		if !(b.Ms > 0) || math.IsInf(b.Ms, 1) {
			return fmt.Errorf("within[%d]: %v ms is not a delay above 0", i, b.Ms)
		}
		if i > 0 && (b.P <= c.Within[i-1].P || b.Ms < c.Within[i-1].Ms) {
			return fmt.Errorf("within[%d]: bounds must rise: p%v within %v ms follows p%v within %v ms",
				i, b.P*100, b.Ms, c.Within[i-1].P*100, c.Within[i-1].Ms)
		}
	}
	if !(c.MaxLoss >= 0 && c.MaxLoss <= 1) {
		return fmt.Errorf("max_loss %v is not a fraction between 0 and 1", c.MaxLoss)
	}
	return nil
}

// Contract states, from the best to the worst.
const (
	// Met: every bound and the loss limit hold, each with room to spare.
	Met = "met"
	// AtRisk: every bound holds, but one is close: the predicted delay at
	// a bound's fraction is above 80% of its delay, or the predicted loss
	// above 80% of the limit.
	AtRisk = "at risk"
	// Breached: a bound or the loss limit does not hold.
	Breached = "breached"
	// Unknown: some link of the path has no measured distribution yet.
	Unknown = "unknown"
)

// ContractProfileName is what route listings name the routes of delay
// contracts by, in place of a profile; no profile may take it.
const ContractProfileName = "contract"

// riskShare is how close to a bound a prediction is "at risk".
const riskShare = 0.8

// Prediction is what a path's composed delay distribution promises of a
// contract.
type Prediction struct {
	// Delay is, per bound, the delay (ms) within which the bound's
	// fraction arrives; +Inf when that fraction never arrives.
	Delay []float64
	// Reached is, per bound, the fraction that arrives within its delay.
	Reached []float64
	Loss    float64 // the fraction that never arrives
	Status  string  // Met, AtRisk, Breached or Unknown
	// Score orders predictions, higher better: the smallest room left
	// under any bound or the loss limit, each as a share of what the
	// bound allows (negative when it is broken).
	Score float64
}

// Predict judges the delay distribution h of a path (as Convolve returns
// it: probabilities, Missing the loss) against c. An empty h is Unknown.
func (c Contract) Predict(h Histogram) Prediction {
	p := Prediction{Delay: make([]float64, len(c.Within)), Reached: make([]float64, len(c.Within))}
	total := h.Total()
	if total == 0 {
		for i := range p.Delay {
			p.Delay[i] = math.Inf(1)
		}
		p.Loss, p.Status, p.Score = 1, Unknown, math.Inf(-1)
		return p
	}
	p.Loss = h.Missing / total
	p.Score = math.Inf(1)
	risk := false
	for i, b := range c.Within {
		p.Delay[i] = h.Quantile(b.P)
		p.Reached[i] = h.CDFAt(b.Ms)
		// Room under the bound, as a share of its delay: 0.25 when the
		// fraction arrives within three quarters of the delay.
		room := 1 - p.Delay[i]/b.Ms
		if math.IsInf(p.Delay[i], 1) {
			room = -1 - (b.P-p.Reached[i])/b.P
		}
		p.Score = min(p.Score, room)
		risk = risk || p.Delay[i] > riskShare*b.Ms
	}
	if c.MaxLoss < 1 {
		room := 1.0
		if c.MaxLoss > 0 {
			room = 1 - p.Loss/c.MaxLoss
		} else if p.Loss > 0 {
			room = -1
		}
		p.Score = min(p.Score, room)
		risk = risk || p.Loss > riskShare*c.MaxLoss
	}
	switch {
	case p.Score < 0:
		p.Status = Breached
	case risk:
		p.Status = AtRisk
	default:
		p.Status = Met
	}
	return p
}

// CDFAt is the fraction of the total that arrives within ms, counting
// a bucket whose delays (see reach) straddle ms in proportion, as if they
// were uniform in it.
func (h Histogram) CDFAt(ms float64) float64 {
	total := h.Total()
	if total == 0 {
		return 0
	}
	var s float64
	for k, b := range h.Buckets {
		lo, hi := h.reach(k)
		if lo >= ms {
			break
		}
		if hi <= ms {
			s += b.Count
			continue
		}
		s += b.Count * (ms - lo) / (hi - lo)
	}
	return s / total
}

// Mean is the mean delay of what arrives, in ms (each bucket taken at its
// middle, the last at its start); NaN for a histogram where nothing
// arrives.
func (h Histogram) Mean() float64 {
	var s, n float64
	for _, b := range h.Buckets {
		lo, hi := BucketBounds(b.Index)
		if math.IsInf(hi, 1) {
			hi = lo
		}
		s += b.Count * (lo + hi) / 2
		n += b.Count
	}
	if n == 0 {
		return math.NaN()
	}
	return s / n
}

// compactWidth weighs a merge's relative width against its share of the
// mass in Compact. Against the emulation's jitter (bench contracts
// --model-only --seeds 20: uniform, normal and Pareto, 2-4 hops of 2048
// probes, 32 buckets), 0.1 gave the least KS distance (0.037 at worst),
// with Pareto p99s of single draws up to 19.9% off. 0.2 kept those within
// 12.7% (KS 0.039), but its composed paths spread wider, and route
// computation with contracts at 10,000 brokers took a median of 5.5 ms an
// update against 4.0. Merging by mass times width, as Compact did before,
// left the steep head of a Pareto hop's distribution as one bucket of 11%
// of the mass (worst KS 0.065, p99 14.1%).
const compactWidth = 0.1

// Compact returns h with at most n buckets (n >= 2), for sending: while
// there are more, the two neighbouring buckets cheapest to merge are
// merged, into the bucket that holds their mean. A merge costs the share
// of the arrived mass the two hold together, plus compactWidth times
// their width relative to the delays they reach: the first keeps every
// bucket a small share (each is a step of that share in the CDF, which
// reach smooths but does not remove), the second keeps the buckets of a
// long tail apart, so that its quantiles keep their place. The total and
// the missing mass are kept; a bucket's mass moves by at most the width
// of what was merged into it.
func (h Histogram) Compact(n int) Histogram {
	if len(h.Buckets) <= n || n < 2 {
		return h
	}
	type span struct {
		mass, sum float64 // mass, and mass times delay
		lo, hi    float64
	}
	spans := make([]span, len(h.Buckets))
	for i, b := range h.Buckets {
		lo, hi := BucketBounds(b.Index)
		if math.IsInf(hi, 1) {
			hi = lo
		}
		spans[i] = span{mass: b.Count, sum: b.Count * (lo + hi) / 2, lo: lo, hi: hi}
	}
	arrived := h.Arrived()
	cost := func(a, b span) float64 { return (a.mass+b.mass)/arrived + compactWidth*(b.hi-a.lo)/b.hi }
	// Each pass merges the cheapest pairs, up to half of the spans at
	// once, never a span twice, so that many buckets take a few passes,
	// not one per bucket too many.
	costs := make([]float64, 0, len(spans))
	limit := make([]float64, 0, len(spans))
	for len(spans) > n {
		costs = costs[:0]
		for i := 0; i+1 < len(spans); i++ {
			costs = append(costs, cost(spans[i], spans[i+1]))
		}
		need := max(1, min(len(spans)-n, len(spans)/4))
		limit = append(limit[:0], costs...)
		threshold := selection.Nth(limit, need-1)
		merged, w := 0, 0
		for i := 0; i < len(spans); i++ {
			if merged < need && i+1 < len(spans) && costs[i] <= threshold {
				a, b := spans[i], spans[i+1]
				spans[w] = span{mass: a.mass + b.mass, sum: a.sum + b.sum, lo: a.lo, hi: b.hi}
				merged++
				i++
			} else {
				spans[w] = spans[i]
			}
			w++
		}
		spans = spans[:w]
	}
	out := Histogram{Missing: h.Missing, Buckets: make([]Bucket, 0, len(spans))}
	for _, s := range spans {
		i := BucketOf(s.sum / s.mass)
		if k := len(out.Buckets); k > 0 && out.Buckets[k-1].Index >= i {
			// Two means in one bucket: keep the indices rising.
			out.Buckets[k-1].Count += s.mass
			continue
		}
		out.Buckets = append(out.Buckets, Bucket{Index: i, Count: s.mass})
	}
	return out
}

// delayWeights is the number of searches, besides the first profile's,
// that a contract's candidate paths come from: one by the links' mean
// delays, one by their tail delays. The graph carries their weights as
// profiles after the map's own.
const delayWeights = 2

// tailQuantile is the fraction of the arrived delays whose delay is a
// link's tail weight.
const tailQuantile = 0.99

// weightsOf returns what a link or summary arc weighs in the candidate
// searches: its mean delay, and the delay within which tailQuantile of
// what arrives arrives; +Inf for both when nothing is measured.
func weightsOf(h Histogram) (mean, tail float64) {
	arrived := h.Arrived()
	if arrived == 0 {
		return math.Inf(1), math.Inf(1)
	}
	return h.Mean(), h.Quantile(tailQuantile * arrived / h.Total())
}

// arcDelay is the delay distribution over the arc via (at pos, for a
// summary arc).
func (g *Graph) arcDelay(via, pos int32) Histogram {
	if via >= 0 {
		return g.delays[via]
	}
	return g.sums[-2-via].delays[pos]
}

// atZero is the distribution of no delay at all: the empty path's.
var atZero = Histogram{Buckets: []Bucket{{Index: 0, Count: 1}}}

// composeBuckets bounds the buckets of a path's composed distribution,
// kept at each hop (see Compact): a path of many hops would otherwise
// spread over hundreds, and each hop's convolution costs their product.
const composeBuckets = 32

// composeHop is the distribution of a path whose distribution is path
// followed by a hop whose distribution is hop, as routes compose it.
func composeHop(path, hop Histogram) Histogram {
	return Convolve(path, hop).Compact(composeBuckets)
}

// ComposePath is the distribution of a path of hops, composed as routes
// compose it (each hop as it travels in a cost update: at most
// SentBuckets buckets).
func ComposePath(hops ...Histogram) Histogram {
	h := atZero
	for _, x := range hops {
		h = composeHop(h, x.Compact(SentBuckets))
	}
	return h
}

// contractTrees are the candidate paths of one route computation, shared
// by every contract, and their composed distributions, worked out only
// for the destinations asked about (a message, the API) and kept for the
// next. Safe for concurrent use.
type contractTrees struct {
	cands []*tree
	start Histogram // the delay of the empty path: the ends' (BNM.SetEnds)
	mu    sync.Mutex
	dists [][]Histogram // per candidate, per node; nil Buckets and 0 Missing: not composed yet
	done  [][]bool
}

// newContractTrees holds the paths of cands, trees of one graph, none
// composed yet.
func newContractTrees(cands []*tree, ends Histogram) *contractTrees {
	ct := &contractTrees{cands: cands, start: atZero}
	if len(ends.Buckets) > 0 {
		ct.start = ends
	}
	for _, t := range cands {
		ct.dists = append(ct.dists, make([]Histogram, len(t.pred)))
		ct.done = append(ct.done, make([]bool, len(t.pred)))
	}
	return ct
}

// dist returns the composed distribution of candidate k's path to v, a
// node it reaches, composing what the paths to v's predecessors lack.
// Held: ct.mu.
func (ct *contractTrees) dist(k int, v int32) Histogram {
	t, d, done := ct.cands[k], ct.dists[k], ct.done[k]
	// The nodes of the path back from v whose distributions are not
	// composed yet, then composed from the first one known on.
	var uncomposed []int32
	for x := v; !done[x]; x = t.pred[x] {
		if x == t.src {
			d[x], done[x] = ct.start, true
			break
		}
		uncomposed = append(uncomposed, x)
	}
	for i := len(uncomposed) - 1; i >= 0; i-- {
		x := uncomposed[i]
		d[x] = composeHop(d[t.pred[x]], t.g.arcDelay(t.via[x], t.pos[x]))
		done[x] = true
	}
	return d[v]
}

// repeats reports whether candidate k's path to v is an earlier
// candidate's: judging it again would change nothing.
func (ct *contractTrees) repeats(k int, v int32) bool {
	t := ct.cands[k]
	for j := range k {
		o := ct.cands[j]
		if !o.reached(v) || o.hops[v] != t.hops[v] {
			continue
		}
		same := true
		for x := v; x != t.src && same; x = t.pred[x] {
			same = o.pred[x] == t.pred[x] && o.via[x] == t.via[x] && o.pos[x] == t.pos[x]
		}
		if same {
			return true
		}
	}
	return false
}

// contractRoutes are a contract's routes: for each destination, the
// candidate path whose composed distribution meets the contract best,
// judged the first time the destination is asked about.
type contractRoutes struct {
	trees *contractTrees
	c     Contract
	// state is, per node: 0 not judged yet, 1 unreachable, k+2 candidate
	// k taken. pred[v] is written before state[v] is set.
	state []atomic.Int32
	pred  []Prediction
	ways  []Way // the way of the path taken, every link after the first an exit
	// prev is the same contract's routes of the computation before, whose
	// paths hold (see holdRoom); it has no prev of its own.
	prev *contractRoutes
}

// pick returns the candidate taken for v (judging it first if need be),
// -1 when none reaches it.
func (r *contractRoutes) pick(v int32) int {
	if s := r.state[v].Load(); s != 0 {
		return int(s) - 2
	}
	ct := r.trees
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if s := r.state[v].Load(); s != 0 {
		return int(s) - 2
	}
	best, preds := -1, make([]Prediction, len(ct.cands))
	for k, t := range ct.cands {
		if !t.reached(v) || ct.repeats(k, v) {
			continue
		}
		preds[k] = r.c.Predict(ct.dist(k, v))
		if best < 0 || preds[k].Score > preds[best].Score {
			best = k
		}
	}
	if best >= 0 && v != ct.cands[best].src {
		r.ways[v] = ct.cands[best].pinnedWay(v)
		r.pred[v] = preds[best]
		if k, way, ok := r.held(v, preds); ok && (preds[k].Status == Met || preds[k].Score >= preds[best].Score-holdRoom) {
			best, r.ways[v], r.pred[v] = k, way, preds[k]
		}
	}
	r.state[v].Store(int32(best + 2))
	return best
}

// holdRoom is how much more room under the contract (see
// Prediction.Score) another path must promise before a contract route
// that no longer meets its contract moves to it; a route that meets it
// stays.
const holdRoom = 0.1

// held returns the candidate, and its way, whose path is the one the
// previous computation took to v, if it judged v and a candidate still
// takes that path. Held: r.trees.mu.
func (r *contractRoutes) held(v int32, preds []Prediction) (int, Way, bool) {
	prev := r.prev
	if prev == nil || int(v) >= len(prev.state) {
		return 0, Way{}, false
	}
	k, ok := prev.judged(v)
	if !ok || k < 0 {
		return 0, Way{}, false
	}
	was := prev.ways[v]
	for k, t := range r.trees.cands {
		if preds[k].Delay == nil || !t.reached(v) {
			continue
		}
		if w := t.pinnedWay(v); w.Link == was.Link && slices.Equal(w.Exits, was.Exits) {
			return k, w, true
		}
	}
	return 0, Way{}, false
}

// pinnedWay is the way to v, a node t reaches other than its source,
// with every link after the first as an exit, in path order.
func (t *tree) pinnedWay(v int32) Way {
	var exits []Exit
	for x := v; t.pred[x] != t.src; x = t.pred[x] {
		if link := t.g.linkOf(t.via[x]); link != "" {
			exits = append(exits, Exit{Broker: t.g.addrs[t.pred[x]], Link: link})
		}
	}
	slices.Reverse(exits)
	return Way{Link: t.g.linkOf(t.first[v]), Exits: exits}
}

// judged returns the candidate taken for v if it was judged already.
func (r *contractRoutes) judged(v int32) (int, bool) {
	s := r.state[v].Load()
	return int(s) - 2, s != 0
}

// ContractTables computes self's routes for each contract, in the order
// of the contracts of the call before (whose routes hold). The
// candidates for a destination are the paths of three searches: the
// first profile's routes (the table base, as Tables returned it), the
// least mean delay, and the least tail delay (see weightsOf); each is
// judged on the convolution of its hops' measured distributions, and the
// best prediction wins (the earlier candidate on a tie, so a contract
// that the cheapest path meets keeps it). Where no candidate meets the
// contract the best is still taken, and its prediction says so. A path
// taken before stays while it meets the contract, or while no other
// promises more room by holdRoom. The
// searches run here; a destination is judged the first time a message or
// a listing asks for it, so that a network of thousands of brokers pays
// only for those its contracts' messages go to.
//
// A contract route pins its whole path: the message carries every link
// after the first as an exit, since the brokers it passes judge the
// contract from where they are and could choose differently. Brokers that
// pass a contract's messages on without exits follow base's cheapest
// routes.
func (m *BNM) ContractTables(cs []Contract, base Table) []Table {
	if len(cs) == 0 || base.held == nil {
		return make([]Table, len(cs))
	}
	g := m.graph()
	src, _ := m.index.lookup(m.self)
	n := len(g.addrs)
	cands := []*tree{base.base}
	for w := range delayWeights {
		s := newSearchIn(g, m.profiles+w, src, &m.scratch)
		s.settle()
		cands = append(cands, s.tree())
	}
	ct := newContractTrees(cands, m.ends)
	out := make([]Table, len(cs))
	held := make([]*contractRoutes, len(cs))
	for i, c := range cs {
		r := &contractRoutes{trees: ct, c: c, state: make([]atomic.Int32, n), pred: make([]Prediction, n), ways: make([]Way, n)}
		if i < len(m.contracts) && m.contracts[i] != nil {
			prev := m.contracts[i]
			prev.trees.mu.Lock()
			prev.prev = nil
			prev.trees.mu.Unlock()
			r.prev = prev
		}
		held[i] = r
		out[i] = Table{held: base.held, base: base.base, contract: r}
	}
	m.contracts = held
	return out
}

// SetEnds sets the delay a message meets at the two ends of every path
// besides its links: from the publishing client into the first broker's
// core and out of the last one's to the subscriber, which the links'
// distributions do not hold. The contract routes computed from then on
// compose it into every path's distribution (their choice of path does
// not change: it adds to every candidate alike). h's missing mass, if
// any, is ignored; an empty h sets none.
func (m *BNM) SetEnds(h Histogram) {
	h.Missing = 0
	m.ends = h
}

// ContractRoute is a contract's route to one destination: the route, its
// path's composed delay distribution, and what that promises.
type ContractRoute struct {
	Route
	Delay      Histogram
	Prediction Prediction
}

// route builds the contract route to v, a node candidate k reaches. Its
// Cost is the path's cost on the first profile.
func (r *contractRoutes) route(v int32, k int) ContractRoute {
	t := r.trees.cands[k]
	rt := t.route(v)
	rt.Exits = r.ways[v].Exits
	rt.Cost = 0
	for x := v; t.pred[x] >= 0; x = t.pred[x] {
		rt.Cost += t.g.arcCost(t.via[x], t.pos[x], 0)
	}
	r.trees.mu.Lock()
	d := r.trees.dist(k, v)
	r.trees.mu.Unlock()
	return ContractRoute{Route: rt, Delay: d, Prediction: r.pred[v]}
}

// ContractRoutes returns a contract table's routes, every destination
// judged, sorted by destination; nil for a table that is not a
// contract's.
func (t Table) ContractRoutes() []ContractRoute {
	r := t.contract
	if r == nil {
		return nil
	}
	var out []ContractRoute
	for v := range int32(len(r.state)) {
		if k := r.pick(v); k >= 0 {
			out = append(out, r.route(v, k))
		}
	}
	slices.SortFunc(out, func(x, y ContractRoute) int { return strings.Compare(string(x.Destination), string(y.Destination)) })
	return out
}

// LookupContract returns a contract table's route to dst; false when dst
// is unknown, unreachable, or t is not a contract's.
func (t Table) LookupContract(dst Address) (ContractRoute, bool) {
	r := t.contract
	if r == nil {
		return ContractRoute{}, false
	}
	v, ok := r.trees.cands[0].g.index.lookup(dst)
	if !ok {
		return ContractRoute{}, false
	}
	k := r.pick(v)
	if k < 0 {
		return ContractRoute{}, false
	}
	return r.route(v, k), true
}

// SentBuckets is the most buckets a link's distribution is sent with in
// cost updates, and SummaryBuckets the most of each broker's in a unit
// summary, which lists every broker of its unit (see Compact).
const (
	SentBuckets    = 32
	SummaryBuckets = 16
)

// sameWays reports whether r and o send messages that enter the network
// here to every broker the same way, as far as is known: their candidate
// paths are the same, and so are the picks of the destinations both have
// judged.
func (r *contractRoutes) sameWays(o *contractRoutes) bool {
	if len(r.state) != len(o.state) || len(r.trees.cands) != len(o.trees.cands) {
		return false
	}
	for k := range r.trees.cands {
		if !r.trees.cands[k].compare(o.trees.cands[k]).Same() {
			return false
		}
	}
	for v := range int32(len(r.state)) {
		a, aok := r.judged(v)
		b, bok := o.judged(v)
		switch {
		case !aok || !bok:
			continue
		case (a < 0) != (b < 0):
			return false
		case a < 0:
			continue
		}
		if r.ways[v].Link != o.ways[v].Link || !slices.Equal(r.ways[v].Exits, o.ways[v].Exits) {
			return false
		}
	}
	return true
}

// KSDistance is the Kolmogorov-Smirnov distance between the distribution
// h and the sample sorted (ascending, in ms): the largest gap between the
// two CDFs, taken at each sample on either side of its step. Lost
// messages count in neither: h's CDF is taken over what arrives.
func KSDistance(h Histogram, sorted []float64) float64 {
	if len(sorted) == 0 || h.Arrived() == 0 {
		return 1
	}
	arrived := h.Arrived() / h.Total()
	var d float64
	n := float64(len(sorted))
	for i, x := range sorted {
		f := h.CDFAt(x) / arrived
		d = max(d, math.Abs(f-float64(i)/n), math.Abs(f-float64(i+1)/n))
	}
	return d
}
