package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// flow is one authorization request of a test client.
type flow struct {
	params   url.Values
	verifier string
}

func newFlow(clientID string, extra url.Values) flow {
	verifier, challenge := signintest.PKCE()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {appCallback}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"st-1"}, "nonce": {"n-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return flow{params: q, verifier: verifier}
}

// code gets a code for fl as a browser: through the login page if the browser is not
// signed in yet.
func (f *fixture) code(t *testing.T, b *signintest.Browser, fl flow, username, password string) string {
	t.Helper()
	p := b.Get(t, f.authorizeURL(fl.params))
	loc := p.Location
	if loc == nil {
		loc = signIn(t, b, f.authorizeURL(fl.params), username, password)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: redirected to %s", loc)
	}
	return code
}

// redeem posts an authorization_code request as the client (public: client_id in
// the body; confidential: Basic).
func (f *fixture) redeem(t *testing.T, clientID, secret, code string, edit func(url.Values), verifier string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCallback}, "code_verifier": {verifier}}
	if secret == "" {
		form.Set("client_id", clientID)
	}
	if edit != nil {
		edit(form)
	}
	if secret != "" {
		return tokenForm(t, f.URL, form, clientID, secret)
	}
	return tokenForm(t, f.URL, form, "", "")
}

func (f *fixture) refresh(t *testing.T, clientID, secret, rt string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if secret == "" {
		form.Set("client_id", clientID)
		return tokenForm(t, f.URL, form, "", "")
	}
	return tokenForm(t, f.URL, form, clientID, secret)
}

// active introspects tok as an agent.
func (f *fixture) active(t *testing.T, tok string) bool {
	t.Helper()
	id, _, sec := f.agent(t, "introspector", "machine")
	_, out := postForm(t, f.URL+"/oauth2/introspect", url.Values{"token": {tok}}, id, sec)
	return out["active"] == true
}

func errCode(out map[string]any) string { s, _ := out["error"].(string); return s }

// Codes: single use, short-lived, bound to the client, the redirect URI and the PKCE
// challenge. Every violation is invalid_grant; a replay revokes what the code got.
func TestAuthorizationCodeRefusals(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) { testCodeRefusals(t, d) })
	}
}

