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

// Replicas share one PostgreSQL database: a token revoked or an agent disabled
// through one replica is refused by the next request on any other, at once (for
// reads inside a request, which the read cache serves, see
// TestReplicasReadCacheSeesTheOtherReplicasChanges).
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

// The read cache on replicas: a value one replica holds is not served after
// another replica changed it, from the next request on.
func TestReplicasReadCacheSeesTheOtherReplicasChanges(t *testing.T) {
	url, _ := storetest.DatabaseURL(t, sqlstore.Postgres)
	a, b := openURL(t, url), openURL(t, url)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ag := agent.Agent{ID: "ag_1", Name: "bot", Type: agent.TypeAutonomous, AccessIdentity: agent.IdentityMachine,
		Audience: "agent:ag_1", Status: agent.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := a.CreateAgent(context.Background(), ag); err != nil {
		t.Fatal(err)
	}
	status := func(s *sqlstore.Store) string {
		t.Helper()
		got, _, err := s.GetAgentWithSecrets(sqlstore.WithRequest(context.Background()), ag.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	revoked := func(s *sqlstore.Store) bool {
		t.Helper()
		r, err := s.IsRevoked(sqlstore.WithRequest(context.Background()), "jti-1")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	revoked(a) // "not revoked", held by replica a
	status(a)
	if err := b.RevokeToken(context.Background(), "jti-1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !revoked(a) {
		t.Fatal("replica a serves a token replica b revoked as not revoked")
	}
	for i, want := range []string{agent.StatusDisabled, agent.StatusActive, agent.StatusDisabled} {
		status(a) // held by replica a
		if _, err := b.UpdateAgent(context.Background(), ag.ID, func(x *agent.Agent) error { x.Status = want; return nil }); err != nil {
			t.Fatal(err)
		}
		if got := status(a); got != want {
			t.Fatalf("change %d: replica a serves status %q after replica b set %q", i, got, want)
		}
	}
}

// Every table either moves the read cache's generation when it changes or is
// one the cache never reads: a table added later without the trigger fails here
// rather than serving stale rows.
func TestPostgresReadCacheTriggers(t *testing.T) {
	url, _ := storetest.DatabaseURL(t, sqlstore.Postgres)
	openURL(t, url)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT t.tablename, EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
		WHERE g.tgname = 'read_cache_changed' AND c.relname = t.tablename AND c.relnamespace = current_schema()::regnamespace)
		FROM pg_tables t WHERE t.schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	exempt := sqlstore.PostgresUncachedTables()
	n := 0
	for rows.Next() {
		var table string
		var hasTrigger bool
		if err := rows.Scan(&table, &hasTrigger); err != nil {
			t.Fatal(err)
		}
		n++
		if hasTrigger == exempt[table] {
			t.Errorf("table %s: read-cache trigger %v, exempt %v; a table needs exactly one of them", table, hasTrigger, exempt[table])
		}
	}
	if n < 30 {
		t.Fatalf("saw %d tables; the query looks at the wrong schema", n)
	}
}

// Two transactions that interleave on cached rows: the generation row is taken
// only at commit, after every data lock, so one waits for the other's data and
// neither waits for the generation while holding data the other needs. (With a
// trigger that took it at the first change, B would wait for A's generation
// lock while A waits for B's row: a deadlock.)
func TestPostgresReadCacheWritersDoNotDeadlock(t *testing.T) {
	url, _ := storetest.DatabaseURL(t, sqlstore.Postgres)
	s := openURL(t, url)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, id := range []string{"ag_1", "ag_2"} {
		if err := s.CreateAgent(ctx, agent.Agent{ID: id, Name: id, Type: agent.TypeAutonomous, AccessIdentity: agent.IdentityMachine,
			Audience: "agent:" + id, Status: agent.StatusActive, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	begin := func() *sql.Tx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A lock wait that would be a deadlock fails fast instead of hanging.
		if _, err := tx.Exec(`SET LOCAL lock_timeout = '3s'`); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	rename := func(tx *sql.Tx, id string) error {
		_, err := tx.Exec(`UPDATE agents SET name = name || '.' WHERE id = $1`, id)
		return err
	}
	a, b := begin(), begin()
	defer a.Rollback()
	defer b.Rollback()
	if err := rename(a, "ag_1"); err != nil {
		t.Fatal(err)
	}
	if err := rename(b, "ag_2"); err != nil {
		t.Fatalf("B's first change waited on A: %v", err)
	}
	aDone := make(chan error, 1)
	go func() { aDone <- rename(a, "ag_2") }() // waits for B's row
	time.Sleep(50 * time.Millisecond)
	if err := b.Commit(); err != nil {
		t.Fatalf("B's commit: %v", err)
	}
	if err := <-aDone; err != nil {
		t.Fatalf("A's change after B committed: %v", err)
	}
	if err := a.Commit(); err != nil {
		t.Fatalf("A's commit: %v", err)
	}
}
