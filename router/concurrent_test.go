package router

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestTablesReadWhileMapChanges: brokers' forwarding goroutines read a
// table without a lock while the map that made it takes news, grows new
// names and computes the next tables (held routes reading the last ones).
// Under -race, anything changed after a table was handed out shows.
func TestTablesReadWhileMapChanges(t *testing.T) {
	links := clusterGrid(3, 4)
	s := simulateOnly(links, 0.10, []Address{"eu.g.r0.c0"})
	m := s.bnms["eu.g.r0.c0"]
	var published atomic.Pointer[[]Table]
	first := m.Tables()
	published.Store(&first)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			t := (*published.Load())[0]
			for _, r := range t.Routes() {
				t.Lookup(r.Destination)
				t.Way(r.Destination, true)
				t.Way(r.Destination, false)
				t.Broker([]byte(r.Destination))
			}
		}
	}()
	for i := range 200 {
		c := float64(1 + i%5)
		m.Set(Announcement{Origin: "eu.g.r0.c0", Unit: "eu.g.r0", Links: []AnnouncedLink{
			{ID: "h00", Peer: "eu.g.r0.c1", Costs: []float64{c}},
			{ID: fmt.Sprintf("new%d", i), Peer: Address(fmt.Sprintf("eu.g.r0.n%d", i)), Costs: []float64{1}},
		}})
		m.SetSummary(Summary{Origin: "eu.g.r1.c0", Unit: "eu.g.r1", Dests: []Dest{
			{Broker: "eu.g.r1.c1", Costs: []float64{c}},
			{Broker: Address(fmt.Sprintf("eu.g.r1.n%d", i)), Costs: []float64{2}},
		}})
		m.Summaries()
		next := m.Tables() // holding the routes of the tables being read
		published.Store(&next)
	}
	close(stop)
	wg.Wait()
	if _, ok := first[0].Lookup("eu.g.r2.c3"); !ok {
		t.Error("the table read lost a route")
	}
}
