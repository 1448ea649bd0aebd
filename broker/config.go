package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/topology"
	"github.com/wayline/wayline/transports"
)

// Config describes one broker. Zero fields take the defaults given in their
// comments; Address, Client and at least the links' peers are required.
type Config struct {
	// Address is the broker's hierarchical address, e.g. "na.cgl.c1.a".
	Address string
	// Listen lists the overlay listener URLs, e.g. "tcp://127.0.0.1:7101".
	Listen []string
	// Client is the host:port NATS clients connect to. Port 0 picks a free
	// port (tests).
	Client string
	// HTTP is the host:port of the monitoring/admin API; empty disables it.
	HTTP string
	// Leaf is the host:port where external nats-servers attach to the
	// core as leaf nodes; empty (the default) means none may. The embedded
	// server attaches on a loopback port of its own.
	Leaf string
	// LeafToken is what external leaf nodes sign in with, as their
	// password (nats://any-user:TOKEN@host:port) or their token
	// (nats://TOKEN@host:port). Required with Leaf.
	LeafToken string
	// Links are this broker's links: those it dials and those it accepts.
	Links []LinkConfig
	// Transport holds the transport settings (frame limit, TLS).
	Transport transports.Config
	// Monitor sets how links are measured, unless a link says otherwise.
	// Default monitor.DefaultWANConfig(): a probe a second.
	Monitor monitor.Config
	// Routing sets how links are priced and how cost updates travel.
	Routing Routing
	// Report sets the performance reports sent to the domain's aggregator.
	Report ReportConfig
	// KnownLinks gives the two ends of every link of the network by id,
	// when the whole topology is known: a cost update about a link from a
	// broker that is not one of its ends is then refused. Optional.
	KnownLinks map[string][2]string

	// MaxPayload is the largest message a client may publish, headers
	// included. Default: the frame limit less 64 KiB for routing headers.
	MaxPayload int
	// LinkQueueBytes bounds each link's send queue. A message that does not
	// fit is dropped and counted. Default 32 MiB: a burst of 100,000 small
	// messages (about 18 MB) waits whole for a wide-area link whose
	// congestion control holds it to a few Mbit/s, as NATS buffers up to
	// 64 MiB for a slow connection; on a 100 MB/s link it is 320 ms.
	LinkQueueBytes int
	// LeafQueueBytes bounds the queue towards each leaf connection, with the
	// same policy. Default 64 MiB.
	LeafQueueBytes int
	// RetainBytes and RetainAge bound the messages each link keeps until
	// its peer acknowledges them, to route them again if the link fails
	// first (see the overlay's retain.go). What falls out of the bound is
	// counted, not lost: it is only no longer protected. Defaults 16 MiB
	// and 10 s: acknowledgements come every 1024 messages or 20 ms, so a
	// link keeps a few round trips' worth, and 16 MiB holds 200 ms of a
	// link carrying 80 MB/s.
	RetainBytes int
	RetainAge   time.Duration
	// MaxHops is how many links a message may cross; it ends transient
	// loops while routes converge. Default 32.
	MaxHops int
	// Keepalive is how often an idle link sends a ping. Default 500 ms.
	Keepalive time.Duration
	// DeadAfter is how long a link's connection may stay silent before it
	// is closed and dialed again; it must be several Keepalives. Routing
	// does not wait for it: the link monitor takes a silent link out of
	// the routes within about six probe intervals. Default 10 s.
	DeadAfter time.Duration
	// HandshakeTimeout bounds a link's handshake. Default 5 s.
	HandshakeTimeout time.Duration
	// DialBackoffMin and DialBackoffMax bound the wait between attempts to
	// re-establish a failed link; it doubles from min to max, with jitter.
	// Defaults 100 ms and 5 s.
	DialBackoffMin, DialBackoffMax time.Duration
	// ReplyTTL is how long a reply subject stays routed back to the broker
	// a request came from. Default 2 minutes, like NATS service responses.
	ReplyTTL time.Duration
	// MaxReplies bounds the reply routes held; the oldest go first.
	// Default 100,000.
	MaxReplies int
	// PurgeAfter is how long an unreachable broker's interest is kept, in
	// case it comes back, before it is forgotten. Default 30 s.
	PurgeAfter time.Duration
	// ShutdownGrace is how long Close lets the embedded server tell its
	// clients to go elsewhere (lame-duck mode) before closing them. Zero
	// closes them at once.
	ShutdownGrace time.Duration
	// AdminToken guards what changes the network: the HTTP API's PUT
	// endpoints ask for it as a bearer token, and NATS clients that sign in
	// as netapi.AdminUser with it as password may publish on reserved subjects
	// (control messages). Empty: the PUT endpoints are open, and clients
	// may publish on no reserved subject but the acknowledgements of
	// reports (netapi.AdminOnly), so that an aggregator works without one.
	AdminToken string
	// Secret is the network secret: every broker of a network has the
	// same, and it authenticates links on every transport but tls (which
	// authenticates by certificate; see package linkauth). At least 16
	// bytes; a random one (openssl rand -hex 32) is best. Empty: links
	// other than tls are not authenticated, which New allows only when
	// every overlay listener and every link it dials is on a loopback
	// address.
	Secret string
	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger
}

