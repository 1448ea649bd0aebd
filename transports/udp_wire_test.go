package transports

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseDatagram(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  datagram
		ok    bool
	}{
		{"hello", appendHello(nil, udpHello, 0xdeadbeef), datagram{typ: udpHello, session: 0xdeadbeef}, true},
		{"hello ack", appendHello(nil, udpHelloAck, 7), datagram{typ: udpHelloAck, session: 7}, true},
		{"data", []byte{udpData, 'h', 'i'}, datagram{typ: udpData, payload: []byte("hi")}, true},
		{"empty data", []byte{udpData}, datagram{typ: udpData, payload: []byte{}}, true},
		{"frag", append(appendFragHeader(nil, 9, 1, 3), 'x'),
			datagram{typ: udpFrag, id: 9, index: 1, count: 3, payload: []byte("x")}, true},
		{"close", []byte{udpClose}, datagram{typ: udpClose}, true},
		{"empty", nil, datagram{}, false},
		{"unknown type", []byte{0x47, 'E', 'T'}, datagram{}, false},
		{"zero type", []byte{0}, datagram{}, false},
		{"short hello", []byte{udpHello, udpVersion, 1}, datagram{}, false},
		{"long hello", append(appendHello(nil, udpHello, 1), 0), datagram{}, false},
		{"hello version 2", []byte{udpHello, 2, 0, 0, 0, 1}, datagram{}, false},
		{"frag header only", appendFragHeader(nil, 1, 0, 2), datagram{}, false},
		{"frag count 1", append(appendFragHeader(nil, 1, 0, 1), 'x'), datagram{}, false},
		{"frag index = count", append(appendFragHeader(nil, 1, 2, 2), 'x'), datagram{}, false},
		{"close with payload", []byte{udpClose, 0}, datagram{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDatagram(tt.input)
			if !tt.ok {
				if !errors.Is(err, errBadDatagram) {
					t.Fatalf("got %+v, %v; want errBadDatagram", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got.typ != tt.want.typ || got.session != tt.want.session || got.id != tt.want.id ||
				got.index != tt.want.index || got.count != tt.want.count || !bytes.Equal(got.payload, tt.want.payload) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func frag(id uint32, index, count uint16, payload string) datagram {
	return datagram{typ: udpFrag, id: id, index: index, count: count, payload: []byte(payload)}
}

// checkHeld verifies the reassembler's byte accounting.
func checkHeld(t *testing.T, r *reassembler) {
	t.Helper()
	sum := 0
	for _, p := range r.partial {
		want := partialOverhead + 8*len(p.got)
		for _, f := range p.frags {
			want += len(f.data) + fragOverhead
		}
		if p.cost != want {
			t.Fatalf("a partial frame is charged %d bytes, holds %d", p.cost, want)
		}
		sum += p.cost
	}
	if sum != r.held {
		t.Fatalf("held = %d, partial frames hold %d", r.held, sum)
	}
}

func TestReassembler(t *testing.T) {
	type step struct {
		d     datagram
		frame string // "" means no frame
		err   error
	}
	tests := []struct {
		name     string
		maxFrame int
		steps    []step
	}{
		{"in order", 100, []step{
			{d: frag(1, 0, 3, "aaaa")}, {d: frag(1, 1, 3, "bbbb")}, {d: frag(1, 2, 3, "cc"), frame: "aaaabbbbcc"}}},
		{"reversed", 100, []step{
			{d: frag(1, 2, 3, "cc")}, {d: frag(1, 1, 3, "bbbb")}, {d: frag(1, 0, 3, "aaaa"), frame: "aaaabbbbcc"}}},
		{"duplicates", 100, []step{
			{d: frag(1, 0, 2, "aa")}, {d: frag(1, 0, 2, "aa")}, {d: frag(1, 1, 2, "b"), frame: "aab"}, {d: frag(1, 1, 2, "b")}}},
		{"interleaved", 100, []step{
			{d: frag(1, 0, 2, "a1")}, {d: frag(2, 0, 2, "a2")}, {d: frag(2, 1, 2, "b2"), frame: "a2b2"},
			{d: frag(1, 1, 2, "b1"), frame: "a1b1"}}},
		{"count changes: new frame on the id", 100, []step{
			{d: frag(1, 0, 3, "xx")}, {d: frag(1, 0, 2, "aa")}, {d: frag(1, 1, 2, "b"), frame: "aab"}}},
		{"too large from the first fragment", 10, []step{
			{d: frag(1, 0, 4, "aaaa"), err: ErrFrameTooLarge}, {d: frag(1, 1, 4, "bbbb")},
			{d: frag(1, 3, 4, "d")}, {d: frag(2, 0, 2, "ok"), frame: ""}, {d: frag(2, 1, 2, "!"), frame: "ok!"}}},
		{"too large from an early last fragment", 10, []step{
			{d: frag(1, 2, 3, "cccc"), err: ErrFrameTooLarge}, {d: frag(1, 0, 3, "aaaa")}}},
		{"too large at the last fragment", 10, []step{
			{d: frag(1, 0, 2, "aaaaaa")}, {d: frag(1, 1, 2, "bbbbb"), err: ErrFrameTooLarge}}},
		{"exactly max", 10, []step{
			{d: frag(1, 1, 2, "bbbbb")}, {d: frag(1, 0, 2, "aaaaa"), frame: "aaaaabbbbb"}}},
		{"chunk sizes differ", 100, []step{
			{d: frag(1, 0, 3, "aaaa")}, {d: frag(1, 1, 3, "bbb"), err: errBadDatagram},
			{d: frag(1, 2, 3, "c")}}},
		{"last larger than the others", 100, []step{
			{d: frag(1, 1, 2, "bbbbb")}, {d: frag(1, 0, 2, "aa"), err: errBadDatagram}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReassembler(tt.maxFrame, time.Second, newReassemblyBudget(1<<20))
			now := time.Now()
			for i, s := range tt.steps {
				frame, err := r.add(s.d, now)
				if s.err != nil {
					if !errors.Is(err, s.err) {
						t.Fatalf("step %d: got %v, want %v", i, err, s.err)
					}
				} else if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if string(frame) != s.frame || (s.frame != "" && frame == nil) {
					t.Fatalf("step %d: got frame %q, want %q", i, frame, s.frame)
				}
				checkHeld(t, r)
			}
		})
	}
}

func TestReassemblerTimeout(t *testing.T) {
	r := newReassembler(100, time.Second, newReassemblyBudget(1<<20))
	t0 := time.Now()
	r.add(frag(1, 0, 2, "aa"), t0)
	// The missing fragment arrives too late: the frame is lost.
	if frame, err := r.add(frag(1, 1, 2, "b"), t0.Add(2*time.Second)); frame != nil || err != nil {
		t.Fatalf("late fragment: got %q, %v", frame, err)
	}
	// Starting another frame sweeps out the stale one.
	r.add(frag(2, 0, 2, "aa"), t0.Add(4*time.Second))
	if len(r.partial) != 1 || r.partial[2] == nil {
		t.Fatalf("partial frames %v, want only id 2", r.partial)
	}
	checkHeld(t, r)
}

func TestReassemblerBounds(t *testing.T) {
	t.Run("frames", func(t *testing.T) {
		r := newReassembler(100, time.Minute, newReassemblyBudget(1<<20))
		t0 := time.Now()
		for id := range uint32(udpMaxPartial + 10) {
			r.add(frag(id, 0, 2, "aa"), t0.Add(time.Duration(id)*time.Millisecond))
			if len(r.partial) > udpMaxPartial {
				t.Fatalf("%d partial frames, limit %d", len(r.partial), udpMaxPartial)
			}
		}
		if r.partial[0] != nil || r.partial[udpMaxPartial+9] == nil {
			t.Fatalf("the oldest frames should have been dropped first")
		}
		checkHeld(t, r)
	})
	t.Run("bytes", func(t *testing.T) {
		const maxFrame = 1 << 20
		budget := newReassemblyBudget(64 << 10)
		r := newReassembler(maxFrame, time.Minute, budget)
		chunk := string(make([]byte, 1000))
		t0 := time.Now()
		for id := range uint32(200) {
			// Each first fragment announces a frame of about 1 MB.
			r.add(frag(id, 0, 1000, chunk), t0.Add(time.Duration(id)*time.Millisecond))
			if budget.inUse() > budget.limit {
				t.Fatalf("after frame %d: holding %d bytes, budget %d", id, budget.inUse(), budget.limit)
			}
			checkHeld(t, r)
		}
		if r.partial[199] == nil {
			t.Fatalf("the newest frame was dropped")
		}
	})
	t.Run("shared", func(t *testing.T) {
		// Links of one listener share a budget: a link that floods it
		// drops its own frames to make room, never another link's.
		budget := newReassemblyBudget(64 << 10)
		quiet := newReassembler(1<<20, time.Minute, budget)
		t0 := time.Now()
		if _, err := quiet.add(frag(1, 0, 2, "aaaa"), t0); err != nil {
			t.Fatalf("quiet link: %v", err)
		}
		flood := newReassembler(1<<20, time.Minute, budget)
		big := string(make([]byte, 1000))
		for id := range uint32(500) {
			flood.add(frag(id, 0, 100, big), t0.Add(time.Duration(id)*time.Millisecond))
			if budget.inUse() > budget.limit || flood.held+quiet.held != budget.inUse() {
				t.Fatalf("links hold %d and %d bytes, the budget %d of %d", flood.held, quiet.held, budget.inUse(), budget.limit)
			}
		}
		if frame, err := quiet.add(frag(1, 1, 2, "b"), t0); string(frame) != "aaaab" {
			t.Fatalf("quiet link's frame: %q, %v", frame, err)
		}
		flood.release()
		if budget.inUse() != 0 {
			t.Fatalf("after both links are done the budget holds %d bytes", budget.inUse())
		}
	})
	t.Run("announcements cost little", func(t *testing.T) {
		// A 9-byte header that announces 65,535 fragments costs its
		// bitmap, not the frame it announces.
		budget := newReassemblyBudget(1 << 30)
		r := newReassembler(1<<30, time.Minute, budget)
		r.add(frag(1, 0, 65535, "x"), time.Now())
		if used := budget.inUse(); used > 16<<10 {
			t.Fatalf("one fragment holds %d bytes", used)
		}
	})
}

func TestCheckUDPConfig(t *testing.T) {
	tests := []struct {
		maxFrame, datagram int
		ok                 bool
	}{
		{DefaultMaxFrame, 1400, true},
		{DefaultMaxFrame, udpMinDatagram, true},
		{DefaultMaxFrame, udpMaxDatagram, true},
		{DefaultMaxFrame, udpMinDatagram - 1, false},
		{DefaultMaxFrame, udpMaxDatagram + 1, false},
		{64 << 20, 1400, true},
		{1 << 30, 1400, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.maxFrame, tt.datagram), func(t *testing.T) {
			err := checkUDPConfig(Config{MaxFrame: tt.maxFrame, Datagram: tt.datagram})
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
