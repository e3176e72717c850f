package credential_test

import (
	"testing"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// Two server processes on one PostgreSQL database (and one data dir, for the KMS
// keyring): no replica keeps a copy of an outbound rule, so removing a node
// through one refuses the very next call on the other; a rotation through one is
// what the other hands out next; and a provider token one replica fetched is
// reused by the other without a second upstream call.
func TestReplicasShareRulesAndTokens(t *testing.T) {
	url, dir := storetest.DatabaseURL(t, sqlstore.Postgres)
	// Replicas behind one load balancer share the public issuer URL.
	issuer := func(c *config.Config) { c.Issuer = "https://agentguard.replicas.test" }
	a := servertest.Start(t, servertest.Options{DatabaseURL: url, DataDir: dir, Configure: issuer})
	b := servertest.Start(t, servertest.Options{DatabaseURL: url, DataDir: dir, Configure: issuer})

	agentID, sec := a.Agent(t, "replicated")
	tokB := agentToken(t, b, agentID, sec, nil) // issued by b, signed with the shared keys
	createAPIKey(t, a, "k", "value-1")
	addNode(t, a, agentID, "llm", "api_key", "k", nil)
	e := newTokenEndpoint(t, "cid", "csecret")
	createProvider(t, a, "p", e, nil)
	addNode(t, a, agentID, "external_service", "oauth_provider", "p", nil)

	if r, kv := getKey(t, b, tokB, "k"); r.code != 200 || kv.Value != "value-1" {
		t.Fatalf("replica b before any change: HTTP %d %+v", r.code, kv)
	}
	admin(t, a, 200, "PUT", "/api/v1/credentials/api-keys/k/value", map[string]any{"value": "value-2"}, nil)
	if _, kv := getKey(t, b, tokB, "k"); kv.Value != "value-2" || kv.Version != 2 {
		t.Fatalf("replica b after a rotation on a: %+v", kv)
	}

	// The token a fetched is what b hands out: one upstream call in all.
	tokA := agentToken(t, a, agentID, sec, nil)
	_, fromA := getToken(t, a, tokA, "p", nil)
	_, fromB := getToken(t, b, tokB, "p", nil)
	if fromA.AccessToken == "" || fromB.AccessToken != fromA.AccessToken || e.calls.Load() != 1 {
		t.Fatalf("replicas got %q and %q with %d upstream calls, want one shared token", fromA.AccessToken, fromB.AccessToken, e.calls.Load())
	}

	// Node removal on a: b refuses at once, although b holds the token in memory.
	admin(t, a, 204, "DELETE", "/api/v1/agents/"+agentID+"/outbound/k", nil, nil)
	admin(t, a, 204, "DELETE", "/api/v1/agents/"+agentID+"/outbound/p", nil, nil)
	if r, _ := getKey(t, b, tokB, "k"); r.code != 403 {
		t.Fatalf("replica b after the API key node was removed on a: HTTP %d", r.code)
	}
	if r, _ := getToken(t, b, tokB, "p", nil); r.code != 403 {
		t.Fatalf("replica b after the OAuth node was removed on a: HTTP %d", r.code)
	}
}
