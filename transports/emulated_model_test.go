package transports

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleStats are the figures a monitor would report for a set of delays.
type sampleStats struct {
	mean, std, meanDiff, median float64
}

// describe computes sampleStats; meanDiff is taken over consecutive pairs,
// as RFC 3550 interarrival jitter does.
func describe(xs []float64) sampleStats {
	var s sampleStats
	for _, x := range xs {
		s.mean += x
	}
	s.mean /= float64(len(xs))
	for i, x := range xs {
		s.std += (x - s.mean) * (x - s.mean)
		if i > 0 {
			s.meanDiff += math.Abs(x - xs[i-1])
		}
	}
	s.std = math.Sqrt(s.std / float64(len(xs)-1))
	s.meanDiff /= float64(len(xs) - 1)
	sorted := slices.Sorted(slices.Values(xs))
	s.median = sorted[len(sorted)/2]
	return s
}

func within(got, want, tolerance float64) bool {
	return math.Abs(got-want) <= tolerance*math.Abs(want)
}

// TestEmulatedJitterDraws draws the extra delay of each distribution and
// checks the samples against the definitions in Emulation and the figures
// of Expect, within 15%.
func TestEmulatedJitterDraws(t *testing.T) {
	const n, j = 20000, 5 * time.Millisecond
	tests := []struct {
		dist     string
		min, max time.Duration
		mean     float64 // of the extra delay, in Jitters
		median   float64 // in Jitters; 0 to skip
		checkStd bool    // pareto's sample std converges too slowly to test
	}{
		{"", -j, j, 0, 0, true},
		{JitterUniform, -j, j, 0, 0, true},
		{JitterNormal, -10 * j, 10 * j, 0, 0, true},
		{JitterPareto, 0, paretoCut * j, 1, math.Cbrt(2)*2 - 2, false},
	}
	for _, tt := range tests {
		t.Run("dist="+tt.dist, func(t *testing.T) {
			r := newRand(1)
			xs := make([]float64, n)
			for i := range xs {
				d := extraDelay(r, tt.dist, j)
				if d < tt.min || d > tt.max {
					t.Fatalf("draw %v outside [%v, %v]", d, tt.min, tt.max)
				}
				xs[i] = float64(d)
			}
			got := describe(xs)
			want := Emulation{Jitter: j, JitterDist: tt.dist}.Expect()
			t.Logf("mean %.3fms std %.3fms meanDiff %.3fms median %.3fms; want std %v meanDiff %v",
				got.mean/1e6, got.std/1e6, got.meanDiff/1e6, got.median/1e6, want.StdDev, want.MeanDiff)
			if math.Abs(got.mean-tt.mean*float64(j)) > 0.15*float64(j) {
				t.Errorf("mean %.3fms, want %.3fms", got.mean/1e6, tt.mean*float64(j)/1e6)
			}
			if float64(want.Delay) != tt.mean*float64(j) {
				t.Errorf("Expect().Delay = %v, want %v Jitter", want.Delay, tt.mean)
			}
			if tt.checkStd && !within(got.std, float64(want.StdDev), 0.15) {
				t.Errorf("std %.3fms, want %v", got.std/1e6, want.StdDev)
			}
			if !within(got.meanDiff, float64(want.MeanDiff), 0.15) {
				t.Errorf("mean difference %.3fms, want %v", got.meanDiff/1e6, want.MeanDiff)
			}
			if tt.median != 0 && !within(got.median, tt.median*float64(j), 0.15) {
				t.Errorf("median %.3fms, want %.3fms", got.median/1e6, tt.median*float64(j)/1e6)
			}
		})
	}
	if d := extraDelay(newRand(1), JitterNormal, 0); d != 0 {
		t.Errorf("zero jitter drew %v", d)
	}
}

// TestEmulatedIndependentLoss: the loss rate over 20k draws is the
// configured probability.
func TestEmulatedIndependentLoss(t *testing.T) {
	const n = 20000
	for _, p := range []float64{0, 0.01, 0.05, 0.3, 1} {
		r := newRand(2)
		lost := 0
		for range n {
			if chance(r, p) {
				lost++
			}
		}
		rate := float64(lost) / n
		if math.Abs(rate-p) > 0.15*p+0.002 {
			t.Errorf("p=%v: lost %v of the frames", p, rate)
		}
	}
}

