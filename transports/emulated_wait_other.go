//go:build !linux

package transports

import "time"

// napper waits for short stretches. Elsewhere than on Linux a nap is a Go
// sleep, which may wake up to a millisecond late.
type napper struct{}

func newNapper() *napper { return &napper{} }

func (*napper) nap(d time.Duration) { time.Sleep(d) }

func (*napper) close() {}
