package transports

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// napper waits for short stretches with the kernel's precision: a timerfd
// read through the Go runtime's poller, so that the goroutine parks (its
// P runs other goroutines meanwhile) and the poller wakes as soon as the
// kernel's high-resolution timer fires, within tens of microseconds. A Go
// timer rounds an idle wait up to whole milliseconds (the runtime waits in
// epoll with a millisecond timeout), and a nanosleep would keep its P
// from the other goroutines while it sleeps.
type napper struct {
	fd int
	f  *os.File // nil when no timerfd could be made: then naps are Go sleeps
}

func newNapper() *napper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &napper{fd: -1}
	}
	return &napper{fd: fd, f: os.NewFile(uintptr(fd), "emulation timer")}
}

// nap waits for d.
func (n *napper) nap(d time.Duration) {
	if d <= 0 {
		return
	}
	if n.f != nil {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		if unix.TimerfdSettime(n.fd, 0, &spec, nil) == nil {
			var expirations [8]byte
			if _, err := n.f.Read(expirations[:]); err == nil {
				return
			}
		}
	}
	time.Sleep(d)
}

func (n *napper) close() {
	if n.f != nil {
		n.f.Close()
	}
}