// TestEmulatedGilbertElliott: losses come in bursts of 1/R frames on
// average, and the long-run rate is the stationary formula that Expect
// reports.
func TestEmulatedGilbertElliott(t *testing.T) {
	const n = 200000
	tests := []struct {
		name      string
		ge        GilbertElliott
		burst     float64 // mean run of consecutive losses; 0 to skip
		wantLoss  float64
		tolerance float64
	}{
		{"pure bursts", GilbertElliott{P: 0.02, R: 0.25, LossGood: 0, LossBad: 1}, 4, 0.02 / 0.27, 0.1},
		{"noisy states", GilbertElliott{P: 0.05, R: 0.3, LossGood: 0.01, LossBad: 0.6}, 0, (0.3*0.01 + 0.05*0.6) / 0.35, 0.1},
		{"never leaves good", GilbertElliott{LossGood: 0.1, LossBad: 1}, 0, 0.1, 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			em := Emulation{LossModel: LossGilbert, GE: tt.ge, Loss: 0.5} // Loss is ignored
			if got := em.Expect().Loss; !within(got, tt.wantLoss, 1e-9) {
				t.Fatalf("Expect().Loss = %v, want %v", got, tt.wantLoss)
			}
			r := newRand(3)
			var s gilbertState
			lost, bursts, run := 0, 0, 0
			for range n {
				if s.lose(r, tt.ge) {
					lost++
					run++
					continue
				}
				if run > 0 {
					bursts++
					run = 0
				}
			}
			rate := float64(lost) / n
			t.Logf("loss %.4f (want %.4f), %d bursts", rate, tt.wantLoss, bursts)
			if !within(rate, tt.wantLoss, tt.tolerance) {
				t.Errorf("loss rate %.4f, want %.4f", rate, tt.wantLoss)
			}
			if tt.burst != 0 && !within(float64(lost)/float64(bursts), tt.burst, 0.15) {
				t.Errorf("mean burst %.2f frames, want %.2f", float64(lost)/float64(bursts), tt.burst)
			}
		})
	}
}

// TestEmulatedOutageAt checks when scheduled outages hold, without sleeping.
func TestEmulatedOutageAt(t *testing.T) {
	epoch := time.Now()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	at := func(n int) time.Time { return epoch.Add(ms(n)) }
	once := []Outage{{Start: ms(100), Duration: ms(50)}}
	periodic := []Outage{{Start: ms(1000), Duration: ms(100), Every: ms(1000)}}
	chained := []Outage{{Start: ms(0), Duration: ms(100)}, {Start: ms(100), Duration: ms(100)}}
	tests := []struct {
		name    string
		em      Emulation
		t       int // ms after epoch
		down    bool
		endsAt  int // ms after epoch; -1 for an outage without end
		outages []Outage
	}{
		{name: "before", t: 99, outages: once},
		{name: "start", t: 100, down: true, endsAt: 150, outages: once},
		{name: "inside", t: 149, down: true, endsAt: 150, outages: once},
		{name: "end", t: 150, outages: once},
		{name: "periodic first", t: 1050, down: true, endsAt: 1100, outages: periodic},
		{name: "periodic later", t: 5099, down: true, endsAt: 5100, outages: periodic},
		{name: "periodic between", t: 5100, outages: periodic},
		{name: "chained", t: 50, down: true, endsAt: 200, outages: chained},
		{name: "down", em: Emulation{Down: true}, t: 0, down: true, endsAt: -1},
		{name: "none", t: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			em := tt.em
			em.Outages = tt.outages
			down, end := em.outageAt(epoch, at(tt.t))
			var want time.Time
			if tt.down && tt.endsAt >= 0 {
				want = at(tt.endsAt)
			}
			if down != tt.down || !end.Equal(want) {
				t.Errorf("outageAt(+%dms) = %v, %v; want %v, %v", tt.t, down, end.Sub(epoch), tt.down, want.Sub(epoch))
			}
		})
	}
}

