package oauth_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// replicas starts two servers behind one issuer URL sharing one PostgreSQL store and
// one KMS keyring, the way a load-balanced deployment runs.
func replicas(t *testing.T) (a, b *servertest.Server) {
	t.Helper()
	dbURL, dir := storetest.DatabaseURL(t, sqlstore.Postgres)
	clock := servertest.NewClock(time.Now())
	opts := servertest.Options{Dialect: sqlstore.Postgres, DatabaseURL: dbURL, DataDir: dir, Clock: clock,
		Configure: func(c *config.Config) { c.Issuer = "https://agentguard.replicas.test" }}
	return servertest.Start(t, opts), servertest.Start(t, opts)
}

// A revocation, a disabled agent or a token made on one replica is seen at once on
// the other: nothing about a token's validity lives in one process's memory.
func TestReplicasShareRevocationAndAgents(t *testing.T) {
	a, b := replicas(t)
	id, sec := a.Agent(t, "replicated")
	rsID, rsSec := a.Agent(t, "introspector")

	tr := secretToken(t, a, id, sec, nil)
	if got := introspect(t, b, rsID, rsSec, tr.AccessToken); got["active"] != true || got["client_id"] != id {
		t.Fatalf("a token issued by A introspects on B as %v, want active", got)
	}
	// B issues with the same keys and issuer; A accepts B's tokens too.
	trB := secretToken(t, b, id, sec, nil)
	if got := introspect(t, a, rsID, rsSec, trB.AccessToken); got["active"] != true {
		t.Fatalf("a token issued by B introspects on A as %v, want active", got)
	}

	if r := send(t, a, call{path: "/oauth2/revoke", form: url.Values{"token": {tr.AccessToken}}, basicID: id, basicSecret: sec}); r.status != 200 {
		t.Fatalf("revoke on A: HTTP %d %s", r.status, r.body)
	}
	if got := introspect(t, b, rsID, rsSec, tr.AccessToken); got["active"] != false {
		t.Errorf("revoked on A, introspects on B as %v, want inactive", got)
	}

	if code := a.Do(t, "PATCH", "/api/v1/agents/"+id, map[string]any{"status": "disabled"}, nil); code != 200 {
		t.Fatalf("disable on A: HTTP %d", code)
	}
	r := send(t, b, call{form: url.Values{"grant_type": {"client_credentials"}}, basicID: id, basicSecret: sec})
	if e := r.err(t); r.status != 401 || e.Code != "invalid_client" {
		t.Errorf("disabled on A, client_credentials on B: HTTP %d %s, want 401 invalid_client", r.status, e.Code)
	}
	if got := introspect(t, b, rsID, rsSec, trB.AccessToken); got["active"] != false {
		t.Errorf("agent disabled on A, its token introspects on B as %v, want inactive", got)
	}
}
