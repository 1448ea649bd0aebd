// Package topology reads the topology file: one YAML file that describes a
// Wayline network, its brokers and the links between them. The same file
// drives `wayline demo` (every broker in one process) and
// `wayline broker --topology F --address X` (one broker of it).
//
//	name: chain                       # optional, default "wayline"
//	secret: 3f0c…                     # optional: authenticates links; WAYLINE_SECRET overrides it
//	tls:                              # optional: defaults for every broker's tls block
//	  ca: certs/ca.pem                # paths are relative to this file
//	brokers:
//	  - address: na.cgl.c1.a          # hierarchical address, see router.ParseAddress
//	    listen: [tcp://127.0.0.1:7101, udp://127.0.0.1:7101, ws://127.0.0.1:7102/overlay]
//	    client: 127.0.0.1:4301        # NATS client port
//	    http: 127.0.0.1:8301          # monitoring and admin HTTP
//	    leaf: 127.0.0.1:7422          # optional: where external nats-servers attach as leaf nodes (with leaf_token)
//	    tls: {cert: certs/a.pem, key: certs/a-key.pem}  # needed for tls; the certificate names the address
//	  - address: na.cgl.c1.b
//	    listen: [tcp://127.0.0.1:7201]
//	    client: 127.0.0.1:4302
//	    http: 127.0.0.1:8302
//	links:
//	  - a: na.cgl.c1.a                # a dials b
//	    b: na.cgl.c1.b
//	    transport: tcp                # tcp, tls, udp, ws, quic or mem: picks b's listener of that scheme
//	    id: 0f4a4a8e-4b0e-4d3c-9f5e-2a1b3c4d5e6f  # optional; derived from a, b and transport when absent
//
// The field names are a contract: later fields are added beside them, and
// none is renamed. Parse checks everything that can be checked without I/O
// (see Parse); the package opens no socket, resolves no host name and reads
// no certificate, so "localhost" and "127.0.0.1" are different hosts to it.
//
// A quic link runs TLS 1.3 with the brokers' tls files when both ends have
// them, and with ephemeral certificates that authenticate nobody when
// neither has; its listener is a UDP socket (quic://host:port).
//
// A mem link joins brokers through an in-process transport, so it works
// only when every broker runs in one process, as in `wayline demo`; the
// caller enforces that.
package topology

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/transports"
	"go.yaml.in/yaml/v3"
)

// DefaultName is the name of a network whose file gives none.
const DefaultName = "wayline"

// File is a parsed and validated topology file.
type File struct {
	Name string `yaml:"name"`
	// TLS holds defaults for the tls files of every broker: Parse fills the
	// fields a broker's own tls block leaves empty from it.
	TLS *TLSFiles `yaml:"tls,omitempty"`
	// Monitoring sets how every link is measured (see Monitoring).
	Monitoring *Monitoring `yaml:"monitoring,omitempty"`
	// Routing sets cost profiles and cost updates (see Routing).
	Routing *Routing `yaml:"routing,omitempty"`
	// Reports sets the brokers' performance reports (see Reports).
	Reports *Reports `yaml:"reports,omitempty"`
	// Admin holds the network's admin token (see Admin).
	Admin *Admin `yaml:"admin,omitempty"`
	// Secret is the network secret that authenticates the links of every
	// transport but tls (which authenticates by certificate): every broker
	// of the network holds the same, at least 16 bytes. The environment
	// variable WAYLINE_SECRET, when set, overrides it, so that the secret
	// need not sit in the file. Without either, links other than tls are
	// allowed only on loopback addresses.
	Secret string `yaml:"secret,omitempty"`
	// LeafToken is what external nats-servers sign in with on a broker's
	// leaf port (leaf:), as their password or token; a broker with a leaf
	// port needs it. WAYLINE_LEAF_TOKEN, when set, overrides it.
	LeafToken string `yaml:"leaf_token,omitempty"`
	// Aggregators collect the brokers' performance reports (see
	// Aggregator); `wayline demo` starts them with the brokers.
	Aggregators []Aggregator `yaml:"aggregators,omitempty"`
	Brokers     []Broker     `yaml:"brokers"`
	Links       []Link       `yaml:"links,omitempty"`
}

// Admin guards what changes the network. Brokers ask for Token on their
// HTTP API's PUT endpoints, and NATS clients signed in as user "wayline"
// with it as password may publish control messages. The environment
// variable WAYLINE_ADMIN_TOKEN, when set, overrides it, so that the
// secret need not sit in the file.
type Admin struct {
	Token string `yaml:"token,omitempty"`
}

