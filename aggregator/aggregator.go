// Package aggregator collects the performance reports of one domain's
// brokers: it is an ordinary NATS client of a broker, subscribed to
// $WL.perf.<domain>. It validates and stores every report (MySQL/MariaDB,
// or an embedded file), keeps the latest view of every link, answers XPath
// queries over the latest view and over stored history, and turns
// threshold rules into control messages back to the brokers concerned.
//
// It acknowledges a report once its transaction has committed, so a broker
// resends what the store may not have; it keeps accepting reports while the
// database is away, up to a bound, and says so on its health endpoint.
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
	"github.com/wayline/wayline/web"
)

// Config describes an aggregator. Zero fields take the defaults in their
// comments; Domain and BrokerURL are required.
type Config struct {
	// Domain is the domain whose reports it collects ($WL.perf.<Domain>);
	// "*" collects every domain's.
	Domain string
	// BrokerURL is the NATS URL of the broker it connects to.
	BrokerURL string
	// Token is the network's admin token: the aggregator signs in as the
	// admin user, since acknowledging reports and sending control messages
	// means publishing on reserved subjects. In a network without a token
	// it acknowledges reports without one, and its rules send nothing.
	Token string
	// DB names the store: "mysql://user:pw@tcp(host:port)/db",
	// "sqlite:PATH", or "" for sqlite:wayline.db.
	DB string
	// HTTP is the address of its HTTP API; empty for none.
	HTTP string
	// Rules are the threshold rules at the start; the admin page may add
	// and remove rules while it runs.
	Rules []Rule
	// Public serves the read-only pages and API to anyone. Otherwise, when
	// Token is set, they need it as the admin pages do (see web.Guard).
	Public bool
	// Retention is how long raw measurements are kept. Default 7 days.
	Retention time.Duration
	// MaxReportBytes bounds one report; bigger ones are refused. Default
	// 4 MiB.
	MaxReportBytes int
	// BufferReports bounds the reports held while the database is away;
	// past it reports are not acknowledged (their brokers keep them).
	// Default 20,000.
	BufferReports int
	// BatchSize and FlushEvery set the writes: a batch goes out when it
	// holds BatchSize reports or FlushEvery has passed. Defaults
	// DefaultBatchSize and 250 ms.
	BatchSize  int
	FlushEvery time.Duration
	// Writers are the batches written at once, each in its own
	// transaction: a MySQL server stores rows on as many cores. Default
	// DefaultWriters.
	Writers int
	// QueryTimeout and QueryMaxResults cut XPath queries short. Defaults
	// 5 s and 10,000 nodes.
	QueryTimeout    time.Duration
	QueryMaxResults int
	// Logger receives the aggregator's logs. Default: discard.
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Domain == "" {
		return errors.New("aggregator: domain is required")
	}
	if c.BrokerURL == "" {
		return errors.New("aggregator: broker URL is required")
	}
	for i := range c.Rules {
		if err := c.Rules[i].compile(); err != nil {
			return fmt.Errorf("aggregator: rules[%d]: %w", i, err)
		}
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.MaxReportBytes <= 0 {
		c.MaxReportBytes = 4 << 20
	}
	if c.BufferReports <= 0 {
		c.BufferReports = 20000
	}
	if c.Writers <= 0 {
		c.Writers = DefaultWriters
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 250 * time.Millisecond
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 5 * time.Second
	}
	if c.QueryMaxResults <= 0 {
		c.QueryMaxResults = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// The defaults of Config's writes.
const (
	DefaultWriters   = 2
	DefaultBatchSize = 200
)

// Aggregator is one running aggregator.
type Aggregator struct {
	cfg   Config
	log   *slog.Logger
	store store.Store
	nc    *nats.Conn

	mu       sync.Mutex
	latest   map[string]schema.Report // by broker
	lastSeq  map[string]uint64
	missing  map[string]map[uint64]bool // sequence numbers missed, by broker
	heldSeqs map[string]map[uint64]bool // sequence numbers held (see hold), by broker
	buffer   []store.Received           // reports held for the database
	writing  int                        // reports of the buffer's being written
	unsaved  map[unsavedKey]bool        // reports held and not yet stored
	applied  map[actionKey]bool
	rules    []*Rule                 // the rules now, in order; replaced, never modified
	inflight map[*Rule]int           // actions of each rule under way (rules.go)
	idle     *sync.Cond              // signalled, on mu, when an action ends
	states   map[string]schema.State // by broker (routes.go)
	// contracts holds the links each broker's delay contract routes
	// cross, and contractsOn the same by link (view.go).
	contracts   map[string][]linkContract
	contractsOn map[string][]vContract
	routeLog    []schema.RouteChange // newest first

	stats Stats
	subs  []*nats.Subscription
	// canAck and canControl say whether the broker lets the aggregator
	// acknowledge reports and send control messages (checkPermissions).
	canAck     atomic.Bool
	canControl atomic.Bool
	dbDown     atomic.Bool
	dbErr      atomic.Value // string
	kick       chan struct{}
	live       *web.Hub           // the pages' live updates
	rulesCh    chan schema.Report // reports for the rules, which may wait on brokers
	httpSrv    *http.Server
	httpLn     net.Listener
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// Stats counts what the aggregator received and did.
type Stats struct {
	Received  atomic.Uint64 // reports accepted
	Rejected  atomic.Uint64 // reports refused: too large, forbidden, malformed or invalid
	Gaps      atomic.Uint64 // reports missed, by sequence number
	Stored    atomic.Uint64 // reports written to the database
	Unacked   atomic.Uint64 // reports not acknowledged because the buffer was full
	Actions   atomic.Uint64 // control actions sent
	Duplicate atomic.Uint64 // reports received again (a lost acknowledgement)
	BadStates atomic.Uint64 // state messages refused
	// QueriesCut counts queries stopped by their time limit, or because
	// their client went away.
	QueriesCut atomic.Uint64
}

// New opens the store; Start connects and serves.
func New(ctx context.Context, cfg Config) (*Aggregator, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DB, store.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	a := &Aggregator{
		cfg:         cfg,
		log:         cfg.Logger.With(slog.String("aggregator", cfg.Domain)),
		store:       st,
		latest:      make(map[string]schema.Report),
		lastSeq:     make(map[string]uint64),
		missing:     make(map[string]map[uint64]bool),
		heldSeqs:    make(map[string]map[uint64]bool),
		unsaved:     make(map[unsavedKey]bool),
		applied:     make(map[actionKey]bool),
		rules:       rulePointers(cfg.Rules),
		states:      make(map[string]schema.State),
		contracts:   make(map[string][]linkContract),
		contractsOn: make(map[string][]vContract),
		kick:        make(chan struct{}, 1),
		rulesCh:     make(chan schema.Report, 1024),
		live:        web.NewHub(web.HubConfig{Logger: cfg.Logger}),
		inflight:    make(map[*Rule]int),
	}
	a.idle = sync.NewCond(&a.mu)
	return a, nil
}

// Start connects to the broker, subscribes to the domain's reports and
// serves HTTP. On error everything started is stopped.
func (a *Aggregator) Start(ctx context.Context) (err error) {
	a.ctx, a.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	opts := []nats.Option{
		nats.Name("wayline-aggregator-" + a.cfg.Domain),
		nats.MaxReconnects(-1),
		nats.Timeout(10 * time.Second),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			a.log.Warn("disconnected from the broker", slog.Any("err", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			a.log.Info("reconnected to the broker", slog.String("url", nc.ConnectedUrl()))
		}),
	}
	if a.cfg.Token != "" {
		opts = append(opts, nats.UserInfo(netapi.AdminUser, a.cfg.Token))
	}
	nc, err := nats.Connect(a.cfg.BrokerURL, opts...)
	if errors.Is(err, nats.ErrAuthorization) {
		return fmt.Errorf("aggregator: connect %s: the broker refused the admin token (--token, WAYLINE_ADMIN_TOKEN): %w", a.cfg.BrokerURL, err)
	}
	if err != nil {
		return fmt.Errorf("aggregator: connect %s: %w", a.cfg.BrokerURL, err)
	}
	a.nc = nc
	if err := a.checkPermissions(); err != nil {
		return err
	}
	sub, err := nc.Subscribe(netapi.PerfSubject(a.cfg.Domain), a.onReport)
	if err != nil {
		return fmt.Errorf("aggregator: subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(-1, 256<<20)
	states, err := nc.Subscribe(netapi.StateSubject(a.cfg.Domain), a.onState)
	if err != nil {
		return fmt.Errorf("aggregator: subscribe: %w", err)
	}
	a.subs = []*nats.Subscription{sub, states}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("aggregator: subscribe: %w", err)
	}
	if err := a.startHTTP(); err != nil {
		return err
	}
	for range a.cfg.Writers {
		a.wg.Go(a.writeLoop)
	}
	a.wg.Go(a.pruneLoop)
	a.wg.Go(a.compactLoop)
	a.wg.Go(a.rulesLoop)
	a.wg.Go(func() { a.live.Run(a.ctx) })
	a.log.Info("aggregator started", slog.String("domain", a.cfg.Domain), slog.String("broker", a.cfg.BrokerURL), slog.String("http", a.HTTPAddr()))
	return nil
}

// HTTPAddr is the address the HTTP API listens on, or "".
func (a *Aggregator) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Close stops the aggregator, writing what it holds if the database
// lets it, and acknowledging what it wrote.
func (a *Aggregator) Close() {
	for _, sub := range a.subs {
		_ = sub.Unsubscribe()
	}
	if a.httpSrv != nil {
		_ = a.httpSrv.Close()
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	a.flush(context.Background())
	if a.nc != nil {
		_ = a.nc.Flush()
		a.nc.Close()
	}
	_ = a.store.Close()
}

// Healthy reports whether the database is reachable; when it is not, the
// aggregator still accepts reports into its buffer.
func (a *Aggregator) Healthy() (bool, string) {
	if a.dbDown.Load() {
		msg, _ := a.dbErr.Load().(string)
		return false, msg
	}
	return true, ""
}

// compactAfter is how long after a window of five minutes ends its
// measurements are packed into blocks, which history queries read many
// times faster than one row each (see store.Store.Compact). A report that
// comes later is packed at the next pass, a minute later.
const compactAfter = time.Minute

// compactLoop packs measurements into blocks, every minute.
func (a *Aggregator) compactLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		start := time.Now()
		if n, err := a.store.Compact(a.ctx, start.Add(-compactAfter)); err != nil {
			if a.ctx.Err() == nil {
				a.log.Warn("compaction failed", slog.Any("err", err))
			}
		} else if n > 0 {
			a.log.Debug("packed measurements into blocks", slog.Int64("measurements", n), slog.Duration("took", time.Since(start)))
		}
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneLoop deletes measurements older than the retention, hourly.
func (a *Aggregator) pruneLoop() {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := a.store.Prune(a.ctx, time.Now().Add(-a.cfg.Retention)); err != nil {
			a.log.Warn("prune failed", slog.Any("err", err))
		} else if n > 0 {
			a.log.Info("pruned old measurements", slog.Int64("rows", n))
		}
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
	}
}
