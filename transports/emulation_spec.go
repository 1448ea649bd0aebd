package transports

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EmulationSpec is an Emulation as people write it, in a topology file or
// an HTTP request: durations as "45ms", probabilities as "1%" or 0.01,
// bandwidth as "1Mbit". Every field is optional: Apply changes only what a
// spec names, so `{"down": true}` takes a link down and keeps its delay.
type EmulationSpec struct {
	Delay        *Quantity     `json:"delay,omitempty" yaml:"delay,omitempty"`
	Jitter       *Quantity     `json:"jitter,omitempty" yaml:"jitter,omitempty"`
	JitterDist   *string       `json:"jitter_dist,omitempty" yaml:"jitter_dist,omitempty"`
	Loss         *Quantity     `json:"loss,omitempty" yaml:"loss,omitempty"`
	LossModel    *string       `json:"loss_model,omitempty" yaml:"loss_model,omitempty"`
	GE           *GESpec       `json:"gilbert,omitempty" yaml:"gilbert,omitempty"`
	Duplicate    *Quantity     `json:"duplicate,omitempty" yaml:"duplicate,omitempty"`
	Reorder      *Quantity     `json:"reorder,omitempty" yaml:"reorder,omitempty"`
	ReorderDelay *Quantity     `json:"reorder_delay,omitempty" yaml:"reorder_delay,omitempty"`
	Down         *bool         `json:"down,omitempty" yaml:"down,omitempty"`
	Outages      *[]OutageSpec `json:"outages,omitempty" yaml:"outages,omitempty"`
	Bandwidth    *Quantity     `json:"bandwidth,omitempty" yaml:"bandwidth,omitempty"`
	QueueLimit   *int          `json:"queue_limit,omitempty" yaml:"queue_limit,omitempty"`
	Seed         *int64        `json:"seed,omitempty" yaml:"seed,omitempty"`
}

// GESpec gives the Gilbert-Elliott parameters as probabilities.
type GESpec struct {
	P        Quantity `json:"p" yaml:"p"`
	R        Quantity `json:"r" yaml:"r"`
	LossGood Quantity `json:"loss_good,omitempty" yaml:"loss_good,omitempty"`
	LossBad  Quantity `json:"loss_bad" yaml:"loss_bad"`
}

// OutageSpec is a scheduled outage with durations as text.
type OutageSpec struct {
	Start    Quantity `json:"start" yaml:"start"`
	Duration Quantity `json:"duration" yaml:"duration"`
	Every    Quantity `json:"every,omitempty" yaml:"every,omitempty"`
}

// Quantity is a number or a string with a unit, as written; it accepts
// both JSON strings and JSON numbers.
type Quantity string

// UnmarshalJSON takes a JSON string or number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*q = Quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	*q = Quantity(n.String())
	return nil
}

func (q Quantity) duration(field string) (time.Duration, error) {
	s := strings.TrimSpace(string(q))
	if s == "" {
		return 0, nil
	}
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration (like 45ms or 1.5s)", field, s)
	}
	return d, nil
}

func (q Quantity) probability(field string) (float64, error) {
	if strings.TrimSpace(string(q)) == "" {
		return 0, nil
	}
	p, err := ParsePercent(string(q))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return p, nil
}

// bandwidthUnits maps unit suffixes to bits per second.
var bandwidthUnits = []struct {
	suffix string
	factor float64
}{
	{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"gbps", 1e9}, {"mbps", 1e6}, {"kbps", 1e3}, {"bit", 1}, {"bps", 1},
}

// Bandwidth reads q as a rate in bits a second ("1Mbit", "500kbit",
// "1000000"); errors name field.
func (q Quantity) Bandwidth(field string) (int64, error) { return q.bandwidth(field) }

func (q Quantity) bandwidth(field string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(string(q)))
	s = strings.TrimSuffix(s, "/s")
	if s == "" {
		return 0, nil
	}
	factor := 1.0
	for _, u := range bandwidthUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s: %q is not a bandwidth (like 1Mbit, 500kbit or 1000000)", field, string(q))
	}
	return int64(v * factor), nil
}

