// Package bench measures Wayline against plain NATS on this machine, side
// by side in one run, and reports ratios.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/internal/ports"
	"github.com/wayline/wayline/transports"
)

// system is one message path under test: publish at PubURL, subscribe at
// SubURL.
type system struct {
	name    string
	pubURL  string
	subURL  string
	dropped func() uint64 // messages the system itself counted as dropped
	close   func()
}

// freeAddr returns a loopback host:port that is free and not handed out
// before.
func freeAddr() (string, error) { return ports.FreeAddr() }

// chainNames are the brokers of the Wayline chain.
var chainNames = []string{"bench.c1.a", "bench.c1.b", "bench.c1.c"}

// waylineChain starts brokers A-B-C joined by tcp links, A dialing B and B
// dialing C, whose links are not authenticated (loopback); token, when not
// empty, is their admin token.
func waylineChain(ctx context.Context, log *slog.Logger, token string) (*system, error) {
	return waylineChainAuth(ctx, log, token, "")
}

// waylineChainAuth is waylineChain with its links authenticated: by the
// network secret "secret" over tcp, or by certificates over "tls"; "" for
// neither; "quic" runs the chain over quic links instead of tcp.
func waylineChainAuth(ctx context.Context, log *slog.Logger, token, auth string) (*system, error) {
	names := chainNames
	cfgs := make([]broker.Config, len(names))
	scheme, name := "tcp", "wayline A-B-C (tcp)"
	for i, n := range names {
		cfgs[i] = broker.Config{Address: n, Client: "127.0.0.1:0", Logger: log, AdminToken: token}
	}
	switch auth {
	case "secret":
		name = "wayline A-B-C (tcp, secret)"
		for i := range cfgs {
			cfgs[i].Secret = benchSecret
		}
	case "quic":
		scheme, name = "quic", "wayline A-B-C (quic)"
	case "tls":
		scheme, name = "tls", "wayline A-B-C (tls)"
	}
	if err := linkChain(cfgs, "00000000", func(int) (string, *transports.Emulation) { return scheme, nil }); err != nil {
		return nil, err
	}
	started, err := startAll(ctx, cfgs)
	if err != nil {
		return nil, err
	}
	stop := func() { closeBrokers(started) }
	deadline := time.Now().Add(10 * time.Second)
	for len(started[0].Routes()) != 2 {
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("wayline chain: routes did not converge")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &system{
		name:   name,
		pubURL: started[0].ClientURL(),
		subURL: started[2].ClientURL(),
		dropped: func() uint64 {
			n, _ := brokerDrops(started)
			return n
		},
		close: stop,
	}, nil
}

// linkChain joins the brokers of cfgs in a chain, each dialing the next
// over a link hop(i) describes (between cfgs[i-1] and cfgs[i]: its
// transport and emulated conditions), numbered under idPrefix. Brokers of
// a chain with a tls link get throwaway certificates.
func linkChain(cfgs []broker.Config, idPrefix string, hop func(i int) (string, *transports.Emulation)) error {
	names := make([]string, len(cfgs))
	for i, c := range cfgs {
		names[i] = c.Address
	}
	for i := 1; i < len(cfgs); i++ {
		scheme, em := hop(i)
		if scheme == "tls" && cfgs[0].Transport.TLS == nil {
			tc, err := throwawayTLS(names...)
			if err != nil {
				return err
			}
			for j := range cfgs {
				cfgs[j].Transport.TLS = tc
			}
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		u := scheme + "://" + addr
		if scheme == "ws" {
			u += "/overlay"
		}
		id := fmt.Sprintf("%s-0000-4000-8000-%012d", idPrefix, i)
		cfgs[i].Listen = append(cfgs[i].Listen, u)
		cfgs[i-1].Links = append(cfgs[i-1].Links, broker.LinkConfig{ID: id, Peer: names[i], Transport: scheme, Dial: u, Emulation: em})
		cfgs[i].Links = append(cfgs[i].Links, broker.LinkConfig{ID: id, Peer: names[i-1], Transport: scheme, Emulation: em})
	}
	return nil
}

// startAll starts the brokers of cfgs in order, and none if one fails.
func startAll(ctx context.Context, cfgs []broker.Config) ([]*broker.Broker, error) {
	var started []*broker.Broker
	for _, c := range cfgs {
		b, err := startBroker(ctx, c)
		if err != nil {
			closeBrokers(started)
			return nil, err
		}
		started = append(started, b)
	}
	return started, nil
}

// closeBrokers closes brokers, all at once.
func closeBrokers(bs []*broker.Broker) {
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(b.Close)
	}
	wg.Wait()
}

func startNATS(opts *server.Options) (*server.Server, error) {
	opts.NoSigs, opts.NoLog = true, true
	opts.Host = "127.0.0.1"
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server %s: %w", opts.ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server %s: not ready", opts.ServerName)
	}
	return s, nil
}

