package transports

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// Kernel receive timestamps for udp and quic sockets (SO_TIMESTAMPNS): the time
// a packet reached the socket, before any goroutine woke up to read it.

// stampSpace is room for the control message that carries the timestamp.
const stampSpace = 64

// enableStamps asks the kernel to stamp every packet c receives; it
// reports whether it will.
func enableStamps(c *net.UDPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// kernelStamp returns the receive time in the control messages of one
// read, or zero when they hold none.
func kernelStamp(oob []byte) time.Time {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		var ts syscall.Timespec
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_TIMESTAMPNS || len(m.Data) < int(unsafe.Sizeof(ts)) {
			continue
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)), m.Data)
		return time.Unix(ts.Unix())
	}
	return time.Time{}
}
