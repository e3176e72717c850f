package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

const appCallback = "https://app.example.com/callback"

// baseParams is a valid authorization request of a public client.
func baseParams(clientID string) url.Values {
	_, challenge := signintest.PKCE()
	return url.Values{"client_id": {clientID}, "redirect_uri": {appCallback}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"st-1"}, "nonce": {"n-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
}

// An unknown client or a redirect URI that is not exactly a registered one is an
// error page: never a redirect, whatever the variation (RFC 6749 §4.1.2.1).
func TestAuthorizeUntrustedRedirectIsAnErrorPage(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback, "https://app.example.com/q?tenant=a"}, nil)
	tests := []struct {
		name string
		edit func(url.Values)
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "cli_unknown") }},
		{"agent id as client", func(q url.Values) { q.Set("client_id", "agt_0123") }},
		{"missing client_id", func(q url.Values) { q.Del("client_id") }},
		{"repeated client_id", func(q url.Values) { q.Add("client_id", clientID) }},
		{"missing redirect_uri", func(q url.Values) { q.Del("redirect_uri") }},
		{"repeated redirect_uri", func(q url.Values) { q.Add("redirect_uri", appCallback) }},
		{"trailing slash", func(q url.Values) { q.Set("redirect_uri", appCallback+"/") }},
		{"upper-case host", func(q url.Values) { q.Set("redirect_uri", "https://APP.example.com/callback") }},
		{"upper-case path", func(q url.Values) { q.Set("redirect_uri", "https://app.example.com/Callback") }},
		{"extra query", func(q url.Values) { q.Set("redirect_uri", appCallback+"?next=https://evil.example") }},
		{"changed registered query", func(q url.Values) { q.Set("redirect_uri", "https://app.example.com/q?tenant=b") }},
		{"user info", func(q url.Values) { q.Set("redirect_uri", "https://evil.example@app.example.com/callback") }},
		{"host as user info", func(q url.Values) { q.Set("redirect_uri", "https://app.example.com@evil.example/callback") }},
		{"fragment", func(q url.Values) { q.Set("redirect_uri", appCallback+"#x") }},
		{"other port", func(q url.Values) { q.Set("redirect_uri", "https://app.example.com:444/callback") }},
		{"suffix host", func(q url.Values) { q.Set("redirect_uri", "https://app.example.com.evil.example/callback") }},
		{"http downgrade", func(q url.Values) { q.Set("redirect_uri", "http://app.example.com/callback") }},
		{"encoded path", func(q url.Values) { q.Set("redirect_uri", "https://app.example.com/%63allback") }},
		{"dot segment", func(q url.Values) { q.Set("redirect_uri", "https://app.example.com/x/../callback") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := baseParams(clientID)
			tt.edit(q)
			b := signintest.NewBrowser(t, f.URL)
			p := b.Get(t, f.authorizeURL(q))
			if p.Status != http.StatusBadRequest || p.Location != nil {
				t.Fatalf("HTTP %d location %v, want a 400 page and no redirect", p.Status, p.Location)
			}
			if !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") || !strings.Contains(p.Body, "cannot be trusted") {
				t.Fatalf("not the error page: %s", p.Body)
			}
			if strings.Contains(p.Body, "evil.example") {
				t.Fatal("the error page echoes the attacker's URI")
			}
		})
	}
}

