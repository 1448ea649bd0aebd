package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeAdmin records what the admin pages ask for.
type fakeAdmin struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeAdmin) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeAdmin) SetEmulation(_ context.Context, link string, e Emulation) error {
	if link == "nope" {
		return errors.New("no broker reports link <b>nope</b>")
	}
	down := "-"
	if e.Down != nil {
		down = UpDown(!*e.Down)
	}
	f.note("emulation " + link + " " + down + " " + e.Delay + "/" + e.Jitter + "/" + e.Loss)
	return nil
}

func (f *fakeAdmin) AddRule(_ context.Context, r RuleText) error {
	var errs []error
	if r.When == "" {
		errs = append(errs, errors.New("when: required"))
	}
	if r.Do == "fly" {
		errs = append(errs, errors.New(`do: unknown action "fly"`))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.note("add " + r.Name + " " + r.When + " " + r.Do)
	return nil
}

func (f *fakeAdmin) RemoveRule(_ context.Context, name string) error {
	f.note("remove " + name)
	return nil
}

func startGuarded(t *testing.T, g Guard, admin Admin) *httptest.Server {
	mux := http.NewServeMux()
	NewSite(newFakeSource(), SiteConfig{Guard: g, Admin: admin}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request without following redirects.
func do(t *testing.T, method, u string, form url.Values, hdr map[string]string) *http.Response {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestGuardReadPages(t *testing.T) {
	const tok = "s3cret"
	srv := startGuarded(t, Guard{Token: tok}, nil)
	html := map[string]string{"Accept": "text/html"}
	if r := do(t, "GET", srv.URL+"/map", nil, html); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?next=%2Fmap" {
		t.Errorf("a browser without the token: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := do(t, "GET", srv.URL+"/map", nil, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a client without the token: %d", r.StatusCode)
	}
	if r := do(t, "GET", srv.URL+"/map", nil, map[string]string{"Authorization": "Bearer wrong"}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d", r.StatusCode)
	}
	if r := do(t, "GET", srv.URL+"/map", nil, map[string]string{"Authorization": "Bearer " + tok}); r.StatusCode != http.StatusOK {
		t.Errorf("the token: %d", r.StatusCode)
	}
	// Signing in: a wrong token is refused, the right one sets a cookie
	// that is not the token, and sends the browser on, but only within
	// the site.
	if r := do(t, "POST", srv.URL+"/login", url.Values{"token": {"wrong"}, "next": {"/map"}}, nil); r.StatusCode != http.StatusUnauthorized || len(r.Cookies()) != 0 {
		t.Errorf("sign in with a wrong token: %d %v", r.StatusCode, r.Cookies())
	}
	r := do(t, "POST", srv.URL+"/login", url.Values{"token": {tok}, "next": {"//evil.example/x"}}, nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" || len(r.Cookies()) != 1 {
		t.Fatalf("sign in: %d %q %v", r.StatusCode, r.Header.Get("Location"), r.Cookies())
	}
	c := r.Cookies()[0]
	if strings.Contains(c.Value, tok) || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie %+v", c)
	}
	if r := do(t, "GET", srv.URL+"/map", nil, map[string]string{"Cookie": c.Name + "=" + c.Value}); r.StatusCode != http.StatusOK {
		t.Errorf("with the session cookie: %d", r.StatusCode)
	}
	if r := do(t, "POST", srv.URL+"/login", url.Values{"token": {tok}}, map[string]string{"Origin": "http://evil.example"}); r.StatusCode != http.StatusForbidden {
		t.Errorf("sign in from another site: %d", r.StatusCode)
	}
	// Public: reading is open.
	pub := startGuarded(t, Guard{Token: tok, Public: true}, nil)
	if r := do(t, "GET", pub.URL+"/map", nil, nil); r.StatusCode != http.StatusOK {
		t.Errorf("public: %d", r.StatusCode)
	}
}

func TestAdminPages(t *testing.T) {
	const tok = "s3cret"
	admin := &fakeAdmin{}
	srv := startGuarded(t, Guard{Token: tok, Public: true}, admin)
	auth := map[string]string{"Authorization": "Bearer " + tok}
	// Public reading does not open the admin pages.
	if r := do(t, "GET", srv.URL+"/admin", nil, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("admin page without the token: %d", r.StatusCode)
	}
	if r := do(t, "POST", srv.URL+"/admin/links/"+fakeLink0, url.Values{"action": {"down"}}, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a change without the token: %d", r.StatusCode)
	}
	if r := do(t, "GET", srv.URL+"/admin", nil, auth); r.StatusCode != http.StatusOK {
		t.Errorf("admin page: %d", r.StatusCode)
	}
	code, text, el := getPageWith(t, srv.URL+"/admin", auth)
	if code != http.StatusOK || !strings.Contains(text, fakeLink0[:8]) || el["form"] < 6 || el["b"] > 0 {
		t.Errorf("admin page: %d, %d forms\n%.600s", code, el["form"], text)
	}
	for _, c := range []struct {
		path string
		form url.Values
		want int
	}{
		{"/admin/links/" + fakeLink0, url.Values{"action": {"down"}}, http.StatusSeeOther},
		{"/admin/links/" + fakeLink0, url.Values{"action": {"up"}}, http.StatusSeeOther},
		{"/admin/links/" + fakeLink1, url.Values{"action": {"apply"}, "delay": {"40ms"}, "loss": {" 2% "}}, http.StatusSeeOther},
		{"/admin/links/" + fakeLink1, url.Values{"action": {"apply"}}, http.StatusBadRequest},
		{"/admin/links/" + fakeLink1, url.Values{"action": {"explode"}}, http.StatusBadRequest},
		{"/admin/links/nope", url.Values{"action": {"down"}}, http.StatusBadRequest},
		{"/admin/rules", url.Values{"name": {"lossy"}, "when": {"//link[@loss > 0.05]"}, "do": {"exclude-from-routing"}, "undo": {"1"}}, http.StatusSeeOther},
		{"/admin/rules", url.Values{"name": {"x"}}, http.StatusBadRequest},
		{"/admin/rules/remove", url.Values{"name": {"lossy"}}, http.StatusSeeOther},
	} {
		if r := do(t, "POST", srv.URL+c.path, c.form, auth); r.StatusCode != c.want {
			t.Errorf("POST %s %v: %d, want %d", c.path, c.form, r.StatusCode, c.want)
		}
	}
	want := []string{
		"emulation " + fakeLink0 + " down //", "emulation " + fakeLink0 + " up //", "emulation " + fakeLink1 + " - 40ms//2%",
		"add lossy //link[@loss > 0.05] exclude-from-routing", "remove lossy",
	}
	if strings.Join(admin.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("admin calls:\n%s\nwant:\n%s", strings.Join(admin.calls, "\n"), strings.Join(want, "\n"))
	}
	// A change from another site's page is refused, token or not.
	h := map[string]string{"Authorization": "Bearer " + tok, "Origin": "http://evil.example"}
	if r := do(t, "POST", srv.URL+"/admin/links/"+fakeLink0, url.Values{"action": {"down"}}, h); r.StatusCode != http.StatusForbidden {
		t.Errorf("a change from another site: %d", r.StatusCode)
	}
	// Without a token configured, the admin pages are off.
	off := startGuarded(t, Guard{}, admin)
	if r := do(t, "GET", off.URL+"/admin", nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("admin pages with no token set: %d", r.StatusCode)
	}
}

// TestAdminPageShowsWhatIsWrong: the admin page's fields hold each link's
// conditions now; a rule with mistakes brings the admin page back with
// every mistake listed and the form as it was typed, not a dead end; an
// unknown link is said on the page too.
func TestAdminPageShowsWhatIsWrong(t *testing.T) {
	const tok = "s3cret"
	srv := startGuarded(t, Guard{Token: tok, Public: true}, &fakeAdmin{})
	raw := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, page := raw("GET", "/admin", nil)
	row := page[strings.Index(page, `<tr data-link="`+fakeLink0+`"`):]
	row = row[:strings.Index(row, "</tr>")]
	for _, want := range []string{`name="delay" size="7" value="45ms"`, `name="jitter" size="7" value="3ms"`, `name="loss" size="5" value="1%"`} {
		if !strings.Contains(row, want) {
			t.Errorf("link row lacks %s:\n%s", want, row)
		}
	}
	code, page := raw("POST", "/admin/rules", url.Values{"name": {"mine"}, "when": {""}, "do": {"fly"}})
	if code != http.StatusBadRequest || !strings.Contains(page, "<h1>Admin</h1>") || !strings.Contains(page, `data-live="off"`) {
		t.Fatalf("a bad rule: %d\n%.300s", code, page)
	}
	for _, want := range []string{"<li>when: required</li>", "<li>do: unknown action &#34;fly&#34;</li>", `name="name" value="mine"`, `list="actions" value="fly"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page after a bad rule lacks %s", want)
		}
	}
	code, page = raw("POST", "/admin/links/nope", url.Values{"action": {"down"}})
	if code != http.StatusBadRequest || !strings.Contains(page, "Not done: ") || !strings.Contains(page, "<h1>Admin</h1>") {
		t.Errorf("an unknown link: %d\n%.300s", code, page)
	}
}
