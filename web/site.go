package web

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
)

// Source is what the pages show: an aggregator's view of its network.
type Source interface {
	// Latest is every broker's last report.
	Latest() []schema.Report
	// Measurements is a link's measurements in [from, to), by time.
	Measurements(ctx context.Context, link string, from, to time.Time) ([]store.Measurement, error)
	// Actions are the control actions taken, newest first, at most limit.
	Actions(ctx context.Context, limit int) ([]store.Action, error)
	// Rules are the threshold rules, as written.
	Rules() []RuleText
	// States is every broker's latest routing state.
	States() []schema.State
	// RouteChanges is the route changes seen, newest first, at most limit.
	RouteChanges(limit int) []schema.RouteChange
	// Route is the way subject's messages published at broker from take.
	Route(subject, from string) (schema.SubjectRoute, error)
	// Query answers an XPath query, on the latest reports when from is
	// empty, else on the history of [from, to): times as the HTTP API
	// takes them (RFC 3339, or a duration back from now).
	Query(ctx context.Context, q, from, to string) (Answer, error)
}

// RuleText is a threshold rule as its config file says it.
type RuleText struct {
	Name, When, Do string
	Undo           bool
}

// Answer is an XPath query's answer: nodes, or a value.
type Answer struct {
	NodeSet   bool // the query yields nodes (perhaps none), not a value
	Nodes     []AnswerNode
	Value     string // when the query yields a number, string or boolean
	Truncated bool
}

// AnswerNode is a node of an answer: its name, its value (attributes),
// and the link it is in, if any, with the broker that reported the link
// and the report's time (RFC 3339).
type AnswerNode struct {
	Name, Value, Link string
	Broker, Time      string
	Attribute         bool
}

//go:embed templates/*.html
var templateFiles embed.FS

// Site serves the HTML pages, rendered on the server so that they read
// without JavaScript:
//
//	GET /                   overview: brokers, links up and down, the worst links, recent actions
//	GET /brokers/{address}  a broker's links, from its last report
//	GET /links/{id}         a link's latency (p50, p99), jitter, loss and cost over ?range=1h, and its delay CDF;
//	                        any unique beginning of a link's id leads there
//	GET /xpath?q=&from=&to= a query form and its answer as a table
//	GET /rules              the threshold rules and the actions taken
//	GET /map?subject=&from= the network map (SVG): units, brokers, links by cost with a legend, links
//	                        down, and the way subject's messages published at broker from take
//	GET /favicon.ico        the pages' icon
//
// Every name that comes from the network is escaped (html/template).
type Site struct {
	src   Source
	admin Admin
	guard Guard
	log   *slog.Logger
	tmpl  *template.Template
}

// SiteConfig configures a Site.
type SiteConfig struct {
	Logger *slog.Logger
	// Admin, when set, serves the admin pages (/admin), behind the token.
	Admin Admin
	// Guard says who sees what (see Guard).
	Guard Guard
}

// NewSite makes the pages of src.
func NewSite(src Source, cfg SiteConfig) *Site {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := template.Must(template.New("").Funcs(template.FuncMap{
		"ms": func(f float64) string {
			if math.IsNaN(f) {
				return "-"
			}
			return strconv.FormatFloat(f, 'f', 2, 64)
		},
		"pct":             func(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) },
		"messageCounters": func() []string { return schema.MessageCounters },
		"since":           func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
		"stamp":           func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
		// short is a link id as 'wayline links' prints it, enough to name it.
		"short": func(id string) string { return id[:min(len(id), 8)] },
		"cdf":   cdfSVG,
	}).ParseFS(templateFiles, "templates/*.html"))
	return &Site{src: src, admin: cfg.Admin, guard: cfg.Guard, log: log, tmpl: t}
}

// Register adds the pages to mux, each behind the guard.
func (s *Site) Register(mux *http.ServeMux) {
	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.guard.Read(h)) }
	read("GET /{$}", s.overview)
	read("GET /brokers/{address}", s.broker)
	read("GET /links/{id}", s.link)
	read("GET /xpath", s.xpath)
	read("GET /rules", s.rules)
	read("GET /map", s.netmap)
	mux.HandleFunc("GET /favicon.ico", favicon)
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	admin := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.guard.Admin(h)) }
	if s.admin != nil {
		admin("GET /admin", s.adminPage)
		admin("POST /admin/links/{id}", s.adminLink)
		admin("POST /admin/rules", s.adminAddRule)
		admin("POST /admin/rules/remove", s.adminRemoveRule)
	}
}

func (s *Site) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.log.Warn("web: render", slog.String("page", name), slog.Any("err", err))
	}
}

func (s *Site) fail(w http.ResponseWriter, code int, err error) {
	w.WriteHeader(code)
	s.render(w, "error.html", map[string]any{"Code": code, "Error": err.Error()})
}

// linkRow is a link as the tables show it.
type linkRow struct {
	Broker string
	schema.Link
	Time time.Time
	Up   bool
}

func rows(reps []schema.Report) []linkRow {
	var out []linkRow
	for _, r := range reps {
		for _, l := range r.Links {
			out = append(out, linkRow{Broker: r.Broker, Link: l, Time: r.Time, Up: l.State == "up"})
		}
	}
	return out
}

// withStates returns reps with each link's state taken from its broker's
// routing state where that is newer than the report: states follow a link
// going down or up within a fraction of a second, reports only at their
// interval. reps is not modified.
func withStates(reps []schema.Report, states []schema.State) []schema.Report {
	byBroker := make(map[string]*schema.State, len(states))
	for i := range states {
		byBroker[states[i].Broker] = &states[i]
	}
	out := slices.Clone(reps)
	for i := range out {
		r := &out[i]
		st := byBroker[r.Broker]
		if st == nil || !st.Time.After(r.Time) {
			continue
		}
		state := make(map[string]string, len(st.Links))
		for _, l := range st.Links {
			state[l.ID] = UpDown(l.Up)
			if !l.Up && l.Standby {
				// Down, but carrying the routes nothing else can.
				state[l.ID] = standbyState
			}
		}
		r.Links = slices.Clone(r.Links)
		for j := range r.Links {
			if s, ok := state[r.Links[j].ID]; ok {
				r.Links[j].State = s
			}
		}
	}
	return out
}

// standbyState is how the pages spell a link in standby: down by its
// monitor, its connection up, still taken where nothing else reaches.
const standbyState = "down (standby)"

// UpDown is a link's state as reports spell it.
func UpDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// latest is the reports with the states' link states.
func (s *Site) latest() ([]schema.Report, []schema.State) {
	states := s.src.States()
	return withStates(s.src.Latest(), states), states
}

func (s *Site) overview(w http.ResponseWriter, r *http.Request) {
	reps, _ := s.latest()
	links := rows(reps)
	once := eachLinkOnce(links)
	up := 0
	for _, l := range once {
		if l.Up {
			up++
		}
	}
	worst := slices.Clone(links)
	// Down first, then by loss, then by p99, worst first.
	upness := func(l linkRow) int {
		if l.Up {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(worst, func(a, b linkRow) int {
		return cmp.Or(cmp.Compare(upness(a), upness(b)), cmp.Compare(b.Loss, a.Loss), cmp.Compare(b.Latency.P99, a.Latency.P99))
	})
	worst = worst[:min(len(worst), 10)]
	acts, err := s.src.Actions(r.Context(), 20)
	if err != nil {
		s.log.Warn("web: actions", slog.Any("err", err))
	}
	s.render(w, "overview.html", map[string]any{
		"Reports": reps, "Links": len(once), "Up": up, "Down": len(once) - up, "Worst": worst, "Actions": acts,
		"Routes": s.src.RouteChanges(20),
	})
}

func (s *Site) broker(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("address")
	data := map[string]any{"Address": addr}
	reps, states := s.latest()
	for _, rep := range reps {
		if rep.Broker == addr {
			data["Report"], data["Links"] = rep, rows([]schema.Report{rep})
		}
	}
	for _, st := range states {
		if st.Broker == addr {
			data["State"], data["Profiles"] = st, routesByProfile(st)
		}
	}
	if data["Report"] == nil && data["State"] == nil {
		s.fail(w, http.StatusNotFound, fmt.Errorf("no report or state from broker %q", addr))
		return
	}
	s.render(w, "broker.html", data)
}

// linkID is the id of the link that id names among the links reported
// now: itself, or the one whose id begins with it (see
// netapi.LinkByPrefix).
func (s *Site) linkID(id string) (string, error) {
	reps, states := s.latest()
	var ids []string
	for _, l := range rows(reps) {
		ids = append(ids, l.ID)
	}
	for _, st := range states {
		for _, l := range st.Links {
			ids = append(ids, l.ID)
		}
	}
	return netapi.LinkByPrefix(id, ids)
}

func (s *Site) link(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// A beginning of a link's id leads to the link's page; one that names
	// no link reported now may still have a history.
	switch full, err := s.linkID(id); {
	case errors.Is(err, netapi.ErrAmbiguousLink):
		s.fail(w, http.StatusBadRequest, err)
		return
	case err == nil && full != id:
		u := url.URL{Path: "/links/" + full, RawQuery: r.URL.RawQuery}
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	span := time.Hour
	if v := r.URL.Query().Get("range"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 31*24*time.Hour {
			s.fail(w, http.StatusBadRequest, fmt.Errorf("range %q: want a duration up to 744h", v))
			return
		}
		span = d
	}
	to := time.Now()
	ms, err := s.src.Measurements(r.Context(), id, to.Add(-span), to)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, err)
		return
	}
	var latest []linkRow
	reps, _ := s.latest()
	for _, l := range rows(reps) {
		if l.ID == id {
			latest = append(latest, l)
		}
	}
	if len(ms) == 0 && len(latest) == 0 {
		s.fail(w, http.StatusNotFound, fmt.Errorf("no link %q", id))
		return
	}
	s.render(w, "link.html", map[string]any{
		"ID": id, "Range": shortDuration(span), "Latest": latest, "Samples": len(ms),
		"Charts": linkCharts(ms), "CDF": cdfChart(latest), "Drops": linkDrops(s.src.States(), id),
	})
}

// dropRow is what one end of a link dropped on its way over it.
type dropRow struct {
	Broker     string
	Drops      map[string]uint64
	ClassDrops map[string]map[string]uint64 // by priority class, then reason
}

// linkDrops lists the drops each end of link id counts, from the
// brokers' states.
func linkDrops(states []schema.State, id string) []dropRow {
	var out []dropRow
	for _, st := range states {
		for _, l := range st.Links {
			if l.ID == id {
				out = append(out, dropRow{Broker: st.Broker, Drops: l.Drops, ClassDrops: l.ClassDrops})
			}
		}
	}
	return out
}

func (s *Site) xpath(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := map[string]any{"Q": q.Get("q"), "From": q.Get("from"), "To": q.Get("to"), "Examples": xpathExamples}
	if q.Get("q") != "" {
		if ans, err := s.src.Query(r.Context(), q.Get("q"), q.Get("from"), q.Get("to")); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			data["Error"] = err.Error()
		} else {
			data["Answer"] = ans
		}
	}
	s.render(w, "xpath.html", data)
}