func TestEmulationValidate(t *testing.T) {
	good := Emulation{
		Delay: 40 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterDist: JitterNormal,
		Loss: 0.02, Duplicate: 0.01, Reorder: 0.01, ReorderDelay: time.Millisecond,
		Outages:   []Outage{{Start: time.Second, Duration: time.Second, Every: time.Minute}},
		Bandwidth: 1e6, QueueLimit: 1 << 16, Seed: 1,
	}
	gilbert := Emulation{LossModel: LossGilbert, GE: GilbertElliott{P: 0.1, R: 0.5, LossBad: 1}}
	tests := []struct {
		name   string
		mutate func(e *Emulation)
		fields []string // named in the error; none means valid
	}{
		{"zero", func(e *Emulation) { *e = Emulation{} }, nil},
		{"good", func(e *Emulation) {}, nil},
		{"gilbert", func(e *Emulation) { *e = gilbert }, nil},
		{"negative delay", func(e *Emulation) { e.Delay = -1 }, []string{"Delay"}},
		{"huge jitter", func(e *Emulation) { e.Jitter = 2 * time.Hour }, []string{"Jitter"}},
		{"unknown dist", func(e *Emulation) { e.JitterDist = "gauss" }, []string{"JitterDist", "gauss"}},
		{"loss over 1", func(e *Emulation) { e.Loss = 1.5 }, []string{"Loss"}},
		{"loss NaN", func(e *Emulation) { e.Loss = math.NaN() }, []string{"Loss"}},
		{"unknown model", func(e *Emulation) { e.LossModel = "burst" }, []string{"LossModel"}},
		{"loss ignored with gilbert", func(e *Emulation) { *e = gilbert; e.Loss = 0.1 }, nil},
		{"GE ignored without gilbert", func(e *Emulation) { e.GE.P = 0.1 }, nil},
		{"bad GE", func(e *Emulation) { *e = gilbert; e.GE.P, e.GE.LossBad = 2, -1 }, []string{"GE.P", "GE.LossBad"}},
		{"bad GE without gilbert", func(e *Emulation) { e.GE.R = 1.5 }, []string{"GE.R"}},
		{"duplicate", func(e *Emulation) { e.Duplicate = -0.1 }, []string{"Duplicate"}},
		{"reorder", func(e *Emulation) { e.Reorder = 2 }, []string{"Reorder"}},
		{"reorder delay", func(e *Emulation) { e.ReorderDelay = -time.Second }, []string{"ReorderDelay"}},
		{"outage duration", func(e *Emulation) { e.Outages = []Outage{{Start: 1}} }, []string{"Outages[0].Duration"}},
		{"outage start", func(e *Emulation) { e.Outages = []Outage{{Start: -1, Duration: 1}} }, []string{"Outages[0].Start"}},
		{"outage every", func(e *Emulation) {
			e.Outages = append(e.Outages, Outage{Duration: time.Second, Every: time.Second})
		}, []string{"Outages[1].Every"}},
		{"bandwidth", func(e *Emulation) { e.Bandwidth = -1 }, []string{"Bandwidth"}},
		{"queue", func(e *Emulation) { e.QueueLimit = -1 }, []string{"QueueLimit"}},
		{"several", func(e *Emulation) { e.Delay, e.Loss = -1, 2 }, []string{"Delay", "Loss"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			e.Outages = slices.Clone(good.Outages)
			tt.mutate(&e)
			err := e.Validate()
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", e)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
		})
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1%", 0.01, true},
		{"0.01", 0.01, true},
		{"1.5%", 0.015, true},
		{" 2 % ", 0.02, true},
		{"100%", 1, true},
		{"0", 0, true},
		{"1", 1, true},
		{"", 0, false},
		{"%", 0, false},
		{"abc", 0, false},
		{"1.5", 0, false},
		{"101%", 0, false},
		{"-1%", 0, false},
		{"NaN", 0, false},
		{"inf%", 0, false},
	}
	for _, tt := range tests {
		got, err := ParsePercent(tt.in)
		if (err == nil) != tt.ok || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParsePercent(%q): error %q does not quote the input", tt.in, err)
		}
	}
}

