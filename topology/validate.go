package topology

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
)

var wantTransport = "want one of " + strings.Join(transports.Schemes, ", ")

// MinSecret is the shortest network secret accepted, in bytes.
const MinSecret = 16

// checker collects every problem of one file. Its methods check one part
// each and report through problem, naming the item and field at fault.
type checker struct {
	f      *File
	errs   []error
	index  map[router.Address]int // valid broker address -> its first index
	claims map[string][]claim     // namespace and port (or mem name) -> claims on it
}

// claim is one socket, or in-process name, that the file asks for.
type claim struct {
	host  string // canonical host; "" for a wildcard, and for a mem name
	text  string // as written
	owner string // e.g. "brokers[0] (na.cgl.c1.a) client"
}

// validate checks f as Parse documents, and fills in missing link IDs.
func validate(f *File) error {
	c := &checker{f: f, index: make(map[router.Address]int), claims: make(map[string][]claim)}
	if len(f.Brokers) == 0 {
		c.errs = append(c.errs, errors.New("brokers: at least one broker is required"))
	}
	if f.Monitoring != nil {
		if _, err := f.Monitoring.apply(monitor.DefaultWANConfig()); err != nil {
			c.errs = append(c.errs, fmt.Errorf("monitoring: %w", err))
		}
	}
	if _, err := f.Routing.Settings(); err != nil {
		c.errs = append(c.errs, fmt.Errorf("routing: %w", err))
	}
	if _, _, _, err := f.Reports.ReportSettings(); err != nil {
		c.errs = append(c.errs, err)
	}
	if n := len(f.Secret); n > 0 && n < MinSecret {
		c.errs = append(c.errs, fmt.Errorf("secret: %d bytes; a network secret needs at least %d (a random one: openssl rand -hex 32)", n, MinSecret))
	}
	for i := range f.Brokers {
		c.broker(i)
	}
	ids := make(map[string]int)
	triples := make(map[string]int)
	for i := range f.Links {
		c.link(i, ids, triples)
	}
	for i := range f.Aggregators {
		c.aggregator(i)
	}
	return errors.Join(c.errs...)
}

func (c *checker) problem(item, field string, err error) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s: %w", item, field, err))
}

func (c *checker) problemf(item, field, format string, args ...any) {
	c.problem(item, field, fmt.Errorf(format, args...))
}

func (c *checker) broker(i int) {
	b := &c.f.Brokers[i]
	item := fmt.Sprintf("brokers[%d]", i)
	if b.Address != "" {
		item = fmt.Sprintf("brokers[%d] (%s)", i, b.Address)
	}
	c.address(item, i, b.Address)
	c.listeners(item, b)
	c.socket(item, "client", b.Client, true)
	c.socket(item, "http", b.HTTP, true)
	c.socket(item, "leaf", b.Leaf, false)
	if b.Domain != "" {
		if _, err := router.ParseAddress(b.Domain); err != nil || strings.Contains(b.Domain, ".") {
			c.problemf(item, "domain", "%q is not a domain (one address label)", b.Domain)
		}
	}
}

func (c *checker) address(item string, i int, a router.Address) {
	if a == "" {
		c.problemf(item, "address", "required")
		return
	}
	if _, err := router.ParseAddress(string(a)); err != nil {
		c.problem(item, "address", err)
		return
	}
	if j, dup := c.index[a]; dup {
		c.problemf(item, "address", "duplicate of brokers[%d]", j)
		return
	}
	c.index[a] = i
}

// socket checks the host:port of a TCP socket, required or not, and
// claims it.
func (c *checker) socket(item, field, value string, required bool) {
	if value == "" {
		if required {
			c.problemf(item, field, "required (host:port)")
		}
		return
	}
	host, port, err := splitHostPort(value)
	if err != nil {
		c.problem(item, field, err)
		return
	}
	c.claim(item, field, "tcp "+port, claim{host: host, text: value})
}

