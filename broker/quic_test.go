package broker

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/transports"
)

// TestQUICLinkUnderLoss: on a quic link whose packets meet 20 ms of delay
// and 2% loss each way, every message arrives, in order, while the
// monitor's probes, which travel as QUIC datagrams, measure the loss and
// the delay as the network gives them.
func TestQUICLinkUnderLoss(t *testing.T) {
	const (
		delay    = 20 * time.Millisecond
		loss     = 0.02
		messages = 5000
		samples  = 800
	)
	e := transports.Emulation{Delay: delay, Loss: loss}
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("quic")[:1], tweak: func(c *Config) {
		c.Monitor = monitor.DefaultLocalConfig()
		c.Monitor.Interval = monitor.MinInterval
		c.Monitor.Window = 4096
		c.Monitor.ProbeTimeout = 500 * time.Millisecond
		// Probed every 10 ms, the phi detector calls a link down whenever a
		// busy machine stalls for a few ms, and messages would then meet
		// a link out of routing; liveness is not under test here.
		c.Monitor.Detector.Kind = monitor.DetectorTimeout
		for i := range c.Links {
			c.Links[i].Emulation = &e
		}
	}})
	n.waitRoutes()
	a := n.brokers["na.c1.a"]
	if l := linkOf(t, a, "na.c1.b"); l.Transport != "quic" || l.State != "up" {
		t.Fatalf("link %+v", l)
	}
	ch := collect(t, n.connect("na.c1.b"), "seq", "")
	n.waitInterest("na.c1.a", "seq", "na.c1.b")
	pub := n.connect("na.c1.a")
	for i := range messages {
		if err := pub.Publish("seq", binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range messages {
		m := expectMsg(t, ch, 10*time.Second)
		if got := int(binary.BigEndian.Uint32(m.Data)); got != i {
			t.Fatalf("message %d arrived as number %d", got, i)
		}
	}
	expectNone(t, ch, 100*time.Millisecond)

	waitFor(t, "probe samples", 40*time.Second, func() bool { return linkOf(t, a, "na.c1.b").Metrics.Samples >= samples })
	m := linkOf(t, a, "na.c1.b").Metrics
	t.Logf("monitor: latency mean %.2f ms, loss %.2f%% (forward %.2f%%, reverse %.2f%%), %d samples, %d probes lost",
		m.Latency.Mean, 100*m.Loss, 100*m.LossForward, 100*m.LossReverse, m.Samples, m.ProbesLost)
	// 800 samples put the standard error of 2% loss at 0.5 points.
	if m.Loss < 0.005 || m.Loss > 0.04 {
		t.Errorf("measured loss %.2f%% each way, emulated %.0f%%", 100*m.Loss, 100*loss)
	}
	// The emulated delay is a floor; timer lateness, quic-go's own work
	// and a busy machine come on top.
	if m.Latency.Mean < 19.5 || m.Latency.Mean > 24 {
		t.Errorf("mean latency %.2f ms, emulated %v (19.5-24 on a busy machine)", m.Latency.Mean, delay)
	}
	// Contracts compose what messages meet: on quic none is lost, and the
	// probes' loss is a resend, 9/8 of a round trip (of about 40 ms) later.
	l := a.links[linkOf(t, a, "na.c1.b").ID]
	fwd := l.mon.Snapshot().Forward
	lost := fwd.Missing / fwd.Total()
	d := l.measures(a.cfg.Routing.LossWindow).Delay
	resent := 1 - d.Below(60)
	t.Logf("delay for contracts: p50 %.1f ms, %.2f%% resent (probes lost forward: %.2f%%), at %.1f ms in the middle", d.Quantile(0.5), 100*resent, 100*lost, d.Quantile(1-resent/2))
	if d.Missing != 0 || d.Total() == 0 {
		t.Fatalf("contracts see %.2f%% of messages lost on quic", 100*d.Missing/d.Total())
	}
	if lost == 0 {
		t.Fatal("no probe lost forward: the test proves nothing")
	}
	if math.Abs(resent-lost) > 0.005 {
		t.Errorf("%.2f%% resent, %.2f%% of probes lost forward", 100*resent, 100*lost)
	}
	if p := d.Quantile(0.5); p < 19.5 || p > 24 {
		t.Errorf("p50 for contracts %.1f ms, emulated %v", p, delay)
	}
	if p := d.Quantile(1 - resent/2); p < 60 || p > 75 {
		t.Errorf("the resent at %.1f ms, want about 20 ms + 45 ms", p)
	}
}

// TestQUICOutageUnderLoad: a full emulated outage on a quic link that
// carries a flow (or whose flow takes a detour while it is down), set and
// ended at either end within dead_after (10 s, the default), so that the
// old connection outlives it, its stream's writes waiting for a
// congestion window the outage keeps shut: changing the emulation answers
// at once, and the link is up again at both ends soon after the outage
// ends. The end that did not set the outage never takes it up: a message
// telling it so rides the emulated packets and would arrive only after
// the outage, when it would start one of its own.
func TestQUICOutageUnderLoad(t *testing.T) {
	for _, c := range []struct {
		at     string
		every  time.Duration
		detour bool // the flow leaves the link for x.a-x.c-x.b while it is down
	}{
		{"x.a", time.Millisecond, false}, {"x.b", time.Millisecond, false},
		{"x.a", 200 * time.Millisecond, true}, {"x.b", 200 * time.Millisecond, true},
	} { // x.a dials x.b
		at := c.at
		spec := netSpec{brokers: []string{"x.a", "x.b"}, links: []string{"x.a-x.b:quic"}}
		name := fmt.Sprintf("set at %s, a message every %v", at, c.every)
		if c.detour {
			spec = netSpec{brokers: []string{"x.a", "x.b", "x.c"}, links: []string{"x.a-x.b:quic", "x.a-x.c:tcp", "x.c-x.b:tcp"}}
			name += ", with a detour"
		}
		t.Run(name, func(t *testing.T) {
			e := transports.Emulation{Delay: 45 * time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.01}
			n := newTestNet(t, netSpec{brokers: spec.brokers, links: spec.links, tweak: func(c *Config) {
				c.Monitor = monitor.DefaultLocalConfig()
				// The default: the old connection outlives the outage.
				c.DeadAfter = 10 * time.Second
				for i := range c.Links {
					c.Links[i].Emulation = &e
				}
			}})
			a, b, id, upAtBoth := linkedPair(t, n)
			setter := n.brokers[at]
			sub := n.connect("x.b")
			sub.Subscribe("flow.>", func(*nats.Msg) {})
			sub.Flush()
			n.waitInterest("x.a", "flow.>", "x.b")
			pub := n.connect("x.a")
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				body := make([]byte, 1000)
				for {
					select {
					case <-stop:
						return
					case <-time.After(c.every):
						pub.Publish("flow.x", body)
					}
				}
			}()
			time.Sleep(time.Second)
			set := func(down bool) {
				began := time.Now()
				if _, err := setter.SetEmulation(id, transports.EmulationSpec{Down: ptr(down)}); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(began); d > 500*time.Millisecond {
					t.Errorf("setting down %v took %v", down, d)
				}
			}
			set(true)
			waitFor(t, "the link declared down", 10*time.Second, func() bool {
				return linkOf(t, a, "x.b").Metrics.State == "down" && linkOf(t, b, "x.a").Metrics.State == "down"
			})
			time.Sleep(4 * time.Second) // within dead_after of the last packet
			set(false)
			began := time.Now()
			other, peer := b, "x.a"
			if at == "x.b" {
				other, peer = a, "x.b"
			}
			// The end that did not set the outage must never take one up
			// from a message that the outage held back.
			stale := false
			look := func() {
				if e := linkOf(t, other, peer).Emulation; e != nil && e.Down != nil && *e.Down {
					stale = true
				}
			}
			waitFor(t, "the link up again", 15*time.Second, func() bool {
				look()
				return upAtBoth()
			})
			t.Logf("up at both ends %v after the outage ended", time.Since(began).Round(time.Millisecond))
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				look()
			}
			if stale {
				t.Errorf("%s took up the outage after it had ended", other.cfg.Address)
			}
		})
	}
}
