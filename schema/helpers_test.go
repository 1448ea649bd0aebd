package schema

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report.xml and testdata/network.xml")

// sampleReport is a small report with one of everything, the one in
// testdata/report.xml.
func sampleReport() Report {
	return Report{
		Broker: "na.cgl.c1.a", Domain: "na", Seq: 42,
		Time:     time.Date(2026, 11, 23, 10, 0, 0, 250_000_000, time.UTC),
		Interval: 5 * time.Second,
		Links: []Link{{
			ID: "3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5c", A: "na.cgl.c1.a", B: "eu.kth.c1.a",
			Transport: "udp", State: "up", Monitor: "up",
			RTT: 90.3, Jitter: 2, Loss: 0.01, Dropped: 0,
			Latency: Summary{Min: 44.1, Mean: 45.1, P50: 45, P90: 46.9, P99: 47.8, Max: 48.2},
			Samples: Samples{Sent: 512, Received: 507, Lost: 5, Window: 256},
			Costs:   []Cost{{Profile: "default", Value: 57.4}, {Profile: "latency", Value: 45.1}},
			Histogram: Histogram{Missing: 3, Buckets: []Bucket{
				{LE: 39.81071705534973, Count: 0}, {LE: 44.668359215096324, Count: 12},
				{LE: 50.11872336272725, Count: 241}, {LE: math.Inf(1), Count: 3}}},
		}, {
			ID: "3f2a6c1e-9b7d-4e2a-8c55-0d1e2f3a4b5d", A: "na.cgl.c1.a", B: "na.cgl.c2.b",
			Transport: "tcp", State: "down", Monitor: "down",
			RTT: 0.5, Loss: 1, Dropped: 17,
			Samples: Samples{Sent: 9, Received: 3, Lost: 6, Window: 9, Reordered: 1, Duplicated: 2},
			Costs:   []Cost{{Profile: `a "quoted" <&> 'profile'`, Value: math.Inf(1)}},
		}},
	}
}

// The seconds since 1970 of the first and last second of years 1 to 9999.
const (
	minSec = -62135596800
	maxSec = 253402300799
)

// genReport returns a valid report of n links with values drawn to reach
// the corners of every lexical form: whole and fractional numbers of every
// magnitude, INF, the largest counts, times to the nanosecond, and profiles
// that need escaping.
func genReport(rng *rand.Rand, n int) Report {
	r := Report{
		Broker:   genAddress(rng),
		Domain:   genAddress(rng),
		Seq:      1 + rng.Uint64N(math.MaxUint64),
		Time:     time.Unix(minSec+1+rng.Int64N(maxSec-minSec), rng.Int64N(1e9)).UTC(),
		Interval: time.Duration(1 + rng.Int64N(math.MaxInt64)),
	}
	if rng.IntN(2) == 0 {
		r.Interval = time.Duration(1+rng.IntN(60)) * time.Second
	}
	for i := range n {
		l := Link{
			ID:        fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), i&0xffff, rng.IntN(0x10000), rng.IntN(0x10000), rng.Int64N(1<<48)),
			A:         r.Broker,
			B:         genAddress(rng),
			Transport: transportNames[rng.IntN(len(transportNames))],
			State:     linkStateNames[rng.IntN(len(linkStateNames))],
			Monitor:   monitorStateNames[rng.IntN(len(monitorStateNames))],
			RTT:       genFigure(rng),
			Jitter:    genFigure(rng),
			Loss:      rng.Float64(),
			Dropped:   genCount(rng),
			Latency:   Summary{genFigure(rng), genFigure(rng), genFigure(rng), genFigure(rng), genFigure(rng), genFigure(rng)},
			Samples: Samples{Sent: genCount(rng), Received: genCount(rng), Lost: genCount(rng),
				Window: rng.IntN(math.MaxInt32), Reordered: genCount(rng), Duplicated: genCount(rng)},
		}
		for k := range rng.IntN(4) {
			l.Costs = append(l.Costs, Cost{Profile: genProfile(rng, k), Value: genFigure(rng)})
		}
		if rng.IntN(4) > 0 {
			l.Histogram.Missing = float64(rng.IntN(3))
			le := 0.0
			for range rng.IntN(12) {
				le += 0.001 + rng.Float64()*math.Pow(10, float64(rng.IntN(10)-3))
				l.Histogram.Buckets = append(l.Histogram.Buckets, Bucket{LE: le, Count: genMass(rng)})
			}
			if rng.IntN(2) == 0 {
				l.Histogram.Buckets = append(l.Histogram.Buckets, Bucket{LE: math.Inf(1), Count: 1})
			}
		}
		r.Links = append(r.Links, l)
	}
	return r
}

