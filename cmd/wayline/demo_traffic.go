package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/broker"
	"github.com/wayline/wayline/transports"
)

// sampleSubject is where the demo's sample publisher sends.
const sampleSubject = "demo.ticks"

// sampleTraffic runs the demo's sample applications until ctx ends: at the
// first broker a publisher of a tick every 200 ms on demo.ticks, and a
// requester of demo.time every second; at the last broker a subscriber to
// demo.ticks and a responder on demo.time. Every 30 s it logs what
// arrived and the last one-way delay.
func sampleTraffic(ctx context.Context, from, to *broker.Broker, stdout io.Writer, log *slog.Logger) error {
	pub, err := nats.Connect(from.ClientURL(), nats.Name("demo-publisher"))
	if err != nil {
		return fmt.Errorf("sample publisher: %w", err)
	}
	sub, err := nats.Connect(to.ClientURL(), nats.Name("demo-subscriber"))
	if err != nil {
		pub.Close()
		return fmt.Errorf("sample subscriber: %w", err)
	}
	var got atomic.Uint64
	var delay atomic.Int64
	_, err = sub.Subscribe(sampleSubject, func(m *nats.Msg) {
		got.Add(1)
		if sent, err := time.Parse(time.RFC3339Nano, string(m.Data)); err == nil {
			delay.Store(int64(time.Since(sent)))
		}
	})
	if err == nil {
		_, err = sub.Subscribe("demo.time", func(m *nats.Msg) {
			m.Respond([]byte(time.Now().UTC().Format(time.RFC3339Nano)))
		})
	}
	if err != nil {
		pub.Close()
		sub.Close()
		return fmt.Errorf("sample subscriber: %w", err)
	}
	fmt.Fprintf(stdout, "  sample traffic: %s publishes %s every 200 ms and asks demo.time every second; %s subscribes and answers\n",
		from.Address(), sampleSubject, to.Address())
	go func() {
		defer pub.Close()
		defer sub.Close()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		report := time.NewTicker(30 * time.Second)
		defer report.Stop()
		var sent, answered, n uint64
		for {
			select {
			case <-ctx.Done():
				return
			case <-report.C:
				log.Info("sample traffic", slog.Uint64("published", sent), slog.Uint64("received", got.Load()),
					slog.Duration("last_delay", time.Duration(delay.Load())), slog.Uint64("requests_answered", answered))
			case now := <-tick.C:
				if pub.Publish(sampleSubject, []byte(now.UTC().Format(time.RFC3339Nano))) == nil {
					sent++
				}
				if n++; n%5 == 0 {
					if _, err := pub.Request("demo.time", nil, 900*time.Millisecond); err == nil {
						answered++
					}
				}
			}
		}
	}()
	return nil
}

// chaosLink is a link the demo may take down: its id and the broker at one
// end.
type chaosLink struct {
	id   string
	at   *broker.Broker
	name string
}

// chaosLinks are the links between clusters: the ones whose loss makes
// routes change. Links inside a cluster are left alone.
func chaosLinks(brokers []*broker.Broker) []chaosLink {
	var out []chaosLink
	for _, b := range brokers {
		for _, l := range b.Links() {
			if l.Dialer && cluster(b.Address()) != cluster(l.Peer) {
				out = append(out, chaosLink{id: l.ID, at: b, name: b.Address() + " - " + l.Peer})
			}
		}
	}
	return out
}

// cluster is an address without its last label.
func cluster(addr string) string {
	if i := strings.LastIndexByte(addr, '.'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// chaos takes one of links down every period, at random, and brings it
// back half a period later, until ctx ends; then it brings back whatever
// it took down. Each step is printed, so that rerouting can be watched.
func chaos(ctx context.Context, links []chaosLink, period time.Duration, stdout io.Writer) {
	if len(links) == 0 {
		fmt.Fprintln(stdout, "chaos: no links between clusters to take down")
		return
	}
	set := func(l chaosLink, down bool) {
		if _, err := l.at.SetEmulation(l.id, transports.EmulationSpec{Down: &down}); err != nil {
			fmt.Fprintf(stdout, "chaos: link %s (%s): %v\n", l.id, l.name, err)
			return
		}
		state := "up again"
		if down {
			state = "down"
		}
		fmt.Fprintf(stdout, "%s chaos: link %s (%s) %s\n", time.Now().Format("15:04:05"), l.id[:8], l.name, state)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l := links[rand.IntN(len(links))]
		set(l, true)
		select {
		case <-ctx.Done():
			set(l, false)
			return
		case <-time.After(period / 2):
		}
		set(l, false)
	}
}
