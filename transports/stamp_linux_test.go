package transports

import (
	"testing"
	"time"
)

// TestArrivalStamped: on Linux a datagram's Received is when the kernel
// took it in, not when a reader got round to it, on both ends of a udp
// link and for a quic link's datagrams: a datagram read 300 ms after it
// came still shows its arrival.
func TestArrivalStamped(t *testing.T) {
	const late = 300 * time.Millisecond
	check := func(t *testing.T, name string, sent time.Time, r received) {
		t.Helper()
		if r.err != nil || string(r.data) != "stamped" {
			t.Fatalf("%s: %q, %v", name, r.data, r.err)
		}
		if d := r.at.Sub(sent); d < -time.Millisecond || d > late/2 {
			t.Fatalf("%s: Received %v after the send, want its arrival, well before the read %v after", name, d, late)
		}
	}
	udp := newLink(t, "udp", testConfig(t))
	quic := newLink(t, "quic", testConfig(t))
	for _, dir := range []struct {
		name     string
		from, to Conn
	}{{"udp to the dialer", udp.server, udp.client}, {"udp to the listener", udp.client, udp.server}} {
		sent := send(t, dir.from, []byte("stamped"))
		time.Sleep(late)
		check(t, dir.name, sent, receive(t, dir.to))
	}
	for _, dir := range []struct {
		name     string
		from, to DatagramConn
	}{{"quic datagram to the dialer", datagramConn(t, quic.server), datagramConn(t, quic.client)}, {"quic datagram to the listener", datagramConn(t, quic.client), datagramConn(t, quic.server)}} {
		sent, err := dir.from.SendDatagram([]byte("stamped"))
		if err != nil {
			t.Fatalf("%s: SendDatagram: %v", dir.name, err)
		}
		time.Sleep(late)
		check(t, dir.name, sent, receiveDatagram(t, dir.to))
	}
}