// listeners checks b's listen URLs and claims their sockets.
func (c *checker) listeners(item string, b *Broker) {
	first := make(map[string]int)
	for j, s := range b.Listen {
		field := fmt.Sprintf("listen[%d]", j)
		ln, err := parseListener(s)
		if err != nil {
			c.problem(item, field, err)
			continue
		}
		if k, dup := first[ln.scheme]; dup {
			c.problemf(item, field, "a second %s listener (the first is listen[%d])", ln.scheme, k)
			continue
		}
		first[ln.scheme] = j
		if ln.scheme == "tls" {
			if miss := b.TLS.missing(); miss != "" {
				c.problemf(item, field, "a tls listener needs the broker's tls cert, key and ca (missing %s)", miss)
			}
		}
		c.claim(item, field, ln.namespace(), claim{host: ln.host, text: ln.text})
	}
}

// listener is a parsed listen URL.
type listener struct {
	scheme string
	host   string // canonical, "" for a wildcard; the name for mem
	port   string // canonical; "" for mem
	text   string // host:port as written; the whole URL for mem
}

// namespace returns the claim namespace of ln's socket or name: TCP
// sockets share one, UDP sockets (udp and quic) another, mem names a
// third.
func (ln listener) namespace() string {
	switch ln.scheme {
	case "mem":
		return "mem " + ln.host
	case "udp", "quic":
		return "udp " + ln.port
	default:
		return "tcp " + ln.port
	}
}

// parseListener checks a listen URL: a known scheme, then host:port, with a
// path only for ws, or mem://name.
func parseListener(s string) (listener, error) {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return listener{}, fmt.Errorf("%q: want scheme://host:port", s)
	}
	if !slices.Contains(transports.Schemes, scheme) {
		return listener{}, fmt.Errorf("%q: unknown scheme %q (%s)", s, scheme, wantTransport)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return listener{}, err
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return listener{}, fmt.Errorf("%q: user info, query and fragment are not allowed", s)
	case u.Path != "" && scheme != "ws":
		return listener{}, fmt.Errorf("%q: only ws listeners take a path", s)
	case scheme == "mem":
		if u.Host == "" || strings.Contains(u.Host, ":") {
			return listener{}, fmt.Errorf("%q: want mem://name", s)
		}
		return listener{scheme: scheme, host: u.Host, text: s}, nil
	}
	host, port, err := splitHostPort(u.Host)
	if err != nil {
		return listener{}, fmt.Errorf("%q: %w", s, err)
	}
	return listener{scheme: scheme, host: host, port: port, text: u.Host}, nil
}

