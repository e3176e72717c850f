package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

const appBye = "https://app.example.com/bye"

// signedIn is a browser signed in through a client, with the tokens it got.
type signedIn struct {
	b       *signintest.Browser
	idToken string
	refresh string
}

func (f *fixture) signedIn(t *testing.T, clientID string) signedIn {
	t.Helper()
	b := signintest.NewBrowser(t, f.URL)
	fl := newFlow(clientID, nil)
	status, tok := f.redeem(t, clientID, "", f.code(t, b, fl, "alice", "alice-pass-phrase"), nil, fl.verifier)
	if status != 200 {
		t.Fatalf("HTTP %d %v", status, tok)
	}
	return signedIn{b: b, idToken: tok["id_token"].(string), refresh: tok["refresh_token"].(string)}
}

// stillSignedIn reports whether prompt=none still gets a code.
func (f *fixture) stillSignedIn(t *testing.T, b *signintest.Browser, clientID string) bool {
	t.Helper()
	p := b.Get(t, f.authorizeURL(newFlow(clientID, url.Values{"prompt": {"none"}}).params))
	return p.Location != nil && p.Location.Query().Get("code") != ""
}

func logoutURL(f *fixture, q url.Values) string { return f.URL + "/oauth2/logout?" + q.Encode() }

// A logout request that would redirect somewhere unregistered, or that names a
// client it cannot prove, is an error page: no redirect, and the session stays.
func TestLogoutRefusesUntrustedRedirects(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	app, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, []string{appBye})
	other, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, []string{"https://other.example/bye"})
	s := f.signedIn(t, app)
	tests := []struct {
		name string
		q    url.Values
	}{
		{"unregistered post_logout_redirect_uri", url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}},
		{"trailing slash", url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {appBye + "/"}}},
		{"another client's URI", url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {"https://other.example/bye"}}},
		{"a redirect URI (not a logout URI)", url.Values{"client_id": {app}, "post_logout_redirect_uri": {appCallback}}},
		{"redirect without saying whose", url.Values{"post_logout_redirect_uri": {appBye}}},
		{"hint of another client", url.Values{"id_token_hint": {s.idToken}, "client_id": {other}, "post_logout_redirect_uri": {"https://other.example/bye"}}},
		{"forged hint", url.Values{"id_token_hint": {s.idToken[:len(s.idToken)-4] + "AAAA"}, "post_logout_redirect_uri": {appBye}}},
		{"an access token as hint", url.Values{"id_token_hint": {f.signedIn(t, app).refresh}, "client_id": {app}}},
		{"unknown client", url.Values{"client_id": {"cli_unknown"}, "post_logout_redirect_uri": {appBye}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.b.Get(t, logoutURL(f, tt.q))
			if p.Status != http.StatusBadRequest || p.Location != nil {
				t.Fatalf("HTTP %d location %v, want a 400 page", p.Status, p.Location)
			}
			if !f.stillSignedIn(t, s.b, app) {
				t.Fatal("a refused logout ended the session")
			}
		})
	}
}

// Without an id_token_hint of this session, the user confirms on a page (a forged
// link cannot sign anyone out silently); a post without the page's token changes
// nothing; the confirmed logout redirects with state and ends the refresh tokens.
func TestLogoutConfirmation(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	alice := f.addUser(t, "alice", "alice-pass-phrase")
	app, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, []string{appBye})
	s := f.signedIn(t, app)
	q := url.Values{"client_id": {app}, "post_logout_redirect_uri": {appBye}, "state": {"bye-1"}}

	page := s.b.Get(t, logoutURL(f, q))
	if page.Status != http.StatusOK || len(page.Forms(t)) != 1 || !strings.Contains(page.Body, "Sign out") {
		t.Fatalf("logout without a hint: HTTP %d, want the confirmation page", page.Status)
	}
	if !strings.Contains(page.Header.Get("Content-Security-Policy"), "form-action 'self' https://app.example.com") {
		t.Errorf("CSP %q does not let the confirmed form redirect to the client", page.Header.Get("Content-Security-Policy"))
	}
	forged := s.b.Post(t, f.URL+"/oauth2/logout", q) // no csrf_token
	if forged.Status != http.StatusOK || forged.Location != nil || !f.stillSignedIn(t, s.b, app) {
		t.Fatalf("a post without the confirmation token: HTTP %d location %v", forged.Status, forged.Location)
	}
	wrong := s.b.Submit(t, page, map[string]string{"csrf_token": "forged"})
	if wrong.Location != nil || !f.stillSignedIn(t, s.b, app) {
		t.Fatal("a wrong confirmation token signed the user out")
	}

	done := s.b.Submit(t, page, nil)
	if done.Status != http.StatusSeeOther || done.Location == nil || done.Location.String() != appBye+"?state=bye-1" {
		t.Fatalf("confirmed logout: HTTP %d location %v", done.Status, done.Location)
	}
	if f.stillSignedIn(t, s.b, app) {
		t.Fatal("still signed in after logout")
	}
	if status, out := f.refresh(t, app, "", s.refresh); status != 400 || errCode(out) != "invalid_grant" {
		t.Fatalf("refresh after logout: HTTP %d %v", status, out)
	}
	if !hasEvent(f.events(t, "category=inbound&decision=allow&user="+alice.ID), func(e audit.Event) bool { return e.Action == "signin.logout" && e.ClientID == app }) {
		t.Fatal("logout not audited")
	}

	// Nobody signed in and nothing to redirect to: a plain page.
	p := signintest.NewBrowser(t, f.URL).Get(t, f.URL+"/oauth2/logout")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "signed out") {
		t.Fatalf("logout of nobody: HTTP %d", p.Status)
	}
}

// An ID token of an earlier session is no proof for the current one: confirm first.
func TestLogoutHintOfAnotherSessionAsksToConfirm(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	app, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, []string{appBye})
	old := f.signedIn(t, app)
	current := f.signedIn(t, app) // another browser, another session
	p := current.b.Get(t, logoutURL(f, url.Values{"id_token_hint": {old.idToken}, "post_logout_redirect_uri": {appBye}}))
	if p.Status != http.StatusOK || p.Location != nil || len(p.Forms(t)) != 1 {
		t.Fatalf("HTTP %d location %v, want the confirmation page", p.Status, p.Location)
	}
	if !f.stillSignedIn(t, current.b, app) {
		t.Fatal("the current session ended on another session's hint")
	}
}
