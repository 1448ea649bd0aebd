package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
)

// onReport takes one report off the network: it checks it, holds it for
// the database, updates the latest view and hands it to the rules. It is
// acknowledged once its transaction has committed (see flush), so that a
// broker keeps every report the store may not have. A report that cannot
// be held (the buffer is full while the database is away) is not
// acknowledged: its broker keeps it and sends it again.
//
// A report travels with the reply subject $WL.perfack.<broker>, which the
// broker that wrote it sets and on which it takes acknowledgements: a
// report of another broker than its reply subject names, or with none, is
// refused.
func (a *Aggregator) onReport(m *nats.Msg) {
	from, fromBroker := strings.CutPrefix(m.Reply, netapi.PerfAckSubject(""))
	rep, err := schema.DecodeReport(m.Data, schema.Limits{MaxBytes: a.cfg.MaxReportBytes})
	if err != nil {
		a.reject(m.Reply, err, len(m.Data))
		return
	}
	if a.cfg.Domain != AllDomains && rep.Domain != a.cfg.Domain {
		a.reject(from, errors.New("report of domain "+rep.Domain), len(m.Data))
		return
	}
	if !fromBroker || from != rep.Broker {
		a.reject(m.Reply, fmt.Errorf("report of %s whose reply subject %q does not name it: not sent by that broker", rep.Broker, m.Reply), len(m.Data))
		return
	}
	switch a.hold(rep, len(m.Data)) {
	case holdFull:
		a.stats.Unacked.Add(1)
	case holdPending:
		a.stats.Duplicate.Add(1)
	case holdDuplicate:
		a.stats.Duplicate.Add(1)
		a.ack(rep.Broker, rep.Seq)
	case holdNew:
		a.stats.Received.Add(1)
		a.signal()
		a.live.Publish("report."+rep.Broker, liveEvent("report", rep.Broker, rep.Seq))
		select {
		case a.rulesCh <- rep:
		default:
			a.log.Warn("rules fall behind; a report was not evaluated", slog.String("broker", rep.Broker))
		}
	}
}

// ack acknowledges a stored report to its broker, when the aggregator may
// (see checkPermissions).
func (a *Aggregator) ack(broker string, seq uint64) {
	if a.canAck.Load() {
		_ = a.nc.Publish(netapi.PerfAckSubject(broker), []byte(strconv.FormatUint(seq, 10)))
	}
}

// AllDomains is the Domain of an aggregator that collects every domain's
// reports.
const AllDomains = "*"

type holdVerdict int

const (
	holdNew       holdVerdict = iota // a report not seen before, now held
	holdDuplicate                    // seen and stored before: acknowledge again, keep nothing
	holdPending                      // seen, not stored yet: its storing acknowledges it
	holdFull                         // no room: do not acknowledge
)

// hold adds a report to the buffer and the latest view.
//
// A report this aggregator has held before is a copy (its broker missed
// the acknowledgement): it is acknowledged again once stored. A report
// this aggregator never held is held, even when older than others of its
// broker: an earlier run may have stored it, or lost it when it stopped
// without acknowledging it, and the store keeps one copy. A broker that
// restarted numbers its reports from 1 again: a report with an old number
// but a newer time starts its count afresh.
func (a *Aggregator) hold(rep schema.Report, size int) holdVerdict {
	a.mu.Lock()
	defer a.mu.Unlock()
	last, known := a.lastSeq[rep.Broker]
	latest, hasLatest := a.latest[rep.Broker]
	restarted := known && rep.Seq <= last && hasLatest && rep.Time.After(latest.Time)
	if restarted {
		a.heldSeqs[rep.Broker] = nil
	}
	if a.heldSeqs[rep.Broker][rep.Seq] {
		if a.unsaved[unsavedKey{rep.Broker, rep.Seq}] {
			return holdPending
		}
		return holdDuplicate
	}
	if len(a.buffer)+a.writing >= a.cfg.BufferReports {
		return holdFull
	}
	var gap uint64
	switch missed := a.missing[rep.Broker]; {
	case restarted, !known:
		a.missing[rep.Broker] = nil
		a.lastSeq[rep.Broker] = rep.Seq
	case rep.Seq > last:
		gap = rep.Seq - last - 1
		a.noteMissing(rep.Broker, last+1, rep.Seq)
		a.lastSeq[rep.Broker] = rep.Seq
	case missed[rep.Seq]: // a missed report, resent
		delete(missed, rep.Seq)
		a.stats.Gaps.Add(^uint64(0)) // one gap fewer
	}
	a.stats.Gaps.Add(gap)
	a.buffer = append(a.buffer, store.Received{Report: rep, Received: time.Now(), Gap: gap, Bytes: size})
	a.unsaved[unsavedKey{rep.Broker, rep.Seq}] = true
	a.noteHeld(rep.Broker, rep.Seq)
	if !hasLatest || !rep.Time.Before(latest.Time) {
		a.latest[rep.Broker] = rep
	}
	return holdNew
}

