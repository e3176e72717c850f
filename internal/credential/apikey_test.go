package credential_test

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

type apiKeyMeta struct {
	ID         string `json:"id"`
	Identifier string `json:"identifier"`
	Version    int64  `json:"version"`
	Versions   []struct {
		Version   int64      `json:"version"`
		Current   bool       `json:"current"`
		ExpiresAt *time.Time `json:"expires_at"`
	} `json:"versions"`
	UsedBy []string `json:"used_by"`
}

// An agent gets an API key only while its outbound rule holds a node for it;
// removing the node refuses the next call at once, and the key itself stays.
func TestAPIKeyRetrievalOnlyWithAnOutboundNode(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, tok := agentWithToken(t, s, "bot")
	createAPIKey(t, s, "openai", "sk-live-0123456789")

	if r, _ := getKey(t, s, tok, "openai"); r.code != http.StatusForbidden {
		t.Fatalf("before any node: HTTP %d, want 403: %s", r.code, r.body)
	}
	addNode(t, s, agentID, "llm", "api_key", "openai", nil)
	r, kv := getKey(t, s, tok, "openai")
	if r.code != 200 || kv.Value != "sk-live-0123456789" || kv.Version != 1 || kv.Identifier != "openai" {
		t.Fatalf("with a node: HTTP %d %+v: %s", r.code, kv, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}

	admin(t, s, 204, "DELETE", "/api/v1/agents/"+agentID+"/outbound/openai", nil, nil)
	if r, _ := getKey(t, s, tok, "openai"); r.code != http.StatusForbidden {
		t.Fatalf("after the node is removed: HTTP %d, want 403", r.code)
	}
	var meta apiKeyMeta
	admin(t, s, 200, "GET", "/api/v1/credentials/api-keys/openai", nil, &meta)
	if meta.Version != 1 || len(meta.UsedBy) != 0 {
		t.Fatalf("the key after its node went: %+v", meta)
	}
}

// One agent's rule gives nothing to another agent.
func TestAgentsAreIsolated(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	a, tokA := agentWithToken(t, s, "a")
	b, tokB := agentWithToken(t, s, "b")
	createAPIKey(t, s, "key-a", "value-of-a")
	createAPIKey(t, s, "key-b", "value-of-b")
	addNode(t, s, a, "llm", "api_key", "key-a", nil)
	addNode(t, s, b, "external_service", "api_key", "key-b", nil)

	for _, tc := range []struct {
		tok, id string
		want    int
	}{
		{tokA, "key-a", 200}, {tokA, "key-b", 403},
		{tokB, "key-b", 200}, {tokB, "key-a", 403},
	} {
		if r, kv := getKey(t, s, tc.tok, tc.id); r.code != tc.want || (tc.want == 200 && kv.Value != "value-of-"+tc.id[4:]) {
			t.Errorf("GET %s: HTTP %d %+v, want %d", tc.id, r.code, kv, tc.want)
		}
	}
}

// After PUT …/value the very next retrieval returns the new value and version. A
// previous version kept for a grace period can be rolled back to.
func TestRotationAndRollback(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, tok := agentWithToken(t, s, "bot")
	createAPIKey(t, s, "svc", "value-1")
	addNode(t, s, agentID, "external_service", "api_key", "svc", nil)

	var meta apiKeyMeta
	admin(t, s, 200, "PUT", "/api/v1/credentials/api-keys/svc/value", map[string]any{"value": "value-2"}, &meta)
	if meta.Version != 2 || len(meta.Versions) != 1 {
		t.Fatalf("after rotation without grace: %+v (the previous value must be gone)", meta)
	}
	if _, kv := getKey(t, s, tok, "svc"); kv.Value != "value-2" || kv.Version != 2 {
		t.Fatalf("next call after rotation: %+v, want value-2 v2", kv)
	}
	// Nothing to roll back to.
	r := callJSON(t, s, "POST", "/api/v1/credentials/api-keys/svc/rollback", servertest.AdminToken, nil)
	if r.code != http.StatusConflict || !strings.Contains(r.problem(t).Detail, "keep_previous_for") {
		t.Fatalf("rollback without a kept version: HTTP %d %s", r.code, r.body)
	}

	admin(t, s, 200, "PUT", "/api/v1/credentials/api-keys/svc/value", map[string]any{"value": "value-3", "keep_previous_for": 3600}, &meta)
	if meta.Version != 3 || len(meta.Versions) != 2 || !meta.Versions[0].Current || meta.Versions[1].Version != 2 || meta.Versions[1].ExpiresAt == nil {
		t.Fatalf("after rotation with grace: %+v", meta)
	}
	if _, kv := getKey(t, s, tok, "svc"); kv.Value != "value-3" || kv.Version != 3 {
		t.Fatalf("after the second rotation: %+v", kv)
	}
	admin(t, s, 200, "POST", "/api/v1/credentials/api-keys/svc/rollback", nil, &meta)
	if meta.Version != 2 || len(meta.Versions) != 1 {
		t.Fatalf("after rollback: %+v", meta)
	}
	if _, kv := getKey(t, s, tok, "svc"); kv.Value != "value-2" || kv.Version != 2 {
		t.Fatalf("after rollback the agent gets %+v, want value-2 v2", kv)
	}
	// Versions are never reused: the next rotation is v4.
	admin(t, s, 200, "PUT", "/api/v1/credentials/api-keys/svc/value", map[string]any{"value": "value-4", "keep_previous_for": 60}, &meta)
	if meta.Version != 4 {
		t.Fatalf("rotation after rollback made version %d, want 4", meta.Version)
	}
	// Past the grace period the kept version is gone.
	s.Clock.Advance(61 * time.Second)
	r = callJSON(t, s, "POST", "/api/v1/credentials/api-keys/svc/rollback", servertest.AdminToken, map[string]any{"version": 2})
	if r.code != http.StatusConflict {
		t.Fatalf("rollback past the grace period: HTTP %d %s", r.code, r.body)
	}
}

// An unknown identifier, one that exists outside the rule, one of the other type
// and a malformed one get the very same answer, so an agent cannot probe.
func TestUnknownAndForbiddenIdentifiersLookAlike(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, tok := agentWithToken(t, s, "prober")
	createAPIKey(t, s, "exists", "v")
	e := newTokenEndpoint(t, "cid", "csecret")
	createProvider(t, s, "oauth-one", e, nil)
	addNode(t, s, agentID, "external_service", "oauth_provider", "oauth-one", nil)

	var bodies [][]byte
	for _, id := range []string{"does-not-exist", "exists", "oauth-one", "bad%20id", strings.Repeat("x", 300)} {
		r, _ := getKey(t, s, tok, id)
		if r.code != http.StatusForbidden {
			t.Fatalf("%s: HTTP %d, want 403", id, r.code)
		}
		r.problem(t)
		bodies = append(bodies, r.body)
	}
	for i := range bodies[1:] {
		if !bytes.Equal(bodies[0], bodies[i+1]) {
			t.Fatalf("answers differ:\n%s\n%s", bodies[0], bodies[i+1])
		}
	}
	// The audit log, which only admins read, says why.
	evs := events(t, s, "action=api_key.retrieve&decision=deny")
	if len(evs) != 5 || !strings.Contains(evs[3].Reason, "no node names") || !strings.Contains(evs[2].Reason, "oauth_provider, not an API key") {
		t.Fatalf("deny events: %+v", evs)
	}
}

// Who may call the Credential API: only an active agent's own (or delegated)
// access token for this server's audience with agentguard:credentials.
func TestCredentialAPIAuthentication(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, sec := s.Agent(t, "caller")
	tok := agentToken(t, s, agentID, sec, nil)
	createAPIKey(t, s, "k", "the-value")
	addNode(t, s, agentID, "llm", "api_key", "k", nil)

	// A token for another audience: a resource server the agent is granted.
	admin(t, s, 201, "POST", "/api/v1/resource-servers", map[string]any{"name": "files", "audience": "https://files.example.com",
		"scopes": []map[string]string{{"name": "read"}}}, nil)
	admin(t, s, 201, "POST", "/api/v1/agents/"+agentID+"/grants", map[string]any{"audience": "https://files.example.com", "scopes": []string{"read"}}, nil)
	otherAud := agentToken(t, s, agentID, sec, url.Values{"resource": {"https://files.example.com"}})

	// A token without agentguard:credentials: the functional grant replaced by admin only.
	noScopeID, noScopeSec := s.Agent(t, "no-scope")
	var gs struct{ Items []struct{ ID string } }
	admin(t, s, 200, "GET", "/api/v1/agents/"+noScopeID+"/grants", nil, &gs)
	admin(t, s, 200, "PATCH", "/api/v1/agents/"+noScopeID+"/grants/"+gs.Items[0].ID, map[string]any{"scopes": []string{"agentguard:admin"}}, nil)
	addNode(t, s, noScopeID, "llm", "api_key", "k", nil)
	noScope := agentToken(t, s, noScopeID, noScopeSec, url.Values{"scope": {"agentguard:admin"}})

	// A delegated token: the agent acting for a user.
	delegated, _, err := s.Issuer.Issue(tokenClaims(s, "usr_alice", agentID, agentID), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// A delegated token whose actor is not its client.
	badActor, _, _ := s.Issuer.Issue(tokenClaims(s, "usr_alice", agentID, "agt_other"), time.Minute)
	// A user's token without act.
	userTok, _, _ := s.Issuer.Issue(tokenClaims(s, "usr_alice", agentID, ""), time.Minute)

	// A revoked token.
	revoked := agentToken(t, s, agentID, sec, nil)
	revokeReq, _ := http.NewRequest("POST", s.URL+"/oauth2/revoke", strings.NewReader("token="+revoked))
	revokeReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	revokeReq.SetBasicAuth(agentID, sec)
	if resp, err := http.DefaultClient.Do(revokeReq); err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v", err)
	}

	tests := []struct {
		name   string
		bearer string
		header string // raw Authorization header instead of bearer
		want   int
		chall  string // expected WWW-Authenticate prefix
	}{
		{"no token", "", "", 401, `Bearer error="invalid_token"`},
		{"basic auth", "", "Basic " + sec, 401, `Bearer error="invalid_token"`},
		{"garbage", "not-a-token", "", 401, `Bearer error="invalid_token"`},
		{"the admin token", servertest.AdminToken, "", 401, `Bearer error="invalid_token"`},
		{"token for another audience", otherAud, "", 401, `Bearer error="invalid_token"`},
		{"token without the credentials scope", noScope, "", 403, `Bearer error="insufficient_scope"`},
		{"revoked token", revoked, "", 401, `Bearer error="invalid_token"`},
		{"delegated act.sub not the client", badActor, "", 401, `Bearer error="invalid_token"`},
		{"user token without act", userTok, "", 401, `Bearer error="invalid_token"`},
		{"the agent's token", tok, "", 200, ""},
		{"delegated token", delegated, "", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+"/api/v1/agent/api-keys/k", nil)
			switch {
			case tc.header != "":
				req.Header.Set("Authorization", tc.header)
			case tc.bearer != "":
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.chall != "" && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), tc.chall) {
				t.Fatalf("WWW-Authenticate %q, want %s…", resp.Header.Get("WWW-Authenticate"), tc.chall)
			}
		})
	}

	// A disabled agent's token stops working at once; enabled again, it works.
	admin(t, s, 200, "PATCH", "/api/v1/agents/"+agentID, map[string]any{"status": "disabled"}, nil)
	// 401 whatever the identifier, and on the gateway too.
	for _, id := range []string{"k", "not-in-rule", "bad id"} {
		if r, _ := getKey(t, s, tok, url.PathEscape(id)); r.code != 401 {
			t.Fatalf("disabled agent, %q: HTTP %d, want 401", id, r.code)
		}
	}
	if r := call(t, s, "GET", "/gateway/k/x", tok, "", nil); r.code != 401 {
		t.Fatalf("disabled agent on the gateway: HTTP %d, want 401", r.code)
	}
	admin(t, s, 200, "PATCH", "/api/v1/agents/"+agentID, map[string]any{"status": "active"}, nil)
	// An expired token.
	s.Clock.Advance(time.Hour)
	if r, _ := getKey(t, s, tok, "k"); r.code != 401 {
		t.Fatalf("expired token: HTTP %d, want 401", r.code)
	}

	// The delegated call's audit event names both the agent and the user.
	var found bool
	for _, e := range events(t, s, "action=api_key.retrieve&decision=allow") {
		if e.User == "usr_alice" && e.AgentID == agentID && e.ClientID == agentID {
			found = true
		}
	}
	if !found {
		t.Fatal("no allow event names both the agent and the user of the delegated call")
	}
}

