package broker

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// residentBytes returns the process's resident memory, from /proc.
func residentBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// What a fragment flood may add to a broker's memory. Live: the
// reassembly budget of its udp listener (16 MiB), the bytes its queues
// may hold (16 MiB), and the bookkeeping of the links the flood opens (a
// few KiB each, for at most the accept backlog and the handshake slots at
// a time). Resident: that, and the garbage collector's slack (by default
// the heap grows to twice what is live before a collection).
const (
	floodLiveBound     = 40 << 20
	floodResidentBound = 80 << 20
)

// liveHeap collects garbage and returns the bytes of live objects.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestFragmentFlood replays the fragment flood against a broker's udp
// listener: from 300 source ports, a HELLO and then fragments that each
// announce a frame of 65,535 fragments of 16 bytes (a megabyte each, as
// announced), twice. The broker's live heap and resident memory stay
// within their bounds, and its link keeps working.
func TestFragmentFlood(t *testing.T) {
	n := newTestNet(t, netSpec{brokers: chain[:2], links: chainLinks("udp")[:1]})
	n.waitRoutes()
	b := n.brokers["na.c1.b"]
	u, _ := url.Parse(b.OverlayURLs()[0])
	target, err := net.ResolveUDPAddr("udp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	// Return what the test itself allocated before, so that the figures
	// are the flood's.
	debug.FreeOSMemory()
	before, liveBefore := residentBytes(t), liveHeap()
	var peak, livePeak int64
	chunk := make([]byte, 16)
	for wave := range 2 {
		var socks []*net.UDPConn
		for p := range 300 {
			s, err := net.DialUDP("udp", nil, target)
			if err != nil {
				t.Fatal(err)
			}
			socks = append(socks, s)
			s.Write(binary.BigEndian.AppendUint32([]byte{1, 1}, uint32(wave<<16|p)))
		}
		time.Sleep(50 * time.Millisecond)
		for _, s := range socks {
			for id := range uint32(100) {
				for _, index := range []uint16{0, 65534} {
					d := []byte{4}
					d = binary.BigEndian.AppendUint32(d, id)
					d = binary.BigEndian.AppendUint16(d, index)
					d = binary.BigEndian.AppendUint16(d, 65535)
					s.Write(append(d, chunk...))
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
		peak = max(peak, residentBytes(t))
		livePeak = max(livePeak, liveHeap())
		for _, s := range socks {
			s.Close()
		}
	}
	grew, liveGrew := peak-before, livePeak-liveBefore
	t.Logf("resident memory %d MiB before the flood, %d MiB at its peak (+%d MiB, bound %d MiB); live heap +%d MiB (bound %d MiB)",
		before>>20, peak>>20, grew>>20, floodResidentBound>>20, liveGrew>>20, floodLiveBound>>20)
	if liveGrew > floodLiveBound {
		t.Errorf("the flood grew the live heap by %d MiB, over %d MiB", liveGrew>>20, floodLiveBound>>20)
	}
	if grew > floodResidentBound && !raceEnabled {
		t.Errorf("the flood grew resident memory by %d MiB, over %d MiB", grew>>20, floodResidentBound>>20)
	}
	if d := b.Status().DroppedDatagrams; d == 0 {
		t.Errorf("no dropped datagram counted")
	}
	ch := collect(t, n.connect("na.c1.b"), "after.flood", "")
	n.waitInterest("na.c1.a", "after.flood", "na.c1.b")
	n.connect("na.c1.a").Publish("after.flood", []byte("ok"))
	expectMsg(t, ch, 10*time.Second)
}
