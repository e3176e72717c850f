package sqlstore_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

func openURL(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), url, t.TempDir())
	if err != nil {
		t.Fatalf("sqlstore.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Replicas share one PostgreSQL database and keep no cache of security state: a
// token revoked or an agent disabled through one replica is refused by the next
// request on any other, at once.
func TestTwoHandlesOnOneSchemaSeeEachOthersWrites(t *testing.T) {
	url, _ := storetest.DatabaseURL(t, sqlstore.Postgres)
	a, b := openURL(t, url), openURL(t, url)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	if err := a.RevokeToken(ctx, "jti-1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if revoked, err := b.IsRevoked(ctx, "jti-1"); err != nil || !revoked {
		t.Fatalf("replica b: IsRevoked = %v, %v after replica a revoked; want true", revoked, err)
	}

	ag := agent.Agent{ID: "ag_1", Name: "bot", Type: agent.TypeAutonomous, AccessIdentity: agent.IdentityMachine,
		Audience: "agent:ag_1", Status: agent.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := a.CreateAgent(ctx, ag); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetAgent(ctx, ag.ID); err != nil || !got.Active() {
		t.Fatalf("replica b: agent = %+v, %v; want the active agent replica a created", got, err)
	}
	if _, err := b.UpdateAgent(ctx, ag.ID, func(x *agent.Agent) error { x.Status = agent.StatusDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := a.GetAgent(ctx, ag.ID); err != nil || got.Active() {
		t.Fatalf("replica a: agent status %q, %v after replica b disabled it; want disabled", got.Status, err)
	}
	if err := a.UseOnce(ctx, "assertion-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.UseOnce(ctx, "assertion-1", now.Add(time.Minute)); err == nil {
		t.Fatal("replica b accepted an assertion replica a already used")
	}
}

// Several replicas starting at once on an empty schema: the goose session locker
// lets one migrate while the others wait, and all of them open without error.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	url, _ := storetest.DatabaseURL(t, sqlstore.Postgres)
	const n = 6
	stores := make([]*sqlstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = sqlstore.Open(context.Background(), url, "")
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("replica %d: Open: %v", i, errs[i])
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	// The migration was recorded once, not once per replica.
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied int
	if err := db.QueryRow(`SELECT COUNT(*) FROM goose_db_version WHERE version_id = 1`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Fatalf("migration 1 recorded %d times, want once", applied)
	}
	// Each replica works on the one migrated schema.
	for i, s := range stores {
		if _, err := s.CountAdminTokens(context.Background()); err != nil {
			t.Fatalf("replica %d after concurrent migration: %v", i, err)
		}
	}
}
