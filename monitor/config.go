package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Bounds of the probe interval, for Config.Interval, SetInterval and the
// adaptive range. 10 ms is the finest interval whose probes (about 18% of a
// 1 Mbit/s link, see PacketSize) are still not the link's main traffic; 60 s
// is the coarsest that still notices a failure within minutes.
const (
	MinInterval = 10 * time.Millisecond
	MaxInterval = 60 * time.Second
)

// Detector kinds, for DetectorConfig.Kind.
const (
	DetectorPhi     = "phi"
	DetectorTimeout = "timeout"
)

// ErrBadConfig is wrapped by Validate and SetInterval errors.
var ErrBadConfig = errors.New("bad monitor config")

// Config sets how one link is measured. The zero value of any field takes
// its DefaultLANConfig value; NewLink clamps out-of-range values, Validate
// reports them.
type Config struct {
	// Interval is the time between probes. Default 1 s; [MinInterval,
	// MaxInterval]. Probe traffic is about 1.8 kbit/s / Interval(s) per
	// direction (see PacketSize); a failure is noticed after a few
	// intervals. Shorter: faster detection and more samples per window,
	// more traffic.
	Interval time.Duration
	// Adaptive lets the interval move: halved (down to AdaptiveMin) each
	// time a probe is sent while the link is suspect or down, and at every
	// surprising response (RTT outside srtt ± 4 rttvar, see detector.go);
	// doubled (up to AdaptiveMax) after AdaptiveSteady unsurprising
	// responses in a row. The range always includes Interval. Trade-off:
	// more samples and faster verdicts while the link misbehaves, less
	// traffic while it is steady, at the price of a variable sample rate.
	// Default off.
	Adaptive bool
	// AdaptiveMin and AdaptiveMax bound the adaptive interval. Default
	// 250 ms and 4 s.
	AdaptiveMin, AdaptiveMax time.Duration
	// AdaptiveSteady is the number of unsurprising responses in a row after
	// which the adaptive interval doubles. Default 10: at 250 ms it takes
	// 2.5 s to step up to 500 ms, and 4 steps (about a minute) to go from
	// 250 ms to 4 s.
	AdaptiveSteady int
	// Window is the number of most recent resolved probes (answered or
	// lost) that statistics are computed over. Default 256, which is
	// 4.3 minutes at 1 s and 26 s at 100 ms. The sampling error shrinks as
	// 1/sqrt(Window): for loss p the standard error is sqrt(p(1-p)/Window)
	// (0.9 points at p = 2%, Window 256), for the mean-difference jitter
	// about 5% of itself. Larger: steadier figures, slower to follow
	// change; each entry costs 48 bytes.
	Window int
	// DistWindow is the number of most recent answered probes that the
	// link's delay distribution (Metrics.Forward, what delay contracts
	// compose) is drawn from, at least Window. Default 2048: 20 probes in
	// the 1% tail, where 256 hold two or three. The memory forgets its
	// past when the window's delays stop looking drawn from it, so it
	// follows a change about as soon as the window does; each entry costs
	// 16 bytes.
	DistWindow int
	// ProbeTimeout is how long a probe waits for its response before it
	// counts as lost; a later response is counted as Late and ignored. Set
	// it near the 99th percentile of the RTT plus the peer's scheduling
	// delays: too short and slow responses count as loss, too long and loss
	// shows late (liveness does not wait for it). Default 500 ms LAN, 2 s
	// WAN, 200 ms local.
	ProbeTimeout time.Duration
	// Pad adds that many zero bytes to each probe, to measure the effect of
	// packet size. Default 0.
	Pad uint16
	// Detector sets the failure detector.
	Detector DetectorConfig
	// Logger receives probe send errors at debug level. Default: discard.
	Logger *slog.Logger
}

