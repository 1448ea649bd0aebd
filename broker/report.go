package broker

import (
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/schema"
)

// Every report interval a broker writes an XML performance report on its
// links and publishes it on $WL.perf.<domain>, where its domain's
// aggregator listens. The aggregator acknowledges each report on
// $WL.perfack.<address> once it has stored it. A report stays queued until
// acknowledged: while no one listens, reports wait (up to a bound in count
// and in bytes, oldest dropped first) and go out in order when someone
// does, so an aggregator down for a minute loses nothing. A report is sent
// once; it is sent again only while acknowledgements come in for later
// ones, which shows an aggregator that stores reports is listening: a
// plain subscriber to $WL.> sees each report once, and no more. Sequence
// numbers let the aggregator see what it missed.

// reporter holds a broker's reports until they are acknowledged.
type reporter struct {
	mu  sync.Mutex
	seq uint64 // the last report numbered
	// written is the last report queued: until a numbered report is
	// queued, it is neither waiting nor acknowledged (ReportStats).
	written uint64
	pending []pendingReport // oldest first
	bytes   int
	dropped uint64 // reports dropped for room
	acked   uint64
	ackedAt time.Time // when the last acknowledgement came
}

type pendingReport struct {
	seq  uint64
	xml  []byte
	sent time.Time // zero until sent
}

// queue adds a report, dropping the oldest ones past the bounds.
func (r *reporter) queue(seq uint64, xml []byte, maxCount, maxBytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, pendingReport{seq: seq, xml: xml})
	r.written = seq
	r.bytes += len(xml)
	for len(r.pending) > 1 && (len(r.pending) > maxCount || r.bytes > maxBytes) {
		r.bytes -= len(r.pending[0].xml)
		r.pending = r.pending[1:]
		r.dropped++
	}
}

// ack forgets an acknowledged report.
func (r *reporter) ack(seq uint64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range r.pending {
		if p.seq == seq {
			r.bytes -= len(p.xml)
			r.pending = append(r.pending[:i], r.pending[i+1:]...)
			r.acked++
			r.ackedAt = now
			return
		}
	}
}

// due returns the reports to send now: those never sent, and those whose
// acknowledgement is overdue while acknowledgements of others came in
// since they were sent.
func (r *reporter) due(now time.Time, timeout time.Duration) []pendingReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pendingReport
	for i := range r.pending {
		p := &r.pending[i]
		if p.sent.IsZero() || (now.Sub(p.sent) >= timeout && r.ackedAt.After(p.sent)) {
			p.sent = now
			out = append(out, *p)
		}
	}
	return out
}

// reportLoop writes a report every interval and sends what is due.
func (b *Broker) reportLoop() {
	every := b.cfg.Report.Interval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-t.C:
			b.writeReport(now)
			b.sendReports(now)
		}
	}
}

// writeReport builds this interval's report and queues it.
func (b *Broker) writeReport(now time.Time) {
	r := &b.reporter
	r.mu.Lock()
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	rep := b.Report(now)
	rep.Seq = seq
	b.reporter.queue(seq, rep.AppendXML(nil), b.cfg.Report.MaxQueued, b.cfg.Report.MaxQueuedBytes)
}

// sendReports publishes the due reports, in order, when an aggregator
// listens; otherwise they wait.
func (b *Broker) sendReports(now time.Time) {
	subject := netapi.PerfSubject(b.cfg.Report.Domain)
	if !b.hasListener(subject) {
		return
	}
	for _, p := range b.reporter.due(now, 2*b.cfg.Report.Interval) {
		b.publishInternal(subject, netapi.PerfAckSubject(b.cfg.Address), p.xml)
	}
}

// hasListener reports whether anyone, here or at a reachable broker,
// subscribes to subject.
func (b *Broker) hasListener(subject string) bool {
	r := b.interest.match(subject)
	if len(r.leaves) > 0 || len(r.queues) > 0 {
		return true
	}
	rt := b.routes.Load()
	for _, br := range r.brokers {
		if rt.reaches(0, br) {
			return true
		}
	}
	return false
}

// onReportAck takes an aggregator's acknowledgement: the report's sequence
// number, as text.
func (b *Broker) onReportAck(m internalMsg) {
	seq, err := strconv.ParseUint(strings.TrimSpace(string(m.Data)), 10, 64)
	if err != nil {
		b.log.Warn("bad report acknowledgement", slog.String("from", m.Origin), slog.Any("err", err))
		return
	}
	b.reporter.ack(seq, time.Now())
}

// Report describes the broker's links now, as its aggregator receives
// them (without a sequence number).
func (b *Broker) Report(now time.Time) schema.Report {
	rep := schema.Report{Broker: b.cfg.Address, Domain: b.cfg.Report.Domain, Time: now.UTC(), Interval: b.cfg.Report.Interval}
	b.mu.Lock()
	costs := map[string][]float64{}
	for id, a := range b.ann {
		costs[id] = a.Costs
	}
	b.mu.Unlock()
	for _, li := range b.Links() {
		l, err := b.link(li.ID)
		if err != nil {
			continue
		}
		m := l.mon.Snapshot()
		sl := schema.Link{
			ID: li.ID, A: b.cfg.Address, B: li.Peer, Transport: li.Transport,
			State: li.State, Monitor: m.State.String(),
			RTT: m.RTT, Jitter: m.JitterMeanDiff, Loss: (m.LossForward + m.LossReverse) / 2,
			Latency: schema.Summary{Min: m.Latency.Min, Mean: m.Latency.Mean, P50: m.Latency.P50, P90: m.Latency.P90, P99: m.Latency.P99, Max: m.Latency.Max},
			Samples: schema.Samples{Sent: m.Sent, Received: m.Received, Lost: m.Lost, Window: m.Samples, Reordered: m.Reordered, Duplicated: m.Duplicated},
			Dropped: li.Dropped,
		}
		for i, p := range b.profiles {
			c := math.Inf(1)
			if cs := costs[li.ID]; i < len(cs) {
				c = cs[i]
			}
			sl.Costs = append(sl.Costs, schema.Cost{Profile: p.Name, Value: c})
		}
		sl.Histogram = histogramOf(m.Histogram)
		rep.Links = append(rep.Links, sl)
	}
	return rep
}

// histogramOf writes a monitor histogram's buckets by their upper bounds.
func histogramOf(h router.Histogram) schema.Histogram {
	out := schema.Histogram{Missing: h.Missing}
	for _, b := range h.Buckets {
		_, hi := router.BucketBounds(b.Index)
		out.Buckets = append(out.Buckets, schema.Bucket{LE: hi, Count: b.Count})
	}
	return out
}

// ReportStats says how the broker's reports fare.
type ReportStats struct {
	Seq     uint64 `json:"seq"`     // the last report written
	Queued  int    `json:"queued"`  // waiting for an acknowledgement
	Bytes   int    `json:"bytes"`   // their size
	Acked   uint64 `json:"acked"`   // acknowledged since the start
	Dropped uint64 `json:"dropped"` // dropped for room while no aggregator listened
	// Waiting lists the sequence numbers of the queued reports, oldest
	// first: every other report up to Seq was acknowledged or dropped.
	Waiting []uint64 `json:"waiting"`
}

func (b *Broker) reportStats() ReportStats {
	r := &b.reporter
	r.mu.Lock()
	defer r.mu.Unlock()
	st := ReportStats{Seq: r.written, Queued: len(r.pending), Bytes: r.bytes, Acked: r.acked, Dropped: r.dropped, Waiting: []uint64{}}
	for _, p := range r.pending {
		st.Waiting = append(st.Waiting, p.seq)
	}
	return st
}
