package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// credentialAPI serves the credential API paths on the test auth server: it checks
// the bearer token and answers what the test says.
func credentialAPI(s *authServer, handle func(w http.ResponseWriter, r *http.Request)) {
	s.api = handle
}

// APIKey calls GET /api/v1/agent/api-keys/{identifier} with a credential API token
// (audience = the issuer, scope agentguard:credentials), escaping the identifier.
func TestAPIKey(t *testing.T) {
	s := newAuthServer(t)
	var path, auth string
	credentialAPI(s, func(w http.ResponseWriter, r *http.Request) {
		path, auth = r.URL.EscapedPath(), r.Header.Get("Authorization")
		writeJSON(w, 200, map[string]any{"identifier": "open ai/x", "value": "sk-live-1", "version": 3})
	})
	c := secretClient(t, s)
	k, err := c.APIKey(context.Background(), "open ai/x")
	if err != nil {
		t.Fatal(err)
	}
	if k.Value != "sk-live-1" || k.Version != 3 || path != "/api/v1/agent/api-keys/open%20ai%2Fx" || auth != "Bearer tok-1" {
		t.Fatalf("key %v path %s auth %s", k, path, auth)
	}
	if f := s.form(0); f.Get("resource") != s.URL || f.Get("scope") != "agentguard:credentials" {
		t.Fatalf("credential token form %v", f)
	}
	// Not cached: a rotation is seen by the next call; the token is reused.
	c.APIKey(context.Background(), "open ai/x")
	if s.calls.Load() != 1 {
		t.Fatalf("token requests %d", s.calls.Load())
	}
}

// Refusals of the credential API are typed; 403 (unknown or not in the rule) is
// ErrNotAuthorized with the server's detail.
func TestCredentialErrors(t *testing.T) {
	cases := []struct {
		status int
		body   map[string]any
		want   error
	}{
		{403, map[string]any{"title": "Forbidden", "status": 403, "detail": "agent agt_test may not use API key openai"}, ErrNotAuthorized},
		{404, map[string]any{"title": "Not Found", "status": 404, "detail": "no route"}, ErrNotFound},
		{400, map[string]any{"title": "Bad Request", "status": 400, "detail": "scopes: x is not a default scope"}, ErrInvalidRequest},
		{429, map[string]any{"title": "Too Many Requests", "status": 429}, ErrRateLimited},
	}
	for _, tc := range cases {
		s := newAuthServer(t)
		credentialAPI(s, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tc.status, tc.body) })
		_, err := secretClient(t, s).APIKey(context.Background(), "openai")
		if !errors.Is(err, tc.want) {
			t.Errorf("%d: err = %v, want %v", tc.status, err, tc.want)
		}
		if d, _ := tc.body["detail"].(string); d != "" && !strings.Contains(err.Error(), d) {
			t.Errorf("detail lost: %v", err)
		}
	}
	if _, err := secretClient(t, newAuthServer(t)).APIKey(context.Background(), ""); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("empty identifier: %v", err)
	}
}

// A credential API token refused as invalid (revoked) is replaced once.
func TestCredentialTokenRefreshedOnInvalidToken(t *testing.T) {
	s := newAuthServer(t)
	var n atomic.Int64
	credentialAPI(s, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeJSON(w, 401, map[string]any{"title": "Unauthorized", "status": 401, "detail": "the token is revoked"})
			return
		}
		writeJSON(w, 200, map[string]any{"identifier": "k", "value": "v", "version": 1})
	})
	c := secretClient(t, s)
	if _, err := c.APIKey(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 || s.calls.Load() != 2 {
		t.Fatalf("api calls %d token calls %d", n.Load(), s.calls.Load())
	}
}

// OAuthToken posts the scopes; a provider's OAuth refusal relayed as 502 is not
// retried and carries the provider's error code.
func TestOAuthToken(t *testing.T) {
	s := newAuthServer(t)
	var body string
	var n atomic.Int64
	credentialAPI(s, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		if strings.HasSuffix(r.URL.Path, "/broken") {
			writeJSON(w, 502, map[string]any{"type": "https://agentguard.dev/problems/upstream", "title": "Bad Gateway", "status": 502,
				"detail": "the provider refused the client credentials", "provider": "broken", "provider_error": "invalid_client"})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": "gh-token", "token_type": "Bearer", "expires_in": 3600, "scope": "repo"})
	})
	c := secretClient(t, s)
	tok, err := c.OAuthToken(context.Background(), "github", "repo")
	if err != nil || tok.AccessToken != "gh-token" || body != `{"scopes":["repo"]}` {
		t.Fatalf("tok %v err %v body %s", tok, err, body)
	}
	n.Store(0)
	_, err = c.OAuthToken(context.Background(), "broken")
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.ProviderError != "invalid_client" || n.Load() != 1 {
		t.Fatalf("err %v calls %d", err, n.Load())
	}
}

// APIKeyFor exchanges the user's token for a credential API token first.
func TestAPIKeyForUser(t *testing.T) {
	s := newAuthServer(t)
	credentialAPI(s, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"identifier": "k", "value": "v", "version": 1})
	})
	c := secretClient(t, s)
	if _, err := c.APIKeyFor(context.Background(), "user-token", "k"); err != nil {
		t.Fatal(err)
	}
	f := s.form(0)
	want := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {"user-token"}, "subject_token_type": {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken}, "resource": {s.URL}, "scope": {"agentguard:credentials"}}
	if f.Encode() != want.Encode() {
		t.Fatalf("form %v", f)
	}
	// Cached per user token.
	c.APIKeyFor(context.Background(), "user-token", "k")
	c.APIKeyFor(context.Background(), "other-user", "k")
	if s.calls.Load() != 2 {
		t.Fatalf("token calls %d", s.calls.Load())
	}
}
