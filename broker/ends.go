package broker

import (
	"encoding/binary"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
)

// The ends of a path. A message meets more than its path's links: at the
// publishing broker it goes from the client through the embedded server
// and the leaf connection into the core, and at the last broker from the
// core out through the leaf connection and server to the subscriber. The
// links' probes travel between cores and do not see it. So the broker
// measures it: an internal client of its own embedded server, connected
// as applications are, publishes a stamped probe on $WL.ends.<address>
// every endsEvery (ten small messages a second); the core's leaf reader
// answers it at once on $WL.ends.<address>.back, which only that client
// may read. The round trip is the way in and the way out, one of each,
// as a message between two brokers alike meets them; its distribution over the latest endsSamples probes is composed
// into every contract path's (router.BNM.SetEnds). Only a broker with
// contracts runs the probe.

const (
	endsEvery   = 100 * time.Millisecond
	endsSamples = 512 // about a minute of probes
	// endsMin is how many answered probes the distribution needs before
	// it is used; endsReview how often it is handed to the routes, which
	// are recomputed when its median or 99th percentile moved by more than
	// endsMove since (or 0.1 ms, whichever is more).
	endsMin    = 32
	endsReview = 5 * time.Second
	endsMove   = 0.1
	// endsBuckets bounds the distribution's buckets, as a unit summary's.
	endsBuckets = router.SummaryBuckets
	// endsMaxRTT is the longest round trip taken for a measure: beyond
	// it the answer is a stale one (the client reconnected) or not ours.
	endsMaxRTT = 10 * time.Second
)

// endsSubject is where the core answers the internal client's probes;
// endsBack where the answers go.
func endsSubject(address string) string { return netapi.Reserved + "ends." + address }
func endsBack(address string) string    { return endsSubject(address) + ".back" }

// ends is the broker's measure of the way through its embedded server.
type ends struct {
	key       nkeys.KeyPair // the internal client's identity
	connected atomic.Bool

	mu      sync.Mutex
	rtts    []float64 // ms, a ring of the latest endsSamples
	next    int
	sent    uint64
	recvd   uint64
	applied router.Histogram // what the routes compose now
}

// EndsInfo is the "ends" of GET /api/status: the way from a client
// through the embedded server into the core and back out, as the
// broker's internal client measures it (see ends.go), in milliseconds.
type EndsInfo struct {
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Samples int     `json:"samples"`
	Sent    uint64  `json:"probes_sent"`
	Recvd   uint64  `json:"probes_received"`
	// InRoutes reports whether contract predictions compose it (once
	// endsMin probes have been answered).
	InRoutes bool `json:"in_routes"`
}

// endsUser is the internal client's identity in the embedded server: it
// may publish on the broker's ends subject and read its answers, nothing
// else.
func endsUser(address string) (*server.NkeyUser, nkeys.KeyPair, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	return &server.NkeyUser{
		Nkey: pub,
		Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{endsSubject(address)}},
			Subscribe: &server.SubjectPermission{Allow: []string{endsBack(address)}},
		},
	}, kp, nil
}

// endsSubjectOf is the ends probe's subject of a broker with cfg, or nil
// when it has no contracts and runs no probe.
func endsSubjectOf(cfg Config) []byte {
	if len(cfg.Routing.Contracts) == 0 {
		return nil
	}
	return []byte(endsSubject(cfg.Address))
}

// answerEnds answers the internal client's probe m, just read from the
// embedded server's leaf connection, on the reader's goroutine: straight
// back to this broker's own leaves, where the client listens, as a
// message from a client here to a client here would go, without the
// dispatcher goroutine of the broker's own subscriptions (whose handlers,
// applying control messages or reports, a probe would otherwise wait
// for). Only the embedded server's leaf is heard: a probe from elsewhere
// is not this broker's way in.
func (b *Broker) answerEnds(m *overlay.Message) {
	data := m.Data
	if m.HasHdr {
		data = data[m.HdrLen:]
	}
	b.publishLocal(endsBack(b.cfg.Address), data)
}

