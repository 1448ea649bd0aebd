package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// State is a broker's routing state, which its performance report does not
// hold: its route table per cost profile, its links' states, its client
// count and the subjects its clients subscribe to. Brokers publish it as
// JSON on $WL.state.<domain> every report interval and at once (within a
// fraction of a second) when a route or a link's state changes, so that an
// aggregator's pages show route changes as they happen. Only the latest
// state of a broker matters, so states are not acknowledged or kept: a
// lost one is replaced by the next.
//
//	{"broker":"na.cgl.c1.a","domain":"na","seq":7,"time":"2026-11-23T10:00:00Z","clients":3,
//	 "links":[{"id":"3f2a…","peer":"na.cgl.c1.b","up":true,"emulation":{"delay":"2ms","jitter":"200µs"}}],
//	 "routes":[{"profile":"default","destination":"eu","next_hop":"na.cgl.c1.b","link":"3f2a…","cost":57.4,"path":["na.cgl.c1.a","na.cgl.c1.b","eu"]}],
//	 "subjects":["orders.>"],"messages":{"rerouted":183,"held_for_order":6}}
//
// A route's destination is a broker of the reporting broker's cluster or a
// unit beside one of its own (the nodes of its network map); a message for
// a broker inside that unit goes to next_hop, which routes it on.
type State struct {
	Broker   string      `json:"broker"`
	Domain   string      `json:"domain"`
	Seq      uint64      `json:"seq"` // from 1, per broker run, one more per state
	Time     time.Time   `json:"time"`
	Clients  int         `json:"clients"`
	Links    []StateLink `json:"links"`
	Routes   []Route     `json:"routes"`
	Subjects []string    `json:"subjects"` // the local clients' subscriptions, $WL. and _INBOX. ones left out
	// Profiles says which cost profile routes which subjects, first match
	// first; other subjects take the first profile of Routes.
	Profiles []SubjectProfile `json:"profiles"`
	// Messages counts, since the broker started, what it did with
	// messages itself rather than on a link (MessageCounters names them):
	// what it dropped, routed again after a failure, or held, or delivered
	// out of order, for a publisher's order. Zero counts are left out.
	Messages map[string]uint64 `json:"messages,omitempty"`
}

// MessageCounters are the counters of State.Messages, as GET /api/status
// names them.
var MessageCounters = []string{
	"dropped_no_route", "dropped_hop_limit", "dropped_duplicates", "dropped_reserved_subject",
	"dropped_no_queue_member", "dropped_leaf_queue_full",
	"rerouted", "held_for_order", "order_waits_expired", "delivered_out_of_order",
}

// SubjectProfile routes the subjects matching Subject (NATS wildcards) on
// the cost profile Profile.
type SubjectProfile struct {
	Subject string `json:"subject"`
	Profile string `json:"profile"`
}

// StateLink is a link's state as its broker sees it now.
type StateLink struct {
	ID   string `json:"id"`
	Peer string `json:"peer"`
	Up   bool   `json:"up"`
	// Standby: down, but its connection is open, so that routes take it
	// where no link that is up reaches.
	Standby bool `json:"standby,omitempty"`
	// Emulation is the link's emulated conditions, when it has any.
	Emulation *StateEmulation `json:"emulation,omitempty"`
	// Drops counts the messages the broker dropped on their way over the
	// link since it started, by reason (send_queue_full, link_down,
	// lost_in_transit, over_frame_limit), the reasons with none left out.
	Drops map[string]uint64 `json:"drops,omitempty"`
	// ClassDrops counts them by the messages' priority class (high,
	// normal, low), then reason, those with none left out; a message lost
	// in transit has no known class.
	ClassDrops map[string]map[string]uint64 `json:"class_drops,omitempty"`
}

// dropReasons are the reasons a link's drops may be counted under, and
// dropClasses the priority classes.
var (
	dropReasons = map[string]bool{"send_queue_full": true, "link_down": true, "lost_in_transit": true, "over_frame_limit": true}
	dropClasses = map[string]bool{"high": true, "normal": true, "low": true}
)

