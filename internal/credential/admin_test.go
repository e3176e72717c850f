package credential_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// Who may call each management endpoint: admins only. No token and bad tokens are
// 401; an agent's token without agentguard:admin, and a delegated token, are 403;
// the bootstrap token and an admin-scoped agent token get through.
func TestManagementEndpointsAreAdminOnly(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, sec := s.Agent(t, "plain-agent")
	agentTok := agentToken(t, s, agentID, sec, nil)
	delegated, _, _ := s.Issuer.Issue(tokenClaims(s, "usr_bob", agentID, agentID), time.Minute)

	adminID, adminSec := s.Agent(t, "admin-agent")
	var gs struct{ Items []struct{ ID string } }
	admin(t, s, 200, "GET", "/api/v1/agents/"+adminID+"/grants", nil, &gs)
	admin(t, s, 200, "PATCH", "/api/v1/agents/"+adminID+"/grants/"+gs.Items[0].ID, map[string]any{"scopes": []string{"agentguard:credentials", "agentguard:admin"}}, nil)
	adminAgentTok := agentToken(t, s, adminID, adminSec, url.Values{"scope": {"agentguard:admin"}})

	createAPIKey(t, s, "k", "v")
	e := newTokenEndpoint(t, "c", "s")
	createProvider(t, s, "p", e, nil)
	addNode(t, s, agentID, "llm", "api_key", "k", nil)

	routes := []struct{ method, path string }{
		{"POST", "/api/v1/credentials/api-keys"},
		{"GET", "/api/v1/credentials/api-keys"},
		{"GET", "/api/v1/credentials/api-keys/k"},
		{"PATCH", "/api/v1/credentials/api-keys/k"},
		{"PUT", "/api/v1/credentials/api-keys/k/value"},
		{"POST", "/api/v1/credentials/api-keys/k/rollback"},
		{"DELETE", "/api/v1/credentials/api-keys/nope"},
		{"POST", "/api/v1/credentials/oauth-providers"},
		{"GET", "/api/v1/credentials/oauth-providers"},
		{"GET", "/api/v1/credentials/oauth-providers/p"},
		{"PATCH", "/api/v1/credentials/oauth-providers/p"},
		{"DELETE", "/api/v1/credentials/oauth-providers/nope"},
		{"GET", "/api/v1/credentials/oauth-presets"},
		{"POST", "/api/v1/agents/" + agentID + "/outbound"},
		{"GET", "/api/v1/agents/" + agentID + "/outbound"},
		{"GET", "/api/v1/agents/" + agentID + "/outbound/k"},
		{"PATCH", "/api/v1/agents/" + agentID + "/outbound/k"},
		{"DELETE", "/api/v1/agents/" + agentID + "/outbound/nope"},
		{"GET", "/api/v1/agents/" + agentID + "/topology"},
	}
	callers := []struct {
		name, bearer string
		want         func(code int) bool
	}{
		{"no token", "", func(c int) bool { return c == 401 }},
		{"garbage", "garbage", func(c int) bool { return c == 401 }},
		{"agent token", agentTok, func(c int) bool { return c == 403 }},
		{"delegated token", delegated, func(c int) bool { return c == 403 }},
		{"bootstrap admin", servertest.AdminToken, func(c int) bool { return c != 401 && c != 403 }},
		{"admin-scoped agent", adminAgentTok, func(c int) bool { return c != 401 && c != 403 }},
	}
	for _, rt := range routes {
		for _, c := range callers {
			// An empty JSON object: enough to get past authentication to validation.
			r := call(t, s, rt.method, rt.path, c.bearer, "application/json", []byte(`{}`))
			if !c.want(r.code) {
				t.Errorf("%s %s as %s: HTTP %d: %s", rt.method, rt.path, c.name, r.code, r.body)
			}
		}
	}
	// The agent's key is untouched by all of this.
	if r, kv := getKey(t, s, agentTok, "k"); r.code != 200 || kv.Value != "v" {
		t.Fatalf("after the sweep: HTTP %d %+v", r.code, kv)
	}
}

