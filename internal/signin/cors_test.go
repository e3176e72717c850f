package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// A single-page app signs in from its own origin: the browser must be allowed to
// read the token endpoint's answer for that origin (the origin of the client's
// redirect URI) and no other, to send the preflight, and to read userinfo,
// discovery and the JWKS from anywhere.
func TestBrowserCORS(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)
	const appOrigin = "https://app.example.com"

	post := func(path, origin string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", f.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	redeem := func(origin string) *http.Response {
		fl := newFlow(spa, nil)
		code := f.code(t, b, fl, "alice", "alice-pass-phrase")
		return post("/oauth2/token", origin, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {appCallback}, "code_verifier": {fl.verifier}, "client_id": {spa}})
	}

	if resp := redeem(appOrigin); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("token from the app's origin: HTTP %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// Another page may not read the tokens, even with a valid code.
	if resp := redeem("https://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("token answer readable by another origin: %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// The app can read its errors.
	resp := post("/oauth2/token", appOrigin, url.Values{"grant_type": {"authorization_code"}, "code": {"agc_nope"}, "client_id": {spa},
		"redirect_uri": {appCallback}, "code_verifier": {"v"}})
	if resp.StatusCode != 400 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("error for the app: HTTP %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if resp := post("/oauth2/revoke", appOrigin, url.Values{"token": {"x"}, "client_id": {spa}}); resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("revocation for the app: HTTP %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	for _, path := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/userinfo"} {
		req, _ := http.NewRequest("OPTIONS", f.URL+path, nil)
		req.Header.Set("Origin", appOrigin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight %s: HTTP %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/oauth2/jwks", "/oauth2/userinfo"} {
		req, _ := http.NewRequest("GET", f.URL+path, nil)
		req.Header.Set("Origin", "https://anywhere.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: Access-Control-Allow-Origin %q, want *", path, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}
