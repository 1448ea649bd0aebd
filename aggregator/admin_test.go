package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wayline/wayline/transports"
)

// post sends a form with the admin token and returns the status.
func post(t *testing.T, u string, form url.Values, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminPagesSteerBrokers: through the admin pages, with the token, a
// link is taken down and brought back at its broker, and a rule added at
// run time acts and, removed, undoes what it did. Every change is recorded
// as an action.
func TestAdminPagesSteerBrokers(t *testing.T) {
	a, _, linkID := pair(t, 100*time.Millisecond, &transports.Emulation{Delay: 2 * time.Millisecond})
	agg := startAggregator(t, a.ClientURL(), nil, "")
	waitFor(t, "reports", 10*time.Second, func() bool { return len(agg.Latest()) == 2 })
	base := "http://" + agg.HTTPAddr()
	linkUp := func() bool {
		for _, l := range a.Links() {
			if l.ID == linkID {
				return l.State == "up"
			}
		}
		return false
	}
	waitFor(t, "the link up", 10*time.Second, linkUp)
	if code := post(t, base+"/admin/links/"+linkID, url.Values{"action": {"down"}}, ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", code)
	}
	if code := post(t, base+"/admin/links/"+linkID, url.Values{"action": {"down"}}, token); code != http.StatusSeeOther {
		t.Fatalf("take the link down: %d", code)
	}
	waitFor(t, "the link down", 10*time.Second, func() bool { return !linkUp() })
	if code := post(t, base+"/admin/links/"+linkID, url.Values{"action": {"up"}}, token); code != http.StatusSeeOther {
		t.Fatalf("bring the link up: %d", code)
	}
	waitFor(t, "the link up again", 10*time.Second, linkUp)
	if code := post(t, base+"/admin/links/"+linkID, url.Values{"action": {"apply"}, "delay": {"soon"}}, token); code != http.StatusBadRequest {
		t.Errorf("a bad delay: %d, want 400", code)
	}

	// A rule that matches at once, excluding the link; removed, it puts
	// the link back.
	form := url.Values{"name": {"all"}, "when": {"//link"}, "do": {"exclude-from-routing"}, "undo": {"1"}}
	if code := post(t, base+"/admin/rules", form, token); code != http.StatusSeeOther {
		t.Fatalf("add a rule: %d", code)
	}
	if code := post(t, base+"/admin/rules", form, token); code != http.StatusBadRequest {
		t.Errorf("a rule of the same name: %d, want 400", code)
	}
	for _, bad := range []url.Values{{"name": {"b"}, "when": {"//link["}, "do": {"exclude-from-routing"}}, {"name": {"c"}, "when": {"//link"}, "do": {"interval 1ms"}}} {
		if code := post(t, base+"/admin/rules", bad, token); code != http.StatusBadRequest {
			t.Errorf("bad rule %v: %d, want 400", bad, code)
		}
	}
	excluded := func() bool {
		for _, l := range a.Links() {
			if l.ID == linkID {
				return l.Excluded
			}
		}
		return false
	}
	waitFor(t, "the added rule to act", 10*time.Second, excluded)
	if code := post(t, base+"/admin/rules/remove", url.Values{"name": {"all"}}, token); code != http.StatusSeeOther {
		t.Fatalf("remove the rule: %d", code)
	}
	if excluded() {
		t.Error("the link is still excluded after its rule was removed")
	}
	if len(agg.Rules()) != 0 {
		t.Errorf("rules left: %+v", agg.Rules())
	}
	acts, err := agg.store.Actions(context.Background(), time.Time{}, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, act := range acts {
		if act.OK {
			got = append(got, act.Rule+": "+act.Action)
		}
	}
	js, _ := json.Marshal(got)
	for _, want := range []string{"admin: emulation down", "admin: emulation up", "all: exclude-from-routing", "all: undo exclude-from-routing"} {
		if !strings.Contains(string(js), want) {
			t.Errorf("no action %q among %s", want, js)
		}
	}
}

// TestAddRuleTextNamesEveryProblem: a rule from the admin page with
// several mistakes is refused with each of them, and the interval form
// the page suggests is the one it takes.
func TestAddRuleTextNamesEveryProblem(t *testing.T) {
	agg, err := New(context.Background(), Config{Domain: "na", BrokerURL: "nats://127.0.0.1:1", DB: "sqlite:" + filepath.Join(t.TempDir(), "agg.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Close()
	if err := agg.AddRuleText("lossy", "//link[@loss > 0.05]", "interval 250ms", true); err != nil {
		t.Fatalf("a good rule: %v", err)
	}
	if err := agg.AddRuleText("braced", "//link[@loss > 0.1]", "{interval: 100ms}", false); err != nil {
		t.Fatalf("a rule with the config file's interval: %v", err)
	}
	err = agg.AddRuleText("lossy", "//link[@loss >", "interval 1ms", false)
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Fatalf("three mistakes: %v, want three errors", err)
	}
	for _, want := range []string{"when: bad XPath query: syntax error", "do: interval \"1ms\": want a duration from 10ms to 60s", `name: there is a rule "lossy" already`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	err = agg.AddRuleText("x", "", "fly", false)
	for _, want := range []string{"when: required", `do: unknown action "fly": want stop-measurement`, "interval 250ms on the admin page"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	if n := len(agg.Rules()); n != 2 {
		t.Errorf("%d rules in force, want the 2 good ones", n)
	}
}
