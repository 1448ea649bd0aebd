package broker

import (
	"net"
	"sync"
)

// admission bounds the connections of one listener that have not proven
// themselves yet (a link in its handshake, a leaf that has not signed in):
// in all, and per remote host, so that one host holding silent
// connections cannot take every place. A connection without a place is
// closed at once; one that holds a place gives it back when it has proven
// itself or gone.
type admission struct {
	total, perHost int

	mu    sync.Mutex
	n     int
	hosts map[string]int
}

// Places of one listener: in all, and per remote host.
const (
	maxUnproven        = 64
	maxUnprovenPerHost = 8
)

func newAdmission() *admission {
	return &admission{total: maxUnproven, perHost: maxUnprovenPerHost, hosts: make(map[string]int)}
}

// enter takes a place for a connection from remote (host:port), and
// returns the function that gives it back (once, whatever the calls), or
// false when there is none.
func (a *admission) enter(remote string) (leave func(), ok bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n >= a.total || a.hosts[host] >= a.perHost {
		return nil, false
	}
	a.n++
	a.hosts[host]++
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.n--
			if a.hosts[host]--; a.hosts[host] == 0 {
				delete(a.hosts, host)
			}
		})
	}, true
}
