package transports

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Emulated links: our netem. Emulate wraps any Conn and gives the frames it
// sends wide-area conditions (delay, jitter, loss, duplication, reordering,
// outages, a bandwidth cap), so that tests and demos on one machine behave
// like links across continents.
//
// The emulation applies on Send, to the direction this end sends. Each end of
// a link wraps its own Conn, so a symmetric declaration gives both directions
// the same conditions. Send only schedules a frame; a scheduler goroutine per
// EmulatedConn hands it to the inner Conn at its due time.
//
// Timing is exact for measurement and close for data. Go timers wake up
// late (the runtime waits for them in whole milliseconds), so the scheduler
// waits on a timer only until shortly before a frame's due time and then
// naps on a kernel timer (a timerfd in the runtime's poller, on Linux),
// which wakes it within tens of microseconds; on a busy machine a frame can still reach the peer later.
// So that measurement stays exact, the sender prefixes every frame with a
// 9-byte header, the marker byte 0xEE and the scheduler's lateness (hand-off time minus due time, int64 nanoseconds,
// big-endian), and the receiving EmulatedConn strips it and reports
// Frame.Received = actual receipt - lateness: the moment the emulated network
// meant to deliver the frame. A link monitor therefore sees the emulated
// network exactly, while the data path runs slightly behind it. This is a
// deliberate choice. The lateness includes any time the scheduler spent
// blocked in an earlier inner Send; time a frame then waits in the
// receiver's own buffers is not corrected.
//
// Consequences of the header:
//   - Both ends of a link must be emulated (a zero Emulation passes frames
//     through unchanged). A plain end would receive the header as data. An
//     EmulatedConn passes frames without the marker through untouched, so a
//     plain sender is understood, but a plain frame that happens to start
//     with 0xEE and is at least 9 bytes long would be taken for a header.
//   - Frames grow by EmulationOverhead bytes: Send refuses frames over the
//     inner conn's MaxFrame minus EmulationOverhead, and Info().FrameHint is
//     reduced to match. The limit of a Conn from outside this package is
//     unknown; such a conn refuses oversized frames only when they are
//     handed off, and Stats counts them as Oversized.
//
// Reliable and unreliable inner conns (Info().Reliable) are emulated
// differently, because a reliable transport repairs what the network does:
//   - Unreliable (udp): lost frames are dropped, duplicates are sent twice,
//     jitter and Reorder may reorder, frames sent during an outage are
//     dropped, frames that find the bandwidth queue full are dropped.
//   - Reliable (tcp, tls, ws, quic, mem): nothing is lost, duplicated or reordered.
//     A frame drawn as lost is delivered late by one retransmission timeout,
//     RTO = max(200 ms, 2*(Delay+Jitter)), and every later frame waits behind
//     it (head-of-line blocking: due times never go back). Frames sent within
//     a millisecond of one another meet one draw of the delay, as packets
//     written together meet the same queues; with a draw each, a burst
//     would arrive with its slowest draw, and a burst that a stall upstream
//     released would pay that again on every later hop. Frames sent during
//     an outage are held and delivered, in order, when it ends; Send blocks
//     while more than QueueLimit bytes are held, and while the bandwidth queue
//     holds more than QueueLimit bytes, as TCP blocks on a full window.
//
// A quic link can instead be emulated under its own packets, where QUIC's
// recovery repairs the loss (see PacketEmulator and quic_socket.go).
//
// Close behaves like closing a socket: frames already scheduled are still
// delivered, for up to a second, before the inner conn is closed and the
// peer sees the end; frames held by Down are discarded.

// EmulationOverhead is the number of bytes an emulated link adds to every
// frame: the marker byte and the lateness.
const EmulationOverhead = 9

// Jitter distributions, for Emulation.JitterDist.
const (
	JitterUniform = "uniform"
	JitterNormal  = "normal"
	JitterPareto  = "pareto"
)

// Loss models, for Emulation.LossModel.
const (
	LossIndependent = "independent"
	LossGilbert     = "gilbert"
)