func TestEmulationHeader(t *testing.T) {
	frame := func(late time.Duration, payload string) []byte {
		b := make([]byte, EmulationOverhead+len(payload))
		putEmulationHeader(b, late)
		copy(b[EmulationOverhead:], payload)
		return b
	}
	tests := []struct {
		name    string
		data    []byte
		payload string
		late    time.Duration
		ok      bool
	}{
		{"on time", frame(0, "hello"), "hello", 0, true},
		{"late", frame(1234*time.Microsecond, "x"), "x", 1234 * time.Microsecond, true},
		{"empty payload", frame(time.Millisecond, ""), "", time.Millisecond, true},
		{"negative clamps", frame(-time.Second, "x"), "x", 0, true},
		{"absurd clamps", frame(time.Hour, "x"), "x", maxLateness, true},
		{"plain", []byte("plain frame"), "plain frame", 0, false},
		{"short marker", []byte{emulationMarker, 1, 2}, "\xee\x01\x02", 0, false},
		{"empty", nil, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, late, ok := stripEmulationHeader(tt.data)
			if string(payload) != tt.payload || late != tt.late || ok != tt.ok {
				t.Errorf("strip(%x) = %q, %v, %v; want %q, %v, %v", tt.data, payload, late, ok, tt.payload, tt.late, tt.ok)
			}
		})
	}
}

// FuzzEmulatedHeader feeds arbitrary frames to the header parser. It must
// not panic; an unmarked frame comes back whole, a marked one loses exactly
// its header, the lateness stays within 0..maxLateness, and a lateness in
// range encodes back to the same header. Seeds are in
// testdata/fuzz/FuzzEmulatedHeader.
func FuzzEmulatedHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, late, ok := stripEmulationHeader(data)
		if !ok {
			if !bytes.Equal(payload, data) || len(payload) != len(data) {
				t.Fatalf("unmarked frame %x came back as %x", data, payload)
			}
			if len(data) >= EmulationOverhead && data[0] == emulationMarker {
				t.Fatalf("marked frame %x not recognised", data)
			}
			return
		}
		if len(data) < EmulationOverhead || data[0] != emulationMarker {
			t.Fatalf("frame %x taken for a marked one", data)
		}
		if !bytes.Equal(payload, data[EmulationOverhead:]) {
			t.Fatalf("payload %x, want %x", payload, data[EmulationOverhead:])
		}
		if late < 0 || late > maxLateness {
			t.Fatalf("lateness %v outside 0..%v", late, maxLateness)
		}
		if late > 0 && late < maxLateness {
			hdr := make([]byte, EmulationOverhead)
			putEmulationHeader(hdr, late)
			if !bytes.Equal(hdr, data[:EmulationOverhead]) {
				t.Fatalf("lateness %v encodes as %x, parsed from %x", late, hdr, data[:EmulationOverhead])
			}
		}
	})
}

// TestReliableModel: the model of a reliable link keeps the emulation's
// schedule: arrivals in order, a frame drawn as lost one RTO late, frames
// sent together meeting one delay, and a stall holding the frames behind
// it.
func TestReliableModel(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := rand.New(rand.NewPCG(3, 4))

	steady := Emulation{Delay: 10 * time.Millisecond}.Reliable(r)
	if got := steady.Send(t0).Sub(t0); got != 10*time.Millisecond {
		t.Errorf("no jitter, no loss: %v, want 10ms", got)
	}

	lossy := Emulation{Delay: 10 * time.Millisecond, Loss: 1}
	if got, want := lossy.Reliable(r).Send(t0).Sub(t0), 10*time.Millisecond+minRTO; got != want {
		t.Errorf("lost frame: %v, want %v (delay and one RTO)", got, want)
	}

	jittery := Emulation{Delay: 10 * time.Millisecond, Jitter: 3 * time.Millisecond}.Reliable(r)
	a := jittery.Send(t0)
	if b := jittery.Send(t0.Add(500 * time.Microsecond)); b.Sub(a) != 500*time.Microsecond {
		t.Errorf("frames sent 0.5 ms apart arrive %v apart, want the same delay", b.Sub(a))
	}

	m := Emulation{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterDist: JitterPareto, Loss: 0.05}.Reliable(r)
	var last time.Time
	stalled, held := 0, 0
	for i := range 20000 {
		sent := t0.Add(time.Duration(i) * 2 * time.Millisecond)
		at := m.Send(sent)
		if at.Before(last) {
			t.Fatalf("frame %d arrives at %v, before the frame before it (%v)", i, at, last)
		}
		if at.Sub(sent) >= minRTO {
			stalled++
		}
		if at.Equal(last) {
			held++
		}
		last = at
	}
	// 5% lost, and each stall holds the frames sent within an RTO after.
	if stalled < 20000/20 || held == 0 {
		t.Errorf("%d of 20000 frames an RTO late and %d held behind another: want at least the 5%% lost, and some held", stalled, held)
	}
}
