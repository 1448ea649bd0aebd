package router

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// QueueGroup says how the messages of one NATS queue group are shared
// among the brokers that have members of it, instead of the default
// (a member on the publisher's own broker if there is one, else a member
// broker at random in proportion to its member count). It gives either
// Weights or a Policy:
//
//	{group: workers, weights: {na: 90, eu: 10}}  # split by unit
//	{group: billing, policy: nearest}            # cheapest reachable members first
//	{group: render, policy: load}                # even out the members' message rates
//
// Each message still goes to exactly one member.
type QueueGroup struct {
	Group string `yaml:"group" json:"group"`
	// Weights share the group's messages among units (any address prefix,
	// a broker included): a broker's members belong to the longest listed
	// unit that holds it.
	Weights map[string]float64 `yaml:"weights,omitempty" json:"weights,omitempty"`
	// Policy is QueueNearest or QueueLoad.
	Policy string `yaml:"policy,omitempty" json:"policy,omitempty"`
}

// The policies besides weights.
const (
	// QueueNearest sends a group's message to a member on the publisher's
	// broker if there is one, else to the member broker whose route costs
	// least on the message's profile.
	QueueNearest = "nearest"
	// QueueLoad shares a group's messages among the member brokers (the
	// publisher's own included) so that their members receive messages at
	// the same rate, counting those published where no policy reaches
	// (see NextQueueLoadWeights).
	QueueLoad = "load"
)

// Validate checks one entry: a group name, and weights or a known policy
// but not both; weights keyed by valid addresses, each finite and more
// than 0.
func (q QueueGroup) Validate() error {
	if q.Group == "" {
		return errors.New("group: required")
	}
	if strings.ContainsAny(q.Group, " \t\r\n") {
		return fmt.Errorf("group %q: a queue group name has no white space", q.Group)
	}
	switch {
	case len(q.Weights) > 0 && q.Policy != "":
		return fmt.Errorf("group %s: give weights or a policy, not both", q.Group)
	case len(q.Weights) == 0 && q.Policy == "":
		return fmt.Errorf("group %s: give weights ({na: 90, eu: 10}) or a policy (%s or %s)", q.Group, QueueNearest, QueueLoad)
	case q.Policy != "" && q.Policy != QueueNearest && q.Policy != QueueLoad:
		return fmt.Errorf("group %s: policy: unknown policy %q (want %s or %s, or weights)", q.Group, q.Policy, QueueNearest, QueueLoad)
	}
	for _, unit := range slices.Sorted(maps.Keys(q.Weights)) {
		if _, err := ParseAddress(unit); err != nil {
			return fmt.Errorf("group %s: weights: unit %q: %w", q.Group, unit, err)
		}
		if w := q.Weights[unit]; math.IsNaN(w) || math.IsInf(w, 0) || w <= 0 {
			return fmt.Errorf("group %s: weights: %s: %v is not a finite weight more than 0 (leave a unit out to give it nothing)", q.Group, unit, w)
		}
	}
	return nil
}

// CheckQueueGroups validates every entry, and that no group is given twice.
func CheckQueueGroups(qs []QueueGroup) error {
	seen := make(map[string]bool, len(qs))
	for i, q := range qs {
		if err := q.Validate(); err != nil {
			return fmt.Errorf("queues[%d]: %w", i, err)
		}
		if seen[q.Group] {
			return fmt.Errorf("queues[%d]: group %s given twice", i, q.Group)
		}
		seen[q.Group] = true
	}
	return nil
}

// QueueSplit is a validated weights policy made ready for choosing a unit
// per message. It is immutable and safe for concurrent use.
type QueueSplit struct {
	units   []Address // longest first, so that the first that holds a broker is its unit
	weights []float64
}

// NewQueueSplit prepares weights that QueueGroup.Validate accepted.
func NewQueueSplit(weights map[string]float64) QueueSplit {
	var s QueueSplit
	for _, k := range slices.Sorted(maps.Keys(weights)) {
		s.units = append(s.units, Address(k))
	}
	slices.SortStableFunc(s.units, func(a, b Address) int { return len(b) - len(a) })
	for _, u := range s.units {
		s.weights = append(s.weights, weights[string(u)])
	}
	return s
}

// Units returns how many units the split lists.
func (s *QueueSplit) Units() int { return len(s.units) }

// Unit returns unit i.
func (s *QueueSplit) Unit(i int) Address { return s.units[i] }

// UnitOf returns the index of the longest listed unit that holds broker
// addr, comparing whole labels ("na" holds "na.c1.b" but not "nab.c1"),
// or -1 when none does.
func (s *QueueSplit) UnitOf(addr []byte) int {
	for i, u := range s.units {
		if len(addr) == len(u) && string(addr) == string(u) ||
			len(addr) > len(u) && addr[len(u)] == '.' && string(addr[:len(u)]) == string(u) {
			return i
		}
	}
	return -1
}

// Choose picks one of the units that present marks (indexed as Unit),
// unit i with probability weight(i) / the sum of the present units'
// weights, from x, a uniform random number in [0, 1). It returns -1 when
// no unit is present.
func (s *QueueSplit) Choose(present []bool, x float64) int {
	var sum float64
	last := -1
	for i, ok := range present {
		if ok {
			sum += s.weights[i]
			last = i
		}
	}
	if last < 0 {
		return -1
	}
	x *= sum
	for i, ok := range present {
		if !ok {
			continue
		}
		if x < s.weights[i] {
			return i
		}
		x -= s.weights[i]
	}
	// Rounding left x at or past the last weight.
	return last
}
