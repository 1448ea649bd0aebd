package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pointAt is the distribution of a delay of ms, every time.
func pointAt(ms float64) Histogram {
	return Histogram{Buckets: []Bucket{{Index: BucketOf(ms), Count: 1}}}
}

// mixture is the distribution of n delays, each delays[i] with weight
// weights[i], and missing of them lost.
func mixture(missing float64, pairs ...float64) Histogram {
	h := Histogram{Missing: missing}
	for i := 0; i+1 < len(pairs); i += 2 {
		for range int(pairs[i+1]) {
			h.Add(pairs[i])
		}
	}
	return h
}

func TestContractValidate(t *testing.T) {
	good := Contract{Within: []Bound{{0.5, 20}, {0.95, 50}, {0.99, 100}}, MaxLoss: 0.001}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Contract{
		"no bound":        {MaxLoss: 1},
		"p of 100":        {Within: []Bound{{1, 20}}, MaxLoss: 1},
		"p of 0":          {Within: []Bound{{0, 20}}, MaxLoss: 1},
		"no delay":        {Within: []Bound{{0.5, 0}}, MaxLoss: 1},
		"infinite delay":  {Within: []Bound{{0.5, math.Inf(1)}}, MaxLoss: 1},
		"falling delay":   {Within: []Bound{{0.5, 20}, {0.9, 10}}, MaxLoss: 1},
		"falling p":       {Within: []Bound{{0.9, 20}, {0.5, 30}}, MaxLoss: 1},
		"loss above one":  {Within: []Bound{{0.5, 20}}, MaxLoss: 2},
		"loss is not one": {Within: []Bound{{0.5, 20}}, MaxLoss: math.NaN()},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, c)
		}
	}
}

func TestContractPredict(t *testing.T) {
	c := Contract{Within: []Bound{{0.5, 20}, {0.99, 100}}, MaxLoss: 0.01}
	for _, tc := range []struct {
		name   string
		h      Histogram
		status string
	}{
		{"well within", pointAt(10), Met},
		{"close to the median's bound", pointAt(18), AtRisk},
		{"over the median's bound", pointAt(25), Breached},
		// 2% take 150 ms: the 99th percentile is 150 ms.
		{"a heavy tail", mixture(0, 10, 98, 150, 2), Breached},
		{"lossy", mixture(2, 10, 98), Breached},
		{"a little loss", mixture(0.5, 10, 99.5), Met},
		{"close to the loss limit", mixture(0.9, 10, 99.1), AtRisk},
		{"nothing known", Histogram{}, Unknown},
	} {
		p := c.Predict(tc.h)
		if p.Status != tc.status {
			t.Errorf("%s: %s (%+v), want %s", tc.name, p.Status, p, tc.status)
		}
	}
	// Exact figures: half the mass at 10 ms, the rest at 30 ms but 2% lost.
	p := c.Predict(mixture(2, 10, 50, 30, 48))
	if math.Abs(p.Loss-0.02) > 1e-12 {
		t.Errorf("loss %v, want 0.02", p.Loss)
	}
	// 50% arrive within the 10 ms bucket's end, read as reaching one
	// bucket width into the gap after it (see reach); all that arrives,
	// within 30.
	if lo, hi := BucketBounds(BucketOf(10)); p.Delay[0] < hi || p.Delay[0] > 2*hi-lo+1e-9 {
		t.Errorf("p50 at %v ms, want in [%v, %v]", p.Delay[0], hi, 2*hi-lo)
	}
	if !math.IsInf(p.Delay[1], 1) || math.Abs(p.Reached[1]-0.98) > 1e-9 {
		t.Errorf("p99 at %v ms with %v within 100 ms; want never, and 0.98", p.Delay[1], p.Reached[1])
	}
	if p.Status != Breached {
		t.Errorf("99%% asked with 2%% lost: %s", p.Status)
	}
}

// The composition of two uniform hops is a triangle: checked against its
// exact quantiles.
func TestConvolvedUniformsPredict(t *testing.T) {
	var a, b Histogram
	for i := range 2000 {
		a.Add(40 + 10*float64(i)/2000) // uniform on [40, 50)
		b.Add(20 + 10*float64(i)/2000) // uniform on [20, 30)
	}
	h := Convolve(a, b)
	// The sum is triangular on [60, 80]: P(X <= 60+x) = x^2/200 for x <= 10.
	for _, q := range []float64{0.02, 0.1, 0.5, 0.9, 0.98} {
		var want float64
		if q <= 0.5 {
			want = 60 + math.Sqrt(200*q)
		} else {
			want = 80 - math.Sqrt(200*(1-q))
		}
		if got := h.Quantile(q); math.Abs(got-want) > 0.02*want {
			t.Errorf("q%v: %v ms, want %v", q, got, want)
		}
	}
}

