package credential_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/server/servertest"
)

type providerMeta struct {
	ID          string   `json:"id"`
	Generation  int64    `json:"generation"`
	Status      string   `json:"status"`
	LastError   string   `json:"last_error"`
	UsedBy      []string `json:"used_by"`
	AuthMethod  string   `json:"auth_method"`
	TokenParams map[string]string
}

// agentguard performs client credentials at the provider with the configured
// auth method and parameters, hands the token out, and serves it from the cache
// until shortly before it expires.
func TestOAuthTokenRetrievalAndCache(t *testing.T) {
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{})
			agentID, sec := s.Agent(t, "bot")
			tok := agentToken(t, s, agentID, sec, nil)
			e := newTokenEndpoint(t, "client-1", "s3cr3t/with+chars")
			createProvider(t, s, "crm", e, map[string]any{"auth_method": method, "token_params": map[string]string{"audience": "https://crm.example.com"}})
			addNode(t, s, agentID, "external_service", "oauth_provider", "crm", nil)

			r, ut := getToken(t, s, tok, "crm", nil)
			if r.code != 200 || !strings.HasPrefix(ut.AccessToken, "upstream-token-") || ut.TokenType != "Bearer" || ut.ExpiresIn != 3600 || ut.Scope != "read write" {
				t.Fatalf("HTTP %d %+v: %s", r.code, ut, r.body)
			}
			form, auth := e.form()
			if form.Get("audience") != "https://crm.example.com" || form.Get("scope") != "read write" {
				t.Fatalf("the provider got %v", form)
			}
			if method == "client_secret_basic" && (auth == "" || form.Get("client_secret") != "") {
				t.Fatalf("basic: Authorization %q, form %v", auth, form)
			}
			if method == "client_secret_post" && (auth != "" || form.Get("client_secret") != "s3cr3t/with+chars") {
				t.Fatalf("post: Authorization %q, form %v", auth, form)
			}

			// Cached: the same token, no new call, expires_in counting down.
			s.Clock.Advance(10 * time.Minute)
			_, again := getToken(t, s, tok, "crm", nil)
			if again.AccessToken != ut.AccessToken || e.calls.Load() != 1 || again.ExpiresIn != 3000 {
				t.Fatalf("second call: %+v after %d upstream calls", again, e.calls.Load())
			}
			// Within the refresh margin (60 s before expiry) a new token is fetched.
			s.Clock.Advance(49*time.Minute + 30*time.Second)
			tok = agentToken(t, s, agentID, sec, nil) // the agent's own token has expired meanwhile
			_, fresh := getToken(t, s, tok, "crm", nil)
			if fresh.AccessToken == ut.AccessToken || e.calls.Load() != 2 || fresh.ExpiresIn != 3600 {
				t.Fatalf("near expiry: %+v after %d calls", fresh, e.calls.Load())
			}

			// A subset of the default scopes is its own cache entry.
			r, sub := getToken(t, s, tok, "crm", map[string]any{"scopes": []string{"read"}})
			if r.code != 200 || sub.Scope != "read" || sub.AccessToken == fresh.AccessToken || e.calls.Load() != 3 {
				t.Fatalf("scopes [read]: HTTP %d %+v", r.code, sub)
			}
			// A scope outside the defaults is a 400 naming the field.
			r, _ = getToken(t, s, tok, "crm", map[string]any{"scopes": []string{"read", "admin"}})
			if p := r.problem(t); r.code != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "scopes" || !strings.Contains(p.Errors[0].Detail, `"admin"`) {
				t.Fatalf("scope outside the defaults: HTTP %d %s", r.code, r.body)
			}
		})
	}
}

// 100 callers on a cold cache make exactly one call at the provider.
func TestOneUpstreamCallForManyConcurrentCallers(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, tok := agentWithToken(t, s, "busy")
	e := newTokenEndpoint(t, "cid", "csecret")
	createProvider(t, s, "shared", e, nil)
	addNode(t, s, agentID, "external_service", "oauth_provider", "shared", nil)

	const n = 100
	var wg sync.WaitGroup
	got := make([]string, n)
	codes := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, ut := getToken(t, s, tok, "shared", nil)
			got[i], codes[i] = ut.AccessToken, r.code
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if codes[i] != 200 || got[i] != got[0] {
			t.Fatalf("caller %d: HTTP %d token %q (first %q)", i, codes[i], got[i], got[0])
		}
	}
	if c := e.calls.Load(); c != 1 {
		t.Fatalf("%d upstream calls for %d concurrent callers, want 1", c, n)
	}
}

