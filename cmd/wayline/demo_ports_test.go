package main

import (
	"strings"
	"testing"

	"github.com/wayline/wayline/topology"
)

// TestOffsetPorts: every port of the built-in network moves, a port two
// listeners share stays shared, and a port pushed past 65535 is refused.
func TestOffsetPorts(t *testing.T) {
	f, err := topology.Parse(exampleTopology)
	if err != nil {
		t.Fatal(err)
	}
	if err := offsetPorts(f, 10000); err != nil {
		t.Fatal(err)
	}
	a := f.Brokers[0]
	if a.Client != "127.0.0.1:14301" || a.HTTP != "127.0.0.1:18301" || strings.Join(a.Listen, " ") != "tcp://127.0.0.1:17101 udp://127.0.0.1:17101" {
		t.Errorf("na.cgl.c1.a after an offset of 10000: %+v", a)
	}
	if got := f.Brokers[1].Listen[1]; got != "ws://127.0.0.1:17202/overlay" {
		t.Errorf("a ws listener after an offset: %s", got)
	}
	if f.Aggregators[0].HTTP != "127.0.0.1:18080" {
		t.Errorf("the aggregator after an offset: %s", f.Aggregators[0].HTTP)
	}
	f, _ = topology.Parse(exampleTopology)
	if err := offsetPorts(f, 60000); err == nil || !strings.Contains(err.Error(), "outside 1..65535") {
		t.Errorf("ports past 65535: %v", err)
	}
	f, _ = topology.Parse(exampleTopology)
	if err := freePortsFor(f); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, b := range f.Brokers {
		for _, hp := range []string{b.Client, b.HTTP} {
			if seen[hp] || strings.HasSuffix(hp, ":4301") || strings.HasSuffix(hp, ":8301") {
				t.Errorf("free port %s given twice, or not moved", hp)
			}
			seen[hp] = true
		}
	}
}