func shutdownAll(servers []*server.Server) {
	for _, s := range servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// natsLeafChain starts three nats-servers in a leafnode chain: s1 is a leaf
// of s2, s2 a leaf of s3. Messages published on s1 travel s1-s2-s3.
func natsLeafChain() (*system, error) {
	var servers []*server.Server
	fail := func(err error) (*system, error) {
		shutdownAll(servers)
		return nil, err
	}
	var hubURL *url.URL
	for i := 3; i >= 1; i-- {
		opts := &server.Options{ServerName: fmt.Sprintf("leaf-s%d", i)}
		var leafAddr string
		if i > 1 {
			a, err := freeAddr()
			if err != nil {
				return fail(err)
			}
			leafAddr = a
			_, port, _ := net.SplitHostPort(a)
			opts.LeafNode.Host = "127.0.0.1"
			fmt.Sscan(port, &opts.LeafNode.Port)
		}
		if hubURL != nil {
			opts.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{hubURL}}}
		}
		s, err := startNATS(opts)
		if err != nil {
			return fail(err)
		}
		servers = append(servers, s)
		if i > 1 {
			hubURL, _ = url.Parse("nats://" + leafAddr)
		}
	}
	for _, s := range servers[:2] {
		deadline := time.Now().Add(10 * time.Second)
		for s.NumLeafNodes() == 0 {
			if time.Now().After(deadline) {
				return fail(errors.New("nats leaf chain: leaves did not attach"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// servers[0] is s3 (the end hub), servers[2] is s1 (the first leaf).
	return &system{
		name:    "nats leafnode chain s1-s2-s3",
		pubURL:  servers[2].ClientURL(),
		subURL:  servers[0].ClientURL(),
		dropped: func() uint64 { return slowConsumerDrops(servers) },
		close:   func() { shutdownAll(servers) },
	}, nil
}

// natsCluster starts a 3-node NATS cluster; messages travel one route hop.
func natsCluster() (*system, error) {
	var servers []*server.Server
	fail := func(err error) (*system, error) {
		shutdownAll(servers)
		return nil, err
	}
	addrs := make([]string, 3)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	var routes []*url.URL
	for _, a := range addrs {
		u, _ := url.Parse("nats://" + a)
		routes = append(routes, u)
	}
	for i, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p := 0
		fmt.Sscan(port, &p)
		opts := &server.Options{ServerName: fmt.Sprintf("cluster-s%d", i+1), Routes: routes}
		opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = "bench", host, p
		s, err := startNATS(opts)
		if err != nil {
			return fail(err)
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		deadline := time.Now().Add(10 * time.Second)
		for s.NumRoutes() < 2 {
			if time.Now().After(deadline) {
				return fail(errors.New("nats cluster: routes did not form"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return &system{
		name:    "nats 3-node cluster",
		pubURL:  servers[0].ClientURL(),
		subURL:  servers[2].ClientURL(),
		dropped: func() uint64 { return slowConsumerDrops(servers) },
		close:   func() { shutdownAll(servers) },
	}, nil
}

// slowConsumerDrops is what nats-servers count as slow-consumer events:
// their only trace of messages they dropped.
func slowConsumerDrops(servers []*server.Server) uint64 {
	var n uint64
	for _, s := range servers {
		if v, err := s.Varz(nil); err == nil {
			n += uint64(v.SlowConsumers)
		}
	}
	return n
}
