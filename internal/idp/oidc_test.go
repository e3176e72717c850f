package idp_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/idp"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/user"
)

var ctx = context.Background()

const redirectURI = "https://app.example/callback"

// oidcProvider registers the upstream as an identity provider.
func oidcProvider(t *testing.T, s *servertest.Server, up *upstream, claims map[string]any) idp.Provider {
	t.Helper()
	body := map[string]any{"name": "Corp SSO", "type": "oidc", "oidc": map[string]any{
		"issuer": up.URL, "client_id": up.ClientID, "client_secret": up.Secret, "scopes": []string{"openid", "profile", "email"},
		"userinfo": true, "claims": claims}}
	var p idp.Provider
	if code := s.Do(t, "POST", "/api/v1/identity-providers", body, &p); code != 201 {
		t.Fatalf("create provider: HTTP %d", code)
	}
	return p
}

var upstreamLink = regexp.MustCompile(`href="(/login/upstream/[^"]+)"`)

// startSignIn opens the login page of an authorization request and follows the
// "Sign in with Corp SSO" button to the upstream's authorization URL.
func startSignIn(t *testing.T, s *servertest.Server, b *signintest.Browser, clientID string) *url.URL {
	t.Helper()
	_, challenge := signintest.PKCE()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI}, "scope": {"openid profile"},
		"state": {"client-state"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	page := b.Get(t, s.URL+"/oauth2/authorize?"+q.Encode())
	m := upstreamLink.FindStringSubmatch(page.Body)
	if page.Status != 200 || m == nil || !strings.Contains(page.Body, "Sign in with Corp SSO") {
		t.Fatalf("login page (HTTP %d) has no upstream button:\n%s", page.Status, page.Body)
	}
	toUpstream := b.Get(t, s.URL+html.UnescapeString(m[1]))
	if toUpstream.Status != http.StatusFound || toUpstream.Location == nil {
		t.Fatalf("upstream start: HTTP %d %s", toUpstream.Status, toUpstream.Body)
	}
	return toUpstream.Location
}

type env struct {
	tb       testing.TB
	s        *servertest.Server
	up       *upstream
	p        idp.Provider
	clientID string
}

func setup(t *testing.T) env {
	t.Helper()
	s := servertest.Start(t, servertest.Options{})
	up := newUpstream(t)
	p := oidcProvider(t, s, up, map[string]any{"username": "preferred_username", "groups": "groups",
		"attributes": map[string]string{"department": "org.department", "employee_type": "https://corp.example/claims.type"}})
	clientID, _ := signintest.Client(t, s, "web", []string{redirectURI}, nil)
	return env{s: s, up: up, p: p, clientID: clientID}
}

var carol = map[string]any{"sub": "upstream-sub-carol", "preferred_username": "carol@corp.example", "email": "carol@corp.example",
	"name": "Carol Chen", "org": map[string]any{"department": "HR"}, "https://corp.example/claims.type": "employee"}