func testCodeRefusals(t *testing.T, d sqlstore.Dialect) {
	f := start(t, d)
	f.addUser(t, "alice", "alice-pass-phrase")
	spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	other, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	web, webSecret := signintest.Client(t, f.Server, "web", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)

	tests := []struct {
		name     string
		clientID string
		secret   string
		edit     func(url.Values)
		verifier func(fl flow) string
	}{
		{"missing verifier", spa, "", func(q url.Values) { q.Del("code_verifier") }, nil},
		{"wrong verifier", spa, "", nil, func(flow) string { v, _ := signintest.PKCE(); return v }},
		{"verifier of another flow", spa, "", nil, func(flow) string { return newFlow(spa, nil).verifier }},
		{"the challenge as verifier", spa, "", nil, func(fl flow) string { return fl.params.Get("code_challenge") }},
		{"another client", other, "", nil, nil},
		{"another redirect_uri", spa, "", func(q url.Values) { q.Set("redirect_uri", appCallback+"/") }, nil},
		{"no redirect_uri", spa, "", func(q url.Values) { q.Del("redirect_uri") }, nil},
		{"a confidential client's code without its verifier", web, webSecret, func(q url.Values) { q.Del("code_verifier") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner := spa
			if tt.clientID == web {
				owner = web
			}
			fl := newFlow(owner, nil)
			code := f.code(t, b, fl, "alice", "alice-pass-phrase")
			verifier := fl.verifier
			if tt.verifier != nil {
				verifier = tt.verifier(fl)
			}
			status, out := f.redeem(t, tt.clientID, tt.secret, code, tt.edit, verifier)
			if status != http.StatusBadRequest || errCode(out) != "invalid_grant" {
				t.Fatalf("HTTP %d %v, want invalid_grant", status, out)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		fl := newFlow(spa, nil)
		code := f.code(t, b, fl, "alice", "alice-pass-phrase")
		f.Clock.Advance(61 * time.Second)
		status, out := f.redeem(t, spa, "", code, nil, fl.verifier)
		if status != http.StatusBadRequest || errCode(out) != "invalid_grant" || !strings.Contains(out["error_description"].(string), "expired") {
			t.Fatalf("HTTP %d %v", status, out)
		}
	})

	t.Run("replay revokes the tokens", func(t *testing.T) {
		fl := newFlow(spa, nil)
		code := f.code(t, b, fl, "alice", "alice-pass-phrase")
		status, first := f.redeem(t, spa, "", code, nil, fl.verifier)
		if status != 200 {
			t.Fatalf("first redemption: HTTP %d %v", status, first)
		}
		at, rt := first["access_token"].(string), first["refresh_token"].(string)
		if !f.active(t, at) {
			t.Fatal("the access token is inactive before the replay")
		}
		status, out := f.redeem(t, spa, "", code, nil, fl.verifier)
		if status != 400 || errCode(out) != "invalid_grant" || !strings.Contains(out["error_description"].(string), "already used") {
			t.Fatalf("replay: HTTP %d %v", status, out)
		}
		if f.active(t, at) {
			t.Fatal("the access token from a replayed code is still active")
		}
		if status, out := f.refresh(t, spa, "", rt); status != 400 || errCode(out) != "invalid_grant" {
			t.Fatalf("refresh token from a replayed code: HTTP %d %v", status, out)
		}
	})

	// RFC 8707 §2.2: a client may name the resource again when redeeming the code
	// (MCP clients do). The same target is accepted; another one is invalid_target
	// and does not spend the code.
	t.Run("resource repeated at redemption", func(t *testing.T) {
		fl := newFlow(spa, nil)
		code := f.code(t, b, fl, "alice", "alice-pass-phrase")
		status, out := f.redeem(t, spa, "", code, func(q url.Values) { q.Set("resource", "https://elsewhere.example") }, fl.verifier)
		if status != http.StatusBadRequest || errCode(out) != "invalid_target" {
			t.Fatalf("another resource: HTTP %d %v, want invalid_target", status, out)
		}
		status, out = f.redeem(t, spa, "", code, func(q url.Values) { q.Set("resource", f.URL) }, fl.verifier)
		if status != http.StatusOK {
			t.Fatalf("the code's own target (the issuer): HTTP %d %v", status, out)
		}
	})

	t.Run("a failed attempt does not spend the code", func(t *testing.T) {
		fl := newFlow(web, nil)
		code := f.code(t, b, fl, "alice", "alice-pass-phrase")
		if status, _ := f.redeem(t, web, "wrong-secret", code, nil, fl.verifier); status != http.StatusUnauthorized {
			t.Fatalf("wrong client secret: HTTP %d, want 401", status)
		}
		if status, out := f.redeem(t, web, webSecret, code, nil, fl.verifier); status != 200 {
			t.Fatalf("then the real client: HTTP %d %v", status, out)
		}
	})
}

// Refresh tokens rotate; presenting a spent one revokes the whole family and the
// access tokens issued from it; a refresh token presented by another client is
// refused and its family revoked.
func TestRefreshReuseRevokesTheFamily(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			f := start(t, d)
			alice := f.addUser(t, "alice", "alice-pass-phrase")
			spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
			other, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
			b := signintest.NewBrowser(t, f.URL)
			fl := newFlow(spa, nil)
			_, tok := f.redeem(t, spa, "", f.code(t, b, fl, "alice", "alice-pass-phrase"), nil, fl.verifier)
			rt1 := tok["refresh_token"].(string)

			status, r2 := f.refresh(t, spa, "", rt1)
			if status != 200 || r2["refresh_token"] == rt1 || r2["id_token"] == nil {
				t.Fatalf("first refresh: HTTP %d %v", status, r2)
			}
			rt2, at2 := r2["refresh_token"].(string), r2["access_token"].(string)
			if !f.active(t, at2) {
				t.Fatal("refreshed access token inactive")
			}

			status, out := f.refresh(t, spa, "", rt1)
			if status != 400 || errCode(out) != "invalid_grant" || !strings.Contains(out["error_description"].(string), "already used") {
				t.Fatalf("reusing the spent token: HTTP %d %v", status, out)
			}
			if status, out := f.refresh(t, spa, "", rt2); status != 400 || errCode(out) != "invalid_grant" {
				t.Fatalf("the live token after reuse: HTTP %d %v, want the family revoked", status, out)
			}
			if f.active(t, at2) {
				t.Fatal("the access token issued with the live refresh token is still active after reuse")
			}
			events := f.events(t, "category=token&decision=deny&user="+alice.ID)
			if !hasEvent(events, func(e audit.Event) bool {
				return e.ClientID == spa && strings.Contains(e.Reason, "already used")
			}) {
				t.Fatalf("no audit event for the reuse: %+v", events)
			}

			// A refresh token in another client's hands.
			fl = newFlow(spa, nil)
			_, tok = f.redeem(t, spa, "", f.code(t, b, fl, "alice", "alice-pass-phrase"), nil, fl.verifier)
			stolen := tok["refresh_token"].(string)
			if status, out := f.refresh(t, other, "", stolen); status != 400 || errCode(out) != "invalid_grant" {
				t.Fatalf("refresh by another client: HTTP %d %v", status, out)
			}
			if status, _ := f.refresh(t, spa, "", stolen); status != 400 {
				t.Fatal("the family survived a refresh attempt by another client")
			}
		})
	}
}

// Refresh tokens end with the session (idle timeout here), unless offline_access was
// granted; a deactivated user's refresh tokens stop working at once.
func TestRefreshEndsWithSessionAndUser(t *testing.T) {
	clock := servertest.NewClock(time.Now())
	f := startWith(t, servertest.Options{Clock: clock})
	alice := f.addUser(t, "alice", "alice-pass-phrase")
	spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)
	fl := newFlow(spa, nil)
	_, bound := f.redeem(t, spa, "", f.code(t, b, fl, "alice", "alice-pass-phrase"), nil, fl.verifier)
	fl = newFlow(spa, url.Values{"scope": {"openid offline_access"}})
	_, offline := f.redeem(t, spa, "", f.code(t, b, fl, "", ""), nil, fl.verifier)
	if offline["scope"] != "offline_access openid" {
		t.Fatalf("scope %v", offline["scope"])
	}

	clock.Advance(61 * time.Minute) // past the 1h idle timeout
	if status, out := f.refresh(t, spa, "", bound["refresh_token"].(string)); status != 400 || !strings.Contains(out["error_description"].(string), "session") {
		t.Fatalf("session-bound refresh after the idle timeout: HTTP %d %v", status, out)
	}
	status, out := f.refresh(t, spa, "", offline["refresh_token"].(string))
	if status != 200 {
		t.Fatalf("offline refresh after the session ended: HTTP %d %v", status, out)
	}
	f.setActive(t, alice.ID, false)
	if status, out := f.refresh(t, spa, "", out["refresh_token"].(string)); status != 400 || errCode(out) != "invalid_grant" {
		t.Fatalf("refresh of a deactivated user: HTTP %d %v", status, out)
	}
}