func genAddress(rng *rand.Rand) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789_-"
	labels := make([]string, 1+rng.IntN(4))
	for i := range labels {
		b := make([]byte, 1+rng.IntN(6))
		for j := range b {
			b[j] = chars[rng.IntN(len(chars))]
		}
		labels[i] = string(b)
	}
	return strings.Join(labels, ".")
}

func genFigure(rng *rand.Rand) float64 {
	switch rng.IntN(8) {
	case 0:
		return float64(rng.IntN(1000))
	case 1:
		return math.Inf(1)
	case 2:
		return math.Ldexp(rng.Float64(), rng.IntN(2000)-1000) // 1e-300 to 1e300
	case 3:
		return math.Float64frombits(rng.Uint64N(math.Float64bits(math.MaxFloat64)))
	}
	return rng.Float64() * 200
}

// genMass draws a histogram count: zero (which AppendXML leaves out), whole,
// fractional or huge, and finite.
func genMass(rng *rand.Rand) float64 {
	switch rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return float64(rng.IntN(300))
	case 2:
		return math.Float64frombits(rng.Uint64N(math.Float64bits(math.MaxFloat64)))
	}
	return rng.Float64()
}

func genCount(rng *rand.Rand) uint64 {
	if rng.IntN(4) == 0 {
		return math.MaxUint64 - rng.Uint64N(3)
	}
	return rng.Uint64N(100000)
}

func genProfile(rng *rand.Rand, k int) string {
	odd := []string{"&", "<", ">", `"`, "'", "\t", "\n", "\r", "\r\n", " ", "é", "€", "𝄞", "]]>", "&amp;"}
	p := fmt.Sprintf("p%d", k)
	for range rng.IntN(3) {
		p += odd[rng.IntN(len(odd))]
	}
	return p
}

// normalized is r as DecodeReport returns it: no zero-count buckets, and
// nil for empty slices.
func normalized(r Report) Report {
	r.Links = nilIfEmpty(r.Links)
	links := make([]Link, len(r.Links))
	for i, l := range r.Links {
		l.Costs = nilIfEmpty(l.Costs)
		var bs []Bucket
		for _, k := range l.Histogram.Buckets {
			if k.Count != 0 {
				bs = append(bs, k)
			}
		}
		l.Histogram.Buckets = bs
		links[i] = l
	}
	if r.Links != nil {
		r.Links = links
	}
	return r
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// encode is AppendXML for a report that is not addressable.
func encode(r Report) []byte { return r.AppendXML(nil) }

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// parseFloatRef is strconv's reading of an xs:double.
func parseFloatRef(s string) float64 {
	switch s {
	case "INF":
		return math.Inf(1)
	case "-INF":
		return math.Inf(-1)
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// checkSame fails t unless got equals want, times compared as instants.
func checkSame(t testing.TB, got, want Report) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Fatalf("time: got %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if reflect.DeepEqual(got, want) {
		return
	}
	if len(got.Links) == len(want.Links) {
		for i := range got.Links {
			if !reflect.DeepEqual(got.Links[i], want.Links[i]) {
				t.Fatalf("link %d:\ngot  %+v\nwant %+v", i, got.Links[i], want.Links[i])
			}
		}
	}
	got.Links, want.Links = nil, nil
	t.Fatalf("reports differ:\ngot  %+v\nwant %+v", got, want)
}

// benchReports returns brokers reports of links links each.
func benchReports(brokers, links int) []Report {
	return Synthetic(brokers, links, time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC))
}
