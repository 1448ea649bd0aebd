package monitor

import (
	"math"
	"slices"
	"testing"
	"time"
)

// epoch is the fake clock's origin in hand-driven tests.
var epoch = time.Unix(1_700_000_000, 0)

// harness drives one Link by hand: a fake clock and the requests it sent.
type harness struct {
	t    testing.TB
	now  time.Time
	sent []Packet
	fail error // returned by send when set
	link *Link
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, now: epoch}
	h.link = NewLink("test", cfg, func(b []byte) error {
		p, err := DecodePacket(b)
		if err != nil {
			t.Errorf("link sent a bad packet: %v", err)
		}
		h.sent = append(h.sent, p)
		return h.fail
	}, func() time.Time { return h.now })
	return h
}

// tick advances the clock by d and ticks the link.
func (h *harness) tick(d time.Duration) time.Time {
	h.now = h.now.Add(d)
	return h.link.Tick(h.now)
}

// last returns the last request sent.
func (h *harness) last() Packet {
	h.t.Helper()
	if len(h.sent) == 0 {
		h.t.Fatal("no request sent")
	}
	return h.sent[len(h.sent)-1]
}

// answer delivers the response to req: the request takes fwd to the peer,
// which holds it for hold, and the response takes back. The peer's clock
// runs offset ahead. It returns Receive's error.
func (h *harness) answer(req Packet, fwd, hold, back time.Duration, count uint32) error {
	h.t.Helper()
	const offset = 42 * time.Second
	sent := time.Unix(0, req.T1)
	resp := Packet{
		Type:     PacketProbe,
		Response: true,
		Seq:      req.Seq,
		T1:       req.T1,
		T2:       sent.Add(fwd + offset).UnixNano(),
		T3:       sent.Add(fwd + hold + offset).UnixNano(),
		Count:    count,
	}
	reply, err := h.link.Receive(resp, sent.Add(fwd+hold+back))
	if reply != nil {
		h.t.Errorf("a response got a reply: %+v", reply)
	}
	return err
}

// near reports whether got is within tol of want.
func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// percentile returns the q-quantile of ds by rank.
func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(math.Ceil(q*float64(len(s))))-1, len(s)-1)]
}

// drain returns the events waiting in ch.
func drain(ch <-chan Event) []Event {
	var evs []Event
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}
