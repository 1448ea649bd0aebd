package broker

import (
	"log/slog"
	"sync"
	"time"
)

// dropLogInterval is the least time between two log lines about the same
// kind of drop; the line in between counts what was not logged.
const dropLogInterval = 10 * time.Second

// dropLogger logs drops, at most one line per place and reason per
// interval, so that overload is visible without flooding the log.
type dropLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	m   map[dropKey]*dropCount
}

type dropKey struct{ kind, name, reason string }

type dropCount struct {
	last   time.Time
	missed uint64
}

func (b *Broker) noteDrop(kind, name, reason string) {
	d := &b.drops
	now := time.Now()
	d.mu.Lock()
	if d.m == nil {
		d.m = make(map[dropKey]*dropCount)
	}
	k := dropKey{kind, name, reason}
	c, ok := d.m[k]
	if !ok {
		c = &dropCount{}
		d.m[k] = c
	}
	if ok && now.Sub(c.last) < dropLogInterval {
		c.missed++
		d.mu.Unlock()
		return
	}
	missed := c.missed
	c.last, c.missed = now, 0
	d.mu.Unlock()
	d.log.Warn("message dropped", slog.String(kind, name), slog.String("reason", reason), slog.Uint64("dropped_since_last_report", missed+1))
}