// Broker is one broker of the network.
type Broker struct {
	Address router.Address `yaml:"address"`
	// Listen lists the overlay listeners, at most one per scheme:
	// tcp://host:port, tls://host:port, udp://host:port,
	// ws://host:port[/path], quic://host:port and mem://name.
	Listen []string `yaml:"listen,omitempty"`
	Client string   `yaml:"client"` // host:port of the NATS client listener
	HTTP   string   `yaml:"http"`   // host:port of the monitoring and admin HTTP server
	// Leaf is the host:port where external nats-servers attach as leaf
	// nodes, signing in with the file's leaf_token; empty means none may.
	Leaf string `yaml:"leaf,omitempty"`
	// Domain is the aggregation domain the broker reports to; empty means
	// the first label of its address.
	Domain string `yaml:"domain,omitempty"`
	// TLS names the PEM files of tls links: the broker presents Cert and Key
	// and trusts peers signed by CA, both when listening and when dialing.
	// After Parse it holds the file's defaults too; Load resolves relative
	// paths against the topology file's directory.
	TLS *TLSFiles `yaml:"tls,omitempty"`
}

// Aggregator is an aggregator of the network: it connects to one of its
// brokers as a NATS client and collects the reports of a domain ("*" for
// every domain).
//
//	aggregators:
//	  - domain: "*"
//	    broker: na.cgl.c1.a          # the broker it connects to
//	    http: 127.0.0.1:8080
//	    db: sqlite:wayline.db        # or mysql://user:pw@tcp(host:port)/db
//	    config: aggregator.yaml      # optional: rules and retention
type Aggregator struct {
	Domain string         `yaml:"domain"`
	Broker router.Address `yaml:"broker"`
	HTTP   string         `yaml:"http"`
	DB     string         `yaml:"db,omitempty"`
	// Config names the aggregator's configuration file; Load resolves a
	// relative path against the topology file's directory.
	Config string `yaml:"config,omitempty"`
}

// TLSFiles names the PEM files a broker uses for tls links.
type TLSFiles struct {
	Cert string `yaml:"cert,omitempty"`
	Key  string `yaml:"key,omitempty"`
	CA   string `yaml:"ca,omitempty"`
}

// Link is one overlay link: broker A dials broker B's listener of scheme
// Transport.
type Link struct {
	// ID is the link's UUID, lower case. When the file gives none, Parse
	// derives one from the link (see Parse), so that every process reading
	// the same file agrees on it.
	ID        string         `yaml:"id,omitempty"`
	A         router.Address `yaml:"a"`
	B         router.Address `yaml:"b"`
	Transport string         `yaml:"transport"` // tcp, tls, udp, ws, quic or mem
	// Emulate gives the link wide-area conditions on this machine: both
	// ends emulate them for the frames they send, so a delay of 45ms makes
	// a round trip of 90ms. See transports.Emulation.
	Emulate *transports.EmulationSpec `yaml:"emulate,omitempty"`
	// Rate paces what each end sends over the link (in bits a second, as
	// "1Mbit"): set to what the path can carry, it keeps a congested
	// link's queue in the broker, where priority classes are served,
	// rather than in the network's buffers. Unset, sending is not paced.
	Rate *transports.Quantity `yaml:"rate,omitempty"`
	// Monitor overrides the file's monitoring settings for this link.
	Monitor *Monitoring `yaml:"monitor,omitempty"`
}

// RateBits is the link's Rate in bits a second, 0 when unset. Parse has
// checked it.
func (l Link) RateBits() int64 {
	if l.Rate == nil {
		return 0
	}
	r, _ := l.Rate.Bandwidth("rate")
	return r
}

// Emulation returns the link's emulated conditions, or nil for a plain
// link. Parse has checked them.
func (l Link) Emulation() *transports.Emulation {
	if l.Emulate == nil {
		return nil
	}
	e, err := l.Emulate.Apply(transports.Emulation{})
	if err != nil {
		return nil
	}
	return &e
}

// Load reads and parses the topology file at path, then resolves the
// relative paths of tls files against the file's directory. It fails when
// the file cannot be read or Parse rejects it.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	f.TLS.resolve(dir)
	for i := range f.Aggregators {
		if c := f.Aggregators[i].Config; c != "" && !filepath.IsAbs(c) {
			f.Aggregators[i].Config = filepath.Join(dir, c)
		}
	}
	for i := range f.Brokers {
		f.Brokers[i].TLS.resolve(dir)
	}
	return f, nil
}