// The real-component test: a second, independent OIDC provider signs the
// user in; agentguard verifies its ID token (signature, audience, nonce, PKCE on the
// code), provisions the user with the mapped claims and groups (from userinfo),
// and the sign-in continues to the client with a code.
func TestOIDCSignIn(t *testing.T) {
	e := setup(t)
	e.up.SignInAs(carol)
	e.up.extra = map[string]any{"groups": []any{"hr", "managers"}}
	b := signintest.NewBrowser(t, e.s.URL)
	authURL := startSignIn(t, e.s, b, e.clientID)
	aq := authURL.Query()
	if authURL.Host != strings.TrimPrefix(e.up.URL, "http://") || aq.Get("code_challenge_method") != "S256" || aq.Get("nonce") == "" ||
		aq.Get("state") == "" || aq.Get("redirect_uri") != e.s.URL+idp.CallbackPath {
		t.Fatalf("upstream authorization URL %s", authURL)
	}
	back := b.Get(t, authURL.String())
	if back.Location == nil || !strings.HasPrefix(back.Location.String(), redirectURI+"?") ||
		back.Location.Query().Get("code") == "" || back.Location.Query().Get("state") != "client-state" {
		t.Fatalf("after the upstream: HTTP %d %v %s", back.Status, back.Location, back.Body)
	}
	var us struct{ Items []user.User }
	e.s.Do(t, "GET", "/api/v1/users?source="+url.QueryEscape(e.p.Source()), nil, &us)
	if len(us.Items) != 1 {
		t.Fatalf("provisioned users %+v", us.Items)
	}
	u := us.Items[0]
	if u.Username != "carol@corp.example" || u.Email != "carol@corp.example" || u.DisplayName != "Carol Chen" || u.ExternalID != "upstream-sub-carol" ||
		u.Attributes["department"] != "HR" || u.Attributes["employee_type"] != "employee" || !slices.Equal(u.Groups, []string{"hr", "managers"}) || u.HasPassword {
		t.Fatalf("provisioned user %+v", u)
	}
	// A second sign-in updates the same user: the upstream moved her to Sales and
	// out of managers; a group an admin added stays.
	e.s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "local-admins", "members": []string{u.ID}}, nil)
	next := map[string]any{}
	for k, v := range carol {
		next[k] = v
	}
	next["org"] = map[string]any{"department": "Sales"}
	delete(next, "https://corp.example/claims.type")
	e.up.SignInAs(next)
	e.up.extra = map[string]any{"groups": []any{"hr"}}
	b2 := signintest.NewBrowser(t, e.s.URL)
	if back := b2.Get(t, startSignIn(t, e.s, b2, e.clientID).String()); back.Location == nil || back.Location.Query().Get("code") == "" {
		t.Fatalf("second sign-in: HTTP %d %s", back.Status, back.Body)
	}
	var again user.User
	e.s.Do(t, "GET", "/api/v1/users/"+u.ID, nil, &again)
	if again.Attributes["department"] != "Sales" || again.Attributes["employee_type"] != "" || !slices.Equal(again.Groups, []string{"hr", "local-admins"}) {
		t.Fatalf("after the second sign-in %+v", again)
	}
	var es struct{ Items []audit.Event }
	e.s.Do(t, "GET", "/api/v1/audit/events?action=upstream.login&decision=allow", nil, &es)
	if len(es.Items) != 2 || es.Items[0].User != u.ID || es.Items[0].Resource != e.p.ID || es.Items[0].Category != "inbound" {
		t.Fatalf("audit %+v", es.Items)
	}
}

// Every way the answer can be wrong ends on a plain error page (never a redirect),
// audited as a refused upstream sign-in, and provisions nobody.
func TestOIDCSignInRefusals(t *testing.T) {
	tests := []struct {
		name    string
		arrange func(e env)
		status  int
		page    string // text on the error page
		reason  string // in the audit event
	}{
		{"the user declined at the provider", func(e env) { e.up.Deny = true }, 403, "did not succeed", "access_denied"},
		{"ID token signed by another key", func(e env) { e.up.BadSignature = true }, 502, "could not verify", "not valid"},
		{"ID token for another client", func(e env) { e.up.WrongAudience = true }, 502, "could not verify", "not valid"},
		{"ID token with another nonce", func(e env) { e.up.BadNonce = true }, 502, "could not verify", "nonce"},
		{"no username claim", func(e env) { e.up.SignInAs(map[string]any{"sub": "x"}) }, 403, "claim", "preferred_username"},
		{"the username is a local user's", func(e env) {
			e.s.Do(e.tb, "POST", "/api/v1/users", map[string]any{"username": "carol@corp.example", "password": "correct horse battery staple"}, nil)
		}, 409, "already exists", "another account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := captureLogs(t)
			e := setup(t)
			e.tb = t
			e.up.SignInAs(carol)
			tt.arrange(e)
			b := signintest.NewBrowser(t, e.s.URL)
			page := b.Get(t, startSignIn(t, e.s, b, e.clientID).String())
			if page.Status != tt.status || page.Location != nil || !strings.Contains(page.Body, tt.page) {
				t.Fatalf("HTTP %d (location %v):\n%s", page.Status, page.Location, page.Body)
			}
			if strings.Contains(page.Body, e.up.Secret) || strings.Contains(logs.String(), e.up.Secret) {
				t.Fatal("the error page or the log shows the client secret")
			}
			var es struct{ Items []audit.Event }
			e.s.Do(t, "GET", "/api/v1/audit/events?action=upstream.login&decision=deny", nil, &es)
			if len(es.Items) != 1 || !strings.Contains(es.Items[0].Reason, tt.reason) {
				t.Fatalf("audit %+v, want a reason with %q", es.Items, tt.reason)
			}
			var us struct{ Items []user.User }
			e.s.Do(t, "GET", "/api/v1/users?source="+url.QueryEscape(e.p.Source()), nil, &us)
			if len(us.Items) != 0 {
				t.Fatalf("provisioned %+v", us.Items)
			}
		})
	}
}

