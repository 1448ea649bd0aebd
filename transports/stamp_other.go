//go:build !linux

package transports

import (
	"net"
	"time"
)

// Elsewhere than on Linux udp and quic sockets take no kernel timestamps: a
// packet's arrival is when ReadFrom returns.

const stampSpace = 0

func enableStamps(*net.UDPConn) bool { return false }

func kernelStamp([]byte) time.Time { return time.Time{} }
