package broker

import (
	"log/slog"
	"time"
)

// Our own announcements, come back. A broker's cost updates and summaries
// flood back to it; it ignores them, its own being authoritative, except
// in two cases where what others hold would otherwise outlive the truth:
//
//   - a record from an earlier run that this run does not make (a link or
//     a unit border removed from the topology before a restart): it is
//     withdrawn, by an empty record of a newer version;
//   - a record of a version this run has not reached (the clock stepped
//     back between two runs, so this run's epoch is the older): the epoch
//     moves past it and everything this broker announces goes out again,
//     newer than it.
//
// A record from the future that was forged moves the epoch too, at most
// as far as versions are plausible (see version.plausible).

// ownEchoLocked handles one of our own records, of the given version,
// announced within unit; summary says which kind it is.
func (b *Broker) ownEchoLocked(unit string, ver version, summary bool) {
	k := lsKey{b.cfg.Address, unit}
	if ver.newer(version{Epoch: b.epoch, Seq: b.annSeq}) {
		if !ver.plausible(time.Now()) {
			return
		}
		b.log.Warn("an announcement of ours from a later run came back (has the clock gone back?); announcing anew past it",
			slog.Uint64("epoch", ver.Epoch), slog.Uint64("our_epoch", b.epoch))
		b.epoch, b.annSeq = ver.Epoch+1, 0
		b.reannounceLocked()
	}
	_, held := b.lsdb[k]
	if summary {
		_, held = b.sumdb[k]
	}
	if held {
		return
	}
	// Not ours in this run: withdraw it.
	b.annSeq++
	v := version{Epoch: b.epoch, Seq: b.annSeq}
	if summary {
		s := &summaryRec{Origin: b.cfg.Address, Unit: unit, Ver: v, Time: time.Now().UnixNano()}
		b.sumdb[k] = s
		b.floodSummaryLocked(nil, s)
		return
	}
	ls := &linkState{Origin: b.cfg.Address, Unit: unit, Ver: v, Time: time.Now().UnixNano()}
	b.lsdb[k] = ls
	b.floodUpdateLocked(nil, ls)
}

// reannounceLocked sends everything this broker announces again, with new
// versions.
func (b *Broker) reannounceLocked() {
	for k, ls := range b.lsdb {
		if k.origin == b.cfg.Address {
			b.annSeq++
			c := *ls
			c.Ver = version{Epoch: b.epoch, Seq: b.annSeq}
			b.lsdb[k] = &c
			b.floodUpdateLocked(nil, &c)
		}
	}
	for k, s := range b.sumdb {
		if k.origin == b.cfg.Address {
			b.annSeq++
			c := *s
			c.Ver = version{Epoch: b.epoch, Seq: b.annSeq}
			b.sumdb[k] = &c
			b.floodSummaryLocked(nil, &c)
		}
	}
}