// Apply returns base with the fields the spec names changed, validated.
// Errors name the field at fault.
func (s EmulationSpec) Apply(base Emulation) (Emulation, error) {
	e := base
	var errs []error
	dur := func(q *Quantity, field string, dst *time.Duration) {
		if q != nil {
			v, err := q.duration(field)
			errs = append(errs, err)
			*dst = v
		}
	}
	prob := func(q *Quantity, field string, dst *float64) {
		if q != nil {
			v, err := q.probability(field)
			errs = append(errs, err)
			*dst = v
		}
	}
	dur(s.Delay, "delay", &e.Delay)
	dur(s.Jitter, "jitter", &e.Jitter)
	dur(s.ReorderDelay, "reorder_delay", &e.ReorderDelay)
	prob(s.Loss, "loss", &e.Loss)
	prob(s.Duplicate, "duplicate", &e.Duplicate)
	prob(s.Reorder, "reorder", &e.Reorder)
	if s.JitterDist != nil {
		e.JitterDist = *s.JitterDist
	}
	if s.LossModel != nil {
		e.LossModel = *s.LossModel
	}
	if s.GE != nil {
		prob(&s.GE.P, "gilbert.p", &e.GE.P)
		prob(&s.GE.R, "gilbert.r", &e.GE.R)
		prob(&s.GE.LossGood, "gilbert.loss_good", &e.GE.LossGood)
		prob(&s.GE.LossBad, "gilbert.loss_bad", &e.GE.LossBad)
	}
	if s.Down != nil {
		e.Down = *s.Down
	}
	if s.Outages != nil {
		e.Outages = nil
		for i, o := range *s.Outages {
			var out Outage
			dur(&o.Start, fmt.Sprintf("outages[%d].start", i), &out.Start)
			dur(&o.Duration, fmt.Sprintf("outages[%d].duration", i), &out.Duration)
			dur(&o.Every, fmt.Sprintf("outages[%d].every", i), &out.Every)
			e.Outages = append(e.Outages, out)
		}
	}
	if s.Bandwidth != nil {
		v, err := s.Bandwidth.bandwidth("bandwidth")
		errs = append(errs, err)
		e.Bandwidth = v
	}
	if s.QueueLimit != nil {
		e.QueueLimit = *s.QueueLimit
	}
	if s.Seed != nil {
		e.Seed = *s.Seed
	}
	if err := errors.Join(errs...); err != nil {
		return base, err
	}
	if err := e.Validate(); err != nil {
		return base, err
	}
	return e, nil
}

// SpecOf writes an Emulation the way people read it; zero fields are left
// out.
func SpecOf(e Emulation) EmulationSpec {
	var s EmulationSpec
	q := func(v string) *Quantity { x := Quantity(v); return &x }
	pct := func(p float64) *Quantity {
		return q(strconv.FormatFloat(p*100, 'f', -1, 64) + "%")
	}
	if e.Delay != 0 {
		s.Delay = q(e.Delay.String())
	}
	if e.Jitter != 0 {
		s.Jitter = q(e.Jitter.String())
	}
	if e.JitterDist != "" {
		s.JitterDist = &e.JitterDist
	}
	if e.Loss != 0 {
		s.Loss = pct(e.Loss)
	}
	if e.LossModel != "" {
		s.LossModel = &e.LossModel
	}
	if e.GE != (GilbertElliott{}) {
		s.GE = &GESpec{P: *pct(e.GE.P), R: *pct(e.GE.R), LossGood: *pct(e.GE.LossGood), LossBad: *pct(e.GE.LossBad)}
	}
	if e.Duplicate != 0 {
		s.Duplicate = pct(e.Duplicate)
	}
	if e.Reorder != 0 {
		s.Reorder = pct(e.Reorder)
	}
	if e.ReorderDelay != 0 {
		s.ReorderDelay = q(e.ReorderDelay.String())
	}
	if e.Down {
		s.Down = &e.Down
	}
	if len(e.Outages) > 0 {
		var os []OutageSpec
		for _, o := range e.Outages {
			os = append(os, OutageSpec{Start: Quantity(o.Start.String()), Duration: Quantity(o.Duration.String()), Every: Quantity(o.Every.String())})
		}
		s.Outages = &os
	}
	if e.Bandwidth != 0 {
		s.Bandwidth = q(strconv.FormatInt(e.Bandwidth, 10) + "bit")
	}
	if e.QueueLimit != 0 {
		s.QueueLimit = &e.QueueLimit
	}
	if e.Seed != 0 {
		s.Seed = &e.Seed
	}
	return s
}

// String summarises a spec on one line, for tables and logs; "-" when it
// names nothing.
func (s *EmulationSpec) String() string {
	if s == nil {
		return "-"
	}
	var parts []string
	add := func(name string, q *Quantity) {
		if q != nil && *q != "" {
			parts = append(parts, name+" "+string(*q))
		}
	}
	if s.Down != nil && *s.Down {
		parts = append(parts, "DOWN")
	}
	add("delay", s.Delay)
	add("jitter", s.Jitter)
	add("loss", s.Loss)
	add("dup", s.Duplicate)
	add("reorder", s.Reorder)
	add("bw", s.Bandwidth)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// StripEmulation undoes what an emulated sender added to a frame: it
// returns the payload and moves the receive time back by the sender's
// lateness (see Emulate). A frame from a plain sender is returned as it is.
// It lets a receiver that is not itself emulated read from a peer that is.
func StripEmulation(f Frame) Frame {
	if payload, lateness, ok := stripEmulationHeader(f.Data); ok {
		f.Data = payload
		f.Received = f.Received.Add(-lateness)
	}
	return f
}