// Bad input is refused with a 400 naming the field (or 404/409), and a secret
// value never appears in the answer.
func TestManagementValidation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, _ := s.Agent(t, "bot")
	createAPIKey(t, s, "taken", "v")
	e := newTokenEndpoint(t, "c", "s")
	createProvider(t, s, "prov", e, nil)
	long := strings.Repeat("x", 16<<10+1)

	tests := []struct {
		name, method, path string
		body               any
		code               int
		field              string // "" for no field check
	}{
		{"key: bad identifier", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "has space", "value": "v"}, 400, "identifier"},
		{"key: identifier with a slash", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "a/b", "value": "v"}, 400, "identifier"},
		{"key: no value", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "k1"}, 400, "value"},
		{"key: value with whitespace", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "k1", "value": "sk-123\n"}, 400, "value"},
		{"key: value too long", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "k1", "value": long}, 400, "value"},
		{"key: unknown field", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "k1", "value": "v", "secret": "x"}, 400, "secret"},
		{"key: duplicate", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "taken", "value": "v"}, 409, ""},
		{"key: duplicate of a provider", "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "prov", "value": "v"}, 409, ""},
		{"key: value by PATCH", "PATCH", "/api/v1/credentials/api-keys/taken", map[string]any{"value": "new"}, 400, "value"},
		{"key: PATCH unknown", "PATCH", "/api/v1/credentials/api-keys/nope", map[string]any{"name": "n"}, 404, ""},
		{"key: rotate unknown", "PUT", "/api/v1/credentials/api-keys/nope/value", map[string]any{"value": "v"}, 404, ""},
		{"key: rotate without value", "PUT", "/api/v1/credentials/api-keys/taken/value", map[string]any{}, 400, "value"},
		{"key: keep too long", "PUT", "/api/v1/credentials/api-keys/taken/value", map[string]any{"value": "v2", "keep_previous_for": 1 << 40}, 400, "keep_previous_for"},
		{"key: negative keep", "PUT", "/api/v1/credentials/api-keys/taken/value", map[string]any{"value": "v2", "keep_previous_for": -1}, 400, "keep_previous_for"},
		{"key: bad force", "DELETE", "/api/v1/credentials/api-keys/taken?force=yes", nil, 400, "force"},
		{"key: delete unknown", "DELETE", "/api/v1/credentials/api-keys/nope", nil, 404, ""},
		{"provider: missing everything", "POST", "/api/v1/credentials/oauth-providers", map[string]any{}, 400, "identifier,client_id,client_secret,token_endpoint"},
		{"provider: http endpoint", "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "p1", "client_id": "c", "client_secret": "s", "token_endpoint": "http://idp.example.com/token"}, 400, "token_endpoint"},
		{"provider: endpoint with user info", "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "p1", "client_id": "c", "client_secret": "s", "token_endpoint": "https://u:p@idp.example.com/token"}, 400, "token_endpoint"},
		{"provider: bad auth method", "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "p1", "client_id": "c", "client_secret": "s", "token_endpoint": "https://idp.example.com/t", "auth_method": "private_key_jwt"}, 400, "auth_method"},
		{"provider: bad scope", "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "p1", "client_id": "c", "client_secret": "s", "token_endpoint": "https://idp.example.com/t", "default_scopes": []string{"a b"}}, 400, "default_scopes"},
		{"provider: reserved token param", "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "p1", "client_id": "c", "client_secret": "s", "token_endpoint": "https://idp.example.com/t", "token_params": map[string]string{"client_secret": "x"}}, 400, "token_params.client_secret"},
		{"provider: identifier change", "PATCH", "/api/v1/credentials/oauth-providers/prov", map[string]any{"identifier": "other"}, 400, "identifier"},
		{"provider: PATCH unknown", "PATCH", "/api/v1/credentials/oauth-providers/nope", map[string]any{"name": "n"}, 404, ""},
		{"node: bad types", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "database", "credential_type": "password", "credential": "taken"}, 400, "node_type,credential_type"},
		{"node: unknown credential", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "nope"}, 400, "credential"},
		{"node: credential of the other type", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "prov"}, 400, "credential"},
		{"node: unknown agent", "POST", "/api/v1/agents/agt_nope/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken"}, 404, ""},
		{"node: http upstream", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken", "upstream_url": "http://api.example.com"}, 400, "upstream_url"},
		{"node: upstream with a query", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken", "upstream_url": "https://api.example.com/?key=x"}, 400, "upstream_url"},
		{"node: header with CRLF", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken", "upstream_url": "https://api.example.com", "header": "X-Key: {{key}}\r\nX-Evil: 1"}, 400, "header"},
		{"node: header without placeholder", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken", "upstream_url": "https://api.example.com", "header": "X-Key: static"}, 400, "header"},
		{"node: header of the other type", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken", "upstream_url": "https://api.example.com", "header": "Authorization: Bearer {{token}}"}, 400, "header"},
		{"node: Host header", "POST", "/api/v1/agents/" + agentID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken", "upstream_url": "https://api.example.com", "header": "Host: {{key}}"}, 400, "header"},
		{"node: list of unknown agent", "GET", "/api/v1/agents/agt_nope/outbound", nil, 404, ""},
		{"node: delete unknown", "DELETE", "/api/v1/agents/" + agentID + "/outbound/nope", nil, 404, ""},
		{"topology: unknown agent", "GET", "/api/v1/agents/agt_nope/topology", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := callJSON(t, s, tc.method, tc.path, servertest.AdminToken, tc.body)
			if r.code != tc.code {
				t.Fatalf("HTTP %d, want %d: %s", r.code, tc.code, r.body)
			}
			p := r.problem(t)
			if tc.field != "" {
				for _, f := range strings.Split(tc.field, ",") {
					if !slices.Contains(p.fields(), f) {
						t.Fatalf("fields %v lack %s: %s", p.fields(), f, r.body)
					}
				}
			}
			if strings.Contains(string(r.body), "sk-123") || strings.Contains(string(r.body), long[:64]) {
				t.Fatalf("the answer echoes the value: %s", r.body)
			}
		})
	}
	// A node twice is a conflict.
	addNode(t, s, agentID, "llm", "api_key", "taken", nil)
	r := callJSON(t, s, "POST", "/api/v1/agents/"+agentID+"/outbound", servertest.AdminToken, map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "taken"})
	if r.code != http.StatusConflict {
		t.Fatalf("second node for one credential: HTTP %d", r.code)
	}
}