func TestCompact(t *testing.T) {
	var h Histogram
	for i := range 1000 {
		h.Add(10 + float64(i%97)*0.3 + float64(i%13)*5)
	}
	h.Missing = 7
	c := h.Compact(SentBuckets)
	if len(c.Buckets) > SentBuckets || len(h.Buckets) <= SentBuckets {
		t.Fatalf("%d buckets compacted to %d", len(h.Buckets), len(c.Buckets))
	}
	if math.Abs(c.Total()-h.Total()) > 1e-9 || c.Missing != 7 {
		t.Errorf("total %v (missing %v), want %v (7)", c.Total(), c.Missing, h.Total())
	}
	for i := 1; i < len(c.Buckets); i++ {
		if c.Buckets[i].Index <= c.Buckets[i-1].Index {
			t.Fatalf("indices not rising: %v", c.Buckets)
		}
	}
	if math.Abs(c.Mean()-h.Mean()) > 0.01*h.Mean() {
		t.Errorf("mean %v, was %v", c.Mean(), h.Mean())
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if a, b := c.Quantile(q), h.Quantile(q); math.Abs(a-b) > 0.1*b {
			t.Errorf("q%v %v, was %v", q, a, b)
		}
	}
}

// delayLink is a link with its delay distribution, the same both ways.
type delayLink struct {
	Link
	delay Histogram
}

// delayMap is self's map of links, as if every announcement had
// travelled (one cluster, so no summaries).
func delayMap(self Address, links []delayLink) *BNM {
	m := NewBNM(self, 1, 0)
	announceDelays(m, links)
	return m
}

// announceDelays has m hear every end of links announce them.
func announceDelays(m *BNM, links []delayLink) {
	by := map[Address][]AnnouncedLink{}
	for _, l := range links {
		c := l.Cost
		if !l.Up {
			c = math.Inf(1)
		}
		by[l.A] = append(by[l.A], AnnouncedLink{ID: l.ID, Peer: l.B, Costs: []float64{c}, Delay: l.delay})
		by[l.B] = append(by[l.B], AnnouncedLink{ID: l.ID, Peer: l.A, Costs: []float64{c}, Delay: l.delay})
	}
	for origin, ls := range by {
		m.Set(Announcement{Origin: origin, Unit: origin.Cluster(), Links: ls})
	}
}

// TestContractRoutesHold: a contract route that meets its contract stays
// when another path comes to promise a little more, and moves when it
// stops meeting it.
func TestContractRoutesHold(t *testing.T) {
	links := []delayLink{
		{Link{ID: "sx", A: "a.c.s", B: "a.c.x", Cost: 1, Up: true}, pointAt(10)},
		{Link{ID: "xd", A: "a.c.x", B: "a.c.d", Cost: 1, Up: true}, pointAt(10)},
		{Link{ID: "sy", A: "a.c.s", B: "a.c.y", Cost: 2, Up: true}, pointAt(15)},
		{Link{ID: "yd", A: "a.c.y", B: "a.c.d", Cost: 2, Up: true}, pointAt(15)},
	}
	c := []Contract{{Within: []Bound{{0.5, 40}}, MaxLoss: 1}}
	m := delayMap("a.c.s", links)
	path := func() string {
		r, _ := m.ContractTables(c, m.Tables()[0])[0].LookupContract("a.c.d")
		return fmt.Sprint(r.Path) + " " + r.Prediction.Status
	}
	if p := path(); p != "[a.c.s a.c.x a.c.d] met" {
		t.Fatalf("at first: %s", p)
	}
	// y's path comes to 18 ms against x's 20: both meet the contract.
	links[2].delay, links[3].delay = pointAt(9), pointAt(9)
	announceDelays(m, links)
	if p := path(); p != "[a.c.s a.c.x a.c.d] met" {
		t.Errorf("with y a little quicker: %s, want x's path held", p)
	}
	// x's path goes to 50 ms: breached, so the route moves.
	links[1].delay = pointAt(40)
	announceDelays(m, links)
	if p := path(); p != "[a.c.s a.c.y a.c.d] met" {
		t.Errorf("with x breaching the contract: %s", p)
	}
	// And a fresh map, with nothing to hold, takes the best at once.
	links[1].delay = pointAt(10)
	fresh := delayMap("a.c.s", links)
	if r, _ := fresh.ContractTables(c, fresh.Tables()[0])[0].LookupContract("a.c.d"); fmt.Sprint(r.Path) != "[a.c.s a.c.y a.c.d]" {
		t.Errorf("fresh map: %v", r.Path)
	}
}

