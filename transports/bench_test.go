package transports

import (
	"fmt"
	"testing"
)

// BenchmarkTCPFrames measures one-way tcp throughput at several frame sizes;
// the broker batches messages into frames of up to 64 KiB.
func BenchmarkTCPFrames(b *testing.B) {
	for _, size := range []int{256, 16 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchFrames(b, "tcp", size) })
	}
}

// BenchmarkTransports compares the reliable transports at 16 KiB frames.
func BenchmarkTransports(b *testing.B) {
	for _, scheme := range []string{"tcp", "tls", "ws", "mem"} {
		b.Run(scheme, func(b *testing.B) { benchFrames(b, scheme, 16<<10) })
	}
}

func benchFrames(b *testing.B, scheme string, size int) {
	cfg := testConfig(b)
	cfg.MaxFrame = DefaultMaxFrame
	l := newLink(b, scheme, cfg)
	frame := randomBytes(size)
	done := make(chan error, 1)
	go func() {
		for range b.N {
			if _, err := l.server.Receive(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := l.client.Send(frame); err != nil {
			b.Fatalf("Send: %v", err)
		}
	}
	if err := <-done; err != nil {
		b.Fatalf("Receive: %v", err)
	}
}
