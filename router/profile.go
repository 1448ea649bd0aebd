package router

import (
	"fmt"
	"math"
)

// Profile weighs a link's measurements into one cost:
//
//	cost = Overall + Latency*latency_ms + Loss*loss_percent + Jitter*jitter_ms
//
// A link that is down costs +Inf. Different traffic wants different
// profiles: audio and video care about jitter far more than a file
// transfer does.
type Profile struct {
	Name    string  `yaml:"name" json:"name"`
	Overall float64 `yaml:"overall" json:"overall"` // added to every link: a price per hop
	Latency float64 `yaml:"latency" json:"latency"` // per millisecond of one-way latency
	Loss    float64 `yaml:"loss" json:"loss"`       // per percent of one-way loss
	Jitter  float64 `yaml:"jitter" json:"jitter"`   // per millisecond of jitter
}

// DefaultProfileName names the built-in profile that routes every subject
// no other profile claims.
const DefaultProfileName = "default"

// DefaultProfile prices a link mostly by its latency: one cost unit per
// millisecond, plus 10 per percent of loss (a lost message costs a
// retransmission or worse) and one per millisecond of jitter, so that a
// clean 45 ms link costs about 45.
func DefaultProfile() Profile {
	return Profile{Name: DefaultProfileName, Latency: 1, Loss: 10, Jitter: 1}
}

// Measures are what a profile prices: a link's current figures.
type Measures struct {
	Up          bool
	LatencyMs   float64 // one-way latency, mean
	LossPercent float64 // one-way loss, 0..100
	JitterMs    float64
	// Delay is the one-way delay distribution, for contracts; no profile
	// prices it.
	Delay Histogram
}

// Cost prices m. It is +Inf for a link that is down, and never negative
// or NaN: a missing figure (NaN) counts as zero.
func (p Profile) Cost(m Measures) float64 {
	if !m.Up {
		return math.Inf(1)
	}
	c := p.Overall + p.Latency*clean(m.LatencyMs) + p.Loss*clean(m.LossPercent) + p.Jitter*clean(m.JitterMs)
	if !(c >= 0) {
		return 0
	}
	return c
}

func clean(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return v
}

// Validate checks that a profile is named and its weights are finite and
// not negative.
func (p Profile) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("profile: name is required")
	}
	if p.Name == ContractProfileName {
		return fmt.Errorf("profile: %q names the routes of delay contracts", p.Name)
	}
	for _, w := range []struct {
		name string
		v    float64
	}{{"overall", p.Overall}, {"latency", p.Latency}, {"loss", p.Loss}, {"jitter", p.Jitter}} {
		if math.IsNaN(w.v) || math.IsInf(w.v, 0) || w.v < 0 {
			return fmt.Errorf("profile %s: %s: %v is not a finite weight >= 0", p.Name, w.name, w.v)
		}
	}
	return nil
}
