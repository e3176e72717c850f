package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// A new agent has the contract's defaults and exactly the functional grant.
func TestCreateAgentDefaultsAndFunctionalGrant(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			var a agentView
			resp, b := send(t, s, "POST", "/api/v1/agents", servertest.AdminToken, "application/json", strings.NewReader(`{"name":"reporter","owner":"finance"}`))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("HTTP %d %s", resp.StatusCode, b)
			}
			s.Do(t, "GET", strings.TrimPrefix(resp.Header.Get("Location"), s.URL), nil, &a)
			if a.ID == "" || a.Audience != "urn:agentguard:agent:"+a.ID || a.Status != "active" ||
				a.Type != "autonomous" || a.AccessIdentity != "machine" || a.Owner != "finance" {
				t.Fatalf("agent %+v lacks the contract defaults (Location %q)", a, resp.Header.Get("Location"))
			}
			if _, err := time.Parse(time.RFC3339, a.CreatedAt); err != nil || !strings.HasSuffix(a.CreatedAt, "Z") {
				t.Fatalf("created_at %q is not RFC 3339 UTC", a.CreatedAt)
			}
			gs := grants(t, s, a.ID)
			if len(gs) != 1 || gs[0].Audience != s.Config.Issuer || !slices.Equal(gs[0].Scopes, []string{grant.ScopeCredentials}) {
				t.Fatalf("grants %+v, want exactly agentguard:credentials on %s", gs, s.Config.Issuer)
			}
			var custom agentView
			s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "x", "audience": "https://agent.example.com", "type": "interactive", "access_identity": "human"}, &custom)
			if custom.Audience != "https://agent.example.com" || custom.Type != "interactive" || custom.AccessIdentity != "human" {
				t.Fatalf("agent %+v did not keep the given fields", custom)
			}
		})
	}
}

// The client secret is shown once, at creation, and never again; an agent holds
// at most five.
func TestClientSecretIsReturnedOnceAndCapped(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, first := s.Agent(t, "secrets")
	for i := 2; i <= 5; i++ {
		resp, b := send(t, s, "POST", "/api/v1/agents/"+id+"/secrets", servertest.AdminToken, "application/json", strings.NewReader(`{"expires_in":3600}`))
		if resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), `"client_secret":"agcs`) || !strings.Contains(string(b), `"expires_at":"`) {
			t.Fatalf("secret %d: HTTP %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b := send(t, s, "POST", "/api/v1/agents/"+id+"/secrets", servertest.AdminToken, "", nil)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("sixth secret: HTTP %d %s, want 409", resp.StatusCode, b)
	}
	decodeProblem(t, resp, b)

	// Nothing but the create response shows a secret value.
	for _, path := range []string{"/api/v1/agents/" + id + "/secrets", "/api/v1/agents/" + id, "/api/v1/agents", "/api/v1/agents/" + id + "/grants"} {
		_, b := send(t, s, "GET", path, servertest.AdminToken, "", nil)
		if strings.Contains(string(b), "agcs_") || strings.Contains(string(b), first) || strings.Contains(string(b), "client_secret") {
			t.Fatalf("GET %s shows a client secret: %s", path, b)
		}
	}
	var l struct {
		Items []struct {
			ID        string
			ExpiresAt *string `json:"expires_at"`
		}
	}
	s.Do(t, "GET", "/api/v1/agents/"+id+"/secrets", nil, &l)
	if len(l.Items) != 5 {
		t.Fatalf("%d secrets listed, want 5", len(l.Items))
	}
	// Deleting one makes room again and that secret stops working.
	if code := s.Do(t, "DELETE", "/api/v1/agents/"+id+"/secrets/"+l.Items[0].ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete secret: HTTP %d", code)
	}
	if code := s.Do(t, "POST", "/api/v1/agents/"+id+"/secrets", nil, nil); code != http.StatusCreated {
		t.Fatalf("secret after a delete: HTTP %d", code)
	}
}

// Deleting an agent ends its tokens and secrets at once.
func TestDeleteAgentEndsItsTokensAndSecrets(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			id, sec := s.Agent(t, "doomed")
			tok := accessToken(t, s, id, sec, nil)
			checker, checkerSec := s.Agent(t, "checker")
			if !active(t, s, checker, checkerSec, tok) {
				t.Fatal("a fresh token introspects inactive")
			}
			if code := s.Do(t, "DELETE", "/api/v1/agents/"+id, nil, nil); code != http.StatusNoContent {
				t.Fatalf("delete agent: HTTP %d", code)
			}
			if active(t, s, checker, checkerSec, tok) {
				t.Fatal("the deleted agent's token still introspects active")
			}
			code, out := oauthPost(t, s, "/oauth2/token", id, sec, url.Values{"grant_type": {"client_credentials"}})
			if code != http.StatusUnauthorized || out["error"] != "invalid_client" {
				t.Fatalf("token with the deleted agent's secret: HTTP %d %v, want 401 invalid_client", code, out)
			}
			if code := s.Do(t, "GET", "/api/v1/agents/"+id+"/secrets", nil, nil); code != http.StatusNotFound {
				t.Fatalf("secrets of a deleted agent: HTTP %d, want 404", code)
			}
		})
	}
}

