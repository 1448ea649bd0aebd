package testutil

import (
	"net"
	"testing"
	"time"
)

// ClosedWithin opens a TCP connection to addr that sends nothing, or with
// trickle one byte every 300 ms, and fails t unless the server closes it
// within limit. It waits for the close, and is safe to call from several
// goroutines at once.
func ClosedWithin(t testing.TB, addr string, trickle bool, limit time.Duration) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("%s: %v", addr, err)
		return
	}
	defer c.Close()
	start := time.Now()
	if trickle {
		go func() {
			for range int(limit/(300*time.Millisecond)) + 20 {
				if _, err := c.Write([]byte("G")); err != nil {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		}()
	}
	c.SetReadDeadline(start.Add(limit + 5*time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if d := time.Since(start); d > limit {
				t.Errorf("%s (trickling %v): closed after %v, over %v: %v", addr, trickle, d, limit, err)
			}
			return
		}
	}
}