// endsLoop runs the internal client until the broker stops.
func (b *Broker) endsLoop() {
	e := &b.ends
	pub, err := e.key.PublicKey()
	if err != nil {
		b.log.Error("ends probe: no identity", slog.Any("err", err))
		return
	}
	nc, err := nats.Connect(b.ClientURL(), nats.Name("wayline-ends"), nats.Nkey(pub, e.key.Sign),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(*nats.Conn) { e.connected.Store(true) }),
		nats.ReconnectHandler(func(*nats.Conn) { e.connected.Store(true) }),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { e.connected.Store(false) }))
	if err != nil {
		b.log.Warn("ends probe: cannot connect to the embedded server; contract predictions leave the ends out", slog.Any("err", err))
		return
	}
	e.connected.Store(nc.IsConnected())
	defer func() {
		nc.Close()
		e.connected.Store(false)
	}()
	if _, err := nc.Subscribe(endsBack(b.cfg.Address), func(m *nats.Msg) {
		if len(m.Data) != 8 {
			return
		}
		rtt := time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(m.Data)))
		if rtt >= 0 && rtt <= endsMaxRTT {
			e.add(float64(rtt) / 1e6)
		}
	}); err != nil {
		b.log.Warn("ends probe: cannot subscribe; contract predictions leave the ends out", slog.Any("err", err))
		return
	}
	probe := time.NewTicker(endsEvery)
	defer probe.Stop()
	review := time.NewTicker(endsReview)
	defer review.Stop()
	var stamp [8]byte
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-probe.C:
			binary.BigEndian.PutUint64(stamp[:], uint64(time.Now().UnixNano()))
			if nc.Publish(endsSubject(b.cfg.Address), stamp[:]) == nil {
				e.mu.Lock()
				e.sent++
				e.mu.Unlock()
			}
		case <-review.C:
			b.reviewEnds()
		}
	}
}

func (e *ends) add(ms float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.rtts) < endsSamples {
		e.rtts = append(e.rtts, ms)
	} else {
		e.rtts[e.next] = ms
	}
	e.next = (e.next + 1) % endsSamples
	e.recvd++
}

// histogram is the distribution of the latest round trips, or an empty
// one while fewer than endsMin are known.
func (e *ends) histogram() router.Histogram {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.rtts) < endsMin {
		return router.Histogram{}
	}
	return router.HistogramOf(e.rtts, 0).Compact(endsBuckets)
}

// reviewEnds hands the distribution to the routes when it moved enough
// since they last got it, and recomputes them.
func (b *Broker) reviewEnds() {
	h := b.ends.histogram()
	if len(h.Buckets) == 0 {
		return
	}
	b.ends.mu.Lock()
	old := b.ends.applied
	moved := len(old.Buckets) == 0 || endsMoved(old, h, 0.5) || endsMoved(old, h, 0.99)
	if moved {
		b.ends.applied = h
	}
	b.ends.mu.Unlock()
	if !moved {
		return
	}
	b.mu.Lock()
	b.bnm.SetEnds(h)
	b.recomputeRoutesLocked()
	b.mu.Unlock()
}

// endsMoved reports whether the q-quantile of h moved from old's by more
// than endsMove of it, or 0.1 ms.
func endsMoved(old, h router.Histogram, q float64) bool {
	a, b := old.Quantile(q), h.Quantile(q)
	return math.Abs(a-b) > max(endsMove*a, 0.1)
}

// endsInfo is the status's view of the ends; nil for a broker without
// contracts, which does not measure them.
func (b *Broker) endsInfo() *EndsInfo {
	if b.endsSubj == nil {
		return nil
	}
	e := &b.ends
	e.mu.Lock()
	defer e.mu.Unlock()
	info := &EndsInfo{Samples: len(e.rtts), Sent: e.sent, Recvd: e.recvd, InRoutes: len(e.applied.Buckets) > 0}
	if len(e.rtts) > 0 {
		sum := monitor.Summarize(e.rtts)
		info.P50, info.P99 = sum.P50, sum.P99
	}
	return info
}

// clientsBut is n, the embedded server's client count, less the
// broker's own internal client.
func (b *Broker) clientsBut(n int) int {
	if b.ends.connected.Load() && n > 0 {
		return n - 1
	}
	return n
}
