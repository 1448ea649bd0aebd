package schema

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Synthetic returns reports from brokers brokers of links links each, with
// figures shaped like the monitor's: full-precision delays, the monitor's
// bucket bounds, whole counts, and about one link in twenty lossy and slow.
// Benchmarks and load tests use it; the same arguments give the same
// reports.
func Synthetic(brokers, links int, at time.Time) []Report {
	rng := rand.New(rand.NewPCG(5, 6))
	reports := make([]Report, brokers)
	for i := range reports {
		r := Report{Broker: fmt.Sprintf("na.c%d.b%d", i/16, i%16), Domain: "na", Seq: 1000, Time: at, Interval: 5 * time.Second}
		r.Links = make([]Link, 0, links)
		for j := range links {
			base := 5 + rng.Float64()*80
			loss := rng.Float64() / 50
			if rng.IntN(20) == 0 {
				base *= 3
				loss = rng.Float64() / 5
			}
			l := Link{
				ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, j), A: r.Broker, B: fmt.Sprintf("eu.c%d.b%d", j/16, j%16),
				Transport: "udp", State: "up", Monitor: "up",
				RTT: 2 * base, Jitter: rng.Float64() * 3, Loss: loss, Dropped: uint64(rng.IntN(10)),
				Latency: Summary{base * 0.95, base, base * 0.99, base * 1.05, base * 1.1, base * 1.2},
				Samples: Samples{Sent: 100000, Received: 99000, Lost: 1000, Window: 256, Reordered: 3},
				Costs:   []Cost{{Profile: "default", Value: base * 1.3}, {Profile: "latency", Value: base}},
			}
			l.Histogram.Missing = 2
			// Ten buckets from the median, of the monitor's width there:
			// the power of two of microseconds that is 1-2% of it.
			us := base * 1000
			w := math.Exp2(math.Floor(math.Log2(us / 50)))
			lo := math.Floor(us/w) * w
			for k := range 10 {
				l.Histogram.Buckets = append(l.Histogram.Buckets, Bucket{LE: (lo + float64(k+1)*w) / 1000, Count: float64(1 + rng.IntN(50))})
			}
			r.Links = append(r.Links, l)
		}
		reports[i] = r
	}
	return reports
}
