package transports

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestEmulatedConformance runs the Conn contract over every transport with
// both ends emulated: a zero Emulation must be indistinguishable from the
// plain transport, apart from the frame limit and FrameHint.
func TestEmulatedConformance(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, scheme string)
	}{
		{"frames both ways in order", testEmulatedOrder},
		{"empty frame", testEmulatedEmptyFrame},
		{"frame limit", testEmulatedFrameLimit},
		{"info", testEmulatedInfo},
		{"received timestamps", testEmulatedTimestamps},
		{"close", testEmulatedClose},
		{"close delivers what was sent", testEmulatedCloseLinger},
	}
	for _, scheme := range Schemes {
		t.Run(scheme, func(t *testing.T) {
			before := runtime.NumGoroutine()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, scheme) })
			}
			checkGoroutines(t, before)
		})
	}
}

func testEmulatedOrder(t *testing.T, scheme string) {
	client, server := emulatedLink(t, scheme, Emulation{})
	for _, dir := range []struct{ from, to *EmulatedConn }{{client, server}, {server, client}} {
		frames := make([][]byte, 20)
		for i := range frames {
			frames[i] = randomBytes(1 + i*100)
			send(t, dir.from, frames[i])
		}
		for _, want := range frames {
			receiveData(t, dir.to, want)
		}
	}
}

func testEmulatedEmptyFrame(t *testing.T, scheme string) {
	client, server := emulatedLink(t, scheme, Emulation{})
	send(t, client, nil)
	send(t, client, []byte("after"))
	receiveData(t, server, nil)
	receiveData(t, server, []byte("after"))
}

func testEmulatedFrameLimit(t *testing.T, scheme string) {
	client, server := emulatedLink(t, scheme, Emulation{})
	limit := testMaxFrame - EmulationOverhead
	big := randomBytes(limit)
	send(t, client, big)
	receiveData(t, server, big)
	if _, err := client.Send(randomBytes(limit + 1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Send of limit+1 bytes: got %v, want ErrFrameTooLarge", err)
	}
	send(t, client, []byte("still up"))
	receiveData(t, server, []byte("still up"))

	nested := mustEmulate(t, client, Emulation{})
	if _, err := nested.Send(randomBytes(limit - EmulationOverhead + 1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("nested emulation: got %v, want ErrFrameTooLarge", err)
	}
}

func testEmulatedInfo(t *testing.T, scheme string) {
	client, server := emulatedLink(t, scheme, Emulation{})
	for _, c := range []*EmulatedConn{client, server} {
		got, inner := c.Info(), c.Inner().Info()
		want := inner
		if inner.FrameHint > 0 {
			want.FrameHint -= EmulationOverhead
		}
		if got != want {
			t.Errorf("Info() = %+v, want %+v", got, want)
		}
		if got.Scheme != scheme {
			t.Errorf("Scheme = %q, want %q", got.Scheme, scheme)
		}
	}
}

func testEmulatedTimestamps(t *testing.T, scheme string) {
	client, server := emulatedLink(t, scheme, Emulation{})
	for i := range 10 {
		before := time.Now()
		send(t, client, []byte{byte(i)})
		r := receiveData(t, server, []byte{byte(i)})
		if r.at.Before(before) || r.at.After(time.Now()) {
			t.Fatalf("Received = %v, want between %v and now", r.at, before)
		}
	}
}

func testEmulatedClose(t *testing.T, scheme string) {
	client, server := emulatedLink(t, scheme, Emulation{})
	send(t, client, []byte("last words"))
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	receiveData(t, server, []byte("last words"))
	if r := receive(t, server); !errors.Is(r.err, io.EOF) {
		t.Fatalf("peer Receive after Close: got %v, want io.EOF", r.err)
	}
	if _, err := client.Send([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close: got %v, want net.ErrClosed", err)
	}
	if r := receive(t, client); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Receive after Close: got %v, want net.ErrClosed", r.err)
	}
	if err := client.SetEmulation(Emulation{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetEmulation after Close: got %v, want net.ErrClosed", err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: got %v, want net.ErrClosed", err)
	}
}

// testEmulatedCloseLinger: frames still in the emulated network when Close
// is called arrive before the peer sees the end, as data written to a
// socket does.
func testEmulatedCloseLinger(t *testing.T, scheme string) {
	client, server := emulatedLink(t, scheme, Emulation{Delay: 30 * time.Millisecond})
	for i := range 3 {
		send(t, client, []byte(fmt.Sprint(i)))
	}
	start := time.Now()
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > closeLinger {
		t.Errorf("Close took %v", d)
	}
	for i := range 3 {
		receiveData(t, server, []byte(fmt.Sprint(i)))
	}
	if r := receive(t, server); !errors.Is(r.err, io.EOF) {
		t.Fatalf("peer Receive after the lingering frames: got %v, want io.EOF", r.err)
	}
}

// BenchmarkEmulatedSend measures Send and delivery over mem, with the
// emulation passing frames through and with a delay to schedule.
func BenchmarkEmulatedSend(b *testing.B) {
	for _, bc := range []struct {
		name string
		em   Emulation
	}{
		{"passthrough", Emulation{}},
		{"delay+jitter", Emulation{Delay: time.Millisecond, Jitter: 200 * time.Microsecond, JitterDist: JitterNormal}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client, server := emulatedLink(b, "mem", bc.em)
			frame := randomBytes(256)
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := server.Receive(); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := client.Send(frame); err != nil {
					b.Fatalf("Send: %v", err)
				}
			}
			if err := <-done; err != nil {
				b.Fatalf("Receive: %v", err)
			}
		})
	}
}

// BenchmarkEmulatedDelayAccuracy reports how far the measured delay is from
// the emulated one over mem, with and without the lateness correction:
// "corrected-us" is what a link monitor sees, "physical-us" when the frame
// really arrived.
func BenchmarkEmulatedDelayAccuracy(b *testing.B) {
	for _, delay := range []time.Duration{100 * time.Microsecond, time.Millisecond, 20 * time.Millisecond} {
		b.Run(delay.String(), func(b *testing.B) {
			a, peer := fakeLink(true)
			client := mustEmulate(b, a, Emulation{Delay: delay})
			var physical, corrected time.Duration
			for range b.N {
				sent := send(b, client, []byte{1})
				f, err := peer.Receive()
				if err != nil {
					b.Fatalf("Receive: %v", err)
				}
				_, late, _ := stripEmulationHeader(f.Data)
				physical += f.Received.Sub(sent) - delay
				corrected += f.Received.Add(-late).Sub(sent) - delay
			}
			b.ReportMetric(float64(physical.Nanoseconds())/1e3/float64(b.N), "physical-us")
			b.ReportMetric(float64(corrected.Nanoseconds())/1e3/float64(b.N), "corrected-us")
		})
	}
}
