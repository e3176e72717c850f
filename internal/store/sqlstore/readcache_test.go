package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentguard/agentguard/internal/agent"
)

func openTestSQLite(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func createTestAgent(t testing.TB, s *Store, id string) {
	t.Helper()
	now := time.Now()
	a := agent.Agent{ID: id, Name: id, Owner: "team", Type: agent.TypeAutonomous, AccessIdentity: agent.IdentityMachine,
		Audience: "agent:" + id, Status: agent.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAgent(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

func agentStatus(t *testing.T, s *Store, id string) string {
	t.Helper()
	a, _, err := s.GetAgentWithSecrets(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Status
}

func setStatus(t *testing.T, s *Store, id, status string) {
	t.Helper()
	if _, err := s.UpdateAgent(context.Background(), id, func(a *agent.Agent) error { a.Status = status; return nil }); err != nil {
		t.Fatal(err)
	}
}

// The cache must answer from memory, or it buys nothing: a row changed behind the
// Store's back (another connection, as a second process would) is not seen until
// the Store itself changes something the cache holds.
func TestReadCacheAnswersFromMemory(t *testing.T) {
	dir := t.TempDir()
	s := openTestSQLite(t, dir)
	createTestAgent(t, s, "ag_1")
	createTestAgent(t, s, "ag_2")
	if got := agentStatus(t, s, "ag_1"); got != agent.StatusActive {
		t.Fatalf("status = %q", got)
	}

	behind, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "agentguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	if _, err := behind.Exec(`UPDATE agents SET status = 'disabled' WHERE id = 'ag_1'`); err != nil {
		t.Fatal(err)
	}
	if got := agentStatus(t, s, "ag_1"); got != agent.StatusActive {
		t.Fatalf("status = %q: the second read went to the database", got)
	}

	setStatus(t, s, "ag_2", agent.StatusDisabled)
	if got := agentStatus(t, s, "ag_1"); got != agent.StatusDisabled {
		t.Fatalf("status = %q after the Store changed another agent: the cache was not emptied", got)
	}
}

// A row changed on the write connection outside change() could slip between a
// commit and the generation's advance, so the cache turns itself off for good.
func TestReadCacheTurnsOffOnAChangeOutsideChange(t *testing.T) {
	s := openTestSQLite(t, t.TempDir())
	createTestAgent(t, s, "ag_1")
	agentStatus(t, s, "ag_1")
	if s.cache.off.Load() {
		t.Fatal("cache off after a change through change()")
	}
	if _, err := s.write.ExecContext(context.Background(), `UPDATE agents SET status = 'disabled' WHERE id = 'ag_1'`); err != nil {
		t.Fatal(err)
	}
	if !s.cache.off.Load() {
		t.Fatal("cache still on after a change outside change()")
	}
	if got := agentStatus(t, s, "ag_1"); got != agent.StatusDisabled {
		t.Fatalf("status = %q", got)
	}

	// Writes to tables the cache never holds (the audit log, on every request)
	// must leave it on and its generation alone.
	s2 := openTestSQLite(t, t.TempDir())
	g := s2.cache.gen.Load()
	if _, err := s2.write.ExecContext(context.Background(), `INSERT INTO used_once (key, expires_at) VALUES ('k', 1)`); err != nil {
		t.Fatal(err)
	}
	if s2.cache.off.Load() || s2.cache.gen.Load() != g {
		t.Fatal("a change to an uncached table turned the cache off or advanced the generation")
	}
}

// The read pool has no hook, so SQLite itself refuses changes through it.
func TestReadPoolRefusesChanges(t *testing.T) {
	s := openTestSQLite(t, t.TempDir())
	createTestAgent(t, s, "ag_1")
	if _, err := s.read.ExecContext(context.Background(), `UPDATE agents SET status = 'disabled' WHERE id = 'ag_1'`); err == nil {
		t.Fatal("a change through the read pool succeeded")
	}
}

// The metrics say whether the cache is on and how often it answered: a cache
// that turned itself off is a silent slowdown unless an operator can see it.
func TestReadCacheMetrics(t *testing.T) {
	s := openTestSQLite(t, t.TempDir())
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.ReadCacheCollector())
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, m := range mf.GetMetric() {
				for i, l := range m.GetLabel() {
					if l.GetValue() != labels[i] {
						continue metrics
					}
				}
				if m.Counter != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s%v", name, labels)
		return 0
	}
	createTestAgent(t, s, "ag_1")
	agentStatus(t, s, "ag_1")
	agentStatus(t, s, "ag_1")
	if got := metric("agentguard_store_read_cache_lookups_total", "agent", "miss"); got != 1 {
		t.Errorf("agent misses = %v, want 1", got)
	}
	if got := metric("agentguard_store_read_cache_lookups_total", "agent", "hit"); got != 1 {
		t.Errorf("agent hits = %v, want 1", got)
	}
	if got := metric("agentguard_store_read_cache_enabled"); got != 1 {
		t.Errorf("enabled = %v, want 1", got)
	}
	if _, err := s.write.ExecContext(context.Background(), `UPDATE agents SET name = 'x' WHERE id = 'ag_1'`); err != nil {
		t.Fatal(err)
	}
	if got := metric("agentguard_store_read_cache_enabled"); got != 0 {
		t.Errorf("enabled = %v after a change outside change(), want 0", got)
	}
}

// Two Stores on one file share the generation.
func TestReadCacheSeesAnotherStoreOnTheSameFile(t *testing.T) {
	dir := t.TempDir()
	a, b := openTestSQLite(t, dir), openTestSQLite(t, dir)
	createTestAgent(t, a, "ag_1")
	if got := agentStatus(t, a, "ag_1"); got != agent.StatusActive {
		t.Fatalf("status = %q", got)
	}
	setStatus(t, b, "ag_1", agent.StatusDisabled)
	if got := agentStatus(t, a, "ag_1"); got != agent.StatusDisabled {
		t.Fatalf("status through the first Store = %q after the second changed it", got)
	}
}

// Once a change returns, every read sees it, however readers race the writer: a
// reader that queried before the commit must not leave its answer behind as
// current.
func TestReadCacheNeverServesAChangeReturnedBefore(t *testing.T) {
	s := openTestSQLite(t, t.TempDir())
	createTestAgent(t, s, "ag_1")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s.GetAgentWithSecrets(ctx, "ag_1")
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	statuses := []string{agent.StatusActive, agent.StatusDisabled}
	for i := range 300 {
		want := statuses[i%2]
		setStatus(t, s, "ag_1", want)
		if got := agentStatus(t, s, "ag_1"); got != want {
			t.Fatalf("change %d: status = %q, want %q", i, got, want)
		}
	}
}

// The interleaving the generation exists for, forced: a reader's query sees the
// row before a change, the change commits and returns, and only then does the
// reader store its answer. That answer must not be served afterwards.
func TestReadCacheDropsAnAnswerLoadedBeforeAChange(t *testing.T) {
	s := openTestSQLite(t, t.TempDir())
	createTestAgent(t, s, "ag_1")
	loaded, resume := make(chan struct{}), make(chan struct{})
	testHookLoaded = func() { close(loaded); <-resume }
	t.Cleanup(func() { testHookLoaded = nil })

	done := make(chan string)
	go func() {
		a, _, _ := s.GetAgentWithSecrets(context.Background(), "ag_1")
		done <- a.Status
	}()
	<-loaded
	testHookLoaded = nil
	setStatus(t, s, "ag_1", agent.StatusDisabled)
	close(resume)
	if got := <-done; got != agent.StatusActive {
		t.Fatalf("the racing reader got %q, want the status before the change", got)
	}
	if got := agentStatus(t, s, "ag_1"); got != agent.StatusDisabled {
		t.Fatalf("status = %q after the change returned: the racing reader's answer was served", got)
	}
}

func BenchmarkGetAgentWithSecrets(b *testing.B) {
	for _, cache := range []bool{true, false} {
		b.Run(fmt.Sprintf("cache=%v", cache), func(b *testing.B) {
			s := openTestSQLite(b, b.TempDir())
			createTestAgent(b, s, "ag_1")
			s.cache.off.Store(!cache)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.GetAgentWithSecrets(ctx, "ag_1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