// xpathExamples are offered on the query page.
var xpathExamples = []string{
	"//link[@loss > 0.01]/@id",
	"//link[@loss > 0.05 and latency/@mean > 100]",
	"//link[@state = 'down']/@id",
	"count(//broker)",
	"//broker[link/@transport = 'udp']/@address",
}

// profileRoutes is one profile's route table.
type profileRoutes struct {
	Profile string
	// Contract names a delay contract's routes (Profile is then
	// "contract").
	Contract string
	Routes   []routeRow
}

// routeRow is a route with the broker its next hop stands for: outside
// the broker's cluster a next hop is a unit, reached through the peer of
// the route's link.
type routeRow struct {
	schema.Route
	Via string
}

// routesByProfile groups a state's route table by profile, in the broker's
// order.
func routesByProfile(st schema.State) []profileRoutes {
	var out []profileRoutes
	for _, r := range st.Routes {
		if len(out) == 0 || out[len(out)-1].Profile != r.Profile || out[len(out)-1].Contract != r.Contract {
			out = append(out, profileRoutes{Profile: r.Profile, Contract: r.Contract})
		}
		out[len(out)-1].Routes = append(out[len(out)-1].Routes, routeRow{Route: r, Via: st.Via(r)})
	}
	return out
}

func (s *Site) netmap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reps, states := s.latest()
	data := map[string]any{"Subject": q.Get("subject"), "From": q.Get("from"), "Brokers": states}
	var route *schema.SubjectRoute
	if q.Get("subject") != "" {
		rt, err := s.src.Route(q.Get("subject"), q.Get("from"))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			data["Error"] = err.Error()
		} else {
			route, data["Route"] = &rt, rt
		}
	}
	data["Map"] = networkMap(reps, states, route)
	s.render(w, "map.html", data)
}

func (s *Site) rules(w http.ResponseWriter, r *http.Request) {
	acts, err := s.src.Actions(r.Context(), 200)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, err)
		return
	}
	s.render(w, "rules.html", map[string]any{"Rules": s.src.Rules(), "Actions": acts})
}

// faviconSVG is the pages' icon: a route across three brokers.
const faviconSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#345"/>` +
	`<path d="M6 23 L15 10 L21 19 L26 8" fill="none" stroke="#7cf" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/>` +
	`<circle cx="6" cy="23" r="3.5" fill="#fff"/><circle cx="15" cy="10" r="3" fill="#fff"/><circle cx="21" cy="19" r="3" fill="#fff"/><circle cx="26" cy="8" r="3.5" fill="#fff"/></svg>`

// favicon serves the icon browsers ask every page's site for; it is open
// to all, as the sign-in page shows it too.
func favicon(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=86400")
	_, _ = w.Write([]byte(faviconSVG))
}

// shortDuration writes d as it would be typed: 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