// Each way a provider can fail is a 502 naming the provider and, when it sent
// one, its error code; nothing is cached, the secret and the provider's body are
// not in the answer, and the provider is marked failing until a success.
func TestProviderFailuresAre502(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.UpstreamTimeout = 300 * time.Millisecond }})
	agentID, tok := agentWithToken(t, s, "bot")
	const secret = "provider-client-secret-XYZ"
	e := newTokenEndpoint(t, "cid", secret)
	createProvider(t, s, "flaky", e, nil)
	addNode(t, s, agentID, "external_service", "oauth_provider", "flaky", nil)

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/token"
	closed.Close()
	redirect := httptest.NewServer(http.RedirectHandler(e.URL(), http.StatusTemporaryRedirect))
	defer redirect.Close()
	basic := base64.StdEncoding.EncodeToString([]byte("cid:" + secret))

	tests := []struct {
		name, mode, endpoint string
		code, failure        string
		detail               string
	}{
		{"an OAuth error", modeError, "", "invalid_client", "", `error "invalid_client"`},
		{"not JSON", modeNotJSON, "", "", "invalid_response", "not a JSON token response"},
		{"an HTML error page", modeServerErr, "", "", "http_503", "HTTP 503"},
		{"an answer echoing the request", modeEchoBody, "", "", "http_500", "HTTP 500"},
		{"too slow", modeSlow, "", "", "timeout", "did not answer within 300ms"},
		{"unreachable", modeOK, closedURL, "", "unreachable", "refused the connection"},
		{"a redirect", modeOK, redirect.URL + "/token", "", "redirect", "redirect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.setMode(tc.mode)
			if tc.endpoint != "" {
				admin(t, s, 200, "PATCH", "/api/v1/credentials/oauth-providers/flaky", map[string]any{"token_endpoint": tc.endpoint}, nil)
				defer admin(t, s, 200, "PATCH", "/api/v1/credentials/oauth-providers/flaky", map[string]any{"token_endpoint": e.URL()}, nil)
			}
			r, _ := getToken(t, s, tok, "flaky", nil)
			p := r.problem(t)
			if r.code != http.StatusBadGateway || p.Provider != "flaky" || p.ProviderError != tc.code || p.Failure != tc.failure && tc.code == "" || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("HTTP %d %+v", r.code, p)
			}
			for _, leak := range []string{secret, basic, "<html>", "debug:"} {
				if strings.Contains(string(r.body), leak) {
					t.Fatalf("the 502 holds %q: %s", leak, r.body)
				}
			}
			var meta providerMeta
			admin(t, s, 200, "GET", "/api/v1/credentials/oauth-providers/flaky", nil, &meta)
			if meta.Status != "failing" || meta.LastError == "" {
				t.Fatalf("provider after the failure: %+v", meta)
			}
		})
	}

	// Nothing was cached: once the provider works, the next call fetches a token.
	e.setMode(modeOK)
	calls := e.calls.Load()
	if r, ut := getToken(t, s, tok, "flaky", nil); r.code != 200 || ut.AccessToken == "" || e.calls.Load() != calls+1 {
		t.Fatalf("after recovery: HTTP %d, %d new calls", r.code, e.calls.Load()-calls)
	}
	var meta providerMeta
	admin(t, s, 200, "GET", "/api/v1/credentials/oauth-providers/flaky", nil, &meta)
	if meta.Status != "ok" || meta.LastError != "" {
		t.Fatalf("provider after a success: %+v", meta)
	}
	// The denials are audited with the reason, never the secret.
	for _, ev := range events(t, s, "action=oauth_token.retrieve&decision=deny") {
		if !strings.HasPrefix(ev.Reason, "provider failed: ") || strings.Contains(ev.Reason, secret) {
			t.Fatalf("deny event %+v", ev)
		}
	}
}

