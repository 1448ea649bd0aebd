package topology

import (
	"fmt"
	"time"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

// Routing sets how links are priced and when cost updates are sent.
//
//	routing:
//	  profiles:                      # besides the built-in default (latency 1, loss 10, jitter 1)
//	    - {name: media, overall: 1, latency: 0.5, loss: 20, jitter: 10}
//	  subjects:                      # first match wins; others use the default profile
//	    - {subject: "media.>", profile: media}
//	  priorities:                    # first match wins; others are normal (see priority.go)
//	    - {subject: "alerts.>", class: high}
//	  threshold: 10%                 # relative cost change that triggers an update
//	  min_change: 0.5                # absolute change below which none is sent
//	  hold_down: 1s                  # least time between two updates that only lower costs
//	  refresh: 30s                   # every link and summary is re-announced this often
//	  delay_shift: 3%                # with contracts, how far a link's delay distribution moves before it is re-announced
//	  margin: 10%                    # a route moves only to a path cheaper by this much
//	  loss_window: 1024              # probes a link's loss is estimated over for its cost
//	  contracts:                     # delay contracts, matched before subjects (see ContractSpec)
//	    - {subject: "trade.>", within: [{p: 99, ms: 100}], max_loss: 0.1%}
//	  queues:                        # how queue groups share their messages (router.QueueGroup)
//	    - {group: workers, weights: {na: 90, eu: 10}}
//	    - {group: billing, policy: nearest}
type Routing struct {
	Profiles   []router.Profile  `yaml:"profiles,omitempty"`
	Subjects   []SubjectProfile  `yaml:"subjects,omitempty"`
	Priorities []SubjectPriority `yaml:"priorities,omitempty"`
	Threshold  string            `yaml:"threshold,omitempty"`
	MinChange  float64           `yaml:"min_change,omitempty"`
	HoldDown   string            `yaml:"hold_down,omitempty"`
	Refresh    string            `yaml:"refresh,omitempty"`
	Margin     string            `yaml:"margin,omitempty"`
	DelayShift string            `yaml:"delay_shift,omitempty"`
	LossWindow int               `yaml:"loss_window,omitempty"`
	Contracts  []ContractSpec    `yaml:"contracts,omitempty"`

	Queues []router.QueueGroup `yaml:"queues,omitempty"`
}

// SubjectProfile routes the subjects matching Subject on Profile.
type SubjectProfile struct {
	Subject string `yaml:"subject"`
	Profile string `yaml:"profile"`
}

// RoutingSettings are the parsed routing block.
type RoutingSettings struct {
	Profiles   []router.Profile
	Subjects   []SubjectProfile
	Priorities []SubjectClass
	Threshold  float64
	MinChange  float64
	HoldDown   time.Duration
	Refresh    time.Duration
	// Margin is a fraction in (0, 1); LossWindow a number of probes.
	Margin     float64
	LossWindow int
	// DelayShift is a Kolmogorov-Smirnov distance in (0, 1) (see
	// router.Rules.DelayShift).
	DelayShift float64
	// Contracts are the delay contracts, in the order they are matched.
	Contracts []SubjectContract
	// Queues are checked by router.CheckQueueGroups.
	Queues []router.QueueGroup
}

// Settings parses the block; zero fields mean the broker's defaults.
func (r *Routing) Settings() (RoutingSettings, error) {
	var s RoutingSettings
	if r == nil {
		return s, nil
	}
	s.Profiles, s.Subjects, s.MinChange = r.Profiles, r.Subjects, r.MinChange
	names := map[string]bool{router.DefaultProfileName: true}
	for i, p := range r.Profiles {
		if err := p.Validate(); err != nil {
			return s, fmt.Errorf("profiles[%d]: %w", i, err)
		}
		if names[p.Name] && p.Name != router.DefaultProfileName {
			return s, fmt.Errorf("profiles[%d]: %s defined twice", i, p.Name)
		}
		names[p.Name] = true
	}
	for i, sp := range r.Subjects {
		if sp.Subject == "" {
			return s, fmt.Errorf("subjects[%d]: subject: required", i)
		}
		if !names[sp.Profile] {
			return s, fmt.Errorf("subjects[%d] (%s): profile: unknown profile %q", i, sp.Subject, sp.Profile)
		}
	}
	var err error
	if s.Priorities, err = parsePriorities(r.Priorities); err != nil {
		return s, err
	}
	if r.Threshold != "" {
		v, err := transports.ParsePercent(r.Threshold)
		if err != nil {
			return s, fmt.Errorf("threshold: %w", err)
		}
		s.Threshold = v
	}
	for _, f := range []struct {
		name, text string
		to         *float64
	}{{"margin", r.Margin, &s.Margin}, {"delay_shift", r.DelayShift, &s.DelayShift}} {
		if f.text == "" {
			continue
		}
		v, err := transports.ParsePercent(f.text)
		if err != nil {
			return s, fmt.Errorf("%s: %w", f.name, err)
		}
		if v <= 0 || v >= 1 {
			return s, fmt.Errorf("%s: %s: want more than 0%% and less than 100%%", f.name, f.text)
		}
		*f.to = v
	}
	if r.LossWindow < 0 || r.LossWindow > monitor.LossHistory {
		return s, fmt.Errorf("loss_window: %d probes: want 1 to %d", r.LossWindow, monitor.LossHistory)
	}
	s.LossWindow = r.LossWindow
	if r.MinChange < 0 {
		return s, fmt.Errorf("min_change: %v is negative", r.MinChange)
	}
	for _, d := range []struct {
		name string
		text string
		dst  *time.Duration
	}{{"hold_down", r.HoldDown, &s.HoldDown}, {"refresh", r.Refresh, &s.Refresh}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v <= 0 {
			return s, fmt.Errorf("%s: %q is not a positive duration", d.name, d.text)
		}
		*d.dst = v
	}
	cs, err := contracts(r.Contracts)
	if err != nil {
		return s, err
	}
	s.Contracts = cs
	if err := router.CheckQueueGroups(r.Queues); err != nil {
		return s, err
	}
	s.Queues = r.Queues
	return s, nil
}
