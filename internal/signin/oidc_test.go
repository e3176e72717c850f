package signin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// rp is a relying party built only on independent libraries (coreos/go-oidc and
// x/oauth2): its callback redeems the code with the PKCE verifier and verifies the
// ID token, as a real web app would.
type rp struct {
	t        *testing.T
	srv      *httptest.Server
	cfg      oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu      sync.Mutex
	flows   map[string][2]string // state -> nonce, PKCE verifier
	token   *oauth2.Token
	idToken *oidc.IDToken
	err     error
}

func newRP(t *testing.T) *rp {
	r := &rp{t: t, flows: map[string][2]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", r.callback)
	mux.HandleFunc("GET /bye", func(w http.ResponseWriter, req *http.Request) { w.Write([]byte("bye " + req.URL.Query().Get("state"))) })
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// configure discovers the provider and sets the client.
func (r *rp) configure(ctx context.Context, issuer, clientID, clientSecret string) *oidc.Provider {
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		r.t.Fatalf("go-oidc discovery: %v", err)
	}
	r.cfg = oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: r.srv.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email", "groups"}}
	r.verifier = provider.Verifier(&oidc.Config{ClientID: clientID})
	return provider
}

// authURL starts a flow with a fresh state, nonce and PKCE verifier.
func (r *rp) authURL(opts ...oauth2.AuthCodeOption) string {
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	r.mu.Lock()
	r.flows[state] = [2]string{nonce, verifier}
	r.mu.Unlock()
	return r.cfg.AuthCodeURL(state, append(opts, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))...)
}

func (r *rp) callback(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := req.URL.Query()
	flow, ok := r.flows[q.Get("state")]
	switch {
	case !ok:
		r.err = errf("unknown state %q", q.Get("state"))
	case q.Get("error") != "":
		r.err = errf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	default:
		tok, err := r.cfg.Exchange(req.Context(), q.Get("code"), oauth2.VerifierOption(flow[1]))
		if err != nil {
			r.err = err
			break
		}
		raw, _ := tok.Extra("id_token").(string)
		id, err := r.verifier.Verify(req.Context(), raw)
		if err != nil {
			r.err = err
			break
		}
		if id.Nonce != flow[0] {
			r.err = errf("nonce %q, want %q", id.Nonce, flow[0])
			break
		}
		if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
			r.err = errf("at_hash: %v", err)
			break
		}
		r.token, r.idToken, r.err = tok, id, nil
	}
	w.Write([]byte("signed in"))
}

type testErr string

func (e testErr) Error() string { return string(e) }

func errf(format string, args ...any) error { return testErr(fmt.Sprintf(format, args...)) }

// The done-when test: an independent OIDC client library completes sign-in with
// PKCE (the login page driven as a browser would), reads userinfo, refreshes with
// rotation, sees refresh reuse revoke the family, and logs out (RP-initiated) with
// its post-logout redirect and state.
func TestOIDCClientLibrarySignInRefreshLogout(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			for _, typ := range []string{client.TypeSPA, client.TypeWeb} {
				t.Run(typ, func(t *testing.T) { testOIDCFlow(t, d, typ) })
			}
		})
	}
}

func testOIDCFlow(t *testing.T, d sqlstore.Dialect, typ string) {
	ctx := context.Background()
	f := start(t, d)
	alice := f.addUser(t, "alice", "correct horse battery staple", "hr")
	relying := newRP(t)
	clientID, secret := signintest.Client(t, f.Server, typ, []string{relying.srv.URL + "/callback"}, []string{relying.srv.URL + "/bye"})
	provider := relying.configure(ctx, f.URL, clientID, secret)

	browser := signintest.NewBrowser(t, f.URL)
	browser.Follow = true // the browser goes on to the relying party's callback
	p := browser.Get(t, relying.authURL())
	if p.Status != http.StatusOK || relying.err != nil {
		t.Fatalf("authorize: HTTP %d %s; relying party: %v", p.Status, p.Body, relying.err)
	}
	res := browser.Submit(t, p, map[string]string{"username": "alice", "password": "correct horse battery staple"})
	if res.Status != http.StatusOK || res.Body != "signed in" || relying.err != nil {
		t.Fatalf("sign-in ended at %s with HTTP %d %q; relying party: %v", res.URL, res.Status, res.Body, relying.err)
	}
	id := relying.idToken
	if id.Subject != alice.ID || id.Issuer != f.URL || !slices.Contains(id.Audience, clientID) {
		t.Fatalf("ID token sub=%q iss=%q aud=%v", id.Subject, id.Issuer, id.Audience)
	}
	var claims struct {
		Name, Email, PreferredUsername string
		Groups                         []string
		SID                            string `json:"sid"`
		AuthTime                       int64  `json:"auth_time"`
	}
	if err := id.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Email != "alice@example.com" || claims.Name != "Alice" || !slices.Equal(claims.Groups, []string{"hr"}) || claims.SID == "" || claims.AuthTime == 0 {
		t.Errorf("ID token claims %+v", claims)
	}
	tok := relying.token
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	// userinfo with the access token, through go-oidc.
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != alice.ID || info.Email != "alice@example.com" {
		t.Errorf("userinfo sub=%q email=%q", info.Subject, info.Email)
	}

	// Refresh through x/oauth2: an expired token makes the token source refresh.
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := relying.cfg.TokenSource(ctx, &stale).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken || refreshed.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the refresh token or issue a new access token")
	}
	if raw, _ := refreshed.Extra("id_token").(string); raw == "" {
		t.Error("refresh returned no ID token")
	} else if _, err := relying.verifier.Verify(ctx, raw); err != nil {
		t.Errorf("refreshed ID token: %v", err)
	}

	// Logout: go-oidc reads end_session_endpoint from discovery; the browser follows it.
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.EndSession == "" {
		t.Fatalf("end_session_endpoint missing from discovery: %v", err)
	}
	rawID, _ := refreshed.Extra("id_token").(string)
	logout := meta.EndSession + "?" + url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {relying.srv.URL + "/bye"}, "state": {"s-42"}}.Encode()
	res = browser.Get(t, logout)
	if res.Status != http.StatusOK || res.Body != "bye s-42" {
		t.Fatalf("logout ended at %s with HTTP %d %q, want the post-logout page with the state", res.URL, res.Status, res.Body)
	}
	// The session is over: prompt=none cannot sign in silently any more…
	browser.Follow = false
	res = browser.Get(t, relying.authURL(oauth2.SetAuthURLParam("prompt", "none")))
	if res.Location == nil || res.Location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: HTTP %d location %v, want error=login_required", res.Status, res.Location)
	}
	// …and the refresh tokens bound to it are revoked.
	if _, err := relying.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil {
		t.Fatal("a refresh token of the ended session still works")
	}
}
