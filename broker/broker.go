// Package broker runs one Wayline broker: an embedded nats-server for
// applications, and the overlay core that joins it to the other brokers.
//
// The embedded server attaches to the core as a leaf node, over the
// standard NATS leafnode protocol (LS+/LS-/LMSG/HMSG): the core learns the
// local subscriptions and receives local messages without polling, and any
// external nats-server can attach to the core the same way. The core floods
// its interest and its links to every broker, keeps a map of the network,
// and forwards each message hop by hop towards the brokers that want it,
// sending one copy per next hop.
//
// The broker wires the parts together: it dials and accepts its links
// (with backoff, authenticated by package linkauth) and runs an overlay
// session (package overlay) on each connection, handling what the session
// receives; it feeds each link's monitor (package monitor) and the network
// map (package router) and acts on their verdicts and routes.
//
// What the package deliberately does not do: it does not frame, order,
// acknowledge or resend anything on a link (that is package overlay), it
// decides no route itself (package router), and it measures no link
// (package monitor). It stores no messages: one that cannot be forwarded
// (no route, a full send queue, the hop limit) is dropped and counted, and
// what a failed link did not deliver is routed again from what its session
// kept, within RetainBytes and RetainAge.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

// Broker is one running broker. Create it with New, then Start it; Close
// stops it.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	epoch    uint64 // start time in ns; orders this run after earlier ones
	serverID string
	addr     []byte // cfg.Address as bytes, for message records
	endsSubj []byte // the ends probe's subject, nil without contracts (ends.go)
	seq      atomic.Uint64

	mu       sync.Mutex // guards the control plane below
	interest *interestDB
	lsdb     map[lsKey]*linkState          // cost updates heard, ours included, by origin and unit
	sumdb    map[lsKey]*summaryRec         // unit summaries heard, ours included, by origin and unit
	bnm      *router.BNM                   // the network map they make
	ann      map[string]*router.LinkRecord // what we last said of each of our links
	annSeq   uint64                        // sequence number of our cost updates and summaries
	// sumPending is set while one of our summaries changed but waits for
	// its hold-down.
	sumPending bool
	// reroute holds the message records failed links left unacknowledged,
	// until the routes that avoid them are ready (reroute.go).
	reroute     []byte
	reroutePlan plan
	rerouteMsg  overlay.Message
	profiles    []router.Profile // cost profiles, default first
	// knownLinks are the ends of every link of the topology, when the
	// broker was given it; linkOwners the ends cost updates claimed.
	knownLinks map[string][2]string
	linkOwners map[string][2]string
	links      map[string]*link       // our links by id
	leaves     map[*leafConn]struct{} // every open leaf connection
	// unreachable holds when each known broker became unreachable.
	unreachable map[string]time.Time
	started     bool
	closed      bool

	routes    atomic.Pointer[routeTable]
	costKick  chan struct{} // asks the cost loop for a review
	stateKick chan struct{} // asks for a state message (state.go)
	replies   *replyMap
	dedup     dedupSet // message copies delivered here, by origin
	order     orderBuffer
	reporter  reporter
	internal  *internal
	stats     brokerStats
	drops     dropLogger
	refusals  refusalLog
	// queues are the queue group policies by group (queues.go), qload
	// the load policy's state (queueload.go).
	queues map[string]*queuePolicy
	qload  *queueLoad

	leafLn     net.Listener // for external nats-servers; nil when none may attach
	coreLeafLn net.Listener // the embedded server's
	coreKey    nkeys.KeyPair
	ends       ends // the way through the embedded server (ends.go)
	leafIDs    atomic.Uint64
	leafReady  chan struct{}
	leafOnce   sync.Once
	overlayLns []transports.Listener
	ns         *server.Server
	httpSrv    *http.Server
	httpLn     net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// brokerStats counts messages the broker could not deliver, by reason.
