package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/oauth"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/token"
	"github.com/agentguard/agentguard/internal/user"
)

const testIssuer = "https://agentguard.test"

var fixedNow = time.Unix(1_800_000_000, 0)

// oneUser is a directory of one user, for the fuzz targets.
type oneUser struct{ u user.User }

func (d oneUser) Authenticate(_ context.Context, username, password string) (user.User, error) {
	if username == d.u.Username && password == "pw" {
		return d.u, nil
	}
	return user.User{}, user.ErrBadCredentials
}

func (d oneUser) GetUser(_ context.Context, id string) (user.User, error) {
	if id == d.u.ID {
		return d.u, nil
	}
	return user.User{}, store.ErrNotFound
}

// newTestHandler is the sign-in handler over a real SQLite store, with a public and
// a confidential client whose redirect URIs are https://app.example/cb and
// post-logout URI https://app.example/bye.
func newTestHandler(tb testing.TB) (http.Handler, *Handler) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "", tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	w, err := kms.OpenLocal(filepath.Join(tb.TempDir(), kms.LocalKeyFile))
	if err != nil {
		tb.Fatal(err)
	}
	now := func() time.Time { return fixedNow }
	kr, err := token.NewKeyring(ctx, st, kms.NewEnvelope(w), token.KeyringConfig{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	dir := oneUser{user.User{ID: "usr_1", Username: "alice", Active: true}}
	o := &oauth.Server{Issuer: &token.Issuer{URL: testIssuer, Keyring: kr, Store: st, Now: now},
		Agents: st, Grants: st, Resources: st, Replay: st, Audit: audit.Discard{}, Now: now,
		Clients: st, Users: dir, Codes: st, Refresh: st}
	h := &Handler{OAuth: o, Clients: st, Store: st, Users: dir, Auth: dir, Audit: audit.Discard{}, Now: now}
	o.Sessions = h
	o.Init(nil)
	h.Init(nil)
	for _, c := range []client.Client{
		{ID: "cli_public", Name: "spa", Type: client.TypeSPA, RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{"https://app.example/bye"}},
		{ID: "cli_web", Name: "web", Type: client.TypeWeb, RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{"https://app.example/bye"}},
	} {
		c.CreatedAt, c.UpdatedAt = fixedNow, fixedNow
		if err := st.CreateClient(ctx, c); err != nil {
			tb.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	h.Register(mux)
	return mux, h
}

// allowedRedirect: the only places a response may send the browser.
func allowedRedirect(loc string) bool {
	for _, base := range []string{"https://app.example/cb?", "https://app.example/bye"} {
		if strings.HasPrefix(loc, base) {
			rest := strings.TrimPrefix(loc, base)
			return base == "https://app.example/cb?" || rest == "" || strings.HasPrefix(rest, "?")
		}
	}
	return false
}

// FuzzAuthorizeAndLogout sends any query to the authorization and logout endpoints
// (and any body to the login form): nothing panics, nothing answers 5xx, and a
// redirect only ever goes to a registered URI of the client: the open-redirect
// invariant, whatever the input.
func FuzzAuthorizeAndLogout(f *testing.F) {
	for _, seed := range []string{
		"client_id=cli_public&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"client_id=cli_web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid&prompt=none",
		"client_id=cli_public&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2F&response_type=code",
		"client_id=cli_public&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=token",
		"client_id=cli_public&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&code_challenge_method=plain&code_challenge=x",
		"client_id=cli_web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid&resource=urn%3Ax&resource=urn%3Ay",
		"client_id=cli_web&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&state=x",
		"client_id=cli_web&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye%3Fnext%3Devil",
		"post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
		"id_token_hint=a.b.c&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye",
		"client_id=cli_web&client_id=cli_public", "%zz", "",
	} {
		f.Add(seed, "login_id=lgn_x&csrf_token=agcf_x&username=alice&password=pw")
	}
	mux, _ := newTestHandler(f)
	f.Fuzz(func(t *testing.T, query, loginBody string) {
		check := func(what string, rec *httptest.ResponseRecorder) {
			if rec.Code >= 500 {
				t.Fatalf("%s: HTTP %d", what, rec.Code)
			}
			if loc := rec.Header().Get("Location"); loc != "" && !allowedRedirect(loc) {
				t.Fatalf("%s with %q: redirected to %q", what, query, loc)
			}
		}
		for _, path := range []string{"/oauth2/authorize", "/oauth2/logout"} {
			rec := httptest.NewRecorder()
			get := httptest.NewRequest(http.MethodGet, path, nil)
			get.URL.RawQuery = query // as a browser may send it, even if malformed
			mux.ServeHTTP(rec, get)
			check("GET "+path, rec)
			rec = httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(query))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			mux.ServeHTTP(rec, r)
			check("POST "+path, rec)
		}
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(loginBody))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		mux.ServeHTTP(rec, r)
		check("POST /login", rec)
	})
}

// FuzzParseRequest checks the authorization request parser alone: whatever it
// accepts is a code request with a valid S256 challenge (always for a public
// client), bounded fields, and a known prompt; whatever it refuses carries an RFC
// 6749 / OIDC error code and a description.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=x&nonce=y&max_age=0&prompt=login+consent",
		"response_type=code&prompt=none&max_age=99999999999",
		"response_type=code+id_token", "request=x", "response_mode=form_post&response_type=code", "state=a&state=b",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	codes := map[string]bool{"invalid_request": true, "unsupported_response_type": true, "invalid_scope": true, "invalid_target": true,
		"request_not_supported": true, "request_uri_not_supported": true}
	f.Fuzz(func(t *testing.T, query string, public bool) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		c := client.Client{ID: "cli_x", Type: client.TypeWeb}
		if public {
			c.Type = client.TypeSPA
		}
		clientParams(q)
		req, e := parseRequest(q, c, "https://app.example/cb")
		if e != nil {
			if !codes[e.Code] || e.Description == "" {
				t.Fatalf("refusal %+v", e)
			}
			if len(req.State) > maxStateBytes {
				t.Fatal("an oversized state would be echoed")
			}
			return
		}
		if q.Get("response_type") != "code" || len(req.State) > maxStateBytes || len(req.Nonce) > maxNonceBytes || len(req.LoginHint) > maxLoginHintBytes {
			t.Fatalf("accepted %+v", req)
		}
		if (public || req.CodeChallenge != "") && !oauth.ValidS256Challenge(req.CodeChallenge) {
			t.Fatalf("accepted challenge %q (public=%v)", req.CodeChallenge, public)
		}
		if req.Prompt != "" && req.Prompt != "none" && req.Prompt != "login" || req.MaxAge < -1 {
			t.Fatalf("accepted prompt %q max_age %d", req.Prompt, req.MaxAge)
		}
	})
}