// DetectorConfig sets the failure detector. Probes double as heartbeats:
// only responses to our own probes count as signs of life, since they prove
// both directions work.
type DetectorConfig struct {
	// Kind is DetectorPhi (default) or DetectorTimeout.
	Kind string
	// PhiSuspect and PhiDown are the phi thresholds of the phi detector:
	// phi = -log10 P(this silence | the link is up), see detector.go. A
	// silence with phi = 6 happens once in a million probes on a live
	// link. With probe loss q each overdue probe adds -log10 q: 1.0 at
	// q = 10% (5% loss each way), 1.3 at the LossFloor of 5%. Defaults 3
	// and 6: down after 6-7 overdue probes at q = 10%, 5 at q <= 5%, so at
	// 100 ms probes a full outage is seen in 0.63 s (p99 0.76 s), and a
	// false down at q = 10% needs 6 losses in a row, 10^-6 per probe, once
	// in 28 hours of 100 ms probes. Higher: fewer false downs, slower
	// detection; each step of 1 costs about one interval at q = 10%.
	PhiSuspect, PhiDown float64
	// LossFloor and LossCeiling clamp the probe loss rate q the phi
	// detector assumes. The floor (default 5%) keeps a link that lost
	// nothing in its window from being declared down after two missed
	// probes when loss comes in bursts; the ceiling (default 50%) keeps a
	// very lossy link detectable (0.3 phi per overdue probe).
	LossFloor, LossCeiling float64
	// Ordered says the probes share one ordered stream with everything the
	// link carries (tcp, tls, ws), so that a stall holds them all: the
	// phi detector then counts only the unanswered probes sent at least
	// the link's longest stall apart (see detector.go). The broker sets it
	// from the link's transport.
	Ordered bool
	// MinStdDev is the smallest RTT standard deviation the phi detector
	// assumes when it asks whether a response is overdue. Default 1 ms
	// LAN, 5 ms WAN. Smaller: a steady link's late responses count as
	// missed sooner; larger: every verdict waits a little longer.
	MinStdDev time.Duration
	// SuspectAfter and Timeout are the timeout detector's thresholds: the
	// link is suspect after SuspectAfter and down after Timeout without a
	// response. Defaults 3 s and 5 s (3 and 5 default intervals). They do
	// not follow the interval: keep Timeout above several intervals, or a
	// link probed less often than that flaps.
	SuspectAfter, Timeout time.Duration
}

// DefaultLANConfig is for links inside a data centre: 1 s probes, a 500 ms
// probe timeout, a phi detector that says down after about 5 s of silence.
func DefaultLANConfig() Config {
	return Config{
		Interval:       time.Second,
		AdaptiveMin:    250 * time.Millisecond,
		AdaptiveMax:    4 * time.Second,
		AdaptiveSteady: 10,
		Window:         256,
		DistWindow:     2048,
		ProbeTimeout:   500 * time.Millisecond,
		Detector: DetectorConfig{
			Kind:         DetectorPhi,
			PhiSuspect:   3,
			PhiDown:      6,
			LossFloor:    0.05,
			LossCeiling:  0.5,
			MinStdDev:    time.Millisecond,
			SuspectAfter: 3 * time.Second,
			Timeout:      5 * time.Second,
		},
	}
}

// DefaultWANConfig is DefaultLANConfig for wide-area links: RTTs of tens to
// hundreds of ms with more spread, so a 2 s probe timeout and a 5 ms
// standard-deviation floor.
func DefaultWANConfig() Config {
	c := DefaultLANConfig()
	c.ProbeTimeout = 2 * time.Second
	c.Detector.MinStdDev = 5 * time.Millisecond
	return c
}

// DefaultLocalConfig is DefaultLANConfig for brokers on one host or in one
// process (demos, tests): 200 ms probes and timeout, so failures show in
// about a second, and an adaptive range of 50 ms to 1 s.
func DefaultLocalConfig() Config {
	c := DefaultLANConfig()
	c.Interval = 200 * time.Millisecond
	c.ProbeTimeout = 200 * time.Millisecond
	c.AdaptiveMin = 50 * time.Millisecond
	c.AdaptiveMax = time.Second
	c.Detector.SuspectAfter = 600 * time.Millisecond
	c.Detector.Timeout = time.Second
	return c
}

