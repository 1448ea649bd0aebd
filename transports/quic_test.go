package transports

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// The conformance suites cover quic as a Conn; these tests cover what only
// quic does: datagrams, its certificates and the emulation of its packets.

func datagramConn(t testing.TB, c Conn) DatagramConn {
	t.Helper()
	dc, ok := c.(DatagramConn)
	if !ok {
		t.Fatalf("%T is not a DatagramConn", c)
	}
	return dc
}

// receiveDatagram calls ReceiveDatagram once with a time limit.
func receiveDatagram(t testing.TB, c DatagramConn) received {
	t.Helper()
	return receiveBy(t, "ReceiveDatagram", c.ReceiveDatagram)
}

// TestQUICDatagrams: datagrams go both ways beside frames and never come
// out of Receive; an oversized one is refused with the link still up; the
// ends of the link end ReceiveDatagram.
func TestQUICDatagrams(t *testing.T) {
	l := newLink(t, "quic", testConfig(t))
	client, server := datagramConn(t, l.client), datagramConn(t, l.server)
	for _, dir := range []struct{ from, to DatagramConn }{{client, server}, {server, client}} {
		before := time.Now()
		if _, err := dir.from.SendDatagram([]byte("probe")); err != nil {
			t.Fatalf("SendDatagram: %v", err)
		}
		send(t, dir.from, []byte("frame"))
		receiveData(t, dir.to, []byte("frame"))
		r := receiveDatagram(t, dir.to)
		if r.err != nil || string(r.data) != "probe" {
			t.Fatalf("ReceiveDatagram: %q, %v; want \"probe\"", r.data, r.err)
		}
		if r.at.Before(before) || r.at.After(time.Now()) {
			t.Fatalf("Received = %v, want between %v and now", r.at, before)
		}
	}

	if _, err := client.SendDatagram(make([]byte, 64<<10)); !errors.Is(err, ErrDatagramTooLarge) {
		t.Fatalf("SendDatagram of 64 KiB: got %v, want ErrDatagramTooLarge", err)
	}
	if _, err := client.SendDatagram([]byte("still up")); err != nil {
		t.Fatalf("SendDatagram after an oversized one: %v", err)
	}
	if r := receiveDatagram(t, server); r.err != nil || string(r.data) != "still up" {
		t.Fatalf("ReceiveDatagram: %q, %v", r.data, r.err)
	}

	pending := make(chan error, 1)
	go func() {
		_, err := server.ReceiveDatagram()
		pending <- err
	}()
	time.Sleep(20 * time.Millisecond) // let ReceiveDatagram block
	if err := l.client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := client.SendDatagram([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SendDatagram after Close: got %v, want net.ErrClosed", err)
	}
	if r := receiveDatagram(t, client); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("ReceiveDatagram after Close: got %v, want net.ErrClosed", r.err)
	}
	if r := receive(t, l.server); !errors.Is(r.err, io.EOF) {
		t.Fatalf("peer Receive after Close: got %v, want io.EOF", r.err)
	}
	select {
	case err := <-pending:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("peer ReceiveDatagram after Close: got %v, want io.EOF", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("the peer's blocked ReceiveDatagram did not end")
	}
}

// TestQUICCertificates: quic runs TLS 1.3 with the configured certificates
// when both ends have them and with ephemeral ones when neither has; any
// mismatch makes Dial fail.
func TestQUICCertificates(t *testing.T) {
	withTLS := testConfig(t)
	ephemeral := withTLS
	ephemeral.TLS = nil
	stranger := withTLS
	stranger.TLS = otherCA(t)
	tests := []struct {
		name             string
		listener, dialer Config
		ok               bool
	}{
		{"both configured", withTLS, withTLS, true},
		{"both ephemeral", ephemeral, ephemeral, true},
		{"ephemeral listener, verifying dialer", ephemeral, withTLS, false},
		{"configured listener, dialer without a certificate", withTLS, ephemeral, false},
		{"certificates from another CA", withTLS, stranger, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := Listen("quic://127.0.0.1:0", tt.listener)
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			defer ln.Close()
			c, err := Dial(context.Background(), ln.URL(), tt.dialer)
			if !tt.ok {
				if err == nil {
					c.Close()
					t.Fatalf("Dial succeeded")
				}
				t.Logf("Dial: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			s := accept(t, ln)
			defer s.Close()
			state := c.(*quicConn).link.qc.ConnectionState().TLS
			if state.Version != tls.VersionTLS13 || state.NegotiatedProtocol != quicALPN {
				t.Fatalf("TLS version %x, protocol %q; want TLS 1.3 and %q", state.Version, state.NegotiatedProtocol, quicALPN)
			}
			send(t, c, []byte("hi"))
			receiveData(t, s, []byte("hi"))
		})
	}
}

// TestQUICPacketEmulation: with 2% of its packets lost and 20 ms of delay
// each way, a quic link still delivers every frame in order, while its
// datagrams meet the loss and the delay as they are.
func TestQUICPacketEmulation(t *testing.T) {
	const (
		delay            = 20 * time.Millisecond
		loss             = 0.02
		frames, datagram = 2000, 2000
		every            = time.Millisecond
	)
	l := newLink(t, "quic", testConfig(t))
	if late := l.client.(LatenessReporter).HandOffLateness(); late != nil {
		t.Fatalf("hand-off lateness %v before any emulation", late)
	}
	for i, c := range []Conn{l.client, l.server} {
		e := Emulation{Delay: delay, Loss: loss, Seed: int64(i + 1)}
		if err := c.(PacketEmulator).EmulatePackets(e); err != nil {
			t.Fatalf("EmulatePackets: %v", err)
		}
	}
	arrivals := collect(l.server)
	delays := make(chan []time.Duration, 1)
	sdc := datagramConn(t, l.server)
	go func() { delays <- datagramDelays(sdc) }()

	dc := datagramConn(t, l.client)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range max(frames, datagram) {
		<-tick.C
		if i < frames {
			send(t, l.client, indexed(i, 200))
		}
		if i < datagram {
			b := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
			if _, err := dc.SendDatagram(b); err != nil {
				t.Fatalf("SendDatagram %d: %v", i, err)
			}
		}
	}
	checkInOrder(t, take(t, arrivals, frames))
	// The packets under them were handed on by the emulation's
	// scheduler, never before they were due.
	if late := l.client.(LatenessReporter).HandOffLateness(); len(late) != LatenessSamples || slices.Min(late) < 0 {
		t.Errorf("hand-off lateness of %d packets (min %v), want the latest %d, none early", len(late), slices.Min(append(late, 0)), LatenessSamples)
	}
	time.Sleep(10 * delay) // the last datagrams land
	l.server.Close()
	got := <-delays

	lost := 1 - float64(len(got))/datagram
	slices.Sort(got)
	median := got[len(got)/2]
	t.Logf("datagrams: %d of %d arrived (%.2f%% lost), one-way delay median %v, max %v",
		len(got), datagram, 100*lost, median, got[len(got)-1])
	// 2000 datagrams: the standard error of 2% loss is 0.3 points.
	if lost < 0.005 || lost > 0.04 {
		t.Errorf("datagram loss %.2f%%, want about %.0f%%", 100*lost, 100*loss)
	}
	// Timer lateness and quic-go's own work come on top of the emulated
	// delay; see quic_socket.go.
	if median < delay || median > delay+3*time.Millisecond {
		t.Errorf("datagram delay median %v, want about %v", median, delay)
	}
}

// datagramDelays receives datagrams stamped with their send time until c
// closes, and returns their one-way delays.
func datagramDelays(c DatagramConn) []time.Duration {
	var out []time.Duration
	for {
		f, err := c.ReceiveDatagram()
		if err != nil {
			return out
		}
		if len(f.Data) == 8 {
			out = append(out, f.Received.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(f.Data)))))
		}
	}
}

