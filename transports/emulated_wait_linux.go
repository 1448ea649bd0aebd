package transports

import (
	"syscall"
	"time"
)

// napFor blocks the calling goroutine's thread in nanosleep for d. The
// kernel's high-resolution timers wake it within tens of microseconds,
// where a Go timer rounds its wait up to whole milliseconds (the runtime
// waits in epoll with a millisecond timeout).
func napFor(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