// TestContractRoutes: the cheapest path (through x) has the lower mean
// but a heavy tail; the one through y is steady. A contract on the tail
// takes y; a contract on the median keeps x; default traffic keeps x.
func TestContractRoutes(t *testing.T) {
	tail := mixture(0, 10, 97, 300, 3) // mean 18.7 ms, p99 300 ms
	links := []delayLink{
		{Link{ID: "sx", A: "a.c.s", B: "a.c.x", Cost: 1, Up: true}, pointAt(10)},
		{Link{ID: "xd", A: "a.c.x", B: "a.c.d", Cost: 1, Up: true}, tail},
		{Link{ID: "sy", A: "a.c.s", B: "a.c.y", Cost: 2, Up: true}, pointAt(15)},
		{Link{ID: "yd", A: "a.c.y", B: "a.c.d", Cost: 2, Up: true}, pointAt(15)},
	}
	m := delayMap("a.c.s", links)
	base := m.Tables()[0]
	tailC := Contract{Within: []Bound{{0.99, 50}}, MaxLoss: 1}
	medianC := Contract{Within: []Bound{{0.5, 25}}, MaxLoss: 1}
	tabs := m.ContractTables([]Contract{tailC, medianC}, base)

	if w, _ := base.Way("a.c.d", true); w.Link != "sx" {
		t.Fatalf("default traffic leaves by %s, want sx", w.Link)
	}
	r, ok := tabs[0].LookupContract("a.c.d")
	if !ok || fmt.Sprint(r.Path) != "[a.c.s a.c.y a.c.d]" || r.Prediction.Status != Met || r.Cost != 4 {
		t.Fatalf("tail contract: %v (cost %v) %+v", r.Path, r.Cost, r.Prediction)
	}
	if q := r.Delay.Quantile(0.99); math.Abs(q-30) > 1 {
		t.Errorf("tail contract path's p99 %v ms, want 30", q)
	}
	w, _ := tabs[0].Way("a.c.d", true)
	if w.Link != "sy" || fmt.Sprint(w.Exits) != "[{a.c.y yd}]" {
		t.Errorf("tail contract's way %+v: want sy, then yd pinned", w)
	}
	// A broker passing the message on without exits follows the cheapest.
	if w, _ := tabs[0].Way("a.c.d", false); w.Link != "sx" {
		t.Errorf("passing on: %s, want sx", w.Link)
	}
	r, _ = tabs[1].LookupContract("a.c.d")
	if fmt.Sprint(r.Path) != "[a.c.s a.c.x a.c.d]" || r.Prediction.Status == Breached {
		t.Errorf("median contract: %v %+v", r.Path, r.Prediction)
	}
	// Where no path meets the contract the best is taken, and reported.
	tight := Contract{Within: []Bound{{0.99, 20}}, MaxLoss: 1}
	r, _ = m.ContractTables([]Contract{tight}, base)[0].LookupContract("a.c.d")
	if fmt.Sprint(r.Path) != "[a.c.s a.c.y a.c.d]" || r.Prediction.Status != Breached {
		t.Errorf("unmeetable contract: %v %+v", r.Path, r.Prediction)
	}
	if !tabs[0].SameWays(m.ContractTables([]Contract{tailC}, base)[0]) || tabs[0].SameWays(tabs[1]) {
		t.Error("SameWays does not tell contract routes apart")
	}
	// The steady path goes down: the tail contract takes what is left,
	// breached.
	links[2].Up = false
	m = delayMap("a.c.s", links)
	base = m.Tables()[0]
	r, _ = m.ContractTables([]Contract{tailC}, base)[0].LookupContract("a.c.d")
	if fmt.Sprint(r.Path) != "[a.c.s a.c.x a.c.d]" || r.Prediction.Status != Breached {
		t.Errorf("with sy down: %v %+v", r.Path, r.Prediction)
	}
}

