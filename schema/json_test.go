package schema

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// TestReportJSON: a report of a link that is down (its costs infinite)
// is written, with lower-case names, its infinities as null.
func TestReportJSON(t *testing.T) {
	r := Report{Broker: "na.a", Domain: "na", Seq: 7, Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Interval: 5 * time.Second,
		Links: []Link{{ID: "l1", A: "na.a", B: "na.b", State: "down", RTT: math.Inf(1), Latency: Summary{P50: 45.5},
			Costs:     []Cost{{Profile: "default", Value: math.Inf(1)}},
			Histogram: Histogram{Missing: 1, Buckets: []Bucket{{LE: 45.056, Count: 3}, {LE: math.Inf(1), Count: 1}}}}}}
	js, err := json.Marshal([]Report{r})
	if err != nil {
		t.Fatal(err)
	}
	var back []struct {
		Broker     string  `json:"broker"`
		IntervalMs float64 `json:"interval_ms"`
		Links      []struct {
			ID      string   `json:"id"`
			RTT     *float64 `json:"rtt"`
			Latency struct {
				P50 float64 `json:"p50"`
			} `json:"latency"`
			Costs []struct {
				Profile string   `json:"profile"`
				Value   *float64 `json:"value"`
			} `json:"costs"`
			Histogram struct {
				Buckets []struct {
					LE    *float64 `json:"le"`
					Count float64  `json:"count"`
				} `json:"buckets"`
			} `json:"histogram"`
		} `json:"links"`
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	l := back[0].Links[0]
	if back[0].Broker != "na.a" || back[0].IntervalMs != 5000 || l.ID != "l1" || l.RTT != nil || l.Latency.P50 != 45.5 ||
		l.Costs[0].Profile != "default" || l.Costs[0].Value != nil || *l.Histogram.Buckets[0].LE != 45.056 || l.Histogram.Buckets[1].LE != nil {
		t.Errorf("report as JSON: %s", js)
	}
}