const (
	// DefaultQueueLimit is the bandwidth queue (and, on reliable links, the
	// outage hold) in bytes unless Emulation.QueueLimit says otherwise.
	DefaultQueueLimit = 1 << 20
	// minRTO is the smallest retransmission timeout of a reliable link, the
	// RFC 6298 minimum that Linux uses.
	minRTO = 200 * time.Millisecond
	// togetherFor: frames a reliable link sends within this of the draw
	// of a delay meet that delay (see the comment at the top).
	togetherFor = time.Millisecond
	// defaultReorderDelay holds reordered frames back when Jitter is zero.
	defaultReorderDelay = 5 * time.Millisecond
	// maxEmulatedDelay bounds Delay, Jitter and ReorderDelay, so that the
	// arithmetic on them cannot overflow.
	maxEmulatedDelay = time.Hour
)

// Emulation is what an emulated link does to the frames it sends (one
// direction). The zero value passes frames through unchanged.
//
// Jitter is one number whose meaning depends on JitterDist; the extra delay
// X is added to Delay for each frame, and the total is never below zero:
//   - "uniform" (or ""): X is uniform in [-Jitter, +Jitter]; Jitter is the
//     half-width. Standard deviation Jitter/sqrt(3), mean 0.
//   - "normal": X is normal with mean 0; Jitter is its standard deviation.
//   - "pareto": X is Lomax (Pareto type II, starting at 0) with shape 3 and
//     scale 2*Jitter, cut at 1000*Jitter; Jitter is its mean. The tail is
//     heavy: standard deviation sqrt(3)*Jitter, median 0.52*Jitter, 1 frame
//     in 1300 more than 20*Jitter late. Delay is then the floor of the
//     delay, as with queueing, and the mean delay is Delay+Jitter.
//
// The clamp at zero only matters when Delay < Jitter (uniform) or
// Delay < 3*Jitter (normal). Expect gives the resulting figures.
type Emulation struct {
	// Delay is the fixed one-way delay added to every frame.
	Delay time.Duration
	// Jitter is the spread of the random extra delay; see JitterDist.
	Jitter time.Duration
	// JitterDist is "uniform" (default), "normal" or "pareto".
	JitterDist string
	// Loss is the probability that a frame is lost, 0..1, each frame drawn
	// independently. It is ignored when LossModel is "gilbert"; Expect
	// gives the loss rate either way.
	Loss float64
	// LossModel is "independent" (default) or "gilbert" (bursty loss, see GE).
	LossModel string
	// GE parameterises the "gilbert" loss model and is ignored otherwise,
	// so that a link can switch models and back without losing it.
	GE GilbertElliott
	// Duplicate is the probability that a frame is sent twice (unreliable
	// inner only). The copy follows the original at once.
	Duplicate float64
	// Reorder is the probability that a frame is held back by ReorderDelay
	// beyond its delay, so that later frames overtake it (unreliable inner
	// only).
	Reorder float64
	// ReorderDelay is the extra delay of a reordered frame. Default
	// 2*Jitter, or 5 ms when Jitter is 0.
	ReorderDelay time.Duration
	// Down is a full outage, for as long as it is set.
	Down bool
	// Outages are scheduled outages, timed from when the emulation was set
	// (Emulate or SetEmulation). Whether a frame meets an outage depends on
	// when it is sent.
	Outages []Outage
	// Bandwidth caps the link in bits per second; 0 means unlimited. Frames
	// queue behind each other, each taking len(frame)*8/Bandwidth to
	// serialize (the emulation header is not counted). Frames lost on an
	// unreliable link take no bandwidth.
	Bandwidth int64
	// QueueLimit is how many bytes may wait for the bandwidth cap before
	// frames are dropped (unreliable) or Send blocks (reliable); on a
	// reliable link it also bounds the bytes held during an outage. A frame
	// larger than the limit passes when the queue is empty. Default
	// DefaultQueueLimit (1 MiB).
	QueueLimit int
	// Seed seeds the random draws, so that tests are reproducible; 0 picks a
	// random seed. SetEmulation reseeds.
	Seed int64
}

// GilbertElliott is a two-state Markov loss model. Each frame is lost with
// the loss probability of the current state, then the state may change:
// good to bad with probability P, bad to good with probability R. The chain
// starts in the good state. In the long run the link is bad a fraction
// P/(P+R) of the time and loses (R*LossGood + P*LossBad)/(P+R) of the
// frames; with LossGood 0 and LossBad 1 a burst of losses is 1/R frames
// long on average.
type GilbertElliott struct {
	P        float64 // good -> bad, per frame
	R        float64 // bad -> good, per frame
	LossGood float64 // loss probability in the good state
	LossBad  float64 // loss probability in the bad state
}

