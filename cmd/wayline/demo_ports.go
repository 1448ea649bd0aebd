package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"syscall"

	"github.com/wayline/wayline/internal/ports"
	"github.com/wayline/wayline/topology"
)

// A demo runs on the ports its topology names, which another demo (or
// any program) may hold. --port-offset moves every port by a number, and
// --free-ports has free ones chosen; either way the demo prints where
// everything is.

// remapPorts moves every port of f (overlay listeners, client, HTTP and
// leaf ports, the aggregators' HTTP) through move. A port written twice
// (tcp and udp listeners on 7101) moves to one new port.
func remapPorts(f *topology.File, move func(int) (int, error)) error {
	moved := map[int]int{}
	hostPort := func(hp string) (string, error) {
		if hp == "" {
			return "", nil
		}
		host, p, err := net.SplitHostPort(hp)
		if err != nil {
			return "", err
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", fmt.Errorf("port of %s: %w", hp, err)
		}
		to, ok := moved[n]
		if !ok {
			if to, err = move(n); err != nil {
				return "", err
			}
			moved[n] = to
		}
		return net.JoinHostPort(host, strconv.Itoa(to)), nil
	}
	var err error
	for i := range f.Brokers {
		b := &f.Brokers[i]
		for k, l := range b.Listen {
			u, perr := url.Parse(l)
			if perr != nil || u.Port() == "" { // mem://name has no port
				continue
			}
			if u.Host, err = hostPort(u.Host); err != nil {
				return fmt.Errorf("broker %s: listen %s: %w", b.Address, l, err)
			}
			b.Listen[k] = u.String()
		}
		for _, hp := range []*string{&b.Client, &b.HTTP, &b.Leaf} {
			if *hp, err = hostPort(*hp); err != nil {
				return fmt.Errorf("broker %s: %w", b.Address, err)
			}
		}
	}
	for i := range f.Aggregators {
		if f.Aggregators[i].HTTP, err = hostPort(f.Aggregators[i].HTTP); err != nil {
			return fmt.Errorf("aggregator %s: %w", f.Aggregators[i].Domain, err)
		}
	}
	return nil
}

// offsetPorts moves every port of f by n.
func offsetPorts(f *topology.File, n int) error {
	return remapPorts(f, func(p int) (int, error) {
		if q := p + n; q >= 1 && q <= 65535 {
			return q, nil
		}
		return 0, fmt.Errorf("port %d moved by %d is outside 1..65535", p, n)
	})
}

// freePortsFor gives every port of f a free loopback port, free for both TCP
// and UDP (see package ports).
func freePortsFor(f *topology.File) error {
	return remapPorts(f, func(int) (int, error) { return ports.Free() })
}

// portHint adds to an error of a port in use what to do about it.
func portHint(err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w\nAnother program holds a port of this network, perhaps another demo: run this one with --port-offset 10000, or with --free-ports to have free ports chosen and printed", err)
	}
	return err
}