// Validate reports the first field that is out of range. Zero fields are
// fine: they take defaults.
func (c Config) Validate() error {
	d := c.Detector
	checks := []struct {
		bad bool
		msg string
	}{
		{c.Interval != 0 && !inBounds(c.Interval), fmt.Sprintf("interval %v outside [%v, %v]", c.Interval, MinInterval, MaxInterval)},
		{c.AdaptiveMin != 0 && !inBounds(c.AdaptiveMin), fmt.Sprintf("adaptive min %v outside [%v, %v]", c.AdaptiveMin, MinInterval, MaxInterval)},
		{c.AdaptiveMax != 0 && !inBounds(c.AdaptiveMax), fmt.Sprintf("adaptive max %v outside [%v, %v]", c.AdaptiveMax, MinInterval, MaxInterval)},
		{c.AdaptiveMin != 0 && c.AdaptiveMax != 0 && c.AdaptiveMin > c.AdaptiveMax, "adaptive min above adaptive max"},
		{c.AdaptiveSteady < 0, "negative adaptive steady count"},
		{c.Window < 0, "negative window"},
		{c.DistWindow < 0, "negative distribution window"},
		{c.ProbeTimeout < 0 || c.ProbeTimeout > MaxInterval, fmt.Sprintf("probe timeout %v outside [0, %v]", c.ProbeTimeout, MaxInterval)},
		{d.Kind != "" && d.Kind != DetectorPhi && d.Kind != DetectorTimeout, fmt.Sprintf("detector kind %q, want %q or %q", d.Kind, DetectorPhi, DetectorTimeout)},
		{d.PhiSuspect < 0 || d.PhiDown < 0, "negative phi threshold"},
		{d.PhiDown != 0 && d.PhiSuspect > d.PhiDown, "phi suspect above phi down"},
		{d.LossFloor < 0 || d.LossFloor >= 1 || d.LossCeiling < 0 || d.LossCeiling >= 1, "loss floor and ceiling must be in [0, 1)"},
		{d.LossCeiling != 0 && d.LossFloor > d.LossCeiling, "loss floor above loss ceiling"},
		{d.MinStdDev < 0 || d.SuspectAfter < 0 || d.Timeout < 0, "negative detector duration"},
		{d.Timeout != 0 && d.SuspectAfter > d.Timeout, "suspect-after above timeout"},
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("%w: %s", ErrBadConfig, ch.msg)
		}
	}
	return nil
}

func inBounds(d time.Duration) bool { return d >= MinInterval && d <= MaxInterval }

// withDefaults fills zero fields from DefaultLANConfig and clamps the rest
// into range, so that a Link always runs with a usable configuration.
func (c Config) withDefaults() Config {
	def := DefaultLANConfig()
	orDur := func(v *time.Duration, dv time.Duration) {
		if *v <= 0 {
			*v = dv
		}
	}
	orDur(&c.Interval, def.Interval)
	orDur(&c.AdaptiveMin, def.AdaptiveMin)
	orDur(&c.AdaptiveMax, def.AdaptiveMax)
	orDur(&c.ProbeTimeout, def.ProbeTimeout)
	c.Interval = clampDur(c.Interval, MinInterval, MaxInterval)
	c.AdaptiveMin = clampDur(c.AdaptiveMin, MinInterval, MaxInterval)
	c.AdaptiveMax = clampDur(c.AdaptiveMax, c.AdaptiveMin, MaxInterval)
	c.ProbeTimeout = min(c.ProbeTimeout, MaxInterval)
	if c.AdaptiveSteady <= 0 {
		c.AdaptiveSteady = def.AdaptiveSteady
	}
	if c.Window <= 0 {
		c.Window = def.Window
	}
	if c.DistWindow <= 0 {
		c.DistWindow = def.DistWindow
	}
	c.DistWindow = max(c.DistWindow, c.Window)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Detector = c.Detector.withDefaults(def.Detector)
	return c
}

func (d DetectorConfig) withDefaults(def DetectorConfig) DetectorConfig {
	if d.Kind != DetectorTimeout {
		d.Kind = DetectorPhi
	}
	orF := func(v *float64, dv float64) {
		if *v <= 0 {
			*v = dv
		}
	}
	orF(&d.PhiSuspect, def.PhiSuspect)
	orF(&d.PhiDown, def.PhiDown)
	orF(&d.LossFloor, def.LossFloor)
	orF(&d.LossCeiling, def.LossCeiling)
	d.PhiSuspect = min(d.PhiSuspect, d.PhiDown)
	d.LossCeiling = min(max(d.LossCeiling, d.LossFloor), 0.99)
	d.LossFloor = min(d.LossFloor, d.LossCeiling)
	if d.MinStdDev <= 0 {
		d.MinStdDev = def.MinStdDev
	}
	if d.Timeout <= 0 {
		d.Timeout = def.Timeout
	}
	if d.SuspectAfter <= 0 || d.SuspectAfter > d.Timeout {
		d.SuspectAfter = min(def.SuspectAfter, d.Timeout)
	}
	return d
}

func clampDur(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }
