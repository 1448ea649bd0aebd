package aggregator

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wayline/wayline/web"
)

// The aggregator's HTTP API:
//
//	GET /healthz                          200 ok, or 503 degraded: <why> while the database is away
//	GET /api/xpath?q=…&from=…&to=…        the query's answer, as XML (400 for a bad query, 504 when cut off)
//	GET /api/actions?from=…&to=…&limit=…  the control actions taken, newest first (JSON)
//	GET /api/reports?from=…&to=…&limit=… the reports received, with their gaps (JSON)
//	GET /api/latest                       every broker's last report (JSON)
//	GET /api/stats                        counters (JSON)
//	GET /api/states                       every broker's latest routing state: routes, link states, clients (JSON)
//	GET /api/route-changes?limit=…        the next hops that changed, newest first (JSON, kept in memory)
//	GET /api/route?subject=…&from=…       the way subject's messages published at broker from take (JSON)
//	GET /live?topics=…                    WebSocket: {"kind":"report|action","broker":…,"seq":…} as they happen
//
// and the HTML pages of package web (/, /brokers/…, /links/…, /xpath,
// /rules). Times are RFC 3339, or durations back from now ("1h" is an hour ago).

func (a *Aggregator) startHTTP() error {
	if a.cfg.HTTP == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("aggregator: http: %w", err)
	}
	a.httpLn = ln
	// A connection that sends nothing, or trickles its request, is closed
	// after the header and read limits; an answer has the query's limit
	// and then some to be written. The live updates' WebSocket sets its
	// own deadlines once upgraded.
	a.httpSrv = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: a.cfg.QueryTimeout + 30*time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	a.wg.Go(func() { _ = a.httpSrv.Serve(ln) })
	return nil
}

// Handler serves the aggregator's HTTP API.
func (a *Aggregator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, why := a.Healthy(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "degraded: database unavailable, %d reports held: %s", a.Buffered(), why)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /api/xpath", a.serveXPath)
	mux.HandleFunc("GET /api/actions", func(w http.ResponseWriter, r *http.Request) {
		from, to, limit, err := rangeParams(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		acts, err := a.store.Actions(r.Context(), from, to, limit)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err)
			return
		}
		writeJSON(w, acts)
	})
	mux.HandleFunc("GET /api/reports", func(w http.ResponseWriter, r *http.Request) {
		from, to, limit, err := rangeParams(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		reps, err := a.store.Reports(r.Context(), from, to, limit)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err)
			return
		}
		writeJSON(w, reps)
	})
	mux.HandleFunc("GET /api/latest", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, a.Latest()) })
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, a.StatsSnapshot()) })
	mux.HandleFunc("GET /api/states", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, a.States()) })
	mux.HandleFunc("GET /api/route-changes", func(w http.ResponseWriter, r *http.Request) {
		_, _, limit, err := rangeParams(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, a.RouteChanges(limit))
	})
	mux.HandleFunc("GET /api/route", func(w http.ResponseWriter, r *http.Request) {
		rt, err := RouteOf(a.States(), r.URL.Query().Get("subject"), r.URL.Query().Get("from"))
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, rt)
	})
	guard := web.Guard{Token: a.cfg.Token, Public: a.cfg.Public}
	web.NewSite(pages{a}, web.SiteConfig{Logger: a.log, Admin: pages{a}, Guard: guard}).Register(mux)
	mux.Handle("GET /live", a.live)
	// Everything but the health check is behind the guard; the pages
	// guard themselves.
	guarded := guard.Read(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/live" {
			guarded.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *Aggregator) serveXPath(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	from, err := parseTime(r.URL.Query().Get("from"))
	if err == nil {
		var to time.Time
		if to, err = parseTime(r.URL.Query().Get("to")); err == nil {
			var res Result
			if res, err = a.Query(r.Context(), q, from, to); err == nil {
				w.Header().Set("Content-Type", "application/xml; charset=utf-8")
				_, _ = w.Write(res.AppendXML(nil, q))
				return
			}
		}
	}
	switch {
	case errors.Is(err, ErrBadQuery), errors.Is(err, errBadTime):
		httpError(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrQueryLimit):
		httpError(w, http.StatusGatewayTimeout, err)
	default:
		httpError(w, http.StatusServiceUnavailable, err)
	}
}

var errBadTime = errors.New("bad time")

// parseTime reads an RFC 3339 time or a duration back from now; "" is the
// zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w %q: want RFC 3339 (2026-11-23T10:00:00Z) or a duration back from now (1h)", errBadTime, s)
}

func rangeParams(r *http.Request) (from, to time.Time, limit int, err error) {
	q := r.URL.Query()
	if from, err = parseTime(q.Get("from")); err != nil {
		return
	}
	if to, err = parseTime(q.Get("to")); err != nil {
		return
	}
	if to.IsZero() {
		to = time.Now().Add(time.Second)
	}
	limit = 1000
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			err = fmt.Errorf("limit %q: want a number >= 0", s)
		}
	}
	return
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(err.Error() + "\n"))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Buffered is the number of reports held for the database.
func (a *Aggregator) Buffered() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.buffer) + a.writing
}

// StatsInfo is GET /api/stats.
type StatsInfo struct {
	Domain    string `json:"domain"`
	Received  uint64 `json:"reports_received"`
	Rejected  uint64 `json:"reports_rejected"`
	Duplicate uint64 `json:"reports_duplicate"`
	Gaps      uint64 `json:"reports_missed"`
	Stored    uint64 `json:"reports_stored"`
	Unacked   uint64 `json:"reports_unacknowledged"`
	Buffered  int    `json:"reports_buffered"`
	Actions   uint64 `json:"actions"`
	BadStates uint64 `json:"states_rejected"`
	// QueriesCut counts XPath queries stopped by their time limit or
	// because their client went away.
	QueriesCut uint64 `json:"queries_cut_off"`
	Healthy    bool   `json:"healthy"`
	Brokers    int    `json:"brokers"`
}

// StatsSnapshot reads the counters.
func (a *Aggregator) StatsSnapshot() StatsInfo {
	ok, _ := a.Healthy()
	a.mu.Lock()
	brokers := len(a.latest)
	a.mu.Unlock()
	return StatsInfo{
		Domain: a.cfg.Domain, Received: a.stats.Received.Load(), Rejected: a.stats.Rejected.Load(),
		Duplicate: a.stats.Duplicate.Load(), Gaps: a.stats.Gaps.Load(), Stored: a.stats.Stored.Load(),
		Unacked: a.stats.Unacked.Load(), Buffered: a.Buffered(), Actions: a.stats.Actions.Load(),
		BadStates: a.stats.BadStates.Load(), QueriesCut: a.stats.QueriesCut.Load(),
		Healthy: ok, Brokers: brokers,
	}
}
