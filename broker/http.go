package broker

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wayline/wayline/monitor"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/transports"
)

// The per-broker HTTP API: JSON under /api, Prometheus metrics under
// /metrics. GETs are public; PUTs change the network and need the admin
// token when the broker has one.

func (b *Broker) startHTTP() error {
	if b.cfg.HTTP == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("broker %s: http: %w", b.cfg.Address, err)
	}
	if b.cfg.AdminToken == "" && !isLoopback(ln.Addr()) {
		b.log.Warn("the admin API is open to anyone who reaches this address; set an admin token", slog.String("http", ln.Addr().String()))
	}
	b.httpLn = ln
	b.httpSrv = &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
	}
	b.wg.Go(func() { _ = b.httpSrv.Serve(ln) })
	return nil
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// Handler serves the broker's HTTP API.
func (b *Broker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /api/links", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Links()) })
	mux.HandleFunc("GET /api/routes", func(w http.ResponseWriter, r *http.Request) {
		routes, ok := b.RoutesFor(r.URL.Query().Get("profile"))
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("unknown profile %q", r.URL.Query().Get("profile"))})
			return
		}
		writeJSON(w, http.StatusOK, routes)
	})
	mux.HandleFunc("GET /api/interest", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Interest()) })
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Status()) })
	mux.Handle("PUT /api/links/{id}/emulation", b.admin(b.putEmulation))
	mux.Handle("PUT /api/links/{id}/monitoring", b.admin(b.putMonitoring))
	mux.Handle("PUT /api/monitoring", b.admin(b.putMonitoring))
	reg := prometheus.NewRegistry()
	reg.MustRegister(&linkCollector{b: b}, &queueCollector{b: b}, &brokerCollector{b: b})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelWarn)}))
	return mux
}

// admin guards a handler that changes the network with the admin token.
func (b *Broker) admin(h func(http.ResponseWriter, *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := b.cfg.AdminToken; tok != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="wayline"`)
				writeJSON(w, http.StatusUnauthorized, apiError{"this broker needs its admin token (Authorization: Bearer <token>)"})
				return
			}
		}
		v, err := h(w, r)
		if err != nil {
			writeJSON(w, errorStatus(err), apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

type apiError struct {
	Error string `json:"error"`
}

// errBadRequest marks errors in what the client sent.
var errBadRequest = errors.New("bad request")

func errorStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownLink):
		return http.StatusNotFound
	case errors.Is(err, errBadRequest), errors.Is(err, monitor.ErrBadConfig), errors.Is(err, ErrAmbiguousLink):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// decodeBody reads a JSON request body strictly: unknown fields are errors.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", errBadRequest, err)
	}
	return nil
}

func (b *Broker) putEmulation(_ http.ResponseWriter, r *http.Request) (any, error) {
	var spec transports.EmulationSpec
	if err := decodeBody(r, &spec); err != nil {
		return nil, err
	}
	e, err := b.SetEmulation(r.PathValue("id"), spec)
	if err != nil {
		if !errors.Is(err, ErrUnknownLink) && !errors.Is(err, ErrAmbiguousLink) {
			err = fmt.Errorf("%w: %w", errBadRequest, err)
		}
		return nil, err
	}
	return transports.SpecOf(e), nil
}

// monitoringChange turns a monitoring request into a change.
func monitoringChange(req netapi.MonitoringRequest) (MonitoringChange, error) {
	ch := MonitoringChange{Enabled: req.Enabled, Adaptive: req.Adaptive, Reset: req.Reset}
	if req.Interval != nil {
		d, err := time.ParseDuration(*req.Interval)
		if err != nil {
			return ch, fmt.Errorf("%w: interval %q is not a duration (like 250ms)", errBadRequest, *req.Interval)
		}
		ch.Interval = &d
	}
	return ch, nil
}

func (b *Broker) putMonitoring(_ http.ResponseWriter, r *http.Request) (any, error) {
	var req netapi.MonitoringRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ch, err := monitoringChange(req)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if id != "" {
		if id, err = b.LinkID(id); err != nil {
			return nil, err
		}
	}
	if err := b.SetMonitoring(id, ch); err != nil {
		return nil, err
	}
	var out []netapi.LinkInfo
	for _, l := range b.Links() {
		if id == "" || l.ID == id {
			out = append(out, l)
		}
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