// Every Credential API call writes exactly one event, allowed or not, naming the
// identifier and never the value.
func TestEveryCallIsAuditedOnce(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, tok := agentWithToken(t, s, "audited")
	createAPIKey(t, s, "k", "secret-value-abc")
	addNode(t, s, agentID, "llm", "api_key", "k", nil)

	before := len(events(t, s, ""))
	getKey(t, s, tok, "k")        // allow
	getKey(t, s, tok, "other")    // deny: not in rule
	getKey(t, s, "", "k")         // deny: no token
	getKey(t, s, tok+"x", "k")    // deny: bad token
	getToken(t, s, tok, "k", nil) // deny: wrong type
	evs := events(t, s, "")
	if len(evs)-before != 5 {
		t.Fatalf("%d events for 5 calls", len(evs)-before)
	}
	wantActions := []string{"oauth_token.retrieve", "api_key.retrieve", "api_key.retrieve", "api_key.retrieve", "api_key.retrieve"}
	wantDecisions := []string{"deny", "deny", "deny", "deny", "allow"}
	for i, e := range evs[:5] {
		if e.Action != wantActions[i] || e.Decision != wantDecisions[i] || e.Category != "credential" || e.Reason == "" {
			t.Errorf("event %d: %+v", i, e)
		}
		if strings.Contains(e.Reason, "secret-value-abc") {
			t.Errorf("event %d holds the value", i)
		}
	}
	if allow := evs[4]; allow.AgentID != agentID || allow.ResourceType != "api_key" || allow.Resource != "k" {
		t.Errorf("allow event %+v", allow)
	}
	if !slices.ContainsFunc(evs[:5], func(e auditEvent) bool { return e.Resource == "other" && e.AgentID == agentID }) {
		t.Error("the denied identifier is not recorded with the agent")
	}
	// The decisions are counted for /metrics.
	m := call(t, s, "GET", "/metrics", "", "", nil)
	for _, want := range []string{
		`agentguard_credential_requests_total{action="api_key.retrieve",decision="allow"} 1`,
		`agentguard_credential_requests_total{action="api_key.retrieve",decision="deny"} 3`,
		`agentguard_credential_requests_total{action="oauth_token.retrieve",decision="deny"} 1`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