// A plain-http token endpoint of another host is refused when it is stored and,
// should the flag that allowed it be gone, when it is used.
func TestInsecureTokenEndpointRefused(t *testing.T) {
	// The first server allows http endpoints anywhere; the second, restarted
	// on the same database without the flag, does not.
	lenient := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.AllowInsecureTokenEndpoints = true }})
	body := map[string]any{"identifier": "plain", "client_id": "c", "client_secret": "s", "token_endpoint": "http://192.0.2.10/token"}
	admin(t, lenient, 201, "POST", "/api/v1/credentials/oauth-providers", body, nil)
	lenient.Stop()
	strict := servertest.Start(t, servertest.Options{DataDir: lenient.Config.DataDir})

	body["identifier"] = "plain-2"
	r := callJSON(t, strict, "POST", "/api/v1/credentials/oauth-providers", servertest.AdminToken, body)
	if p := r.problem(t); r.code != 400 || p.Errors[0].Field != "token_endpoint" || !strings.Contains(p.Detail, "https") {
		t.Fatalf("strict create: HTTP %d %s", r.code, r.body)
	}
	agentID, tok := agentWithToken(t, strict, "bot")
	addNode(t, strict, agentID, "external_service", "oauth_provider", "plain", nil)
	r, _ = getToken(t, strict, tok, "plain", nil)
	if p := r.problem(t); r.code != 502 || p.Failure != "insecure_endpoint" {
		t.Fatalf("strict use: HTTP %d %s", r.code, r.body)
	}
}

// Changing the secret, endpoint, auth method or token parameters bumps the
// generation: the cached token is never handed out again.
func TestProviderChangesInvalidateTheCache(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, tok := agentWithToken(t, s, "bot")
	e := newTokenEndpoint(t, "cid", "old-secret")
	createProvider(t, s, "p", e, nil)
	addNode(t, s, agentID, "external_service", "oauth_provider", "p", nil)
	_, first := getToken(t, s, tok, "p", nil)

	changes := []map[string]any{
		{"client_secret": "new-secret"},
		{"auth_method": "client_secret_post"},
		{"token_params": map[string]string{"resource": "https://x.example.com"}},
		{"token_endpoint": e.URL() + "?v=2"},
	}
	prev, gen := first.AccessToken, int64(1)
	for _, ch := range changes {
		if sec, ok := ch["client_secret"].(string); ok {
			e.secret = sec
		}
		var meta providerMeta
		admin(t, s, 200, "PATCH", "/api/v1/credentials/oauth-providers/p", ch, &meta)
		if meta.Generation != gen+1 {
			t.Fatalf("%v: generation %d, want %d", ch, meta.Generation, gen+1)
		}
		gen = meta.Generation
		r, ut := getToken(t, s, tok, "p", nil)
		if r.code != 200 || ut.AccessToken == prev {
			t.Fatalf("after %v: HTTP %d, token %q (before %q): %s", ch, r.code, ut.AccessToken, prev, r.body)
		}
		prev = ut.AccessToken
	}
	// A name change does not.
	var meta providerMeta
	admin(t, s, 200, "PATCH", "/api/v1/credentials/oauth-providers/p", map[string]any{"name": "Renamed"}, &meta)
	if _, ut := getToken(t, s, tok, "p", nil); meta.Generation != gen || ut.AccessToken != prev {
		t.Fatalf("a rename changed the generation (%d) or the token", meta.Generation)
	}
}

// A token without expires_in is cached for the configured default, no longer.
func TestTokenWithoutExpiryIsCachedForTheDefault(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.UpstreamTokenLifetime = 2 * time.Minute }})
	agentID, tok := agentWithToken(t, s, "bot")
	e := newTokenEndpoint(t, "cid", "csecret")
	e.setMode(modeNoExpiry)
	createProvider(t, s, "p", e, nil)
	addNode(t, s, agentID, "external_service", "oauth_provider", "p", nil)
	_, first := getToken(t, s, tok, "p", nil)
	if first.ExpiresIn != 120 {
		t.Fatalf("expires_in %d, want the 120 s default", first.ExpiresIn)
	}
	s.Clock.Advance(30 * time.Second)
	if _, ut := getToken(t, s, tok, "p", nil); ut.AccessToken != first.AccessToken {
		t.Fatal("not cached within the default lifetime")
	}
	s.Clock.Advance(31 * time.Second) // 61 s: within the margin (half of 120 s = 60 s)
	if _, ut := getToken(t, s, tok, "p", nil); ut.AccessToken == first.AccessToken || e.calls.Load() != 2 {
		t.Fatalf("still the first token after the default lifetime's refresh point (%d calls)", e.calls.Load())
	}
}

