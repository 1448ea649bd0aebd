package broker

import (
	"math"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/router"
)

// linkCollector exposes every link's measurements to Prometheus. It reads
// the monitors at scrape time, so that /metrics always shows the same
// figures as /api/links.
type linkCollector struct{ b *Broker }

var (
	linkLabels   = []string{"link", "peer", "transport"}
	descLatency  = prometheus.NewDesc("wayline_link_latency_seconds", "One-way latency of the link (RTT/2 of performance probes) over the monitor's window.", linkLabels, nil)
	descRTT      = prometheus.NewDesc("wayline_link_rtt_seconds", "Mean round-trip time of the link, outliers removed.", linkLabels, nil)
	descJitter   = prometheus.NewDesc("wayline_link_jitter_seconds", "Jitter of the link: mean absolute difference of one-way delay between consecutive probes (what RFC 3550 estimates).", linkLabels, nil)
	descIPDV     = prometheus.NewDesc("wayline_link_jitter_ipdv_seconds", "P95 - P50 of the link's one-way delay (OWAMP-style).", linkLabels, nil)
	descLoss     = prometheus.NewDesc("wayline_link_loss_ratio", "Fraction of messages lost one way over the monitor's window, by direction: forward (sent by this broker) and reverse.", append(linkLabels[:3:3], "direction"), nil)
	descState    = prometheus.NewDesc("wayline_link_state", "1 for the link's current state (unknown, up, suspect, down, disabled), 0 for the others.", append(linkLabels[:3:3], "state"), nil)
	descUp       = prometheus.NewDesc("wayline_link_up", "1 when the link carries routes, 0 when it is down.", linkLabels, nil)
	descStandby  = prometheus.NewDesc("wayline_link_standby", "1 when the link is down but connected, so that routes take it where no link that is up reaches.", linkLabels, nil)
	descProbes   = prometheus.NewDesc("wayline_link_probes_total", "Performance probes of the link by outcome: sent, received (answered in time), lost.", append(linkLabels[:3:3], "outcome"), nil)
	descInterval = prometheus.NewDesc("wayline_link_probe_interval_seconds", "Current probe interval of the link.", linkLabels, nil)
	descMsgs     = prometheus.NewDesc("wayline_link_messages_total", "Messages across the link by direction: sent, received, dropped.", append(linkLabels[:3:3], "direction"), nil)
	descDrops    = prometheus.NewDesc("wayline_link_dropped_total", "Messages dropped on their way over the link, by reason: send_queue_full, link_down, lost_in_transit (udp: sent by the peer, never received), over_frame_limit.", append(linkLabels[:3:3], "reason"), nil)
	descClass    = prometheus.NewDesc("wayline_link_class_dropped_total", "Messages this broker dropped on their way over the link, by priority class (high, normal, low) and reason: send_queue_full, link_down, over_frame_limit.", append(linkLabels[:3:3], "class", "reason"), nil)
)

func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLatency, descRTT, descJitter, descIPDV, descLoss, descState, descUp, descStandby, descProbes, descInterval, descMsgs, descDrops, descClass} {
		ch <- d
	}
}

func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	c.b.mu.Lock()
	links := make([]*link, 0, len(c.b.links))
	for _, l := range c.b.links {
		links = append(links, l)
	}
	c.b.mu.Unlock()
	for _, l := range links {
		c.collectLink(ch, l)
	}
}