// Routing sets how links are priced (cost profiles, and which subjects use
// which) and when a broker announces a change in its links' costs.
type Routing struct {
	// Profiles are the cost profiles besides the built-in default (one
	// named "default" replaces it). Every broker of a network must have the
	// same list: cost updates carry one cost per profile.
	Profiles []router.Profile
	// Subjects map subject patterns to profiles; the first match wins, and
	// a subject that matches none routes on the default profile.
	Subjects []SubjectProfile
	// Contracts are delay contracts: a subject that matches one (the
	// first, tried before Subjects) takes the path most likely to meet it
	// (see router.ContractTables). Every broker of a network must have
	// the same list.
	Contracts []SubjectContract
	// Priorities give subject patterns a priority class on congested
	// links (see priority.go); the first match wins, and a subject that
	// matches none is normal.
	Priorities []topology.SubjectClass
	// Rules say when a link's cost or a unit's summary is announced and
	// how firmly routes hold (see router.Rules); zero fields take the
	// defaults of router.DefaultRules.
	router.Rules
	// Refresh is how often every link and summary is announced again
	// whatever its cost did, so that an announcement that was missed
	// heals. Default 30 s.
	Refresh time.Duration
	// Check is how often link costs are reviewed. Default 250 ms.
	Check time.Duration
	// LossWindow is how many of a link's latest probes the loss that
	// prices it is estimated over, at most monitor.LossHistory. Default
	// 1024 (102 s at 100 ms probes): a link's one-way loss p is then
	// known within about sqrt(2p/1024)/2, 0.2 points at 1%, 2 cost units
	// on the default profile, so that the cost of a lossy link does not
	// wander from one review to the next. A dead link does not wait for
	// it: the monitor's failure detector takes it out of the routes.
	LossWindow int

	// Queues say how the queue groups they list share their messages
	// among their members (see queues.go); other groups keep the default.
	Queues []router.QueueGroup
}

// SubjectContract routes the subjects matching Subject (NATS wildcards
// allowed) by a delay contract.
type SubjectContract struct {
	Subject string
	router.Contract
}

// SubjectProfile routes the subjects matching Subject (NATS wildcards
// allowed) on the profile named Profile.
type SubjectProfile struct {
	Subject string
	Profile string
}