// Outage is a scheduled outage: the link is down from Start to
// Start+Duration after the emulation was set and, when Every is not zero,
// again every Every after that.
type Outage struct {
	Start    time.Duration
	Duration time.Duration
	Every    time.Duration
}

// Validate checks ranges and names. It returns nil or an error listing every
// bad field by name.
func (e Emulation) Validate() error {
	errs := []error{
		durationIn("Delay", e.Delay, maxEmulatedDelay),
		durationIn("Jitter", e.Jitter, maxEmulatedDelay),
		oneOf("JitterDist", e.JitterDist, "", JitterUniform, JitterNormal, JitterPareto),
		probability("Loss", e.Loss),
		oneOf("LossModel", e.LossModel, "", LossIndependent, LossGilbert),
		e.validateGilbert(),
		probability("Duplicate", e.Duplicate),
		probability("Reorder", e.Reorder),
		durationIn("ReorderDelay", e.ReorderDelay, maxEmulatedDelay),
	}
	for i, o := range e.Outages {
		errs = append(errs, o.validate(i))
	}
	if e.Bandwidth < 0 {
		errs = append(errs, fmt.Errorf("Bandwidth: %d is negative", e.Bandwidth))
	}
	if e.QueueLimit < 0 {
		errs = append(errs, fmt.Errorf("QueueLimit: %d is negative", e.QueueLimit))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid emulation: %w", err)
	}
	return nil
}

// validateGilbert checks the GE probabilities, whatever the loss model, so
// that a bad value is caught before someone switches to it.
func (e Emulation) validateGilbert() error {
	return errors.Join(
		probability("GE.P", e.GE.P),
		probability("GE.R", e.GE.R),
		probability("GE.LossGood", e.GE.LossGood),
		probability("GE.LossBad", e.GE.LossBad))
}

func (o Outage) validate(i int) error {
	field := fmt.Sprintf("Outages[%d]", i)
	var every error
	if o.Every != 0 && o.Every <= o.Duration {
		every = fmt.Errorf("%s.Every: %v must exceed Duration %v, or be 0 for a single outage", field, o.Every, o.Duration)
	}
	var dur error
	if o.Duration <= 0 {
		dur = fmt.Errorf("%s.Duration: %v must be positive", field, o.Duration)
	}
	return errors.Join(
		durationIn(field+".Start", o.Start, math.MaxInt64),
		dur,
		durationIn(field+".Every", o.Every, math.MaxInt64),
		every)
}

func probability(field string, p float64) error {
	if p >= 0 && p <= 1 { // false for NaN
		return nil
	}
	return fmt.Errorf("%s: %v is not a probability (0..1)", field, p)
}

func durationIn(field string, d, limit time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%s: %v is negative", field, d)
	case d > limit:
		return fmt.Errorf("%s: %v exceeds %v", field, d, limit)
	}
	return nil
}

func oneOf(field, v string, names ...string) error {
	if slices.Contains(names, v) {
		return nil
	}
	return fmt.Errorf("%s: unknown %q (want one of %s)", field, v, strings.Join(names[1:], ", "))
}

// rto is the retransmission timeout of a reliable link.
func (e *Emulation) rto() time.Duration { return max(minRTO, 2*(e.Delay+e.Jitter)) }

func (e *Emulation) reorderDelay() time.Duration {
	switch {
	case e.ReorderDelay > 0:
		return e.ReorderDelay
	case e.Jitter > 0:
		return 2 * e.Jitter
	}
	return defaultReorderDelay
}

func (e *Emulation) queueLimit() int {
	if e.QueueLimit > 0 {
		return e.QueueLimit
	}
	return DefaultQueueLimit
}

// ParsePercent reads a probability written as a percentage ("1%", "1.5%") or
// as a fraction ("0.01"). A bare number is a fraction: "1" means certain,
// not one percent. Outcomes: a value in 0..1, or an error naming the input.
func ParsePercent(s string) (float64, error) {
	num, percent := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return 0, fmt.Errorf("probability %q: %w", s, err)
	}
	if percent {
		v /= 100
	}
	if !(v >= 0 && v <= 1) {
		return 0, fmt.Errorf("probability %q: outside 0..1 (0%%..100%%)", s)
	}
	return v, nil
}