// splitHostPort splits host:port and returns the host in canonical form
// ("" for a wildcard) and the port as a number from 1 to 65535.
func splitHostPort(s string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(s)
	if err != nil {
		return "", "", fmt.Errorf("%q: want host:port", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsUnspecified() {
			host = ""
		} else {
			host = ip.Unmap().String()
		}
	}
	return strings.ToLower(host), strconv.FormatUint(n, 10), nil
}

// claim records that item's field asks for the socket or name in
// namespace key. It reports the first earlier claim it clashes with: the
// same host, or a wildcard on either side.
func (c *checker) claim(item, field, key string, cl claim) {
	cl.owner = item + " " + field
	for _, prev := range c.claims[key] {
		switch {
		case prev.host == cl.host:
			c.problemf(item, field, "%s is already used by %s", cl.text, prev.owner)
			return
		case prev.host == "" || cl.host == "":
			c.problemf(item, field, "%s overlaps %s of %s", cl.text, prev.text, prev.owner)
			return
		}
	}
	c.claims[key] = append(c.claims[key], cl)
}

// link checks links[i] and fills in its ID. ids maps the IDs seen to their
// link; triples counts the links seen per a, b and transport.
func (c *checker) link(i int, ids, triples map[string]int) {
	l := &c.f.Links[i]
	item := fmt.Sprintf("links[%d] (%s -> %s)", i, l.A, l.B)
	c.end(item, "a", l.A)
	c.end(item, "b", l.B)
	if l.A != "" && l.A == l.B {
		c.problemf(item, "b", "same broker as a")
	}
	c.transport(item, l)
	if l.Emulate != nil {
		if _, err := l.Emulate.Apply(transports.Emulation{}); err != nil {
			c.problem(item, "emulate", err)
		}
	}
	if l.Rate != nil {
		switch r, err := l.Rate.Bandwidth("rate"); {
		case err != nil:
			c.problem(item, "rate", err)
		case r < 8000:
			c.problemf(item, "rate", "%s is below 8kbit a second", string(*l.Rate))
		}
	}
	if l.Monitor != nil {
		if _, err := l.Monitor.apply(monitor.DefaultWANConfig()); err != nil {
			c.problem(item, "monitor", err)
		}
	}
	triple := string(l.A) + "|" + string(l.B) + "|" + l.Transport
	n := triples[triple]
	triples[triple]++
	if l.ID == "" {
		l.ID = uuidV5(linkNamespace, triple+"|"+strconv.Itoa(n))
	} else if id, err := parseUUID(l.ID); err != nil {
		c.problem(item, "id", err)
		return
	} else {
		l.ID = id
	}
	if j, dup := ids[l.ID]; dup {
		c.problemf(item, "id", "%s is also the id of links[%d]", l.ID, j)
		return
	}
	ids[l.ID] = i
}

// end checks one end of a link.
func (c *checker) end(item, field string, a router.Address) {
	if a == "" {
		c.problemf(item, field, "required")
	} else if _, ok := c.index[a]; !ok {
		c.problemf(item, field, "unknown broker %q", a)
	}
}

// transport checks that l's transport is known and that both ends can
// use it: b listens on it, for tls both have their tls files, and for quic
// both have them or neither has.
func (c *checker) transport(item string, l *Link) {
	if !slices.Contains(transports.Schemes, l.Transport) {
		if l.Transport == "" {
			c.problemf(item, "transport", "required (%s)", wantTransport)
		} else {
			c.problemf(item, "transport", "unknown transport %q (%s)", l.Transport, wantTransport)
		}
		return
	}
	if b, ok := c.brokerAt(l.B); ok {
		if _, ok := b.ListenURL(l.Transport); !ok {
			c.problemf(item, "transport", "broker %s has no %s listener", l.B, l.Transport)
		}
	}
	if a, ok := c.brokerAt(l.A); ok && l.Transport == "tls" {
		if miss := a.TLS.missing(); miss != "" {
			c.problemf(item, "transport", "broker %s needs its tls cert, key and ca to dial (missing %s)", l.A, miss)
		}
	}
	if l.Transport == "quic" {
		c.quicCertificates(item, l)
	}
}

// quicCertificates checks that both ends of a quic link make the same
// choice: each uses its tls files when it has all three, and an ephemeral
// certificate that the other end cannot verify when it has not.
func (c *checker) quicCertificates(item string, l *Link) {
	a, okA := c.brokerAt(l.A)
	b, okB := c.brokerAt(l.B)
	if !okA || !okB {
		return
	}
	missA, missB := a.TLS.missing(), b.TLS.missing()
	if (missA == "") == (missB == "") {
		return
	}
	with, without, miss := l.A, l.B, missB
	if missA != "" {
		with, without, miss = l.B, l.A, missA
	}
	c.problemf(item, "transport", "quic links use tls files at both ends or at neither: %s has its cert, key and ca, %s does not (missing %s)", with, without, miss)
}

// brokerAt returns the broker of a valid, known address.
func (c *checker) brokerAt(a router.Address) (*Broker, bool) {
	i, ok := c.index[a]
	if !ok {
		return nil, false
	}
	return &c.f.Brokers[i], true
}

// aggregator checks aggregators[i].
func (c *checker) aggregator(i int) {
	a := &c.f.Aggregators[i]
	item := fmt.Sprintf("aggregators[%d] (%s)", i, a.Domain)
	if a.Domain == "" {
		c.problemf(item, "domain", "required (a first address label, or \"*\" for every domain)")
	} else if a.Domain != "*" {
		if _, err := router.ParseAddress(a.Domain); err != nil || strings.Contains(a.Domain, ".") {
			c.problemf(item, "domain", "%q is not a domain (one address label, or \"*\")", a.Domain)
		}
	}
	c.end(item, "broker", a.Broker)
	c.socket(item, "http", a.HTTP, true)
}