type brokerStats struct {
	noRoute        atomic.Uint64 // destination unreachable
	hopLimit       atomic.Uint64 // dropped by the hop limit: a transient loop
	duplicates     atomic.Uint64 // caught by the dedup window
	heldForOrder   atomic.Uint64 // messages held until one before them arrived (order.go)
	orderGaveUp    atomic.Uint64 // waits for the messages before a fenced one given up
	outOfOrder     atomic.Uint64 // messages delivered after a later one of their stream
	reserved       atomic.Uint64 // published by a client on a reserved subject
	noMember       atomic.Uint64 // queue group with no member left anywhere
	internalDrops  atomic.Uint64 // messages for the broker itself beyond its queue
	badFrames      atomic.Uint64 // malformed messages for this broker (a link's malformed frames are its own counters')
	refusedLinks   atomic.Uint64 // inbound links refused or dropped in their handshake
	refusedLeaves  atomic.Uint64 // leaf connections refused: bad credentials, too many waiting
	badProbes      atomic.Uint64 // malformed or unexpected performance packets
	badUpdates     atomic.Uint64 // cost updates refused: not the owner, bad costs, out of scope, epoch in the future
	badInterest    atomic.Uint64 // interest updates refused: epoch in the future
	staleUpdates   atomic.Uint64 // cost updates older than what we hold
	updatesSent    atomic.Uint64 // cost updates this broker originated
	updatesCarried atomic.Uint64 // cost update copies this broker sent across links
	summariesSent  atomic.Uint64 // unit summaries this broker originated
	rerouted       atomic.Uint64 // message copies routed again after their link failed
	recomputes     atomic.Uint64 // route computations
	recomputeNanos atomic.Uint64 // time spent in them
	routesChanged  atomic.Int64  // when a next hop last changed (unix ns)
	badQueueLoads  atomic.Uint64 // queue load reports refused: malformed, or for another broker
}

// New checks cfg and prepares a broker; nothing listens until Start.
func New(cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	epoch := uint64(time.Now().UnixNano())
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	b := &Broker{
		cfg:         cfg,
		log:         cfg.Logger.With(slog.String("broker", cfg.Address)),
		epoch:       epoch,
		serverID:    "WL" + hex.EncodeToString(id),
		addr:        []byte(cfg.Address),
		endsSubj:    endsSubjectOf(cfg),
		interest:    newInterestDB(epoch),
		lsdb:        make(map[lsKey]*linkState),
		sumdb:       make(map[lsKey]*summaryRec),
		ann:         make(map[string]*router.LinkRecord),
		linkOwners:  make(map[string][2]string),
		knownLinks:  cfg.KnownLinks,
		profiles:    cfg.Routing.profiles(),
		links:       make(map[string]*link),
		leaves:      make(map[*leafConn]struct{}),
		unreachable: make(map[string]time.Time),
		replies:     newReplyMap(cfg.ReplyTTL, cfg.MaxReplies),
		queues:      newQueuePolicies(cfg.Address, cfg.Routing.Queues),
		qload:       newQueueLoad(cfg.Routing.Queues),
		internal:    newInternal(),
		costKick:    make(chan struct{}, 1),
		stateKick:   make(chan struct{}, 1),
		leafReady:   make(chan struct{}),
	}
	b.seq.Store(epoch)
	b.drops.log = b.log
	b.bnm = router.NewBNM(router.Address(cfg.Address), len(b.profiles), cfg.Routing.Margin)
	b.interest.profileOf = b.profileFor
	if len(cfg.Routing.Priorities) > 0 {
		b.interest.classOf = b.classFor
	}
	for _, lc := range cfg.Links {
		b.links[lc.ID] = newLink(b, lc)
	}
	b.recomputeRoutesLocked()
	return b, nil
}

// Address is the broker's hierarchical address.
func (b *Broker) Address() string { return b.cfg.Address }

// ClientURL is the URL NATS clients connect to.
func (b *Broker) ClientURL() string { return b.ns.ClientURL() }

// LeafURL is where external nats-servers attach to the core as leaf
// nodes, or "" when the broker has no leaf port.
func (b *Broker) LeafURL() string {
	if b.leafLn == nil {
		return ""
	}
	return "nats://" + b.leafLn.Addr().String()
}

// HTTPAddr is the address of the monitoring/admin HTTP server, or "".
func (b *Broker) HTTPAddr() string {
	if b.httpLn == nil {
		return ""
	}
	return b.httpLn.Addr().String()
}

// OverlayURLs lists the overlay listeners actually bound.
func (b *Broker) OverlayURLs() []string {
	var urls []string
	for _, l := range b.overlayLns {
		urls = append(urls, l.URL())
	}
	return urls
}

