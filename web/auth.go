package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// Guard decides who may see the pages and who may change things.
//
//   - Admin pages (changing rules or link emulation) need the admin token:
//     in an "Authorization: Bearer <token>" header, or in the session
//     cookie that signing in at /login sets. Without a token configured
//     they are refused, never open.
//   - Read-only pages and the read API are open to anyone when Public is
//     set or no token is configured; otherwise they need the token too.
//
// The cookie holds an HMAC of the token, not the token; it is HttpOnly and
// SameSite=Strict, and a change (POST) must also come from a page of this
// site (its Origin header, when the browser sends one, names this host).
type Guard struct {
	Token  string
	Public bool
}

const sessionCookie = "wayline_session"

// session is the cookie value that stands for the token.
func (g Guard) session() string {
	m := hmac.New(sha256.New, []byte(g.Token))
	m.Write([]byte("wayline pages session"))
	return hex.EncodeToString(m.Sum(nil))
}

// Authorized reports whether r carries the admin token.
func (g Guard) Authorized(r *http.Request) bool {
	if g.Token == "" {
		return false
	}
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(h), []byte(g.Token)) == 1
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(c.Value), []byte(g.session())) == 1
	}
	return false
}

// Read guards a read-only page or API.
func (g Guard) Read(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Public || g.Token == "" || g.Authorized(r) {
			h.ServeHTTP(w, r)
			return
		}
		g.refuse(w, r)
	})
}

// Admin guards a page that changes things.
func (g Guard) Admin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case g.Token == "":
			http.Error(w, "admin pages are off: the aggregator has no admin token (--token or WAYLINE_ADMIN_TOKEN)", http.StatusForbidden)
		case !g.Authorized(r):
			g.refuse(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r):
			http.Error(w, "a change must come from this site's own pages", http.StatusForbidden)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// refuse sends a browser to the sign-in page and anything else a 401.
func (g Guard) refuse(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="wayline"`)
	http.Error(w, "this needs the admin token (Authorization: Bearer <token>, or sign in at /login)", http.StatusUnauthorized)
}

// sameOrigin reports whether a request's Origin, if any, is this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// localPath keeps a redirect target on this site: a path, not a URL.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// login serves the sign-in form and takes the token.
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.FormValue("next"))
	data := map[string]any{"Next": next, "Enabled": s.guard.Token != ""}
	if r.Method == http.MethodPost {
		if !sameOrigin(r) {
			http.Error(w, "sign in from this site's own page", http.StatusForbidden)
			return
		}
		tok := r.PostFormValue("token")
		if s.guard.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.guard.Token)) == 1 {
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.guard.session(), Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		data["Error"] = "wrong token"
	}
	s.render(w, "login.html", data)
}

// logout forgets the session cookie.
func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
