package signin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/signin"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// oneProvider stands in for the directory's upstream identity providers: one button.
type oneProvider struct{}

func (oneProvider) LoginOptions(context.Context) ([]signin.LoginOption, error) {
	return []signin.LoginOption{{ID: "idp_corp", Name: "Corp SSO"}}, nil
}

// The upstream hand-off: the login page shows a button per provider carrying the
// login request id, and the provider's callback finishes the sign-in with
// CompleteLogin exactly as a password does (session, inbound rules, code, redirect).
// A login id taken to another browser is refused.
func TestUpstreamLoginHandOff(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	alice := f.addUser(t, "alice", "alice-pass-phrase", "hr")
	agentID, audience, _ := f.agent(t, "hr-assistant", "human")
	spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	f.allowGroup(t, agentID, spa, "hr")
	f.Signin.Upstreams = oneProvider{}
	// The provider's callback: after verifying the upstream sign-in (here: assumed),
	// it hands the user over with the login id it was started with.
	// It runs on its own listener on the same host, so it gets the browser's cookies
	// (cookies are per host, not per port).
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := f.Directory.GetUser(r.Context(), alice.ID)
		if err != nil {
			t.Error(err)
		}
		f.Signin.CompleteLogin(w, r, r.URL.Query().Get("login_id"), u)
	}))
	defer callback.Close()

	b := signintest.NewBrowser(t, f.URL)
	fl := newFlow(spa, url.Values{"resource": {audience}})
	page := b.Get(t, f.authorizeURL(fl.params))
	start := regexpHref(page.Body)
	if !strings.HasPrefix(start, "/login/upstream/idp_corp?login_id=lgn_") || !strings.Contains(page.Body, "Sign in with Corp SSO") {
		t.Fatalf("upstream button href %q", start)
	}
	// Another browser cannot finish this browser's sign-in.
	if p := signintest.NewBrowser(t, f.URL).Get(t, callback.URL+start); p.Status != http.StatusForbidden || p.Location != nil {
		t.Fatalf("login id in another browser: HTTP %d", p.Status)
	}
	res := b.Get(t, callback.URL+start)
	if res.Location == nil || res.Location.Query().Get("code") == "" || res.Location.Query().Get("state") != "st-1" {
		t.Fatalf("upstream completion: HTTP %d location %v", res.Status, res.Location)
	}
	status, tok := f.redeem(t, spa, "", res.Location.Query().Get("code"), nil, fl.verifier)
	if status != 200 || claimsOf(t, tok["access_token"].(string)).Subject != alice.ID {
		t.Fatalf("redeem: HTTP %d %v", status, tok)
	}
	// Used up: the same login id does not sign in twice.
	if p := b.Get(t, callback.URL+start); p.Status != http.StatusBadRequest {
		t.Fatalf("second completion: HTTP %d", p.Status)
	}
	// A deactivated user handed over is refused.
	b2 := signintest.NewBrowser(t, f.URL)
	start = regexpHref(b2.Get(t, f.authorizeURL(newFlow(spa, nil).params)).Body)
	f.setActive(t, alice.ID, false)
	if p := b2.Get(t, callback.URL+start); p.Status != http.StatusForbidden || p.Location != nil || !strings.Contains(p.Body, "deactivated") {
		t.Fatalf("deactivated user: HTTP %d", p.Status)
	}
}

func regexpHref(body string) string {
	const marker = `<a class="button" href="`
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	rest := body[i+len(marker):]
	href := rest[:strings.Index(rest, `"`)]
	return strings.ReplaceAll(href, "&amp;", "&")
}