func (c *linkCollector) collectLink(ch chan<- prometheus.Metric, l *link) {
	m := l.mon.Snapshot()
	lv := []string{l.cfg.ID, l.cfg.Peer, l.cfg.Transport}
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv[:3:3], extra...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append(lv[:3:3], extra...)...)
	}
	ch <- latencyHistogram(m, lv)
	gauge(descRTT, m.RTT/1e3)
	gauge(descJitter, m.JitterMeanDiff/1e3)
	gauge(descIPDV, m.JitterIPDV/1e3)
	gauge(descLoss, m.LossForward, "forward")
	gauge(descLoss, m.LossReverse, "reverse")
	for s := monitor.StateUnknown; s <= monitor.StateDisabled; s++ {
		v := 0.0
		if m.State == s {
			v = 1
		}
		gauge(descState, v, s.String())
	}
	up, standby := 0.0, 0.0
	if l.usable() {
		up = 1
	}
	if l.inStandby() {
		standby = 1
	}
	gauge(descUp, up)
	gauge(descStandby, standby)
	counter(descProbes, m.Sent, "sent")
	counter(descProbes, m.Received, "received")
	counter(descProbes, m.Lost, "lost")
	gauge(descInterval, m.Interval.Seconds())
	counter(descMsgs, l.counters.MsgsSent.Load(), "sent")
	counter(descMsgs, l.counters.MsgsRecv.Load(), "received")
	counter(descMsgs, l.counters.Drops.Total(), "dropped")
	for name, n := range l.counters.Drops.ByReason() {
		counter(descDrops, n, name)
	}
	for class, by := range l.counters.Drops.ByClass() {
		for name, n := range by {
			counter(descClass, n, class, name)
		}
	}
}

// promBounds are the latency histogram's bucket bounds in milliseconds:
// log-spaced, 10 per decade from 0.05 ms to 79 s, the same on every scrape
// and for every link. The monitor's own buckets are finer (1-2%), too many
// to export as series.
var promBounds = func() []float64 {
	b := make([]float64, 63)
	for k := range b {
		b[k] = 0.05 * math.Pow(10, float64(k)/10)
	}
	return b
}()

// latencyHistogram turns the monitor's delay distribution (of the window)
// into a Prometheus histogram in seconds, on promBounds: a bound counts the
// monitor's buckets that end at or under it. Lost probes are not
// observations (they never arrived); they show in wayline_link_loss_ratio.
// The sum takes each observation at its bucket's middle.
func latencyHistogram(m monitor.Metrics, lv []string) prometheus.Metric {
	h := m.Histogram
	cum := make(map[float64]uint64, len(promBounds))
	for _, ms := range promBounds {
		cum[ms/1e3] = uint64(h.Below(ms))
	}
	var sum float64
	for _, b := range h.Buckets {
		lo, hi := router.BucketBounds(b.Index)
		mid := lo
		if !math.IsInf(hi, 1) {
			mid = (lo + hi) / 2
		}
		sum += b.Count * mid / 1e3
	}
	return prometheus.MustNewConstHistogram(descLatency, uint64(h.Arrived()), sum, cum, lv...)
}

// brokerCollector exposes the broker's own message counters (those of
// /api/status that are not a link's) to Prometheus.
type brokerCollector struct{ b *Broker }

var (
	descBrokerDrops = prometheus.NewDesc("wayline_broker_dropped_total",
		"Messages the broker dropped itself, not on a link, by reason: no_route, hop_limit, duplicates (second copies, caught by the dedup window), reserved_subject, no_queue_member, leaf_queue_full.",
		[]string{"reason"}, nil)
	descBrokerOrder = prometheus.NewDesc("wayline_broker_order_total",
		"How the broker kept its publishers' order: rerouted (messages a failed link left unacknowledged, routed again), held_for_order (messages for it held until those before them in their stream came), order_waits_expired (times it stopped waiting for those), delivered_out_of_order (messages it delivered after a later one of their stream).",
		[]string{"event"}, nil)
)

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBrokerDrops
	ch <- descBrokerOrder
}

// Collect sends the counters of StatusInfo.Messages, a drop's reason
// without its "dropped_".
func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	for name, n := range c.b.Status().Messages() {
		if reason, ok := strings.CutPrefix(name, "dropped_"); ok {
			ch <- prometheus.MustNewConstMetric(descBrokerDrops, prometheus.CounterValue, float64(n), reason)
		} else {
			ch <- prometheus.MustNewConstMetric(descBrokerOrder, prometheus.CounterValue, float64(n), name)
		}
	}
}
