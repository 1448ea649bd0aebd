package overlay

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/internal/testutil"
	"github.com/wayline/wayline/transports"
)

// TestSessionClasses: on a link capped in bandwidth, with its send queue
// full of low-class messages, high-class ones get in by evicting the
// newest low ones (counted by class), overtake those queued before them,
// and every class arrives in its own order with nothing else lost; the
// acknowledgements then free everything the sender kept. (On udp the
// capped link drops frames as a router would, so it is left out.)
func TestSessionClasses(t *testing.T) {
	for _, scheme := range []string{"mem", "tcp"} {
		t.Run(scheme, func(t *testing.T) {
			ca, cb := connPair(t, listenURL(t, scheme))
			cfg := testConfig(&Counters{})
			cfg.QueueBytes = 64 << 10
			a := start(t, ca, cfg)
			b := start(t, cb, testConfig(&Counters{}))
			if err := a.s.Emulate(transports.Emulation{Bandwidth: 4_000_000, QueueLimit: 4 << 10}); err != nil {
				t.Fatal(err)
			}
			pad := strings.Repeat("x", 1000)
			send := func(c sendq.Class, tag string, i int) bool {
				var k sendq.Kicker
				m := &Message{Origin: []byte("na.a"), Seq: uint64(i), Subject: []byte("s"), Class: c, Data: []byte(fmt.Sprintf("%s%04d%s", tag, i, pad))}
				ok, _ := a.s.Send(c, func(b []byte) []byte { return AppendMsg(b, m, 5, nil) }, &k)
				k.Flush()
				return ok
			}
			var lows []string
			for i := 0; ; i++ {
				if !send(sendq.Low, "l", i) {
					break
				}
				lows = append(lows, fmt.Sprintf("l%04d", i))
			}
			const highs = 10
			for i := range highs {
				if !send(sendq.High, "h", i) {
					t.Fatalf("high %d refused at a queue full of low", i)
				}
			}
			evicted := a.c.Drops.ByClass()["low"]["send_queue_full"]
			if evicted == 0 || a.c.Drops.ByClass()["high"]["send_queue_full"] != 0 {
				t.Fatalf("drops by class %v", a.c.Drops.ByClass())
			}
			// The newest low ones made room.
			lows = lows[:len(lows)-int(evicted)]
			testutil.WaitFor(t, "every high at b", 10*time.Second, func() bool {
				msgs, _, _, _ := b.h.got()
				return slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, fmt.Sprintf("h%04d", highs-1)) })
			})
			msgs, _, _, _ := b.h.got()
			if n := len(msgs) - highs; n > len(lows)/2 {
				t.Fatalf("%d of %d low messages arrived before the last high one", n, len(lows))
			}
			testutil.WaitFor(t, "every message at b", 20*time.Second, func() bool {
				msgs, _, _, _ := b.h.got()
				return len(msgs) == len(lows)+highs
			})
			msgs, _, _, _ = b.h.got()
			var gotLow, gotHigh []string
			for _, m := range msgs {
				if m[0] == 'l' {
					gotLow = append(gotLow, m[:5])
				} else {
					gotHigh = append(gotHigh, m[:5])
				}
			}
			if !slices.Equal(gotLow, lows) || len(gotHigh) != highs || !slices.IsSorted(gotHigh) {
				t.Fatalf("low %v\nhigh %v", gotLow, gotHigh)
			}
			testutil.WaitFor(t, "acknowledgements to free what a kept", 5*time.Second, func() bool { return a.s.kept.held() == 0 })
			if recs := a.s.Unacknowledged(); len(recs) != 0 {
				t.Fatalf("%d records unacknowledged after every acknowledgement", CountRecords(recs))
			}
		})
	}
}