// Equal reports whether l and m say the same of a link, its drops aside
// (they only count).
func (l StateLink) Equal(m StateLink) bool {
	if l.ID != m.ID || l.Peer != m.Peer || l.Up != m.Up || (l.Emulation == nil) != (m.Emulation == nil) {
		return false
	}
	return l.Emulation == nil || *l.Emulation == *m.Emulation
}

// StateEmulation is what a link's emulated conditions are, as a topology
// file writes them ("45ms", "1%"); what is not emulated is empty.
type StateEmulation struct {
	Delay  string `json:"delay,omitempty"`
	Jitter string `json:"jitter,omitempty"`
	Loss   string `json:"loss,omitempty"`
	Down   bool   `json:"down,omitempty"`
}

// maxQuantityLen bounds a quantity of a StateEmulation.
const maxQuantityLen = 64

// Route is one entry of a broker's route table.
type Route struct {
	Profile     string   `json:"profile"`
	Destination string   `json:"destination"`
	NextHop     string   `json:"next_hop"`
	Link        string   `json:"link"`
	Cost        float64  `json:"cost"`
	Path        []string `json:"path"`
	// Exits lists where the path leaves each unit it crosses: messages on
	// the route are steered to each exit's broker in turn, which sends
	// them over the exit's link (see router.Route).
	Exits []RouteExit `json:"exits,omitempty"`
	// Contract, on a route of a delay contract, is the contract's subject
	// pattern (Profile is then "contract"), and Prediction what the path's
	// composed delay distribution promises of it.
	Contract   string      `json:"contract,omitempty"`
	Prediction *Prediction `json:"prediction,omitempty"`
}

// ContractProfile is the Profile of a delay contract's routes.
const ContractProfile = "contract"

// Prediction is what a path's delay distribution, its hops' measured
// distributions convolved, promises of a delay contract.
type Prediction struct {
	// Status is "met", "at risk" (met, but within 20% of a bound),
	// "breached" or "unknown" (a hop not measured yet).
	Status string           `json:"status"`
	Loss   float64          `json:"loss"` // the fraction predicted never to arrive
	Bounds []PredictedBound `json:"bounds"`
	// CDF samples the composed distribution: the fraction of messages
	// (lost ones counted) that arrive within each delay, rising.
	CDF []CDFPoint `json:"cdf,omitempty"`
}

// PredictedBound is one bound of a contract and the prediction for it.
type PredictedBound struct {
	P  float64 `json:"p"`  // percent of messages the contract asks for
	Ms float64 `json:"ms"` // within this delay
	// PredictedMs is the delay within which P percent arrive; absent when
	// that many never do.
	PredictedMs *float64 `json:"predicted_ms,omitempty"`
	Reached     float64  `json:"reached"` // percent predicted within Ms
}

// CDFPoint is one point of a distribution: P percent within Ms.
type CDFPoint struct {
	Ms float64 `json:"ms"`
	P  float64 `json:"p"`
}

// Bounds of a prediction.
const (
	maxPredictionBounds = 16
	MaxPredictionCDF    = 24
)

// Prediction states.
const (
	StatusMet      = "met"
	StatusAtRisk   = "at risk"
	StatusBreached = "breached"
	StatusUnknown  = "unknown"
)

func (p *Prediction) validate() error {
	switch p.Status {
	case StatusMet, StatusAtRisk, StatusBreached, StatusUnknown:
	default:
		return fmt.Errorf("status %.32q is none of met, at risk, breached, unknown", p.Status)
	}
	if !(p.Loss >= 0 && p.Loss <= 1) {
		return fmt.Errorf("loss %v is not a fraction", p.Loss)
	}
	if len(p.Bounds) == 0 || len(p.Bounds) > maxPredictionBounds || len(p.CDF) > MaxPredictionCDF {
		return fmt.Errorf("%d bounds and %d CDF points: want 1 to %d and at most %d", len(p.Bounds), len(p.CDF), maxPredictionBounds, MaxPredictionCDF)
	}
	for i, b := range p.Bounds {
		if !(b.P > 0 && b.P < 100) || !(b.Ms > 0) || math.IsInf(b.Ms, 0) || !(b.Reached >= 0 && b.Reached <= 100) ||
			b.PredictedMs != nil && (!(*b.PredictedMs >= 0) || math.IsInf(*b.PredictedMs, 0)) {
			return fmt.Errorf("bounds[%d] out of range", i)
		}
	}
	for i, c := range p.CDF {
		if !(c.Ms >= 0) || math.IsInf(c.Ms, 0) || !(c.P >= 0 && c.P <= 100) || i > 0 && (c.Ms < p.CDF[i-1].Ms || c.P < p.CDF[i-1].P) {
			return fmt.Errorf("cdf[%d] out of range or not rising", i)
		}
	}
	return nil
}

