//go:build !linux

package transports

import "time"

// napFor sleeps for d. Elsewhere than on Linux it is a Go sleep, which may
// wake up to a millisecond late.
func napFor(d time.Duration) { time.Sleep(d) }
