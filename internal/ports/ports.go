// Package ports finds free loopback ports for networks that a process
// builds for itself (benchmarks, tests), where the port of a listener must
// be written into another broker's configuration before it starts.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// Ports are picked below the kernel's ephemeral range (32768 and up on
// Linux), where outgoing connections take their local ports, so that a
// port found free is not taken by a connection before it is bound.
const (
	low  = 20000
	high = 32000
)

var given struct {
	sync.Mutex
	m map[int]bool
}

// Free returns a loopback port that is free for both TCP and UDP and that
// this process has not handed out before.
func Free() (int, error) {
	given.Lock()
	defer given.Unlock()
	if given.m == nil {
		given.m = map[int]bool{}
	}
	for range 1000 {
		p := low + rand.IntN(high-low)
		if given.m[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		given.m[p] = true
		return p, nil
	}
	return 0, errors.New("no free loopback port")
}

// FreeAddr is Free as a "127.0.0.1:port" address.
func FreeAddr() (string, error) {
	p, err := Free()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}
