package schema

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// A report in JSON (the aggregator's GET /api/latest) has the XML's
// names, in lower case, and writes a figure that is infinite (the cost of
// a link that is down, the last bucket's bound) as null: JSON has no
// infinity, and encoding/json refuses to write one.

// jsonNum is a figure in JSON: null when not finite.
type jsonNum float64

func (f jsonNum) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

type jsonSummary struct {
	Min  jsonNum `json:"min"`
	Mean jsonNum `json:"mean"`
	P50  jsonNum `json:"p50"`
	P90  jsonNum `json:"p90"`
	P99  jsonNum `json:"p99"`
	Max  jsonNum `json:"max"`
}

type jsonSamples struct {
	Sent       uint64 `json:"sent"`
	Received   uint64 `json:"received"`
	Lost       uint64 `json:"lost"`
	Window     int    `json:"window"`
	Reordered  uint64 `json:"reordered"`
	Duplicated uint64 `json:"duplicated"`
}

type jsonCost struct {
	Profile string  `json:"profile"`
	Value   jsonNum `json:"value"`
}

type jsonBucket struct {
	LE    jsonNum `json:"le"`
	Count float64 `json:"count"`
}

type jsonHistogram struct {
	Missing float64      `json:"missing"`
	Buckets []jsonBucket `json:"buckets"`
}

type jsonLink struct {
	ID        string        `json:"id"`
	A         string        `json:"a"`
	B         string        `json:"b"`
	Transport string        `json:"transport"`
	State     string        `json:"state"`
	Monitor   string        `json:"monitor"`
	RTT       jsonNum       `json:"rtt"`
	Latency   jsonSummary   `json:"latency"`
	Jitter    jsonNum       `json:"jitter"`
	Loss      float64       `json:"loss"`
	Samples   jsonSamples   `json:"samples"`
	Dropped   uint64        `json:"dropped"`
	Costs     []jsonCost    `json:"costs"`
	Histogram jsonHistogram `json:"histogram"`
}

// MarshalJSON writes r as {"broker", "domain", "seq", "time",
// "interval_ms", "links": [...]}.
func (r Report) MarshalJSON() ([]byte, error) {
	links := make([]jsonLink, len(r.Links))
	for i, l := range r.Links {
		s := l.Latency
		jl := jsonLink{ID: l.ID, A: l.A, B: l.B, Transport: l.Transport, State: l.State, Monitor: l.Monitor,
			RTT: jsonNum(l.RTT), Jitter: jsonNum(l.Jitter), Loss: l.Loss, Dropped: l.Dropped,
			Latency:   jsonSummary{jsonNum(s.Min), jsonNum(s.Mean), jsonNum(s.P50), jsonNum(s.P90), jsonNum(s.P99), jsonNum(s.Max)},
			Samples:   jsonSamples(l.Samples),
			Costs:     make([]jsonCost, len(l.Costs)),
			Histogram: jsonHistogram{Missing: l.Histogram.Missing, Buckets: make([]jsonBucket, len(l.Histogram.Buckets))},
		}
		for k, c := range l.Costs {
			jl.Costs[k] = jsonCost{c.Profile, jsonNum(c.Value)}
		}
		for k, b := range l.Histogram.Buckets {
			jl.Histogram.Buckets[k] = jsonBucket{jsonNum(b.LE), b.Count}
		}
		links[i] = jl
	}
	return json.Marshal(struct {
		Broker   string     `json:"broker"`
		Domain   string     `json:"domain"`
		Seq      uint64     `json:"seq"`
		Time     time.Time  `json:"time"`
		Interval float64    `json:"interval_ms"`
		Links    []jsonLink `json:"links"`
	}{r.Broker, r.Domain, r.Seq, r.Time, float64(r.Interval) / float64(time.Millisecond), links})
}
