package topology

import (
	"fmt"
	"time"
)

// Reports sets how every broker reports its links' performance:
//
//	reports:
//	  interval: 5s          # a report per broker this often (100ms..1h)
//	  max_queued: 720       # reports kept until an aggregator acknowledges them
//	  max_queued_bytes: 33554432
//
// Fields left out keep the brokers' defaults (5 s, 720, 32 MiB).
type Reports struct {
	Interval       string `yaml:"interval,omitempty"`
	MaxQueued      int    `yaml:"max_queued,omitempty"`
	MaxQueuedBytes int    `yaml:"max_queued_bytes,omitempty"`
}

// The bounds of a report interval.
const (
	MinReportInterval = 100 * time.Millisecond
	MaxReportInterval = time.Hour
)

// ReportSettings reads the reports block: the interval (0 for the
// default) and the queue bounds (0 for the defaults).
func (r *Reports) ReportSettings() (interval time.Duration, maxQueued, maxQueuedBytes int, err error) {
	if r == nil {
		return 0, 0, 0, nil
	}
	if r.Interval != "" {
		interval, err = time.ParseDuration(r.Interval)
		if err != nil || interval < MinReportInterval || interval > MaxReportInterval {
			return 0, 0, 0, fmt.Errorf("reports: interval: %q is not a duration from %v to %v", r.Interval, MinReportInterval, MaxReportInterval)
		}
	}
	if r.MaxQueued < 0 || r.MaxQueuedBytes < 0 {
		return 0, 0, 0, fmt.Errorf("reports: max_queued and max_queued_bytes cannot be negative")
	}
	return interval, r.MaxQueued, r.MaxQueuedBytes, nil
}
