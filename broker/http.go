package broker

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// The per-broker HTTP API. Field names are a contract; fields may be added.

// LinkInfo is one entry of GET /api/links.
type LinkInfo struct {
	ID           string    `json:"id"`
	Peer         string    `json:"peer"`
	Transport    string    `json:"transport"`
	State        string    `json:"state"` // "up" or "down"
	Since        time.Time `json:"since"`
	Dialer       bool      `json:"dialer"` // this broker dials the link
	LastError    string    `json:"last_error,omitempty"`
	MsgsSent     uint64    `json:"msgs_sent"`
	MsgsRecv     uint64    `json:"msgs_received"`
	BytesSent    uint64    `json:"bytes_sent"`
	BytesRecv    uint64    `json:"bytes_received"`
	QueueBytes   int       `json:"queue_bytes"`
	Dropped      uint64    `json:"dropped"`
	DroppedBytes uint64    `json:"dropped_bytes"`
	Ups          uint64    `json:"ups"`
}

// RouteInfo is one entry of GET /api/routes.
type RouteInfo struct {
	Destination string   `json:"destination"`
	NextHop     string   `json:"next_hop"`
	Link        string   `json:"link"`
	Cost        float64  `json:"cost"`
	Path        []string `json:"path"`
}

// InterestInfo is one entry of GET /api/interest.
type InterestInfo struct {
	Subject string   `json:"subject"`
	Queue   string   `json:"queue,omitempty"`
	Brokers []string `json:"brokers"`
}

// StatusInfo is GET /api/status: the broker and its drop counters.
type StatusInfo struct {
	Address    string    `json:"address"`
	Started    time.Time `json:"started"`
	ClientURL  string    `json:"client_url"`
	LeafURL    string    `json:"leaf_url"`
	Overlay    []string  `json:"overlay"`
	Leaves     []string  `json:"leaves"`
	NoRoute    uint64    `json:"dropped_no_route"`
	HopLimit   uint64    `json:"dropped_hop_limit"`
	Duplicates uint64    `json:"dropped_duplicates"`
	Reserved   uint64    `json:"dropped_reserved_subject"`
	NoMember   uint64    `json:"dropped_no_queue_member"`
	LeafDrops  uint64    `json:"dropped_leaf_queue_full"`
	BadFrames  uint64    `json:"bad_frames"`
	Replies    int64     `json:"reply_routes"`
}

func (b *Broker) startHTTP() error {
	if b.cfg.HTTP == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("broker %s: http: %w", b.cfg.Address, err)
	}
	b.httpLn = ln
	b.httpSrv = &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
	}
	b.wg.Go(func() { _ = b.httpSrv.Serve(ln) })
	return nil
}

// Handler serves the broker's HTTP API.
func (b *Broker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /api/links", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Links()) })
	mux.HandleFunc("GET /api/routes", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Routes()) })
	mux.HandleFunc("GET /api/interest", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Interest()) })
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Status()) })
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Links describes every link of the broker, sorted by peer.
func (b *Broker) Links() []LinkInfo {
	b.mu.Lock()
	links := make([]*link, 0, len(b.links))
	for _, l := range b.links {
		links = append(links, l)
	}
	b.mu.Unlock()
	out := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		state, since, lastErr := l.state()
		info := LinkInfo{
			ID: l.cfg.ID, Peer: l.cfg.Peer, Transport: l.cfg.Transport,
			State: state, Since: since, Dialer: l.cfg.Dial != "", LastError: lastErr,
			MsgsSent: l.msgsSent.Load(), MsgsRecv: l.msgsRecv.Load(),
			BytesSent: l.bytesSent.Load(), BytesRecv: l.bytesRecv.Load(),
			Dropped: l.dropped.Load(), DroppedBytes: l.droppedBytes.Load(),
			Ups: l.ups.Load(),
		}
		if s := l.sess.Load(); s != nil {
			info.QueueBytes = s.out.queued()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Routes lists the route to every reachable broker.
func (b *Broker) Routes() []RouteInfo {
	rt := b.routes.Load()
	out := []RouteInfo{}
	for _, r := range rt.table.Routes() {
		if string(r.Destination) == b.cfg.Address {
			continue
		}
		path := make([]string, len(r.Path))
		for i, a := range r.Path {
			path[i] = string(a)
		}
		out = append(out, RouteInfo{Destination: string(r.Destination), NextHop: string(r.NextHop), Link: r.Link, Cost: r.Cost, Path: path})
	}
	return out
}

// Interest lists the subjects wanted anywhere in the network, with the
// reachable brokers that want them ("local" entries are this broker's).
func (b *Broker) Interest() []InterestInfo {
	rt := b.routes.Load()
	b.mu.Lock()
	byKey := map[string]*InterestInfo{}
	add := func(subject, queue, broker string) {
		k := entryKey(subject, queue)
		ii, ok := byKey[k]
		if !ok {
			ii = &InterestInfo{Subject: subject, Queue: queue}
			byKey[k] = ii
		}
		for _, x := range ii.Brokers {
			if x == broker {
				return
			}
		}
		ii.Brokers = append(ii.Brokers, broker)
	}
	for _, op := range b.interest.local {
		add(op.Subject, op.Queue, b.cfg.Address)
	}
	for addr, o := range b.interest.remote {
		if _, ok := rt.next[addr]; !ok {
			continue
		}
		for _, e := range o.entries {
			add(e.subject, e.queue, addr)
		}
	}
	b.mu.Unlock()
	out := make([]InterestInfo, 0, len(byKey))
	for _, ii := range byKey {
		sort.Strings(ii.Brokers)
		out = append(out, *ii)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := strings.Compare(out[i].Subject, out[j].Subject); c != 0 {
			return c < 0
		}
		return out[i].Queue < out[j].Queue
	})
	return out
}

// Status reports the broker's addresses and drop counters.
func (b *Broker) Status() StatusInfo {
	b.mu.Lock()
	var leaves []string
	var leafDrops uint64
	for l := range b.leaves {
		leaves = append(leaves, l.name)
		leafDrops += l.out.dropped.Load()
	}
	b.mu.Unlock()
	sort.Strings(leaves)
	return StatusInfo{
		Address:    b.cfg.Address,
		Started:    time.Unix(0, int64(b.epoch)),
		ClientURL:  b.ClientURL(),
		LeafURL:    b.LeafURL(),
		Overlay:    b.OverlayURLs(),
		Leaves:     leaves,
		NoRoute:    b.stats.noRoute.Load(),
		HopLimit:   b.stats.hopLimit.Load(),
		Duplicates: b.stats.duplicates.Load(),
		Reserved:   b.stats.reserved.Load(),
		NoMember:   b.stats.noMember.Load(),
		LeafDrops:  leafDrops,
		BadFrames:  b.stats.badFrames.Load(),
		Replies:    b.replies.size.Load(),
	}
}