// Disabling an agent stops its secrets and tokens; enabling it brings them back.
func TestDisabledAgentCannotAuthenticate(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, sec := s.Agent(t, "paused")
	tok := accessToken(t, s, id, sec, nil)
	checker, checkerSec := s.Agent(t, "checker")
	s.Do(t, "PATCH", "/api/v1/agents/"+id, map[string]any{"status": "disabled"}, nil)
	if code, out := oauthPost(t, s, "/oauth2/token", id, sec, url.Values{"grant_type": {"client_credentials"}}); code != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("disabled agent got HTTP %d %v, want 401 invalid_client", code, out)
	}
	if active(t, s, checker, checkerSec, tok) {
		t.Fatal("a disabled agent's token introspects active")
	}
	s.Do(t, "PATCH", "/api/v1/agents/"+id, map[string]any{"status": "active"}, nil)
	accessToken(t, s, id, sec, nil)
}

// The built-in resource server is the issuer itself: it cannot go away or change
// meaning, though its name and token lifetime may change.
func TestBuiltinResourceServerIsProtected(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	p := "/api/v1/resource-servers/" + resource.BuiltinID
	tests := []struct {
		name, method, body string
		want               int
	}{
		{"delete", "DELETE", "", http.StatusConflict},
		{"change audience", "PATCH", `{"audience":"https://elsewhere.example.com"}`, http.StatusConflict},
		{"change scopes", "PATCH", `{"scopes":[{"name":"agentguard:credentials"}]}`, http.StatusConflict},
		{"clear scopes", "PATCH", `{"scopes":[]}`, http.StatusConflict},
		{"rename", "PATCH", `{"name":"identity"}`, http.StatusOK},
		{"token lifetime", "PATCH", `{"token_lifetime":600}`, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			resp, b := send(t, s, tc.method, p, servertest.AdminToken, ct, strings.NewReader(tc.body))
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, b, tc.want)
			}
		})
	}
	var rs struct {
		Audience      string
		Scopes        []resource.Scope
		TokenLifetime int64 `json:"token_lifetime"`
		BuiltIn       bool  `json:"built_in"`
	}
	s.Do(t, "GET", p, nil, &rs)
	if rs.Audience != s.Config.Issuer || len(rs.Scopes) != 2 || !rs.BuiltIn || rs.TokenLifetime != 600 {
		t.Fatalf("built-in resource server is now %+v", rs)
	}
}

// Deleting a resource server removes the grants on it, so no token can name it.
func TestDeleteResourceServerRemovesItsGrants(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			id, sec := s.Agent(t, "reader")
			var rs struct{ ID string }
			s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "files", "audience": "https://files.example.com", "scopes": []map[string]string{{"name": "read"}, {"name": "write"}}}, &rs)
			if code := s.Do(t, "POST", "/api/v1/agents/"+id+"/grants", map[string]any{"audience": "https://files.example.com", "scopes": []string{"read"}}, nil); code != http.StatusCreated {
				t.Fatalf("grant: HTTP %d", code)
			}
			accessToken(t, s, id, sec, url.Values{"resource": {"https://files.example.com"}, "scope": {"read"}})
			if n := len(grants(t, s, id)); n != 2 {
				t.Fatalf("%d grants, want 2", n)
			}
			if code := s.Do(t, "DELETE", "/api/v1/resource-servers/"+rs.ID, nil, nil); code != http.StatusNoContent {
				t.Fatalf("delete resource server: HTTP %d", code)
			}
			gs := grants(t, s, id)
			if len(gs) != 1 || gs[0].Audience != s.Config.Issuer {
				t.Fatalf("grants after deleting the resource server: %+v, want only the functional one", gs)
			}
			code, out := oauthPost(t, s, "/oauth2/token", id, sec, url.Values{"grant_type": {"client_credentials"}, "resource": {"https://files.example.com"}})
			if code != http.StatusBadRequest || out["error"] != "invalid_target" {
				t.Fatalf("token for a deleted resource server: HTTP %d %v, want invalid_target", code, out)
			}
			// The audience is free again.
			if code := s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "files2", "audience": "https://files.example.com"}, nil); code != http.StatusCreated {
				t.Fatalf("re-create on a freed audience: HTTP %d", code)
			}
		})
	}
}