// Start binds every listener, starts the embedded server and waits for it
// to attach, then starts dialing links. On error everything started is
// stopped again.
func (b *Broker) Start(ctx context.Context) (err error) {
	b.mu.Lock()
	if b.started {
		b.mu.Unlock()
		return errors.New("broker already started")
	}
	b.started = true
	b.mu.Unlock()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if err := b.listenLeaves(); err != nil {
		return err
	}
	if err := b.listenOverlay(); err != nil {
		return err
	}
	if err := b.startNATS(ctx); err != nil {
		return err
	}
	if err := b.startHTTP(); err != nil {
		return err
	}
	for _, l := range b.links {
		if l.cfg.Dial != "" {
			b.wg.Go(func() { l.dialLoop(b.ctx) })
		}
		b.wg.Go(func() { l.mon.Run(b.ctx) })
		b.wg.Go(func() { b.watchMonitor(b.ctx, l) })
	}
	b.wg.Go(b.janitor)
	b.wg.Go(b.dispatch)
	b.wg.Go(b.costLoop)
	b.wg.Go(b.orderSweep)
	b.subscribeInternal(netapi.CtlSubject(b.cfg.Address), b.onControl)
	b.subscribeInternal(netapi.PerfAckSubject(b.cfg.Address), b.onReportAck)
	b.wg.Go(b.reportLoop)
	b.wg.Go(b.stateLoop)
	if b.endsSubj != nil {
		// The core's interest, so that the embedded server passes the
		// probes on; fromLeaf answers them before any handler would.
		b.subscribeInternal(endsSubject(b.cfg.Address), func(internalMsg) {})
		b.wg.Go(b.endsLoop)
	}
	b.startQueueLoad()
	if b.cfg.unauthenticated() {
		b.log.Warn("overlay links are not authenticated: the network has no secret; allowed because every overlay address of this broker is loopback")
	}
	b.log.Info("broker started",
		slog.String("client", b.ClientURL()),
		slog.String("leaf", b.LeafURL()),
		slog.Any("overlay", b.OverlayURLs()),
		slog.String("http", b.HTTPAddr()))
	return nil
}

func (b *Broker) listenOverlay() error {
	for _, u := range b.cfg.Listen {
		ln, err := transports.Listen(u, b.cfg.Transport)
		if err != nil {
			return fmt.Errorf("broker %s: %w", b.cfg.Address, err)
		}
		b.overlayLns = append(b.overlayLns, ln)
		b.wg.Go(func() {
			places := newAdmission()
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				leave, ok := places.enter(conn.Info().Remote)
				if !ok {
					_ = conn.Close()
					b.stats.refusedLinks.Add(1)
					b.noteDrop("listener", ln.URL(), "too many links in their handshake")
					continue
				}
				b.wg.Go(func() { b.acceptLink(conn, leave) })
			}
		})
	}
	return nil
}

// janitor expires reply routes and forgets brokers that stayed unreachable.
func (b *Broker) janitor() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-t.C:
			b.expireReplies(now)
			b.purgeUnreachable(now)
			b.watchLeaves(now)
		}
	}
}

// Close shuts the broker down: peers are told over every link, clients are
// told by the embedded server, and every goroutine ends before Close
// returns. It is safe to call more than once.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	links := make([]*link, 0, len(b.links))
	for _, l := range b.links {
		links = append(links, l)
	}
	b.mu.Unlock()
	if b.cancel != nil {
		b.cancel()
	}
	if b.httpSrv != nil {
		_ = b.httpSrv.Close()
	}
	// Say goodbye on every link before the listeners close the links they
	// accepted.
	for _, l := range links {
		l.shutdown()
	}
	for _, ln := range b.overlayLns {
		_ = ln.Close()
	}
	b.stopNATS()
	for _, ln := range []net.Listener{b.leafLn, b.coreLeafLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	b.closeLeaves()
	b.wg.Wait()
	b.log.Info("broker stopped")
}

func (b *Broker) closeLeaves() {
	b.mu.Lock()
	leaves := make([]*leafConn, 0, len(b.leaves))
	for l := range b.leaves {
		leaves = append(leaves, l)
	}
	b.mu.Unlock()
	for _, l := range leaves {
		l.close()
	}
}
