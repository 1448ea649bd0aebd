package netapi

import "time"

// CostUpdate is a cost update as subscribers of $WL.cost.<unit> see it.
type CostUpdate struct {
	Origin string           `json:"origin"`
	Unit   string           `json:"unit"`
	Seq    uint64           `json:"seq"`
	Time   time.Time        `json:"time"`
	Links  []CostUpdateLink `json:"links"`
}

// CostUpdateLink is one link of a cost update. A link that is down has no
// costs.
type CostUpdateLink struct {
	ID string `json:"id"`
	A  string `json:"a"`
	B  string `json:"b"`
	Up bool   `json:"up"`
	// Standby: down, but its connection is open, so that routes take it
	// where no link that is up reaches.
	Standby   bool               `json:"standby,omitempty"`
	Cost      map[string]float64 `json:"cost,omitempty"`
	LatencyMs float64            `json:"latency_ms"`
	JitterMs  float64            `json:"jitter_ms"`
	Loss      float64            `json:"loss"`
}