// linkDelay is a link's distribution in the synthetic networks: its cost
// in ms, plus a Lomax-like tail, as the monitor would send it.
func linkDelay(l Link) Histogram {
	var xs []float64
	for i := range 256 {
		u := (float64(i) + 0.5) / 256
		xs = append(xs, l.Cost+2*(math.Pow(1-u, -1.0/3)-1))
	}
	return HistogramOf(xs, 1).Compact(SentBuckets)
}

// BenchmarkBNMUpdateContracts is BenchmarkBNMUpdate with one delay
// contract: each update also runs the contract's two extra searches over
// the 10,000 brokers, and judges the contract's routes to 100 brokers
// spread over the network (the ones its messages go to; the others are
// judged when first asked). Judging all 10,000 at once is timed apart.
func BenchmarkBNMUpdateContracts(b *testing.B) {
	simDelay = linkDelay
	defer func() { simDelay = nil }()
	m, upd := syntheticMap()
	c := []Contract{{Within: []Bound{{0.5, 100}, {0.99, 200}}, MaxLoss: 0.01}}
	var dsts []Address
	for i, a := range m.graph().Nodes() {
		if i%100 == 37 {
			dsts = append(dsts, a)
		}
	}
	start := time.Now()
	all := m.ContractTables(c, m.Tables()[0])[0].ContractRoutes()
	allTime := time.Since(start)
	judged := 0
	for _, r := range all {
		if r.Prediction.Status != Unknown {
			judged++
		}
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		upd.Links[0].Costs[0] = float64(1 + i%7)
		m.Set(upd)
		ct := m.ContractTables(c, m.Tables()[0])[0]
		for _, d := range dsts {
			if _, ok := ct.LookupContract(d); !ok {
				b.Fatalf("no contract route to %s", d)
			}
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(allTime.Milliseconds()), "all-10000-judged-ms")
	b.ReportMetric(float64(judged), "brokers-predicted")
}

// TestContractTablesConcurrent: destinations are judged by whichever
// reader asks first while newer tables are computed (run with -race).
func TestContractTablesConcurrent(t *testing.T) {
	links := []delayLink{
		{Link{ID: "sx", A: "a.c.s", B: "a.c.x", Cost: 1, Up: true}, pointAt(10)},
		{Link{ID: "xd", A: "a.c.x", B: "a.c.d", Cost: 1, Up: true}, mixture(0, 10, 97, 300, 3)},
		{Link{ID: "sy", A: "a.c.s", B: "a.c.y", Cost: 2, Up: true}, pointAt(15)},
		{Link{ID: "yd", A: "a.c.y", B: "a.c.d", Cost: 2, Up: true}, pointAt(15)},
	}
	c := []Contract{{Within: []Bound{{0.99, 50}}, MaxLoss: 1}}
	m := delayMap("a.c.s", links)
	var cur atomic.Pointer[Table]
	tab := m.ContractTables(c, m.Tables()[0])[0]
	cur.Store(&tab)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tb := cur.Load()
				for _, d := range []Address{"a.c.d", "a.c.x", "a.c.y"} {
					if w, ok := tb.Way(d, true); !ok || w.Link == "" {
						t.Errorf("no way to %s", d)
						return
					}
					tb.LookupContract(d)
				}
			}
		})
	}
	for i := range 50 {
		links[0].delay = pointAt(float64(9 + i%3))
		announceDelays(m, links)
		tab := m.ContractTables(c, m.Tables()[0])[0]
		cur.Store(&tab)
	}
	close(stop)
	wg.Wait()
	if r, _ := cur.Load().LookupContract("a.c.d"); fmt.Sprint(r.Path) != "[a.c.s a.c.y a.c.d]" {
		t.Errorf("final route %v", r.Path)
	}
}