func (r *Routing) withDefaults() error {
	def := router.DefaultRules()
	for _, f := range []struct{ v, d *float64 }{
		{&r.Threshold, &def.Threshold}, {&r.MinChange, &def.MinChange}, {&r.Margin, &def.Margin},
		{&r.FlapSuppress, &def.FlapSuppress}, {&r.FlapReuse, &def.FlapReuse}, {&r.DelayShift, &def.DelayShift},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	setDefault(&r.HoldDown, def.HoldDown)
	setDefault(&r.FlapHalfLife, def.FlapHalfLife)
	setDefault(&r.FlapMaxSuppress, def.FlapMaxSuppress)
	setDefault(&r.Refresh, 30*time.Second)
	setDefault(&r.Check, 250*time.Millisecond)
	if r.LossWindow <= 0 {
		r.LossWindow = 1024
	}
	if r.LossWindow > monitor.LossHistory {
		return fmt.Errorf("loss window %d: at most %d probes", r.LossWindow, monitor.LossHistory)
	}
	if err := r.Rules.Validate(); err != nil {
		return err
	}
	if err := router.CheckQueueGroups(r.Queues); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, p := range r.Profiles {
		if err := p.Validate(); err != nil {
			return err
		}
		if names[p.Name] {
			return fmt.Errorf("profile %s: defined twice", p.Name)
		}
		names[p.Name] = true
	}
	names[router.DefaultProfileName] = true
	for i, sp := range r.Subjects {
		if !validSubject(sp.Subject) {
			return fmt.Errorf("subjects[%d]: invalid subject %q", i, sp.Subject)
		}
		if !names[sp.Profile] {
			return fmt.Errorf("subjects[%d] (%s): unknown profile %q", i, sp.Subject, sp.Profile)
		}
	}
	for i, c := range r.Contracts {
		if !validSubject(c.Subject) {
			return fmt.Errorf("contracts[%d]: invalid subject %q", i, c.Subject)
		}
		if err := c.Validate(); err != nil {
			return fmt.Errorf("contracts[%d] (%s): %w", i, c.Subject, err)
		}
	}
	// A message names its profile or contract in one byte.
	if n := len(names) + len(r.Contracts); n > 256 {
		return fmt.Errorf("%d profiles and contracts: at most 256", n)
	}
	return validatePriorities(r.Priorities)
}

// contracts returns the delay contracts as the router takes them.
func (r *Routing) contracts() []router.Contract {
	out := make([]router.Contract, len(r.Contracts))
	for i, c := range r.Contracts {
		out[i] = c.Contract
	}
	return out
}

// profiles returns the cost profiles in their network-wide order: the
// default first.
func (r *Routing) profiles() []router.Profile {
	out := []router.Profile{router.DefaultProfile()}
	for _, p := range r.Profiles {
		if p.Name == router.DefaultProfileName {
			out[0] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}

// ReportConfig sets a broker's performance reports.
type ReportConfig struct {
	// Domain is the aggregation domain: reports go to $WL.perf.<Domain>.
	// Default: the first label of the broker's address (its
	// super-super-cluster).
	Domain string
	// Interval is how often a report is written. Default 5 s.
	Interval time.Duration
	// MaxQueued and MaxQueuedBytes bound the reports kept until an
	// aggregator acknowledges them; past them the oldest go. Defaults 720
	// (an hour at 5 s) and 32 MiB.
	MaxQueued, MaxQueuedBytes int
}

// LinkConfig is one overlay link of this broker.
type LinkConfig struct {
	ID        string // the link's UUID
	Peer      string // the broker at the other end
	Transport string // "tcp", "tls", "udp", "ws", "quic" or "mem"
	// Dial is the peer's URL when this broker dials the link; empty when
	// the peer dials.
	Dial string
	// Emulation gives what this broker sends on the link wide-area
	// conditions (its frames, or a quic link's packets); nil for none. The
	// peer emulates its own direction.
	Emulation *transports.Emulation
	// Rate, in bits a second, paces the message records this broker
	// sends over the link (overlay.Config.Rate); 0 does not pace them.
	Rate int64
	// Monitor overrides Config.Monitor for this link.
	Monitor *monitor.Config
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address is required"))
	}
	if _, _, err := net.SplitHostPort(c.Client); err != nil {
		errs = append(errs, fmt.Errorf("client %q: %w", c.Client, err))
	}
	ids := map[string]bool{}
	for i, l := range c.Links {
		if l.ID == "" || l.Peer == "" {
			errs = append(errs, fmt.Errorf("links[%d]: id and peer are required", i))
		}
		if l.Rate < 0 {
			errs = append(errs, fmt.Errorf("links[%d]: rate %d bit/s is negative", i, l.Rate))
		}
		if l.Emulation != nil {
			if err := l.Emulation.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("links[%d]: emulation: %w", i, err))
			}
		}
		if ids[l.ID] {
			errs = append(errs, fmt.Errorf("links[%d]: duplicate id %s", i, l.ID))
		}
		ids[l.ID] = true
	}
	if c.Monitor.Interval == 0 {
		c.Monitor = monitor.DefaultWANConfig()
	}
	if err := c.Monitor.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("monitor: %w", err))
	}
	if c.Report.Domain == "" {
		c.Report.Domain, _, _ = strings.Cut(c.Address, ".")
	}
	setDefault(&c.Report.Interval, 5*time.Second)
	setDefault(&c.Report.MaxQueued, 720)
	setDefault(&c.Report.MaxQueuedBytes, 32<<20)
	if err := c.Routing.withDefaults(); err != nil {
		errs = append(errs, fmt.Errorf("routing: %w", err))
	}
	if c.Leaf != "" && c.LeafToken == "" {
		errs = append(errs, fmt.Errorf("leaf %s: external leaf nodes need a leaf token to sign in with (leaf_token: in the topology file, or WAYLINE_LEAF_TOKEN)", c.Leaf))
	}
	if c.Transport.MaxFrame <= 0 {
		c.Transport.MaxFrame = transports.DefaultMaxFrame
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = c.Transport.MaxFrame - 64<<10
	}
	if c.MaxPayload <= 0 || c.MaxPayload > c.Transport.MaxFrame-4096 {
		errs = append(errs, fmt.Errorf("max payload %d does not fit in frames of %d bytes", c.MaxPayload, c.Transport.MaxFrame))
	}
	setDefault(&c.LinkQueueBytes, 32<<20)
	setDefault(&c.LeafQueueBytes, 64<<20)
	setDefault(&c.RetainBytes, 16<<20)
	setDefault(&c.RetainAge, 10*time.Second)
	setDefault(&c.MaxHops, 32)
	if c.MaxHops > 255 {
		errs = append(errs, fmt.Errorf("max hops %d over 255", c.MaxHops))
	}
	setDefault(&c.Keepalive, 500*time.Millisecond)
	setDefault(&c.DeadAfter, 10*time.Second)
	if c.DeadAfter < 2*c.Keepalive {
		errs = append(errs, fmt.Errorf("dead-after %v must be at least two keepalives (%v)", c.DeadAfter, c.Keepalive))
	}
	setDefault(&c.HandshakeTimeout, 5*time.Second)
	setDefault(&c.DialBackoffMin, 100*time.Millisecond)
	setDefault(&c.DialBackoffMax, 5*time.Second)
	setDefault(&c.ReplyTTL, 2*time.Minute)
	setDefault(&c.MaxReplies, 100_000)
	setDefault(&c.PurgeAfter, 30*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Transport.Logger == nil {
		c.Transport.Logger = c.Logger
	}
	errs = append(errs, c.checkAuthentication()...)
	if len(errs) > 0 {
		return c, fmt.Errorf("broker %s: config: %w", c.Address, errors.Join(errs...))
	}
	return c, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// checkAuthentication refuses a short secret, and, without a secret, any
// overlay address that is not loopback on a transport that only the
// secret authenticates.
func (c Config) checkAuthentication() []error {
	if c.Secret != "" {
		if len(c.Secret) < topology.MinSecret {
			return []error{fmt.Errorf("the network secret has %d bytes; it needs at least %d (a random one: openssl rand -hex 32)", len(c.Secret), topology.MinSecret)}
		}
		return nil
	}
	var errs []error
	check := func(what, rawURL string) {
		if host, ok := exposedHost(rawURL); ok {
			errs = append(errs, fmt.Errorf("%s %s is not a loopback address, and links without a network secret are allowed only on loopback: give the network a secret (secret: in the topology file, or WAYLINE_SECRET), or use tls links", what, host))
		}
	}
	for _, u := range c.Listen {
		check("listener", u)
	}
	for _, l := range c.Links {
		if l.Dial != "" {
			check("link "+l.ID+" dials", l.Dial)
		}
	}
	return errs
}

// exposedHost returns the host of an overlay URL that others than this
// machine may reach on a transport without certificates; ok is false for
// loopback, tls and mem.
func exposedHost(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "tls" || u.Scheme == "mem" {
		return "", false
	}
	host := u.Hostname()
	if host == "localhost" {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return "", false
	}
	return u.Host, true
}

// unauthenticated reports whether some link of the broker runs without
// authentication: no secret, and a transport other than tls.
func (c Config) unauthenticated() bool {
	if c.Secret != "" {
		return false
	}
	for _, l := range c.Links {
		if l.Transport != "tls" {
			return true
		}
	}
	return false
}
