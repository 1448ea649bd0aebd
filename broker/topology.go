package broker

import (
	"fmt"
	"os"

	"github.com/wayline/wayline/router"
	"github.com/wayline/wayline/topology"
	"github.com/wayline/wayline/transports"
)

// FromTopology builds the configuration of broker addr from a topology
// file: its listeners and ports, its links (dialing those where it is a),
// its TLS files, its admin token, network secret and leaf token (the
// environment's WAYLINE_ADMIN_TOKEN, WAYLINE_SECRET and WAYLINE_LEAF_TOKEN
// override the file's). Tunables keep their defaults.
func FromTopology(f *topology.File, addr router.Address) (Config, error) {
	tb, ok := f.Broker(addr)
	if !ok {
		known := make([]string, 0, len(f.Brokers))
		for _, b := range f.Brokers {
			known = append(known, string(b.Address))
		}
		return Config{}, fmt.Errorf("broker %s is not in topology %s (it has %v)", addr, f.Name, known)
	}
	cfg := Config{
		Address: string(tb.Address),
		Listen:  tb.Listen,
		Client:  tb.Client,
		HTTP:    tb.HTTP,
		Leaf:    tb.Leaf,
	}
	every, queued, queuedBytes, err := f.Reports.ReportSettings()
	if err != nil {
		return Config{}, err
	}
	cfg.Report = ReportConfig{Domain: tb.Domain, Interval: every, MaxQueued: queued, MaxQueuedBytes: queuedBytes}
	if f.Admin != nil {
		cfg.AdminToken = f.Admin.Token
	}
	if tok := os.Getenv("WAYLINE_ADMIN_TOKEN"); tok != "" {
		cfg.AdminToken = tok
	}
	cfg.Secret = f.Secret
	if sec := os.Getenv("WAYLINE_SECRET"); sec != "" {
		cfg.Secret = sec
	}
	cfg.LeafToken = f.LeafToken
	if tok := os.Getenv("WAYLINE_LEAF_TOKEN"); tok != "" {
		cfg.LeafToken = tok
	}
	mon, err := f.MonitorConfig(topology.Link{})
	if err != nil {
		return Config{}, fmt.Errorf("monitoring: %w", err)
	}
	cfg.Monitor = mon
	rs, err := f.Routing.Settings()
	if err != nil {
		return Config{}, fmt.Errorf("routing: %w", err)
	}
	cfg.Routing = Routing{Profiles: rs.Profiles, Priorities: rs.Priorities, Refresh: rs.Refresh, LossWindow: rs.LossWindow}
	cfg.Routing.Threshold, cfg.Routing.MinChange, cfg.Routing.HoldDown, cfg.Routing.Margin = rs.Threshold, rs.MinChange, rs.HoldDown, rs.Margin
	cfg.Routing.DelayShift = rs.DelayShift
	for _, sp := range rs.Subjects {
		cfg.Routing.Subjects = append(cfg.Routing.Subjects, SubjectProfile{Subject: sp.Subject, Profile: sp.Profile})
	}
	for _, c := range rs.Contracts {
		cfg.Routing.Contracts = append(cfg.Routing.Contracts, SubjectContract{Subject: c.Subject, Contract: c.Contract})
	}
	cfg.Routing.Queues = rs.Queues
	cfg.KnownLinks = make(map[string][2]string, len(f.Links))
	for _, l := range f.Links {
		cfg.KnownLinks[l.ID] = [2]string{string(l.A), string(l.B)}
	}
	if t := tb.TLS; t != nil && t.Cert != "" && t.Key != "" && t.CA != "" {
		tc, err := transports.LoadTLSConfig(t.Cert, t.Key, t.CA)
		if err != nil {
			return Config{}, fmt.Errorf("broker %s: tls: %w", addr, err)
		}
		cfg.Transport.TLS = tc
	}
	for _, l := range f.LinksOf(addr) {
		lc := LinkConfig{ID: l.ID, Transport: l.Transport, Emulation: l.Emulation(), Rate: l.RateBits()}
		if l.Monitor != nil {
			m, err := f.MonitorConfig(l)
			if err != nil {
				return Config{}, fmt.Errorf("link %s: monitor: %w", l.ID, err)
			}
			lc.Monitor = &m
		}
		if l.A == addr {
			u, err := l.DialURL(f)
			if err != nil {
				return Config{}, err
			}
			lc.Peer, lc.Dial = string(l.B), u
		} else {
			lc.Peer = string(l.A)
		}
		if l.Transport == "tls" && cfg.Transport.TLS == nil {
			return Config{}, fmt.Errorf("broker %s: link %s (%s -> %s) uses tls, but the broker has no tls files (cert, key, ca)", addr, l.ID, l.A, l.B)
		}
		cfg.Links = append(cfg.Links, lc)
	}
	return cfg, nil
}
