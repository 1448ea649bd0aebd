package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Ports handed out by FreePort are picked below the kernel's ephemeral
// range (32768 and up on Linux), where outgoing connections take their
// local ports, so that a port found free is not taken by a connection
// before the test binds it.
const (
	portLow  = 20000
	portHigh = 32000
)

var given struct {
	sync.Mutex
	m map[int]bool
}

// FreePort returns a loopback port that is free for both TCP and UDP and
// that no other caller in this process has been given.
func FreePort(t testing.TB) int {
	t.Helper()
	given.Lock()
	defer given.Unlock()
	if given.m == nil {
		given.m = map[int]bool{}
	}
	for range 1000 {
		p := portLow + rand.IntN(portHigh-portLow)
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
		return p
	}
	t.Fatal("no free port")
	return 0
}