// TestQUICEmulationPerPeer: a listener's socket emulates each accepted
// link on its own, and an outage is repaired by QUIC once it ends.
func TestQUICEmulationPerPeer(t *testing.T) {
	cfg := testConfig(t)
	ln, err := Listen("quic://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	var clients, servers []Conn
	for range 2 {
		c, err := Dial(context.Background(), ln.URL(), cfg)
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		clients = append(clients, c)
		s := accept(t, ln)
		defer s.Close()
		servers = append(servers, s)
	}
	down := servers[0].(PacketEmulator)
	if err := down.EmulatePackets(Emulation{Down: true}); err != nil {
		t.Fatalf("EmulatePackets: %v", err)
	}
	send(t, servers[0], []byte("held"))
	send(t, servers[1], []byte("plain"))
	receiveData(t, clients[1], []byte("plain"))
	held := make(chan received, 1)
	go func() {
		f, err := clients[0].Receive()
		held <- received{data: bytes.Clone(f.Data), err: err}
	}()
	select {
	case r := <-held:
		t.Fatalf("a frame crossed an outage: %q, %v", r.data, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := down.EmulatePackets(Emulation{}); err != nil {
		t.Fatalf("EmulatePackets: %v", err)
	}
	select {
	case r := <-held:
		if r.err != nil || string(r.data) != "held" {
			t.Fatalf("after the outage: %q, %v; want \"held\"", r.data, r.err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("the frame sent during the outage did not arrive after it")
	}
}

// FuzzQUICPacketHeader feeds arbitrary packets to the socket's header
// parser. It must not panic; a packet without the marker comes back whole,
// and no packet that QUIC version 1 can send has the marker; a marked one
// loses exactly its header, with a lateness within 0..maxLateness, and a
// header encodes back to itself. Seeds are in
// testdata/fuzz/FuzzQUICPacketHeader.
func FuzzQUICPacketHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		packet, late, tag, ok := stripPacketHeader(data)
		if !ok {
			if !bytes.Equal(packet, in) {
				t.Fatalf("unmarked packet %x came back as %x", in, packet)
			}
			if len(in) >= packetHeader && in[0] == emulatedPacketMarker {
				t.Fatalf("marked packet %x not recognised", in)
			}
			return
		}
		if in[0]&0x40 != 0 {
			t.Fatalf("packet %x has QUIC's fixed bit, yet was taken for a marked one", in)
		}
		if !bytes.Equal(packet, in[packetHeader:]) {
			t.Fatalf("packet %x, want %x", packet, in[packetHeader:])
		}
		if late < 0 || late > maxLateness {
			t.Fatalf("lateness %v outside 0..%v", late, maxLateness)
		}
		if late > 0 && late < maxLateness {
			if hdr := packetHeaderOf(late, tag); !bytes.Equal(hdr, in[:packetHeader]) {
				t.Fatalf("lateness %v and datagram %d encode as %x, parsed from %x", late, tag, hdr, in[:packetHeader])
			}
		}
	})
}

// packetHeaderOf is the header an emulated packet sent late by late with
// datagram tag goes out behind.
func packetHeaderOf(late time.Duration, tag uint32) []byte {
	hdr := make([]byte, EmulationOverhead, packetHeader)
	putEmulationHeader(hdr, late)
	hdr[0] = emulatedPacketMarker
	return binary.BigEndian.AppendUint32(hdr, tag)
}

// TestQUICSocketArrivals: the socket takes an emulated packet's header off
// before quic-go sees it and notes its arrival less the sender's lateness,
// under the number of the datagram it carries; a plain packet arrives as
// it is; a stranger's packets are noted nowhere.
func TestQUICSocketArrivals(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := newQUICSocket(pc.(*net.UDPConn), false)
	defer sock.Close()
	from, stranger := rawPeer(t), rawPeer(t)
	peer := sock.watch(from.LocalAddr())
	const late = 5 * time.Millisecond
	buf := make([]byte, 1500)
	var numbered time.Time
	for _, tt := range []struct {
		name   string
		from   net.PacketConn
		packet []byte
		want   []byte
		late   time.Duration
		noted  bool
	}{
		{"emulated, datagram 7", from, append(packetHeaderOf(late, 7), "quic"...), []byte("quic"), late, true},
		{"emulated, no datagram", from, append(packetHeaderOf(2*late, 0), "ack"...), []byte("ack"), 2 * late, true},
		{"plain", from, []byte{0x43, 1, 2, 3}, []byte{0x43, 1, 2, 3}, 0, true},
		{"stranger", stranger, append(packetHeaderOf(late, 1), "quic"...), []byte("quic"), late, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			if _, err := tt.from.WriteTo(tt.packet, sock.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			n, addr, err := sock.ReadFrom(buf)
			after := time.Now()
			if err != nil || !bytes.Equal(buf[:n], tt.want) || addr.String() != tt.from.LocalAddr().String() {
				t.Fatalf("ReadFrom: %x from %v, %v; want %x from %v", buf[:n], addr, err, tt.want, tt.from.LocalAddr())
			}
			if !tt.noted {
				if p := sock.peer(tt.from.LocalAddr()); p != nil {
					t.Fatalf("a stranger's packet left state behind: %+v", p)
				}
				return
			}
			at := peer.arrival(0)
			if at.Before(before.Add(-tt.late)) || at.After(after.Add(-tt.late)) {
				t.Fatalf("arrival %v, want between %v and %v", at, before.Add(-tt.late), after.Add(-tt.late))
			}
			if numbered.IsZero() {
				numbered = at
			}
		})
	}
	if got := peer.arrival(7); !got.Equal(numbered) {
		t.Fatalf("arrival of datagram 7: %v, want that of its packet, %v", got, numbered)
	}
}

func rawPeer(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}