// Once client and redirect URI are verified, errors go back to the client with
// error, state and iss (RFC 9207), and no code.
func TestAuthorizeErrorsRedirectWithStateAndIss(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	webID, _ := signintest.Client(t, f.Server, "web", []string{appCallback}, nil)
	tests := []struct {
		name      string
		client    string
		edit      func(url.Values)
		code      string
		wantState bool
	}{
		{"missing response_type", clientID, func(q url.Values) { q.Del("response_type") }, "invalid_request", true},
		{"implicit flow", clientID, func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type", true},
		{"hybrid flow", clientID, func(q url.Values) { q.Set("response_type", "code id_token") }, "unsupported_response_type", true},
		{"public client without PKCE", clientID, func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request", true},
		{"PKCE plain", clientID, func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request", true},
		{"PKCE method missing (plain by default)", clientID, func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request", true},
		{"PKCE method without challenge", webID, func(q url.Values) { q.Del("code_challenge") }, "invalid_request", true},
		{"malformed challenge", clientID, func(q url.Values) { q.Set("code_challenge", "short") }, "invalid_request", true},
		{"admin scope", clientID, func(q url.Values) { q.Set("scope", "openid agentguard:admin") }, "invalid_scope", true},
		{"credentials scope", clientID, func(q url.Values) { q.Set("scope", "agentguard:credentials") }, "invalid_scope", true},
		{"no scope", clientID, func(q url.Values) { q.Del("scope") }, "invalid_scope", true},
		{"agent.access without an agent", clientID, func(q url.Values) { q.Set("scope", "openid agent.access") }, "invalid_scope", true},
		{"unknown resource", clientID, func(q url.Values) { q.Set("resource", "https://nothing.example") }, "invalid_target", true},
		{"resource server that is not an agent", clientID, func(q url.Values) { q.Set("resource", f.URL) }, "invalid_target", true},
		{"two agents", clientID, func(q url.Values) { q["resource"] = []string{"urn:a:1", "urn:a:2"} }, "invalid_target", true},
		{"request object", clientID, func(q url.Values) { q.Set("request", "eyJ…") }, "request_not_supported", true},
		{"request_uri", clientID, func(q url.Values) { q.Set("request_uri", "https://x.example/r") }, "request_uri_not_supported", true},
		{"fragment response mode", clientID, func(q url.Values) { q.Set("response_mode", "fragment") }, "invalid_request", true},
		{"negative max_age", clientID, func(q url.Values) { q.Set("max_age", "-1") }, "invalid_request", true},
		{"prompt none and login", clientID, func(q url.Values) { q.Set("prompt", "none login") }, "invalid_request", true},
		{"unknown prompt", clientID, func(q url.Values) { q.Set("prompt", "create") }, "invalid_request", true},
		{"prompt none without a session", clientID, func(q url.Values) { q.Set("prompt", "none") }, "login_required", true},
		{"repeated scope", clientID, func(q url.Values) { q.Add("scope", "email") }, "invalid_request", true},
		{"repeated state: not echoed", clientID, func(q url.Values) { q.Add("state", "other") }, "invalid_request", false},
		{"huge state: not echoed", clientID, func(q url.Values) { q.Set("state", strings.Repeat("s", 2049)) }, "invalid_request", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := baseParams(tt.client)
			tt.edit(q)
			b := signintest.NewBrowser(t, f.URL)
			p := b.Get(t, f.authorizeURL(q))
			if p.Status != http.StatusFound || p.Location == nil {
				t.Fatalf("HTTP %d, want a redirect to the client: %s", p.Status, p.Body)
			}
			loc := p.Location
			if loc.Scheme+"://"+loc.Host+loc.Path != appCallback {
				t.Fatalf("redirected to %s, want the registered %s", loc, appCallback)
			}
			got := loc.Query()
			if got.Get("error") != tt.code || got.Get("error_description") == "" || got.Has("code") {
				t.Fatalf("redirect query %v, want error=%s with a description and no code", got, tt.code)
			}
			if got.Get("iss") != f.URL {
				t.Fatalf("iss = %q, want %q (RFC 9207)", got.Get("iss"), f.URL)
			}
			if (got.Get("state") == "st-1") != tt.wantState {
				t.Fatalf("state = %q, want echoed: %v", got.Get("state"), tt.wantState)
			}
		})
	}
}

// OIDC asks the authorization endpoint to accept POST too (form-encoded).
func TestAuthorizeByPost(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)
	p := b.Post(t, f.URL+"/oauth2/authorize", baseParams(clientID))
	if p.Status != http.StatusOK || len(p.Forms(t)) != 1 {
		t.Fatalf("POST authorize: HTTP %d, want the login page", p.Status)
	}
	res := b.Submit(t, p, map[string]string{"username": "alice", "password": "alice-pass-phrase"})
	if res.Status != http.StatusSeeOther || res.Location.Query().Get("code") == "" || res.Location.Query().Get("state") != "st-1" {
		t.Fatalf("login: HTTP %d location %v", res.Status, res.Location)
	}
}
