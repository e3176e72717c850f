package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentguard/agentguard/sdk"
)

// APIKey against the real credential API: the value of a key in the agent's
// outbound rule; a rotation is seen by the next call (the SDK does not cache
// values); a removed node and an unknown identifier are both ErrNotAuthorized; every
// call is audited under the agent.
func TestAPIKeyEndToEnd(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	if code := f.s.Do(t, "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "openai", "name": "OpenAI", "value": "sk-first-value-0001"}, nil); code != 201 {
		t.Fatalf("create key: HTTP %d", code)
	}
	if code := f.s.Do(t, "POST", "/api/v1/agents/"+f.agent+"/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "openai"}, nil); code != 201 {
		t.Fatalf("add node: HTTP %d", code)
	}
	c := f.client(t, sdk.ClientSecretBasic)
	k, err := c.APIKey(ctx, "openai")
	if err != nil {
		t.Fatal(err)
	}
	if k.Value != "sk-first-value-0001" || k.Version != 1 || k.Identifier != "openai" {
		t.Fatalf("key %v", k)
	}
	if strings.Contains(fmt.Sprint(k), k.Value) {
		t.Fatal("the key prints its value")
	}

	if code := f.s.Do(t, "PUT", "/api/v1/credentials/api-keys/openai/value", map[string]any{"value": "sk-second-value-0002"}, nil); code != 200 {
		t.Fatalf("rotate: HTTP %d", code)
	}
	k, err = c.APIKey(ctx, "openai")
	if err != nil || k.Value != "sk-second-value-0002" || k.Version != 2 {
		t.Fatalf("after rotation: %v %v", k, err)
	}

	_, errUnknown := c.APIKey(ctx, "no-such-key")
	if code := f.s.Do(t, "DELETE", "/api/v1/agents/"+f.agent+"/outbound/openai", nil, nil); code != 204 {
		t.Fatalf("delete node: HTTP %d", code)
	}
	_, errRemoved := c.APIKey(ctx, "openai")
	for name, err := range map[string]error{"unknown identifier": errUnknown, "removed node": errRemoved} {
		var e *sdk.Error
		if !errors.Is(err, sdk.ErrNotAuthorized) || !errors.As(err, &e) || e.StatusCode != 403 || e.Detail == "" {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(err.Error(), "sk-") {
			t.Fatalf("%s: the error holds a key value: %v", name, err)
		}
	}

	var events struct {
		Items []struct {
			Action   string `json:"action"`
			Decision string `json:"decision"`
			AgentID  string `json:"agent_id"`
		} `json:"items"`
	}
	f.s.Do(t, "GET", "/api/v1/audit/events?category=credential&agent_id="+f.agent, nil, &events)
	var allowed, denied int
	for _, e := range events.Items {
		if e.Action == "api_key.retrieve" && e.AgentID == f.agent {
			if e.Decision == "allow" {
				allowed++
			} else {
				denied++
			}
		}
	}
	if allowed != 2 || denied != 2 {
		t.Fatalf("audit: %d allowed, %d denied retrievals, want 2 and 2 (%+v)", allowed, denied, events.Items)
	}
}

// provider is a third-party OAuth token endpoint (client credentials) on a real
// socket.
type provider struct {
	*httptest.Server
	calls atomic.Int64
	fail  atomic.Bool
}

func newProvider(t *testing.T) *provider {
	p := &provider{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		id, secret, _ := r.BasicAuth()
		if p.fail.Load() || id != "gh-client" || secret != "gh-secret-value" {
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "bad client credentials"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("gh-token-%d", p.calls.Load()), "token_type": "Bearer",
			"expires_in": 3600, "scope": r.PostForm.Get("scope")})
	}))
	t.Cleanup(p.Close)
	return p
}

// OAuthToken against the real credential API and a real provider: agentguard fetches
// and caches the provider's token; a scope subset is passed through; a provider's
// refusal is ErrUnavailable naming the provider's error code, and is not retried.
func TestOAuthTokenEndToEnd(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	p := newProvider(t)
	if code := f.s.Do(t, "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "github", "name": "GitHub",
		"client_id": "gh-client", "client_secret": "gh-secret-value", "token_endpoint": p.URL + "/token",
		"default_scopes": []string{"repo", "read:org"}, "auth_method": "client_secret_basic"}, nil); code != 201 {
		t.Fatalf("create provider: HTTP %d", code)
	}
	if code := f.s.Do(t, "POST", "/api/v1/agents/"+f.agent+"/outbound", map[string]any{"node_type": "external_service", "credential_type": "oauth_provider", "credential": "github"}, nil); code != 201 {
		t.Fatalf("add node: HTTP %d", code)
	}
	c := f.client(t, sdk.ClientSecretPost)
	tok, err := c.OAuthToken(ctx, "github")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "gh-token-") || tok.ExpiresAt.IsZero() {
		t.Fatalf("token %v", tok)
	}
	again, _ := c.OAuthToken(ctx, "github")
	if again.AccessToken != tok.AccessToken || p.calls.Load() != 1 {
		t.Fatalf("agentguard did not cache the provider's token: %d provider calls", p.calls.Load())
	}
	sub, err := c.OAuthToken(ctx, "github", "repo")
	if err != nil || sub.Scope != "repo" {
		t.Fatalf("subset: %v %v", sub, err)
	}
	if _, err := c.OAuthToken(ctx, "github", "admin:org"); !errors.Is(err, sdk.ErrInvalidRequest) || !strings.Contains(err.Error(), "scopes") {
		t.Fatalf("scope outside the defaults: %v", err)
	}

	// The provider now refuses: a new scope set needs a new upstream token.
	p.fail.Store(true)
	before := p.calls.Load()
	_, err = c.OAuthToken(ctx, "github", "read:org")
	var e *sdk.Error
	if !errors.Is(err, sdk.ErrUnavailable) || !errors.As(err, &e) || e.StatusCode != 502 || e.ProviderError != "invalid_client" || e.Attempts != 1 {
		t.Fatalf("provider refusal: %#v", err)
	}
	if n := p.calls.Load() - before; n != 1 {
		t.Fatalf("the provider was called %d times for one refused request", n)
	}
	if strings.Contains(err.Error(), "gh-secret-value") {
		t.Fatal("the error holds the provider's secret")
	}
}