// RouteExit is where a route leaves a unit it crosses: the broker inside
// the unit and its link out.
type RouteExit struct {
	Broker string `json:"broker"`
	Link   string `json:"link"`
}

// Bounds of a state message.
const (
	MaxStateBytes    = 1 << 20
	MaxStateSubjects = 1000
	maxSubjectLen    = 1024
)

// Via is the broker that route r hands messages to: the peer at the other
// end of the route's link (its next hop).
func (s *State) Via(r Route) string {
	for _, l := range s.Links {
		if l.ID == r.Link && l.Peer != "" {
			return l.Peer
		}
	}
	return r.NextHop
}

// DecodeState parses and checks a state message: at most MaxStateBytes of
// JSON with no unknown field, valid addresses and link ids, finite costs,
// at most MaxStateSubjects subjects. Errors wrap ErrTooLarge, ErrMalformed
// or ErrInvalid.
func DecodeState(data []byte) (State, error) {
	var s State
	if len(data) > MaxStateBytes {
		return s, fmt.Errorf("schema: decode state: %w: %d bytes, more than %d", ErrTooLarge, len(data), MaxStateBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("schema: decode state: %w: %w", ErrMalformed, err)
	}
	if dec.More() {
		return State{}, fmt.Errorf("schema: decode state: %w: data after the object", ErrMalformed)
	}
	if err := s.Validate(); err != nil {
		return State{}, fmt.Errorf("schema: decode state of %.64q: %w", s.Broker, err)
	}
	s.Time = s.Time.UTC()
	return s, nil
}

// Validate checks s; the error wraps ErrInvalid.
func (s *State) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if err := checkAddress(s.Broker); err != nil {
		return bad("broker: %v", err)
	}
	if err := checkAddress(s.Domain); err != nil {
		return bad("domain: %v", err)
	}
	if s.Seq == 0 {
		return bad("seq is 0 (states count from 1)")
	}
	if err := checkTime(s.Time); err != nil {
		return bad("time: %v", err)
	}
	if s.Clients < 0 {
		return bad("clients %d is negative", s.Clients)
	}
	for i, l := range s.Links {
		if !isUUID(l.ID) {
			return bad("links[%d]: id %.64q is not a lower-case UUID", i, l.ID)
		}
		if err := checkAddress(l.Peer); err != nil {
			return bad("links[%d]: peer: %v", i, err)
		}
		for reason := range l.Drops {
			if !dropReasons[reason] {
				return bad("links[%d]: drops: unknown reason %.64q", i, reason)
			}
		}
		for class, by := range l.ClassDrops {
			if !dropClasses[class] {
				return bad("links[%d]: class drops: unknown class %.64q", i, class)
			}
			for reason := range by {
				if !dropReasons[reason] {
					return bad("links[%d]: class drops: %s: unknown reason %.64q", i, class, reason)
				}
			}
		}
		if e := l.Emulation; e != nil {
			q := e.Delay + e.Jitter + e.Loss
			if len(q) > 3*maxQuantityLen || checkText(q) != nil {
				return bad("links[%d]: emulation: quantities longer than %d bytes or not text", i, maxQuantityLen)
			}
		}
	}
	for i, r := range s.Routes {
		if err := r.validate(); err != nil {
			return bad("routes[%d]: %v", i, err)
		}
	}
	for name := range s.Messages {
		if !slices.Contains(MessageCounters, name) {
			return bad("messages: unknown counter %.64q", name)
		}
	}
	if len(s.Subjects) > MaxStateSubjects {
		return bad("%d subjects, more than %d", len(s.Subjects), MaxStateSubjects)
	}
	for i, sub := range s.Subjects {
		if sub == "" || len(sub) > maxSubjectLen {
			return bad("subjects[%d]: empty or longer than %d bytes", i, maxSubjectLen)
		}
		if err := checkText(sub); err != nil {
			return bad("subjects[%d]: %v", i, err)
		}
	}
	for i, p := range s.Profiles {
		if p.Subject == "" || p.Profile == "" || len(p.Subject) > maxSubjectLen {
			return bad("profiles[%d]: subject or profile empty, or too long", i)
		}
		if err := checkText(p.Subject + p.Profile); err != nil {
			return bad("profiles[%d]: %v", i, err)
		}
	}
	return nil
}