// GET /api/v1/keys lists the current signing key, and a rotation adds a new
// current one while the old stays published.
func TestSigningKeysListAndRotate(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	type key struct {
		KID     string
		Alg     string
		Current bool
		JWK     map[string]any
	}
	var l struct{ Items []key }
	if code := s.Do(t, "GET", "/api/v1/keys", nil, &l); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	if len(l.Items) != 1 || !l.Items[0].Current || l.Items[0].Alg != "ES256" || l.Items[0].JWK["kid"] != l.Items[0].KID {
		t.Fatalf("keys %+v, want one current ES256 key", l.Items)
	}
	if _, private := l.Items[0].JWK["d"]; private {
		t.Fatal("the key list shows private key material")
	}
	old := l.Items[0].KID
	var rot struct{ KID string }
	if code := s.Do(t, "POST", "/api/v1/keys/rotate", nil, &rot); code != http.StatusCreated || rot.KID == "" || rot.KID == old {
		t.Fatalf("rotate: HTTP %d %+v", code, rot)
	}
	s.Do(t, "GET", "/api/v1/keys", nil, &l)
	current := map[string]bool{}
	for _, k := range l.Items {
		current[k.KID] = k.Current
	}
	if len(l.Items) != 2 || !current[rot.KID] || current[old] {
		t.Fatalf("after rotation keys are %+v, want %s current and %s retired", l.Items, rot.KID, old)
	}
}

// A grant carries exactly the scopes asked for, deduplicated, and lets the agent
// get a token for them; deleting it takes that away.
func TestGrantLifecycle(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, sec := s.Agent(t, "granted")
	s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "files", "audience": "https://files.example.com", "scopes": []map[string]string{{"name": "read"}, {"name": "write"}}}, nil)
	var g grant.Grant
	if code := s.Do(t, "POST", "/api/v1/agents/"+id+"/grants", map[string]any{"audience": "https://files.example.com", "scopes": []string{"write", "read", "read"}}, &g); code != http.StatusCreated {
		t.Fatalf("grant: HTTP %d", code)
	}
	if !slices.Equal(g.Scopes, []string{"read", "write"}) || g.AgentID != id || g.ID == "" {
		t.Fatalf("grant %+v", g)
	}
	accessToken(t, s, id, sec, url.Values{"scope": {"https://files.example.com|write"}})
	if code := s.Do(t, "DELETE", "/api/v1/agents/"+id+"/grants/"+g.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete grant: HTTP %d", code)
	}
	code, out := oauthPost(t, s, "/oauth2/token", id, sec, url.Values{"grant_type": {"client_credentials"}, "scope": {"https://files.example.com|read"}})
	if code != http.StatusBadRequest || out["error"] != "invalid_target" {
		t.Fatalf("token after the grant is gone: HTTP %d %v", code, out)
	}
}

// PATCH replaces a grant's scopes: the way to give an agent agentguard:admin on top of
// the functional grant it was born with, and to take a scope away again.
func TestPatchGrantScopes(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, sec := s.Agent(t, "operator")
	var list struct{ Items []grant.Grant }
	s.Do(t, "GET", "/api/v1/agents/"+id+"/grants", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("grants: %+v", list.Items)
	}
	functional := list.Items[0]
	path := "/api/v1/agents/" + id + "/grants/" + functional.ID

	var g grant.Grant
	if code := s.Do(t, "PATCH", path, map[string]any{"scopes": []string{grant.ScopeAdmin, grant.ScopeCredentials}}, &g); code != http.StatusOK {
		t.Fatalf("PATCH grant: HTTP %d", code)
	}
	if !slices.Equal(g.Scopes, []string{grant.ScopeAdmin, grant.ScopeCredentials}) {
		t.Fatalf("scopes after PATCH: %v", g.Scopes)
	}
	admin := accessToken(t, s, id, sec, url.Values{"scope": {grant.ScopeAdmin}})
	if code := s.DoAs(t, admin, "GET", "/api/v1/agents", nil, nil); code != http.StatusOK {
		t.Fatalf("admin-scoped token on the management API: HTTP %d", code)
	}

	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"scope the resource server does not define", map[string]any{"scopes": []string{"files:read"}}, http.StatusBadRequest},
		{"no scopes", map[string]any{"scopes": []string{}}, http.StatusBadRequest},
		{"unknown field", map[string]any{"audience": "https://x.example"}, http.StatusBadRequest},
	} {
		if code := s.Do(t, "PATCH", path, tc.body, nil); code != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, code, tc.want)
		}
	}
	if code := s.Do(t, "PATCH", "/api/v1/agents/"+id+"/grants/grt_missing", map[string]any{"scopes": []string{grant.ScopeCredentials}}, nil); code != http.StatusNotFound {
		t.Errorf("unknown grant: HTTP %d, want 404", code)
	}

	s.Do(t, "PATCH", path, map[string]any{"scopes": []string{grant.ScopeCredentials}}, nil)
	code, out := oauthPost(t, s, "/oauth2/token", id, sec, url.Values{"grant_type": {"client_credentials"}, "scope": {grant.ScopeAdmin}})
	if code != http.StatusBadRequest || out["error"] != "invalid_scope" {
		t.Fatalf("admin scope after it was taken away: HTTP %d %v", code, out)
	}
}
