package broker

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
	"github.com/wayline/wayline/transports"
)

// A broker publishes its routing state (schema.State: route tables, link
// states, client count, local subjects) on $WL.state.<domain> every report
// interval, and soon after a route or a link changes, so that the
// aggregator's pages follow rerouting as it happens.

// stateDebounce gathers the changes of one event (a link down changes
// several routes, one after another) into one state message.
const stateDebounce = 100 * time.Millisecond

// kickState asks for a state message soon.
func (b *Broker) kickState() {
	select {
	case b.stateKick <- struct{}{}:
	default:
	}
}

// stateLoop publishes the broker's state every report interval and after
// each change.
func (b *Broker) stateLoop() {
	t := time.NewTicker(b.cfg.Report.Interval)
	defer t.Stop()
	var seq uint64
	publish := func() {
		seq++
		st := b.State(time.Now())
		st.Seq = seq
		js, err := json.Marshal(st)
		if err != nil {
			b.log.Warn("state message", slog.Any("err", err))
			return
		}
		b.publishInternal(netapi.StateSubject(b.cfg.Report.Domain), "", js)
	}
	publish()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.stateKick:
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(stateDebounce):
			}
			// A kick that came while waiting is answered by this message.
			select {
			case <-b.stateKick:
			default:
			}
		}
		publish()
	}
}

// State is the broker's routing state now (without a sequence number).
func (b *Broker) State(now time.Time) schema.State {
	st := schema.State{Broker: b.cfg.Address, Domain: b.cfg.Report.Domain, Time: now.UTC(),
		Links: []schema.StateLink{}, Routes: []schema.Route{}, Subjects: []string{}, Profiles: []schema.SubjectProfile{}}
	for _, sp := range b.cfg.Routing.Subjects {
		st.Profiles = append(st.Profiles, schema.SubjectProfile{Subject: sp.Subject, Profile: sp.Profile})
	}
	if b.ns != nil {
		st.Clients = b.clientsBut(b.ns.NumClients())
	}
	st.Routes = b.Routes()
	for name, n := range b.Status().Messages() {
		if n > 0 {
			if st.Messages == nil {
				st.Messages = map[string]uint64{}
			}
			st.Messages[name] = n
		}
	}
	b.mu.Lock()
	links := make([]*link, 0, len(b.links))
	for _, l := range b.links {
		links = append(links, l)
	}
	for _, op := range b.interest.local {
		if strings.HasPrefix(op.Subject, netapi.Reserved) || strings.HasPrefix(op.Subject, "_INBOX.") {
			continue
		}
		st.Subjects = append(st.Subjects, op.Subject)
	}
	b.mu.Unlock()
	// Up as GET /api/links says it: carrying routes.
	for _, l := range links {
		sl := schema.StateLink{ID: l.cfg.ID, Peer: l.cfg.Peer, Up: l.usable(), Standby: l.inStandby(), Emulation: stateEmulation(l.emulation())}
		for reason, n := range l.counters.Drops.ByReason() {
			if n > 0 {
				if sl.Drops == nil {
					sl.Drops = map[string]uint64{}
				}
				sl.Drops[reason] = n
			}
		}
		for class, by := range l.counters.Drops.ByClass() {
			for reason, n := range by {
				if n == 0 {
					continue
				}
				if sl.ClassDrops == nil {
					sl.ClassDrops = map[string]map[string]uint64{}
				}
				if sl.ClassDrops[class] == nil {
					sl.ClassDrops[class] = map[string]uint64{}
				}
				sl.ClassDrops[class][reason] = n
			}
		}
		st.Links = append(st.Links, sl)
	}
	slices.SortFunc(st.Links, func(x, y schema.StateLink) int { return strings.Compare(x.ID, y.ID) })
	slices.Sort(st.Subjects)
	st.Subjects = slices.Compact(st.Subjects)
	if len(st.Subjects) > schema.MaxStateSubjects {
		st.Subjects = st.Subjects[:schema.MaxStateSubjects]
	}
	return st
}

// stateEmulation is e as a state message says it; nil for none.
func stateEmulation(e *transports.Emulation) *schema.StateEmulation {
	if e == nil {
		return nil
	}
	spec := transports.SpecOf(*e)
	var out schema.StateEmulation
	for _, f := range []struct {
		q   *transports.Quantity
		dst *string
	}{{spec.Delay, &out.Delay}, {spec.Jitter, &out.Jitter}, {spec.Loss, &out.Loss}} {
		if f.q != nil {
			*f.dst = string(*f.q)
		}
	}
	out.Down = spec.Down != nil && *spec.Down
	if out == (schema.StateEmulation{}) {
		return nil
	}
	return &out
}
