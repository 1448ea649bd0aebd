package transports

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The bounds here are generous, for a busy machine under the race detector;
// BenchmarkEmulatedDelayAccuracy reports the exact figures.

// TestEmulatedDelay: the receiver measures 20 ms over real transports to
// within a millisecond on average, because Received is corrected by the
// sender's lateness, and no frame is ever early.
func TestEmulatedDelay(t *testing.T) {
	const n, delay = 100, 20 * time.Millisecond
	for _, scheme := range []string{"mem", "udp", "tcp"} {
		t.Run(scheme, func(t *testing.T) {
			client, server := emulatedLink(t, scheme, Emulation{Delay: delay})
			recv := collect(server)
			sent := make([]time.Time, n)
			for i := range sent {
				sent[i] = send(t, client, indexed(i, 64))
				time.Sleep(time.Millisecond)
			}
			got := drain(recv, 500*time.Millisecond)
			if len(got) < n*9/10 || (scheme != "udp" && len(got) != n) {
				t.Fatalf("received %d of %d frames", len(got), n)
			}
			var total time.Duration
			for _, a := range got {
				d := a.at.Sub(sent[a.index])
				if d < delay {
					t.Errorf("frame %d after %v, earlier than the delay %v", a.index, d, delay)
				}
				total += d
			}
			mean := total / time.Duration(len(got))
			t.Logf("mean measured delay %v over %d frames", mean, len(got))
			if mean < delay || mean > delay+time.Millisecond {
				t.Errorf("mean measured delay %v, want %v within 1ms", mean, delay)
			}
		})
	}
}

// TestEmulatedLatenessCompensation sends bursts over a link without transit
// time: the physical hand-off is never before the due time, and the
// corrected Received is the due time within timer-free precision. The
// sender reports the lateness of its latest hand-offs, those the frames
// carried.
func TestEmulatedLatenessCompensation(t *testing.T) {
	const n, delay = 600, 5 * time.Millisecond
	a, b := fakeLink(true)
	client := mustEmulate(t, a, Emulation{Delay: delay})
	if got := client.HandOffLateness(); len(got) != 0 {
		t.Fatalf("lateness before any hand-off: %v", got)
	}
	carried := make([]time.Duration, n)
	sent := make([]time.Time, n)
	for i := range sent {
		sent[i] = send(t, client, indexed(i, 16))
	}
	var physical, corrected time.Duration
	for range n {
		f, err := b.Receive()
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		payload, late, ok := stripEmulationHeader(f.Data)
		if !ok {
			t.Fatalf("frame without header: %x", f.Data)
		}
		i := binary.BigEndian.Uint32(payload)
		carried[i] = late
		due := sent[i].Add(delay)
		if f.Received.Before(due) {
			t.Fatalf("handed off %v before its due time", due.Sub(f.Received))
		}
		physical += f.Received.Sub(due)
		corrected += f.Received.Add(-late).Sub(due)
	}
	physical /= n
	corrected /= n
	t.Logf("mean lateness: physical %v, after correction %v", physical, corrected)
	reported := client.HandOffLateness()
	latest := carried[n-LatenessSamples:]
	slices.Sort(reported)
	slices.Sort(latest)
	if !slices.Equal(reported, latest) {
		t.Errorf("reported lateness of %d hand-offs is not that the latest %d frames carried", len(reported), len(latest))
	}
	if corrected > 300*time.Microsecond {
		t.Errorf("corrected lateness %v, want under 0.3ms", corrected)
	}
}

