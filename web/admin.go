package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Admin is what the admin pages change.
type Admin interface {
	// SetEmulation changes a link's emulated conditions, at a broker at
	// one of its ends (the peer follows).
	SetEmulation(ctx context.Context, link string, e Emulation) error
	// AddRule adds a threshold rule; its name must be new.
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
// says so, with the ends of the first report.
type oneLink struct {
	ID, A, B string
	Up       bool
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

func (s *Site) adminPage(w http.ResponseWriter, r *http.Request) {
	reps, _ := s.latest()
	links := eachLinkOnce(rows(reps))
	slices.SortFunc(links, func(x, y oneLink) int { return strings.Compare(x.A+" "+x.B, y.A+" "+y.B) })
	s.render(w, "admin.html", map[string]any{"Links": links, "Rules": s.src.Rules(), "Done": r.URL.Query().Get("done")})
}

// adminDone goes back to the admin page, saying what was done.
func adminDone(w http.ResponseWriter, r *http.Request, what string) {
	http.Redirect(w, r, "/admin?done="+url.QueryEscape(what), http.StatusSeeOther)
}

func (s *Site) adminLink(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	e := Emulation{Delay: strings.TrimSpace(r.PostFormValue("delay")), Jitter: strings.TrimSpace(r.PostFormValue("jitter")), Loss: strings.TrimSpace(r.PostFormValue("loss"))}
	var what string
	switch act := r.PostFormValue("action"); act {
	case "down", "up":
		down := act == "down"
		e = Emulation{Down: &down}
		what = fmt.Sprintf("link %s taken %s", id, act)
	case "apply":
		if e == (Emulation{}) {
			s.fail(w, http.StatusBadRequest, fmt.Errorf("link %s: give a delay, a jitter or a loss", id))
			return
		}
		what = fmt.Sprintf("link %s: emulation changed", id)
	default:
		s.fail(w, http.StatusBadRequest, fmt.Errorf("action %q: want down, up or apply", act))
		return
	}
	if err := s.admin.SetEmulation(r.Context(), id, e); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	s.log.Info("admin: link emulation", "link", id, "remote", r.RemoteAddr, "what", what)
	adminDone(w, r, what)
}

func (s *Site) adminAddRule(w http.ResponseWriter, r *http.Request) {
	rt := RuleText{Name: strings.TrimSpace(r.PostFormValue("name")), When: strings.TrimSpace(r.PostFormValue("when")),
		Do: strings.TrimSpace(r.PostFormValue("do")), Undo: r.PostFormValue("undo") != ""}
	if err := s.admin.AddRule(r.Context(), rt); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	s.log.Info("admin: rule added", "rule", rt.Name, "when", rt.When, "remote", r.RemoteAddr)
	adminDone(w, r, "rule added")
}

func (s *Site) adminRemoveRule(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	if err := s.admin.RemoveRule(r.Context(), name); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	s.log.Info("admin: rule removed", "rule", name, "remote", r.RemoteAddr)
	adminDone(w, r, "rule removed")
}
