package transports

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestMemNames(t *testing.T) {
	cfg := testConfig(t)
	ln, err := Listen("mem://broker-a", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if _, err := Listen("mem://broker-a", cfg); err == nil {
		t.Fatalf("second Listen on the same name succeeded")
	}
	if _, err := Dial(context.Background(), "mem://broker-b", cfg); err == nil {
		t.Fatalf("Dial to a name nobody listens on succeeded")
	}
	if _, err := Listen("mem://", cfg); err == nil {
		t.Fatalf("Listen without a name succeeded")
	}
	ln.Close()
	if _, err := Dial(context.Background(), "mem://broker-a", cfg); err == nil {
		t.Fatalf("Dial after Listener.Close succeeded")
	}
	again, err := Listen("mem://broker-a", cfg)
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	again.Close()
}

// TestMemBackpressure: a full link blocks Send, and Close releases it.
func TestMemBackpressure(t *testing.T) {
	l := newLink(t, "mem", testConfig(t))
	for range memDepth {
		send(t, l.client, []byte("x"))
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.client.Send([]byte("one too many"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Send on a full link returned %v, want it to block", err)
	case <-time.After(50 * time.Millisecond):
	}
	l.client.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Send after Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Close did not unblock Send")
	}
}

// TestMemCopiesFrames: the sender may reuse its buffer at once.
func TestMemCopiesFrames(t *testing.T) {
	l := newLink(t, "mem", testConfig(t))
	buf := []byte("first")
	send(t, l.client, buf)
	copy(buf, "XXXXX")
	receiveData(t, l.server, []byte("first"))
}