// Parse decodes and validates a topology file. It fails on a YAML syntax
// error (which names the line), on a field the format does not know, on
// more than one YAML document, and on every rule below; the error then
// joins one line per problem, each naming the broker or link and the field
// at fault, like
//
//	links[2] (na.cgl.c1.a -> na.x.y): b: unknown broker "na.x.y"
//
// The rules:
//   - at least one broker; every address valid and unique;
//   - listen URLs of a known scheme, at most one per scheme per broker;
//     host:port with an explicit port from 1 to 65535 except for
//     mem://name; a tls listener needs the broker's cert, key and ca;
//   - client and http required, leaf optional, all host:port;
//   - no port used twice on one host, TCP and UDP (udp, quic) counted
//     apart; a host
//     that is empty, 0.0.0.0 or :: clashes with every host; no mem name
//     used twice;
//   - links join two different known brokers with a known transport for
//     which b has a listener; a tls link needs a's cert, key and ca too;
//     a quic link needs them at both ends or at neither;
//   - link IDs are UUIDs and unique.
//
// On success Parse fills defaults: the name, each broker's tls files from
// the file's tls block, and each missing link ID with a version 5 UUID of
// "<a>|<b>|<transport>|<n>", n counting the earlier links with the same a,
// b and transport.
func Parse(data []byte) (*File, error) {
	f, err := decode(data)
	if err != nil {
		return nil, err
	}
	if f.Name == "" {
		f.Name = DefaultName
	}
	for i := range f.Brokers {
		f.Brokers[i].TLS = f.TLS.under(f.Brokers[i].TLS)
	}
	if err := validate(f); err != nil {
		return nil, err
	}
	return f, nil
}

// decode reads the single YAML document of data, strictly.
func decode(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file: want a mapping with brokers and links")
		}
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, fmt.Errorf("line %d: a second YAML document; a topology file holds one", next.Line)
	case !errors.Is(err, io.EOF):
		return nil, err
	}
	return &f, nil
}

// Broker returns the broker with address addr, and false when there is
// none.
func (f *File) Broker(addr router.Address) (*Broker, bool) {
	for i := range f.Brokers {
		if f.Brokers[i].Address == addr {
			return &f.Brokers[i], true
		}
	}
	return nil, false
}

// LinksOf returns the links of which broker addr is a or b, in file order.
func (f *File) LinksOf(addr router.Address) []Link {
	var out []Link
	for _, l := range f.Links {
		if l.A == addr || l.B == addr {
			out = append(out, l)
		}
	}
	return out
}

// ListenURL returns b's listener of the given scheme, and false when b has
// none.
func (b Broker) ListenURL(scheme string) (string, bool) {
	for _, u := range b.Listen {
		if s, _, ok := strings.Cut(u, "://"); ok && s == scheme {
			return u, true
		}
	}
	return "", false
}

// DialURL returns the URL that a dials for l: b's listener of scheme
// l.Transport, as written (a wildcard host is dialed as such). It fails
// when f has no broker l.B or it has no such listener, which Parse rules
// out.
func (l Link) DialURL(f *File) (string, error) {
	b, ok := f.Broker(l.B)
	if !ok {
		return "", fmt.Errorf("link %s (%s -> %s): unknown broker %q", l.ID, l.A, l.B, l.B)
	}
	u, ok := b.ListenURL(l.Transport)
	if !ok {
		return "", fmt.Errorf("link %s (%s -> %s): broker %s has no %s listener", l.ID, l.A, l.B, l.B, l.Transport)
	}
	return u, nil
}

// under returns own with its empty fields filled from the defaults t; nil
// when both are nil. The result is a fresh copy.
func (t *TLSFiles) under(own *TLSFiles) *TLSFiles {
	if t == nil && own == nil {
		return nil
	}
	var out TLSFiles
	if own != nil {
		out = *own
	}
	if t != nil {
		out.Cert = cmp.Or(out.Cert, t.Cert)
		out.Key = cmp.Or(out.Key, t.Key)
		out.CA = cmp.Or(out.CA, t.CA)
	}
	return &out
}

// missing lists the fields of t that are empty; "" when none is.
func (t *TLSFiles) missing() string {
	if t == nil {
		return "cert, key, ca"
	}
	var miss []string
	for _, f := range []struct{ name, path string }{{"cert", t.Cert}, {"key", t.Key}, {"ca", t.CA}} {
		if f.path == "" {
			miss = append(miss, f.name)
		}
	}
	return strings.Join(miss, ", ")
}

// resolve makes t's relative paths relative to dir.
func (t *TLSFiles) resolve(dir string) {
	if t == nil {
		return
	}
	for _, p := range []*string{&t.Cert, &t.Key, &t.CA} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
