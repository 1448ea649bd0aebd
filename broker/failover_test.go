package broker

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/transports"
)

// TestFailoverWithoutLoss: a stream crosses a link that fails; what the
// link had not delivered is routed again over the other path, and every
// message arrives once, over tcp links and over udp links.
func TestFailoverWithoutLoss(t *testing.T) {
	for _, scheme := range []string{"tcp", "udp"} {
		t.Run(scheme, func(t *testing.T) {
			n := newTestNet(t, netSpec{
				brokers: []string{"x.a", "x.b", "x.c", "x.d"},
				links:   []string{"x.a-x.b:" + scheme, "x.b-x.d:" + scheme, "x.a-x.c:" + scheme, "x.c-x.d:" + scheme},
				tweak: linkEmulation(map[string]transports.Emulation{
					"x.a-x.b": {Delay: 5 * time.Millisecond}, "x.b-x.d": {Delay: 20 * time.Millisecond},
					"x.a-x.c": {Delay: 20 * time.Millisecond}, "x.c-x.d": {Delay: 20 * time.Millisecond},
				}),
			})
			a, b := n.brokers["x.a"], n.brokers["x.b"]
			waitPath(t, a, "default", "x.d", "x.a x.b x.d")
			var mu sync.Mutex
			var got []uint64
			sub := n.connect("x.d")
			sub.Subscribe("stream", func(m *nats.Msg) {
				mu.Lock()
				got = append(got, binary.BigEndian.Uint64(m.Data))
				mu.Unlock()
			})
			sub.Flush()
			n.waitInterest("x.a", "stream", "x.d")
			pub := n.connect("x.a")
			ctx, cancel := context.WithCancel(context.Background())
			var sent uint64
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(2 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						sent++
						pub.Publish("stream", binary.BigEndian.AppendUint64(nil, sent))
					}
				}
			}()
			time.Sleep(300 * time.Millisecond)
			// The link from b to d fails with messages on it.
			b.SetEmulation(linkOf(t, b, "x.d").ID, transports.EmulationSpec{Down: ptr(true)})
			waitPath(t, a, "default", "x.d", "x.a x.c x.d")
			time.Sleep(300 * time.Millisecond)
			cancel()
			<-done
			pub.Flush()
			waitFor(t, "the stream's last message", 10*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(got) > 0 && got[len(got)-1] == sent
			})
			mu.Lock()
			defer mu.Unlock()
			seen := map[uint64]int{}
			inversions := 0
			for i, s := range got {
				seen[s]++
				if i > 0 && s < got[i-1] {
					inversions++
				}
			}
			for s := uint64(1); s <= sent; s++ {
				if seen[s] != 1 {
					t.Errorf("message %d delivered %d times", s, seen[s])
				}
			}
			if r := b.Status().Rerouted; r == 0 {
				t.Errorf("nothing was routed again")
			}
			t.Logf("%d messages, %d out of order, %d routed again by x.b", sent, inversions, b.Status().Rerouted)
			if inversions > 2 {
				t.Errorf("%d messages out of order", inversions)
			}
		})
	}
}