// maxHeld is how far behind a broker's last report this aggregator
// remembers which reports it held.
const maxHeld = 4096

func (a *Aggregator) noteHeld(broker string, seq uint64) {
	m := a.heldSeqs[broker]
	if m == nil {
		m = map[uint64]bool{}
		a.heldSeqs[broker] = m
	}
	m[seq] = true
	if len(m) > 2*maxHeld {
		last := a.lastSeq[broker]
		for s := range m {
			if s+maxHeld < last {
				delete(m, s)
			}
		}
	}
}

// maxMissing bounds the sequence numbers remembered as missed per broker.
const maxMissing = 4096

func (a *Aggregator) noteMissing(broker string, from, to uint64) {
	if to-from > maxMissing {
		from = to - maxMissing
	}
	m := a.missing[broker]
	if m == nil {
		m = map[uint64]bool{}
		a.missing[broker] = m
	}
	for s := from; s < to && len(m) < maxMissing; s++ {
		m[s] = true
	}
}

// reject counts and logs a refused report, with where it came from as
// its reply subject says.
func (a *Aggregator) reject(from string, err error, size int) {
	a.stats.Rejected.Add(1)
	a.log.Warn("report refused", slog.String("from", from), slog.Int("bytes", size), slog.Any("err", err))
}

func (a *Aggregator) signal() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// writeLoop writes the buffer to the database in batches, and keeps
// retrying, with backoff, while the database is away.
func (a *Aggregator) writeLoop() {
	t := time.NewTicker(a.cfg.FlushEvery)
	defer t.Stop()
	backoff := a.cfg.FlushEvery
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		case <-a.kick:
			a.mu.Lock()
			n := len(a.buffer)
			a.mu.Unlock()
			if n < a.cfg.BatchSize {
				continue
			}
		}
		if err := a.flush(a.ctx); err != nil {
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = a.cfg.FlushEvery
	}
}

// flush writes everything buffered, a batch at a time. A batch being
// written is out of the buffer but still counted in it (as writing), so
// that several writers take different batches; one that fails goes back
// to the front.
func (a *Aggregator) flush(ctx context.Context) error {
	for {
		a.mu.Lock()
		n := min(len(a.buffer), a.cfg.BatchSize)
		batch := a.buffer[:n:n]
		a.buffer = a.buffer[n:]
		if len(a.buffer) == 0 {
			a.buffer = nil
		}
		a.writing += n
		a.mu.Unlock()
		if n == 0 {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.store.Save(wctx, batch)
		cancel()
		a.mu.Lock()
		a.writing -= n
		if err != nil {
			a.buffer = append(batch, a.buffer...)
		} else {
			for _, r := range batch {
				delete(a.unsaved, unsavedKey{r.Report.Broker, r.Report.Seq})
			}
		}
		a.mu.Unlock()
		if err != nil {
			if !a.dbDown.Swap(true) {
				a.log.Error("database unavailable; holding reports", slog.Any("err", err))
			}
			a.dbErr.Store(err.Error())
			return err
		}
		if a.dbDown.Swap(false) {
			a.log.Info("database back")
		}
		a.stats.Stored.Add(uint64(n))
		// Committed: the brokers may forget these reports now.
		for _, r := range batch {
			a.ack(r.Report.Broker, r.Report.Seq)
		}
	}
}

// unsavedKey names a report held but not yet stored.
type unsavedKey struct {
	broker string
	seq    uint64
}