func (r *Route) validate() error {
	if r.Profile == "" {
		return errors.New("profile is empty")
	}
	if err := checkText(r.Profile); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	for _, f := range [...]struct{ name, v string }{{"destination", r.Destination}, {"next_hop", r.NextHop}} {
		if err := checkAddress(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if !isUUID(r.Link) {
		return fmt.Errorf("link %.64q is not a lower-case UUID", r.Link)
	}
	if !(r.Cost >= 0) || math.IsInf(r.Cost, 0) {
		return fmt.Errorf("cost %v is negative or not finite", r.Cost)
	}
	if len(r.Path) < 2 {
		return fmt.Errorf("path has %d addresses, fewer than 2", len(r.Path))
	}
	for i, a := range r.Path {
		if err := checkAddress(a); err != nil {
			return fmt.Errorf("path[%d]: %w", i, err)
		}
	}
	if r.Path[len(r.Path)-1] != r.Destination || r.Path[1] != r.NextHop {
		return errors.New("path does not run from next_hop to destination")
	}
	if len(r.Exits) > len(r.Path) {
		return fmt.Errorf("%d exits for a path of %d addresses", len(r.Exits), len(r.Path))
	}
	for i, e := range r.Exits {
		if err := checkAddress(e.Broker); err != nil {
			return fmt.Errorf("exits[%d]: broker: %w", i, err)
		}
		if !isUUID(e.Link) {
			return fmt.Errorf("exits[%d]: link %.64q is not a lower-case UUID", i, e.Link)
		}
	}
	if (r.Contract != "") != (r.Prediction != nil) || (r.Contract != "") != (r.Profile == ContractProfile) {
		return errors.New("a contract's route has a contract, a prediction and the profile \"contract\"; others have none")
	}
	if r.Contract != "" {
		if len(r.Contract) > maxSubjectLen || checkText(r.Contract) != nil {
			return errors.New("contract: longer than a subject or not text")
		}
		if err := r.Prediction.validate(); err != nil {
			return fmt.Errorf("prediction: %w", err)
		}
	}
	return nil
}

// The aggregator's view of the states it receives.

// RouteChange is one broker's next hop towards one destination changing.
type RouteChange struct {
	Time        time.Time `json:"time"`
	Broker      string    `json:"broker"`
	Profile     string    `json:"profile"`
	Destination string    `json:"destination"`
	From        string    `json:"from"` // the old next hop; "" when it was unreachable
	To          string    `json:"to"`   // the new one; "" when it is unreachable now
	Cost        float64   `json:"cost"` // the new route's cost
}

// SubjectRoute is the way a subject's messages published at one broker
// take to each broker whose clients subscribe to it.
type SubjectRoute struct {
	Subject, From, Profile string
	// Contract is the delay contract's subject pattern when the subject
	// is routed by one (Profile is then "contract").
	Contract string
	Paths    []SubjectPath
}

// SubjectPath is the way to one subscribing broker: the brokers passed,
// from the publishing one, and the links taken. Reached is false when a
// broker on the way has no route on (the path then ends there).
type SubjectPath struct {
	To      string
	Brokers []string
	Links   []string
	Reached bool
}