// TestComposeDelays: a border's summary of its cluster gives each broker
// the distribution of the way to it inside the cluster, its hops
// convolved; Summaries alone leaves them out.
func TestComposeDelays(t *testing.T) {
	m := NewBNM("x.c.b", 1, 0)
	set := func(origin, unit Address, ls ...AnnouncedLink) {
		m.Set(Announcement{Origin: origin, Unit: unit, Links: ls})
	}
	al := func(id string, peer Address, ms float64) AnnouncedLink {
		return AnnouncedLink{ID: id, Peer: peer, Costs: []float64{ms}, Delay: pointAt(ms)}
	}
	set("x.c.b", "x.c", al("bm", "x.c.m", 5))
	set("x.c.m", "x.c", al("bm", "x.c.b", 5), al("md", "x.c.d", 7))
	set("x.c.d", "x.c", al("md", "x.c.m", 7))
	set("x.c.b", "x", al("bo", "x.o.e", 30))
	set("x.o.e", "x", al("bo", "x.c.b", 30))
	var sum *Summary
	sums := m.Summaries()
	for i := range sums {
		if sums[i].Unit == "x.c" {
			sum = &sums[i]
		}
	}
	if sum == nil || len(sum.Dests) != 2 || sum.Dests[0].Delay.Total() != 0 {
		t.Fatalf("summary of x.c: %+v", sums)
	}
	whole := m.ComposeDelays(sum)
	if len(whole) != len(sum.Dests) {
		t.Fatalf("%d whole distributions for %d brokers", len(whole), len(sum.Dests))
	}
	for i, d := range sum.Dests {
		want := map[Address]float64{"x.c.d": 12, "x.c.m": 5}[d.Broker]
		if got := d.Delay.Quantile(0.5); math.Abs(got-want) > 0.2 {
			t.Errorf("%s: median %v ms, want %v", d.Broker, got, want)
		}
		if got := whole[i].Quantile(0.5); math.Abs(got-want) > 0.2 {
			t.Errorf("%s: whole distribution's median %v ms, want %v", d.Broker, got, want)
		}
	}
}

