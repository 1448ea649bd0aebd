package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/wayline/wayline/schema"
)

// Admin is what the admin pages change.
type Admin interface {
	// SetEmulation changes a link's emulated conditions, at a broker at
	// one of its ends (the peer follows).
	SetEmulation(ctx context.Context, link string, e Emulation) error
	// AddRule adds a threshold rule; its name must be new. An error may
	// join several problems (errors.Join): the page lists each.
	AddRule(ctx context.Context, r RuleText) error
	// RemoveRule removes a rule, undoing what it did when it undoes.
	RemoveRule(ctx context.Context, name string) error
}

// Emulation is a change of a link's emulated conditions as the admin page
// takes it: quantities as typed ("40ms", "2%"); "" leaves one as it is.
type Emulation struct {
	Delay, Jitter, Loss string
	Down                *bool // nil: as it is
}

// oneLink is a link once, whichever ends report it: down when either end
// says so, with the ends of the first report, and its emulated conditions
// as a routing state says them.
type oneLink struct {
	ID, A, B string
	Up       bool
	Emu      schema.StateEmulation
}

// eachLinkOnce is the links of rows, each once, in the order they come.
func eachLinkOnce(rows []linkRow) []oneLink {
	seen := map[string]int{}
	var links []oneLink
	for _, l := range rows {
		if i, ok := seen[l.ID]; ok {
			links[i].Up = links[i].Up && l.Up
			continue
		}
		seen[l.ID] = len(links)
		links = append(links, oneLink{ID: l.ID, A: l.Broker, B: l.B, Up: l.Up})
	}
	return links
}

// adminData is what the admin page shows: every link, with its current
// conditions, and the rules.
func (s *Site) adminData(r *http.Request) map[string]any {
	reps, states := s.latest()
	links := eachLinkOnce(rows(reps))
	emu := map[string]schema.StateEmulation{}
	for _, st := range states {
		for _, l := range st.Links {
			if l.Emulation != nil {
				emu[l.ID] = *l.Emulation
			}
		}
	}
	for i := range links {
		links[i].Emu = emu[links[i].ID]
	}
	slices.SortFunc(links, func(x, y oneLink) int { return strings.Compare(x.A+" "+x.B, y.A+" "+y.B) })
	return map[string]any{"Links": links, "Rules": s.src.Rules(), "Done": r.URL.Query().Get("done"), "NewRule": RuleText{}}
}

func (s *Site) adminPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, "admin.html", s.adminData(r))
}

// adminRefused shows the admin page again with what was wrong with a
// change, code 400: every problem, and the form as it was sent, so that
// it can be put right rather than typed again.
func (s *Site) adminRefused(w http.ResponseWriter, r *http.Request, data map[string]any) {
	page := s.adminData(r)
	maps.Copy(page, data)
	w.WriteHeader(http.StatusBadRequest)
	s.render(w, "admin.html", page)
}

// problems lists the errors err joins, or err alone.
func problems(err error) []string {
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range joined.Unwrap() {
		out = append(out, e.Error())
	}
	return out
}

// adminDone goes back to the admin page, saying what was done.
func adminDone(w http.ResponseWriter, r *http.Request, what string) {
	http.Redirect(w, r, "/admin?done="+url.QueryEscape(what), http.StatusSeeOther)
}

func (s *Site) adminLink(w http.ResponseWriter, r *http.Request) {
	id, err := s.linkID(r.PathValue("id"))
	if err != nil {
		s.adminRefused(w, r, map[string]any{"LinkError": err.Error()})
		return
	}
	e := Emulation{Delay: strings.TrimSpace(r.PostFormValue("delay")), Jitter: strings.TrimSpace(r.PostFormValue("jitter")), Loss: strings.TrimSpace(r.PostFormValue("loss"))}
	var what string
	switch act := r.PostFormValue("action"); act {
	case "down", "up":
		down := act == "down"
		e = Emulation{Down: &down}
		what = fmt.Sprintf("link %s taken %s", id, act)
	case "apply":
		if e == (Emulation{}) {
			s.adminRefused(w, r, map[string]any{"LinkError": fmt.Sprintf("link %s: give a delay, a jitter or a loss", id)})
			return
		}
		what = fmt.Sprintf("link %s: emulation changed", id)
	default:
		s.adminRefused(w, r, map[string]any{"LinkError": fmt.Sprintf("action %q: want down, up or apply", act)})
		return
	}
	if err := s.admin.SetEmulation(r.Context(), id, e); err != nil {
		s.adminRefused(w, r, map[string]any{"LinkError": err.Error()})
		return
	}
	s.log.Info("admin: link emulation", "link", id, "remote", r.RemoteAddr, "what", what)
	adminDone(w, r, what)
}

func (s *Site) adminAddRule(w http.ResponseWriter, r *http.Request) {
	rt := RuleText{Name: strings.TrimSpace(r.PostFormValue("name")), When: strings.TrimSpace(r.PostFormValue("when")),
		Do: strings.TrimSpace(r.PostFormValue("do")), Undo: r.PostFormValue("undo") != ""}
	if err := s.admin.AddRule(r.Context(), rt); err != nil {
		s.adminRefused(w, r, map[string]any{"RuleErrors": problems(err), "NewRule": rt})
		return
	}
	s.log.Info("admin: rule added", "rule", rt.Name, "when", rt.When, "remote", r.RemoteAddr)
	adminDone(w, r, "rule added")
}

func (s *Site) adminRemoveRule(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	if err := s.admin.RemoveRule(r.Context(), name); err != nil {
		s.adminRefused(w, r, map[string]any{"RuleErrors": problems(err)})
		return
	}
	s.log.Info("admin: rule removed", "rule", name, "remote", r.RemoteAddr)
	adminDone(w, r, "rule removed")
}
