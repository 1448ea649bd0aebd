package transports

import (
	"net"
	"net/netip"
	"time"
)

// stampedReader reads datagrams with their arrival: the kernel's receive
// timestamp where the kernel gives one (SO_TIMESTAMPNS on Linux), the
// moment the read returned otherwise. A reader goroutine of a busy process
// may wake a millisecond after its packet came in; the kernel's stamp
// leaves that wait out of the delay the monitor measures, as it is the
// host's and not the link's.
type stampedReader struct {
	sock   *net.UDPConn
	stamps bool             // the kernel stamps each packet's arrival
	oob    [stampSpace]byte // for the stamp; one goroutine reads at a time
}

func newStampedReader(sock *net.UDPConn) *stampedReader {
	return &stampedReader{sock: sock, stamps: enableStamps(sock)}
}

// read reads one datagram into b and returns its size, sender and arrival.
func (r *stampedReader) read(b []byte) (int, netip.AddrPort, time.Time, error) {
	if !r.stamps {
		n, from, err := r.sock.ReadFromUDPAddrPort(b)
		return n, from, time.Now(), err
	}
	n, oobn, _, from, err := r.sock.ReadMsgUDPAddrPort(b, r.oob[:])
	if err != nil {
		return n, from, time.Time{}, err
	}
	at := kernelStamp(r.oob[:oobn])
	if at.IsZero() {
		at = time.Now()
	}
	return n, from, at, nil
}