// TestSummaryDelayDue: a summary is due again when the distribution of a
// way in it moved past DelayShift, once the hold-down is over; not when
// it moved less, nor with DelayShift 0.
func TestSummaryDelayDue(t *testing.T) {
	r := DefaultRules()
	at := time.Unix(1000, 0)
	after, within := at.Add(r.HoldDown), at.Add(r.HoldDown/2)
	// Half the mass moved from 10 to 20 ms: 0.5 apart.
	half := mixture(0, 10, 100, 20, 100)
	cases := []struct {
		name      string
		last, cur []Histogram
		now       time.Time
		shift     float64
		want      bool
	}{
		{"same", []Histogram{pointAt(5), pointAt(10)}, []Histogram{pointAt(5), pointAt(10)}, after, 0.03, false},
		{"moved", []Histogram{pointAt(5), pointAt(10)}, []Histogram{pointAt(5), half}, after, 0.03, true},
		{"moved within the hold-down", []Histogram{pointAt(5), pointAt(10)}, []Histogram{pointAt(5), half}, within, 0.03, false},
		{"moved less than the shift", []Histogram{pointAt(10)}, []Histogram{half}, after, 0.6, false},
		{"turned off", []Histogram{pointAt(10)}, []Histogram{half}, after, 0, false},
		{"newly measured", []Histogram{{}}, []Histogram{pointAt(10)}, after, 0.03, true},
		{"other brokers", []Histogram{pointAt(10)}, []Histogram{pointAt(10), pointAt(10)}, after, 0.03, true},
	}
	for _, tc := range cases {
		r.DelayShift = tc.shift
		if got := r.SummaryDelayDue(tc.last, tc.cur, at, tc.now); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestContractEnds: the ends' delay (BNM.SetEnds) is composed into every
// contract path's distribution, moving its prediction, not its path; an
// empty one sets none.
func TestContractEnds(t *testing.T) {
	links := []delayLink{
		{Link{ID: "sx", A: "a.c.s", B: "a.c.x", Cost: 1, Up: true}, pointAt(10)},
		{Link{ID: "xd", A: "a.c.x", B: "a.c.d", Cost: 1, Up: true}, pointAt(12)},
	}
	m := delayMap("a.c.s", links)
	c := Contract{Within: []Bound{{0.5, 40}}, MaxLoss: 1}
	route := func() ContractRoute {
		t.Helper()
		r, ok := m.ContractTables([]Contract{c}, m.Tables()[0])[0].LookupContract("a.c.d")
		if !ok || fmt.Sprint(r.Path) != "[a.c.s a.c.x a.c.d]" {
			t.Fatalf("contract route %v, %v", r.Path, ok)
		}
		return r
	}
	if q := route().Delay.Quantile(0.5); math.Abs(q-22) > 0.5 || route().Prediction.Status != Met {
		t.Fatalf("without ends: p50 %v ms (want 22), %v", q, route().Prediction.Status)
	}
	ends := mixture(0.3, 2, 90, 6, 10) // 2 ms mostly, 6 ms at times; the missing mass is ignored
	m.SetEnds(ends)
	r := route()
	if q := r.Delay.Quantile(0.5); math.Abs(q-24) > 0.5 {
		t.Errorf("with ends of 2 ms: p50 %v ms, want 24", q)
	}
	if q := r.Delay.Quantile(0.95); math.Abs(q-28) > 0.5 {
		t.Errorf("with ends of 6 ms in a tenth: p95 %v ms, want 28", q)
	}
	if r.Delay.Missing != 0 || r.Prediction.Loss != 0 {
		t.Errorf("the ends' missing mass counted as loss: %v, %v", r.Delay.Missing, r.Prediction.Loss)
	}
	if r.Prediction.Status != Met {
		t.Errorf("24 ms against 40: %v", r.Prediction.Status)
	}
	m.SetEnds(Histogram{})
	if q := route().Delay.Quantile(0.5); math.Abs(q-22) > 0.5 {
		t.Errorf("ends unset: p50 %v ms, want 22", q)
	}
}

// TestComposedAgainstSamples: three hops of 10 ms plus normal (3 ms) or
// Pareto-tailed (Lomax, 3 ms mean) jitter, each measured from 100,000
// delays, composed as routes compose them (32 buckets a hop and a path):
// the prediction is within a Kolmogorov-Smirnov distance of 0.025 of
// 100,000 paths drawn hop by hop (0.021 and 0.017), and its p99 within
// 5%. Merging by mass times width and reading buckets at their own bounds
// gave 0.030 and 0.056.
func TestComposedAgainstSamples(t *testing.T) {
	draws := map[string]func(r *rand.Rand) float64{
		"normal": func(r *rand.Rand) float64 { return max(0, 10+3*r.NormFloat64()) },
		"pareto": func(r *rand.Rand) float64 { return 10 + 6*(math.Pow(1-r.Float64(), -1.0/3)-1) },
	}
	for name, draw := range draws {
		r := rand.New(rand.NewPCG(1, 3))
		var hops []Histogram
		for range 3 {
			d := make([]float64, 100000)
			for i := range d {
				d[i] = draw(r)
			}
			hops = append(hops, HistogramOf(d, 0))
		}
		truth := make([]float64, 100000)
		for i := range truth {
			truth[i] = draw(r) + draw(r) + draw(r)
		}
		slices.Sort(truth)
		h := ComposePath(hops...)
		if ks := KSDistance(h, truth); ks > 0.025 {
			t.Errorf("%s: KS distance %.3f, want at most 0.025", name, ks)
		}
		p99 := truth[len(truth)*99/100]
		if got := h.Quantile(0.99); math.Abs(got-p99) > 0.05*p99 {
			t.Errorf("%s: p99 %.2f ms, want %.2f within 5%%", name, got, p99)
		}
	}
}

// TestReach: evenly spaced buckets share out the range between them; a
// heavy bucket beside a lone outlier reaches no further than its own
// width; the first and last reach outwards by at most their width.
func TestReach(t *testing.T) {
	var even Histogram // every fifth bucket from 10 ms: 0.64 ms apart
	for k := range 4 {
		even.Buckets = append(even.Buckets, Bucket{Index: BucketOf(10) + 5*k, Count: 1})
	}
	lo1, hi1 := even.reach(1)
	lo2, _ := even.reach(2)
	if b0, _ := BucketBounds(even.Buckets[1].Index); lo1 >= b0 {
		t.Errorf("inner bucket reaches down to %v, want below its start %v", lo1, b0)
	}
	if math.Abs(hi1-lo2) > 1e-9 {
		t.Errorf("neighbours reach to %v and from %v, want to meet", hi1, lo2)
	}
	if got := even.Quantile(0.5); math.Abs(got-hi1) > 1e-9 {
		t.Errorf("median %v, want where the second bucket's reach ends, %v", got, hi1)
	}
	outlier := Histogram{Buckets: []Bucket{{Index: BucketOf(10), Count: 500}, {Index: BucketOf(10.2), Count: 500}, {Index: BucketOf(30), Count: 1}}}
	lo, hi := BucketBounds(outlier.Buckets[1].Index)
	if _, r := outlier.reach(1); r > hi+(hi-lo)+1e-9 {
		t.Errorf("heavy bucket [%v, %v) beside an outlier reaches to %v, want at most one width on", lo, hi, r)
	}
	lo, hi = BucketBounds(outlier.Buckets[2].Index)
	if l, r := outlier.reach(2); l < lo-(hi-lo)-1e-9 || r > hi+(hi-lo)+1e-9 {
		t.Errorf("last bucket [%v, %v) reaches [%v, %v), want at most one width either way", lo, hi, l, r)
	}
}
