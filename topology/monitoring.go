package topology

import (
	"fmt"
	"time"

	"github.com/wayline/wayline/monitor"
)

// Monitoring sets how links are measured: for the whole network (the
// top-level `monitoring:` block) or for one link (its `monitor:` block,
// which overrides the top level field by field).
//
//	monitoring:
//	  preset: wan          # lan, wan (default) or local: see monitor.Default*Config
//	  interval: 100ms      # probe interval, 10ms to 60s
//	  adaptive: true       # probe more often while a link is unstable
//	  probe_timeout: 1s    # a probe not answered by then counts as lost
//	  detector: phi        # phi (default) or timeout
//	  window: 256          # probes delay, jitter and loss figures are drawn from
//	  distribution_window: 2048  # answered probes a delay distribution is drawn from
type Monitoring struct {
	Preset             string `yaml:"preset,omitempty"`
	Interval           string `yaml:"interval,omitempty"`
	Adaptive           *bool  `yaml:"adaptive,omitempty"`
	ProbeTimeout       string `yaml:"probe_timeout,omitempty"`
	Detector           string `yaml:"detector,omitempty"`
	Window             int    `yaml:"window,omitempty"`
	DistributionWindow int    `yaml:"distribution_window,omitempty"`
}

// The bounds of a monitoring block's windows, in probes: a window of
// fewer than MinWindow probes has no percentiles worth routing on, and
// the distribution window keeps 16 bytes a probe for every link.
const (
	MinWindow     = 16
	MaxWindow     = 16384
	MaxDistWindow = 65536
)

// presets maps preset names to monitor configurations.
var presets = map[string]func() monitor.Config{
	"lan":   monitor.DefaultLANConfig,
	"wan":   monitor.DefaultWANConfig,
	"local": monitor.DefaultLocalConfig,
}

// MonitorConfig returns the measurement settings of link l: the preset and
// fields of the file's monitoring block, overridden by the link's own.
func (f *File) MonitorConfig(l Link) (monitor.Config, error) {
	cfg := monitor.DefaultWANConfig()
	for _, m := range []*Monitoring{f.Monitoring, l.Monitor} {
		if m == nil {
			continue
		}
		var err error
		if cfg, err = m.apply(cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// apply lays m over cfg.
func (m *Monitoring) apply(cfg monitor.Config) (monitor.Config, error) {
	if m.Preset != "" {
		p, ok := presets[m.Preset]
		if !ok {
			return cfg, fmt.Errorf("preset: unknown preset %q (want lan, wan or local)", m.Preset)
		}
		cfg = p()
	}
	if m.Interval != "" {
		d, err := time.ParseDuration(m.Interval)
		if err != nil || d < monitor.MinInterval || d > monitor.MaxInterval {
			return cfg, fmt.Errorf("interval: %q is not a duration from %v to %v", m.Interval, monitor.MinInterval, monitor.MaxInterval)
		}
		cfg.Interval = d
		cfg.AdaptiveMin = min(cfg.AdaptiveMin, d)
		cfg.AdaptiveMax = max(cfg.AdaptiveMax, d)
	}
	if m.Adaptive != nil {
		cfg.Adaptive = *m.Adaptive
	}
	if m.ProbeTimeout != "" {
		d, err := time.ParseDuration(m.ProbeTimeout)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("probe_timeout: %q is not a positive duration", m.ProbeTimeout)
		}
		cfg.ProbeTimeout = d
	}
	switch m.Detector {
	case "":
	case monitor.DetectorPhi, monitor.DetectorTimeout:
		cfg.Detector.Kind = m.Detector
	default:
		return cfg, fmt.Errorf("detector: unknown detector %q (want phi or timeout)", m.Detector)
	}
	if m.Window != 0 {
		if m.Window < MinWindow || m.Window > MaxWindow {
			return cfg, fmt.Errorf("window: %d probes: want %d to %d", m.Window, MinWindow, MaxWindow)
		}
		cfg.Window = m.Window
	}
	if m.DistributionWindow != 0 {
		if m.DistributionWindow < MinWindow || m.DistributionWindow > MaxDistWindow {
			return cfg, fmt.Errorf("distribution_window: %d probes: want %d to %d", m.DistributionWindow, MinWindow, MaxDistWindow)
		}
		cfg.DistWindow = m.DistributionWindow
	}
	if m.Window != 0 || m.DistributionWindow != 0 {
		if cfg.DistWindow < cfg.Window {
			return cfg, fmt.Errorf("distribution_window: %d probes, below the window's %d", cfg.DistWindow, cfg.Window)
		}
	}
	return cfg, nil
}