// TestEmulatedHandOffOnTime: frames sent apart, as probes and steady
// traffic are, are handed off close to their due time, not when a Go
// timer would wake (up to a millisecond late, half of one in the median).
// The bound is generous for a busy machine; the lateness is typically
// 30-70 µs.
func TestEmulatedHandOffOnTime(t *testing.T) {
	const n = 100
	a, b := fakeLink(true)
	client := mustEmulate(t, a, Emulation{Delay: 10 * time.Millisecond, Jitter: 3 * time.Millisecond})
	go func() {
		for i := range n {
			if _, err := client.Send(indexed(i, 16)); err != nil {
				return
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	late := make([]time.Duration, 0, n)
	for range n {
		f, err := b.Receive()
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		_, d, ok := stripEmulationHeader(f.Data)
		if !ok {
			t.Fatalf("frame without header: %x", f.Data)
		}
		late = append(late, d)
	}
	slices.Sort(late)
	t.Logf("hand-off lateness: p50 %v, p90 %v", late[n/2], late[n*9/10])
	if late[n/2] > 400*time.Microsecond {
		t.Errorf("median hand-off lateness %v, want under 0.4 ms", late[n/2])
	}
}

// TestEmulatedReliableLoss: a reliable link with 30% loss loses nothing and
// keeps order; some frames come one RTO late.
func TestEmulatedReliableLoss(t *testing.T) {
	const n = 40
	em := Emulation{Delay: 2 * time.Millisecond, Loss: 0.3, Seed: 7}
	for _, scheme := range []string{"mem", "tcp", "fake-reliable"} {
		t.Run(scheme, func(t *testing.T) {
			client, server := emulatedLink(t, scheme, em)
			recv := collect(server)
			sent := make([]time.Time, n)
			for i := range sent {
				sent[i] = send(t, client, indexed(i, 100))
			}
			got := take(t, recv, n)
			checkInOrder(t, got)
			var latest time.Duration
			for _, a := range got {
				latest = max(latest, a.at.Sub(sent[a.index]))
			}
			if rto := em.rto(); latest < rto {
				t.Errorf("latest frame after %v, want at least one RTO (%v)", latest, rto)
			}
			s := settle(t, client)
			if s.Lost != 0 || s.Retransmitted == 0 || s.Delivered != n {
				t.Errorf("stats %+v: want nothing lost, some retransmitted, %d delivered", s, n)
			}
		})
	}
}

// TestEmulatedUnreliableLossAndDuplicates: on an unreliable link the loss
// model drops and Duplicate sends twice, and the stats say how often.
func TestEmulatedUnreliableLossAndDuplicates(t *testing.T) {
	const n = 200
	tests := []struct {
		name   string
		scheme string
		em     Emulation
	}{
		{"loss fake", "fake", Emulation{Loss: 0.3, Seed: 3}},
		{"loss udp", "udp", Emulation{Loss: 0.3, Seed: 3}},
		{"gilbert fake", "fake", Emulation{LossModel: LossGilbert, GE: GilbertElliott{P: 0.1, R: 0.3, LossBad: 1}, Seed: 3}},
		{"duplicate fake", "fake", Emulation{Duplicate: 0.25, Seed: 4}},
		{"duplicate udp", "udp", Emulation{Duplicate: 0.25, Seed: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := emulatedLink(t, tt.scheme, tt.em)
			recv := collect(server)
			for i := range n {
				send(t, client, indexed(i, 32))
			}
			s := settle(t, client)
			got := drain(recv, 200*time.Millisecond)
			want := n - int(s.Lost) + int(s.Duplicated)
			if s.Sent != n || s.Delivered != uint64(want) {
				t.Fatalf("stats %+v: want %d sent, %d delivered", s, n, want)
			}
			wantRate := tt.em.Expect().Loss
			if rate := float64(s.Lost) / n; rate < wantRate*0.6 || rate > wantRate*1.4 {
				t.Errorf("lost %d of %d, want about %.0f%%", s.Lost, n, wantRate*100)
			}
			if tt.em.Duplicate > 0 && (s.Duplicated < n/10 || s.Duplicated > n*4/10) {
				t.Errorf("duplicated %d of %d, want about 25%%", s.Duplicated, n)
			}
			slack := 0
			if tt.scheme == "udp" {
				slack = 2 // the loopback may drop a datagram too
			}
			if len(got) > want || len(got) < want-slack {
				t.Errorf("received %d frames, want %d", len(got), want)
			}
		})
	}
}

// TestEmulatedJitterOrder: jitter reorders an unreliable link, never a
// reliable one; Reorder holds frames back on an unreliable link only.
func TestEmulatedJitterOrder(t *testing.T) {
	const n = 100
	jitter := Emulation{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterDist: JitterNormal, Seed: 5}
	reorder := Emulation{Reorder: 0.2, ReorderDelay: 30 * time.Millisecond, Seed: 6}
	tests := []struct {
		name      string
		scheme    string
		em        Emulation
		reordered bool
	}{
		{"jitter unreliable", "fake", jitter, true},
		{"jitter reliable", "fake-reliable", jitter, false},
		{"jitter mem", "mem", jitter, false},
		{"reorder unreliable", "fake", reorder, true},
		{"reorder reliable", "fake-reliable", reorder, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := emulatedLink(t, tt.scheme, tt.em)
			recv := collect(server)
			for i := range n {
				send(t, client, indexed(i, 32))
				time.Sleep(200 * time.Microsecond)
			}
			got := take(t, recv, n)
			o := overtaken(got)
			s := client.Stats()
			t.Logf("%d frames overtaken, %d reordered", o, s.Reordered)
			if !tt.reordered {
				checkInOrder(t, got)
				if s.Reordered != 0 {
					t.Errorf("a reliable link counts %d reordered frames", s.Reordered)
				}
				return
			}
			if o == 0 {
				t.Errorf("no frame overtaken: %v", indices(got))
			}
			if tt.em.Reorder > 0 && (s.Reordered == 0 || uint64(o) > s.Reordered) {
				t.Errorf("%d frames overtaken, %d held back", o, s.Reordered)
			}
		})
	}
}

// TestEmulatedBurstSharesDelay: frames sent back to back on a reliable
// link meet one delay, as packets written together meet the same queues.
// With a draw each, the frames of a burst would arrive when the slowest
// draw came (they keep their order), and a burst that a stall upstream
// released would pay that on every later hop: 10 ms + 1.4 standard
// deviations of the jitter for bursts of 8, against 10 ms for a lone
// frame.
func TestEmulatedBurstSharesDelay(t *testing.T) {
	const bursts, size = 40, 8
	em := Emulation{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterDist: JitterNormal, Seed: 11}
	client, server := emulatedLink(t, "fake-reliable", em)
	recv := collect(server)
	sent := make([]time.Time, bursts)
	for i := range bursts {
		for j := range size {
			at := send(t, client, indexed(i*size+j, 32))
			if j == 0 {
				sent[i] = at
			}
		}
		time.Sleep(60 * time.Millisecond) // past the jitter of the burst before
	}
	got := take(t, recv, bursts*size)
	checkInOrder(t, got)
	var total time.Duration
	for _, a := range got {
		if a.index%size == size-1 {
			total += a.at.Sub(sent[a.index/size])
		}
	}
	mean := total / bursts
	t.Logf("a burst's last frame after %v on average", mean)
	if mean > em.Delay+3*time.Millisecond {
		t.Errorf("a burst's last frame after %v on average, want about %v: the burst's frames drew delays of their own", mean, em.Delay)
	}
}

// TestEmulatedDown: Down drops (unreliable) or holds (reliable) what is
// sent; taking it away brings traffic back, with held frames first.
func TestEmulatedDown(t *testing.T) {
	for _, scheme := range []string{"fake", "udp", "fake-reliable", "tcp"} {
		t.Run(scheme, func(t *testing.T) {
			client, server := emulatedLink(t, scheme, Emulation{})
			reliable := client.Info().Reliable
			recv := collect(server)
			mustSetEmulation(t, client, Emulation{Delay: time.Millisecond, Down: true})
			for i := range 5 {
				send(t, client, indexed(i, 32))
			}
			if got := drain(recv, 100*time.Millisecond); len(got) != 0 {
				t.Fatalf("received %v while down", indices(got))
			}
			s := client.Stats()
			if !s.Down || (reliable && s.Pending != 5) || (!reliable && s.OutageDrops != 5) {
				t.Fatalf("stats while down: %+v", s)
			}
			mustSetEmulation(t, client, Emulation{Delay: time.Millisecond})
			send(t, client, indexed(5, 32))
			if reliable {
				checkInOrder(t, take(t, recv, 6))
			} else if got := take(t, recv, 1); got[0].index != 5 {
				t.Fatalf("received frame %d, want 5", got[0].index)
			}
			if client.Stats().Down {
				t.Errorf("Stats().Down after the outage")
			}
		})
	}
}

// TestEmulatedScheduledOutage: frames sent between Start and
// Start+Duration are dropped (unreliable) or delivered after the end
// (reliable), and frames sent outside pass.
func TestEmulatedScheduledOutage(t *testing.T) {
	const start, length, step, n = 60 * time.Millisecond, 80 * time.Millisecond, 4 * time.Millisecond, 50
	margin := 5 * time.Millisecond
	for _, scheme := range []string{"fake", "fake-reliable"} {
		t.Run(scheme, func(t *testing.T) {
			client, server := emulatedLink(t, scheme, Emulation{})
			recv := collect(server)
			before := time.Now()
			mustSetEmulation(t, client, Emulation{Outages: []Outage{{Start: start, Duration: length}}})
			after := time.Now()
			sent := make([]time.Time, n)
			for i := range sent {
				sent[i] = send(t, client, indexed(i, 32))
				time.Sleep(step)
			}
			settle(t, client)
			got := drain(recv, 100*time.Millisecond)
			arrived := make(map[int]time.Time)
			for _, a := range got {
				arrived[a.index] = a.at
			}
			end := before.Add(start + length)
			for i, at := range sent {
				surelyIn := at.Sub(after) >= start && at.Sub(before) < start+length
				surelyOut := at.Sub(before) < start-margin || at.Sub(after) >= start+length+margin
				when, ok := arrived[i]
				switch {
				case surelyOut && !ok:
					t.Errorf("frame %d sent %v after the start was lost", i, at.Sub(before))
				case surelyIn && ok && !client.reliable:
					t.Errorf("frame %d sent %v after the start, during the outage, arrived", i, at.Sub(before))
				case surelyIn && ok && when.Before(end):
					t.Errorf("frame %d arrived %v before the outage ended", i, end.Sub(when))
				case surelyIn && !ok && client.reliable:
					t.Errorf("frame %d lost on a reliable link", i)
				}
			}
			if client.reliable {
				checkInOrder(t, got)
			}
		})
	}
}

// TestEmulatedOutageHold: on a reliable link, Send blocks once more than
// QueueLimit bytes are held, and the end of the outage releases it.
func TestEmulatedOutageHold(t *testing.T) {
	client, server := emulatedLink(t, "fake-reliable", Emulation{Down: true, QueueLimit: 100})
	recv := collect(server)
	send(t, client, indexed(0, 60))
	blocked := make(chan error, 1)
	go func() {
		_, err := client.Send(indexed(1, 60))
		blocked <- err
	}()
	select {
	case err := <-blocked:
		t.Fatalf("Send over the hold limit returned %v, want it to block", err)
	case <-time.After(50 * time.Millisecond):
	}
	mustSetEmulation(t, client, Emulation{QueueLimit: 100})
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("the end of the outage did not release Send")
	}
	checkInOrder(t, take(t, recv, 2))
}

// TestEmulatedBandwidth: frames queue behind a bandwidth cap; a full queue
// drops (unreliable) or blocks Send (reliable).
func TestEmulatedBandwidth(t *testing.T) {
	const n, size = 10, 12500
	t.Run("1 Mbit/s", func(t *testing.T) {
		client, server := emulatedLink(t, "mem", Emulation{Bandwidth: 1e6})
		recv := collect(server)
		start := time.Now()
		for i := range n {
			send(t, client, indexed(i, size))
		}
		got := take(t, recv, n)
		checkInOrder(t, got)
		if d := got[n-1].at.Sub(start); d < 800*time.Millisecond || d > 1600*time.Millisecond {
			t.Errorf("%d frames of %d bytes took %v at 1 Mbit/s, want about 1s", n, size, d)
		}
	})
	full := Emulation{Bandwidth: 10e6, QueueLimit: 4 * size}
	t.Run("queue drops", func(t *testing.T) {
		client, _ := emulatedLink(t, "fake", full)
		for i := range n {
			send(t, client, indexed(i, size))
		}
		if s := client.Stats(); s.QueueDrops < 4 || s.QueueDrops > 6 {
			t.Errorf("stats %+v: want about 6 queue drops", s)
		}
	})
	t.Run("queue blocks", func(t *testing.T) {
		client, server := emulatedLink(t, "fake-reliable", full)
		recv := collect(server)
		start := time.Now()
		for i := range n {
			send(t, client, indexed(i, size))
		}
		// 6 frames wait for room, 10 ms each at 10 Mbit/s.
		if d := time.Since(start); d < 45*time.Millisecond || d > time.Second {
			t.Errorf("Sends took %v, want about 60ms of blocking", d)
		}
		checkInOrder(t, take(t, recv, n))
	})
}

// TestEmulatedConcurrentChanges changes the emulation while several
// goroutines send and another reads the stats, for the race detector; a
// reliable link still delivers every frame in each sender's order.
func TestEmulatedConcurrentChanges(t *testing.T) {
	const senders, perSender = 4, 200
	changes := []Emulation{
		{Delay: time.Millisecond, Jitter: time.Millisecond},
		{Loss: 0.01, Duplicate: 0.1, Reorder: 0.1},
		{Bandwidth: 50e6, QueueLimit: 4096},
		{Down: true},
		{Outages: []Outage{{Duration: time.Millisecond, Every: 2 * time.Millisecond}}},
		{JitterDist: JitterPareto, Jitter: 100 * time.Microsecond},
	}
	for _, scheme := range []string{"fake", "mem"} {
		t.Run(scheme, func(t *testing.T) {
			before := runtime.NumGoroutine()
			client, server := emulatedLink(t, scheme, Emulation{})
			recv := collect(server)
			stop := make(chan struct{})
			var changer sync.WaitGroup
			changer.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					if err := client.SetEmulation(changes[i%len(changes)]); err != nil {
						t.Errorf("SetEmulation: %v", err)
					}
					_, _ = client.Stats(), client.Emulation()
				}
			})
			var wg sync.WaitGroup
			for s := range senders {
				wg.Go(func() {
					for seq := range perSender {
						if _, err := client.Send(indexed(s<<16|seq, 16)); err != nil {
							t.Errorf("Send: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(stop)
			changer.Wait()
			mustSetEmulation(t, client, Emulation{})
			settle(t, client)
			got := drain(recv, 100*time.Millisecond)
			if client.Info().Reliable {
				checkSenderOrder(t, got, senders, perSender)
			}
			client.Close()
			server.Close()
			checkGoroutines(t, before)
		})
	}
}

// checkSenderOrder checks that every sender's frames all arrived, in order.
func checkSenderOrder(t *testing.T, got []arrival, senders, perSender int) {
	t.Helper()
	next := make([]int, senders)
	for _, a := range got {
		s, seq := a.index>>16, a.index&0xffff
		if seq != next[s] {
			t.Fatalf("sender %d: frame %d arrived, want %d", s, seq, next[s])
		}
		next[s]++
	}
	for s, n := range next {
		if n != perSender {
			t.Errorf("sender %d: %d of %d frames arrived", s, n, perSender)
		}
	}
}

// TestEmulatedSendFailure: an inner conn that fails under the scheduler
// makes the next Send and Receive report it, and closes the link.
func TestEmulatedSendFailure(t *testing.T) {
	before := runtime.NumGoroutine()
	a, _ := fakeLink(false)
	a.failAfter.Store(3)
	client, err := Emulate(a, Emulation{})
	if err != nil {
		t.Fatalf("Emulate: %v", err)
	}
	deadline := time.Now().Add(waitLimit)
	for i := 0; ; i++ {
		_, err := client.Send(indexed(i, 8))
		if errors.Is(err, errFakeBroken) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Send %d: got %v, want the inner failure", i, err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := client.Receive(); !errors.Is(err, errFakeBroken) {
		t.Fatalf("Receive: got %v, want the inner failure", err)
	}
	if err := client.Close(); err != nil {
		t.Errorf("Close after a failure: %v", err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: got %v, want net.ErrClosed", err)
	}
	checkGoroutines(t, before)
}

// TestEmulatedUnknownLimit: over a conn whose frame limit Emulate cannot
// learn, an oversized frame is counted when the inner conn refuses it, and
// the link stays up.
func TestEmulatedUnknownLimit(t *testing.T) {
	a, b := fakeLink(true)
	a.limit = 100
	client := mustEmulate(t, a, Emulation{})
	server := mustEmulate(t, b, Emulation{})
	recv := collect(server)
	send(t, client, indexed(0, 200))
	send(t, client, indexed(1, 50))
	if got := take(t, recv, 1); got[0].index != 1 {
		t.Fatalf("received frame %d, want 1", got[0].index)
	}
	if s := settle(t, client); s.Oversized != 1 || s.Delivered != 1 {
		t.Errorf("stats %+v: want 1 oversized, 1 delivered", s)
	}
}

// TestEmulatedSeed: the same seed gives the same fates.
func TestEmulatedSeed(t *testing.T) {
	em := Emulation{Loss: 0.3, Duplicate: 0.2, Reorder: 0.1, Seed: 42}
	var runs [2][]int
	for r := range runs {
		a, b := fakeLink(false)
		client := mustEmulate(t, a, em)
		for i := range 300 {
			send(t, client, indexed(i, 8))
		}
		settle(t, client)
		for len(b.in) > 0 {
			f := <-b.in
			runs[r] = append(runs[r], int(binary.BigEndian.Uint32(f.Data[EmulationOverhead:])))
		}
	}
	count := func(xs []int) map[int]int {
		m := make(map[int]int)
		for _, x := range xs {
			m[x]++
		}
		return m
	}
	c0, c1 := count(runs[0]), count(runs[1])
	if len(runs[0]) != len(runs[1]) || len(c0) != len(c1) {
		t.Fatalf("runs delivered %d and %d frames", len(runs[0]), len(runs[1]))
	}
	for i, n := range c0 {
		if c1[i] != n {
			t.Fatalf("frame %d delivered %d and %d times", i, n, c1[i])
		}
	}
}

// TestEmulatedPeerClosed: when a frame cannot be delivered because the peer
// closed, Receive still returns what the peer sent before closing, then
// io.EOF, as on a plain link; Send reports the closed peer.
func TestEmulatedPeerClosed(t *testing.T) {
	client, server := emulatedLink(t, "mem", Emulation{})
	mustSetEmulation(t, server, Emulation{Delay: 20 * time.Millisecond})
	send(t, server, []byte("too late"))
	send(t, client, []byte("bye"))
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	settle(t, server)
	if _, err := server.Send([]byte("x")); !errors.Is(err, errPeerClosed) {
		t.Errorf("Send after the peer closed: got %v, want errPeerClosed", err)
	}
	receiveData(t, server, []byte("bye"))
	if r := receive(t, server); !errors.Is(r.err, io.EOF) {
		t.Fatalf("Receive after the peer's last frame: got %v, want io.EOF", r.err)
	}
}