// Deleting a credential that nodes use is 409 naming the agents, unless forced;
// forced, the nodes go with it.
func TestDeleteCredentialInUse(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	a, tokA := agentWithToken(t, s, "a")
	b, _ := agentWithToken(t, s, "b")
	createAPIKey(t, s, "shared", "v")
	addNode(t, s, a, "llm", "api_key", "shared", nil)
	addNode(t, s, b, "llm", "api_key", "shared", nil)

	r := callJSON(t, s, "DELETE", "/api/v1/credentials/api-keys/shared", servertest.AdminToken, nil)
	if p := r.problem(t); r.code != 409 || !strings.Contains(p.Detail, a) || !strings.Contains(p.Detail, b) || !strings.Contains(p.Detail, "force=true") {
		t.Fatalf("delete in use: HTTP %d %s", r.code, r.body)
	}
	if r, _ := getKey(t, s, tokA, "shared"); r.code != 200 {
		t.Fatalf("a refused delete changed access: HTTP %d", r.code)
	}
	admin(t, s, 204, "DELETE", "/api/v1/credentials/api-keys/shared?force=true", nil, nil)
	if r, _ := getKey(t, s, tokA, "shared"); r.code != 403 {
		t.Fatalf("after a forced delete: HTTP %d", r.code)
	}
	var l struct{ Items []any }
	admin(t, s, 200, "GET", "/api/v1/agents/"+a+"/outbound", nil, &l)
	if len(l.Items) != 0 {
		t.Fatalf("nodes after a forced delete: %v", l.Items)
	}
	// The identifier is free again, for either type.
	e := newTokenEndpoint(t, "c", "s")
	createProvider(t, s, "shared", e, nil)
	r = callJSON(t, s, "POST", "/api/v1/credentials/api-keys", servertest.AdminToken, map[string]any{"identifier": "shared", "value": "x"})
	if r.code != 409 {
		t.Fatalf("an API key with an OAuth provider's identifier: HTTP %d", r.code)
	}
}

// Presets fill the endpoint and auth method from a few parameters.
func TestProviderPresets(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	tests := []struct {
		preset   string
		params   map[string]string
		endpoint string
		method   string
		extra    map[string]string
	}{
		{"entra_id", map[string]string{"tenant": "contoso.onmicrosoft.com"}, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "client_secret_post", nil},
		{"okta", map[string]string{"domain": "dev-1.okta.com"}, "https://dev-1.okta.com/oauth2/default/v1/token", "client_secret_basic", nil},
		{"auth0", map[string]string{"domain": "acme.us.auth0.com", "audience": "https://api.acme.example"}, "https://acme.us.auth0.com/oauth/token", "client_secret_post", map[string]string{"audience": "https://api.acme.example"}},
		{"keycloak", map[string]string{"base_url": "https://sso.example.com/", "realm": "agents"}, "https://sso.example.com/realms/agents/protocol/openid-connect/token", "client_secret_basic", nil},
	}
	for _, tc := range tests {
		t.Run(tc.preset, func(t *testing.T) {
			var out struct {
				TokenEndpoint string            `json:"token_endpoint"`
				AuthMethod    string            `json:"auth_method"`
				TokenParams   map[string]string `json:"token_params"`
				Preset        string            `json:"preset"`
			}
			admin(t, s, 201, "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "p-" + tc.preset,
				"client_id": "c", "client_secret": "s", "preset": tc.preset, "preset_params": tc.params}, &out)
			if out.TokenEndpoint != tc.endpoint || out.AuthMethod != tc.method || out.Preset != tc.preset || len(out.TokenParams) != len(tc.extra) || out.TokenParams["audience"] != tc.extra["audience"] {
				t.Fatalf("got %+v", out)
			}
		})
	}
	// Bad presets name the parameter.
	for name, body := range map[string]map[string]any{
		"preset_params.tenant": {"preset": "entra_id"},
		"preset_params.domain": {"preset": "okta", "preset_params": map[string]string{"domain": "https://dev-1.okta.com/x"}},
		"preset":               {"preset": "nope"},
		"token_endpoint":       {"preset": "okta", "preset_params": map[string]string{"domain": "a.okta.com"}, "token_endpoint": "https://x.example.com/t"},
		"preset_params.x":      {"preset": "okta", "preset_params": map[string]string{"domain": "a.okta.com", "x": "1"}},
	} {
		body["identifier"], body["client_id"], body["client_secret"] = "bad", "c", "s"
		r := callJSON(t, s, "POST", "/api/v1/credentials/oauth-providers", servertest.AdminToken, body)
		if p := r.problem(t); r.code != 400 || !strings.Contains(strings.Join(p.fields(), ","), name) {
			t.Errorf("%s: HTTP %d %s", name, r.code, r.body)
		}
	}
	var presets struct {
		Items []credential.Preset `json:"items"`
	}
	admin(t, s, 200, "GET", "/api/v1/credentials/oauth-presets", nil, &presets)
	if len(presets.Items) != len(credential.Presets) {
		t.Fatalf("presets %+v", presets.Items)
	}
}
