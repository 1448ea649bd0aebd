package transports

import (
	"context"
	"fmt"
	"net"
	"net/url"
)

// tcpCopyMax is the largest frame that tcp copies behind its length prefix to
// make one write; above it writev of prefix and frame is cheaper than the copy.
const tcpCopyMax = 4 << 10

// dialTCP connects to tcp://host:port. Go sets TCP_NODELAY by default, which
// is what a link carrying latency probes wants: frames are already batched.
func dialTCP(ctx context.Context, u *url.URL, cfg Config) (Conn, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("tcp: missing host:port")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	return newStreamConn(nc, "tcp", cfg, tcpCopyMax), nil
}

// listenTCP binds tcp://host:port; port 0 picks a free port.
func listenTCP(u *url.URL, cfg Config) (Listener, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("tcp: missing host:port")
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	return newStreamListener(ln, "tcp", cfg, tcpCopyMax, nil), nil
}