// The callback belongs to the browser that started the sign-in and is good once:
// another browser, a forged state and a replay are refused.
func TestOIDCCallbackBinding(t *testing.T) {
	e := setup(t)
	e.up.SignInAs(carol)
	b := signintest.NewBrowser(t, e.s.URL)
	authURL := startSignIn(t, e.s, b, e.clientID)
	// Let the upstream answer, but stop before the callback to keep its URL.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback, _ := resp.Location()

	// Another browser (no state cookie) cannot use it.
	other := signintest.NewBrowser(t, e.s.URL)
	if p := other.Get(t, callback.String()); p.Status != 400 || p.Location != nil || !strings.Contains(p.Body, "not started in this browser") {
		t.Fatalf("callback in another browser: HTTP %d %s", p.Status, p.Body)
	}
	// A forged state in the right browser neither.
	forged := *callback
	fq := forged.Query()
	fq.Set("state", strings.Repeat("A", 43))
	forged.RawQuery = fq.Encode()
	if p := b.Get(t, forged.String()); p.Status != 400 || p.Location != nil {
		t.Fatalf("forged state: HTTP %d %s", p.Status, p.Body)
	}
	// The real one signs in once.
	stateCookies := b.Client.Jar.Cookies(callback)
	if len(stateCookies) == 0 {
		t.Fatal("no state cookie for the callback")
	}
	if p := b.Get(t, callback.String()); p.Location == nil || !strings.HasPrefix(p.Location.String(), redirectURI) {
		t.Fatalf("callback: HTTP %d %s", p.Status, p.Body)
	}
	// Replayed (cookie put back by an attacker who copied it): refused by the
	// one-time state record, without a second token request upstream.
	tokens := e.up.Tokens
	b.Client.Jar.SetCookies(callback, stateCookies)
	if p := b.Get(t, callback.String()); p.Status != 400 || p.Location != nil {
		t.Fatalf("replayed callback: HTTP %d %s", p.Status, p.Body)
	}
	if e.up.Tokens != tokens {
		t.Fatal("a replayed callback reached the upstream token endpoint")
	}
	// Unknown or disabled providers.
	if p := b.Get(t, e.s.URL+"/login/upstream/idp_nonesuch?login_id=x"); p.Status != 404 {
		t.Fatalf("unknown provider: HTTP %d", p.Status)
	}
	e.s.Do(t, "PATCH", "/api/v1/identity-providers/"+e.p.ID, map[string]any{"enabled": false}, nil)
	if p := b.Get(t, e.s.URL+"/login/upstream/"+e.p.ID+"?login_id=x"); p.Status != 404 {
		t.Fatalf("disabled provider: HTTP %d", p.Status)
	}
	if p := b.Get(t, e.s.URL+"/login/upstream/"+e.p.ID); p.Status != 400 {
		t.Fatalf("no login_id: HTTP %d", p.Status)
	}
}
