package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture is a migrated store plus a raw connection to the same database, through
// which tests tamper with rows behind the store's back.
type fixture struct {
	store *sqlstore.Store
	raw   *sql.DB
	url   string
	dir   string
}

func open(t *testing.T, d sqlstore.Dialect) fixture {
	t.Helper()
	u, dir := storetest.DatabaseURL(t, d)
	st, err := sqlstore.Open(context.Background(), u, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var raw *sql.DB
	if d == sqlstore.SQLite {
		raw, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "agentguard.db")+"?_pragma=busy_timeout(10000)")
	} else {
		raw, err = sql.Open("pgx", u)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return fixture{store: st, raw: raw, url: u, dir: dir}
}

func newLog(t *testing.T, st audit.Store, opts audit.Options) *audit.Log {
	t.Helper()
	l := audit.New(st, opts)
	t.Cleanup(func() { l.Close() })
	return l
}

func event(i int) audit.Event {
	return audit.Event{
		Time: t0.Add(time.Duration(i) * time.Second), Category: audit.CategoryToken, Action: "token.issue",
		Decision: audit.Allow, AgentID: fmt.Sprintf("agt_%d", i%3), ResourceType: "resource_server",
		Resource: "https://api.example.com", Reason: fmt.Sprintf("event %d", i),
	}
}

func record(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		if err := l.Record(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func verify(t *testing.T, st audit.Store) audit.Report {
	t.Helper()
	r, err := (&audit.Verifier{Store: st}).Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Concurrent callers share transactions (group commit) and still get one gapless
// chain holding every event.
func TestConcurrentRecordsFormOneValidChain(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			f := open(t, d)
			l := newLog(t, f.store, audit.Options{})
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Go(func() {
					for i := range 25 {
						if err := l.Record(context.Background(), event(g*100+i)); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			r := verify(t, f.store)
			if !r.OK || r.Events != 400 || r.Head != 400 {
				t.Fatalf("verify = %+v, want ok with 400 events", r)
			}
		})
	}
}

// Record fills what the caller leaves out and refuses events that break the
// contract's enumerations, since a wrong category could not be searched for.
func TestRecordValidatesAndFills(t *testing.T) {
	f := open(t, sqlstore.SQLite)
	l := newLog(t, f.store, audit.Options{Now: func() time.Time { return t0 }})
	for _, tc := range []struct {
		name string
		e    audit.Event
		want string
	}{
		{"unknown category", audit.Event{Category: "network", Action: "x", Decision: audit.Allow}, "category"},
		{"unknown decision", audit.Event{Category: audit.CategoryAdmin, Action: "x", Decision: "maybe"}, "decision"},
		{"no action", audit.Event{Category: audit.CategoryAdmin, Decision: audit.Deny}, "action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Record(context.Background(), tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Record = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	ctx := audit.WithRequest(context.Background(), &audit.Request{SourceIP: "192.0.2.7", RequestID: "req_1", TraceID: "abc"})
	long := strings.Repeat("é", 2000)
	if err := l.Record(ctx, audit.Event{Category: audit.CategoryAdmin, Action: "agent.create", Decision: audit.Allow, Reason: long}); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.SearchAuditEvents(context.Background(), audit.Filter{Limit: 10})
	if err != nil || len(got) != 1 {
		t.Fatalf("search = %v, %v", got, err)
	}
	e := got[0]
	if !strings.HasPrefix(e.ID, "evt_") || !e.Time.Equal(t0) || e.SourceIP != "192.0.2.7" || e.RequestID != "req_1" || e.TraceID != "abc" || e.Seq != 1 {
		t.Fatalf("event not filled: %+v", e)
	}
	if len(e.Reason) > 1024 || !strings.HasPrefix(long, e.Reason) {
		t.Fatalf("reason not cut at a rune boundary to 1024 bytes: %d bytes", len(e.Reason))
	}
}

// Each tampering case a database user could try is found, at the right seq.
func TestVerifyDetectsTampering(t *testing.T) {
	// Reorder two rows: each takes the other's seq.
	swap := []string{
		`UPDATE audit_events SET seq = -2 WHERE seq = 2`,
		`UPDATE audit_events SET seq = 2 WHERE seq = 3`,
		`UPDATE audit_events SET seq = 3 WHERE seq = -2`,
	}
	for _, d := range storetest.Backends() {
		for _, tc := range []struct {
			name     string
			sql      []string
			brokenAt int64
			reason   string
		}{
			{"changed field", []string{`UPDATE audit_events SET decision = 'allow', reason = 'ok' WHERE seq = 3`}, 3, "hash mismatch"},
			{"changed time", []string{`UPDATE audit_events SET time = time + 1 WHERE seq = 5`}, 5, "hash mismatch"},
			{"deleted row", []string{`DELETE FROM audit_events WHERE seq = 4`}, 4, "missing seq 4"},
			{"deleted first row", []string{`DELETE FROM audit_events WHERE seq = 1`}, 1, "missing seq 1"},
			{"deleted last row", []string{`DELETE FROM audit_events WHERE seq = 6`}, 6, "missing seq 6"},
			{"deleted last row and head rewound", []string{`DELETE FROM audit_events WHERE seq = 6`, `UPDATE audit_head SET seq = 5`}, 5, "head mismatch"},
			{"reordered rows", swap, 2, "prev_hash mismatch"},
			{"rehashed row", []string{`UPDATE audit_events SET reason = 'forged', hash = 'ff' WHERE seq = 2`}, 2, "hash mismatch"},
		} {
			t.Run(string(d)+"/"+tc.name, func(t *testing.T) {
				f := open(t, d)
				l := newLog(t, f.store, audit.Options{})
				ctx := context.Background()
				for i := range 6 {
					e := event(i)
					if i == 2 {
						e.Decision, e.Reason = audit.Deny, "invalid_client: bad secret"
					}
					if err := l.Record(ctx, e); err != nil {
						t.Fatal(err)
					}
				}
				if r := verify(t, f.store); !r.OK || r.Events != 6 {
					t.Fatalf("before tampering: %+v", r)
				}
				for _, q := range tc.sql {
					if _, err := f.raw.Exec(q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				r := verify(t, f.store)
				if r.OK || r.BrokenAt != tc.brokenAt || !strings.HasPrefix(r.Reason, tc.reason) {
					t.Fatalf("verify = %+v, want broken at %d: %s", r, tc.brokenAt, tc.reason)
				}
			})
		}
	}
}

// Two processes (two stores and two logs on one PostgreSQL schema) writing at once
// keep one chain: the head row lock serializes them, so no seq is taken twice and
// no event is lost.
func TestTwoWritersOnePostgresChain(t *testing.T) {
	u, dir := storetest.DatabaseURL(t, sqlstore.Postgres)
	var logs []*audit.Log
	var stores []*sqlstore.Store
	for range 2 {
		st, err := sqlstore.Open(context.Background(), u, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		logs = append(logs, newLog(t, st, audit.Options{MaxBatch: 16}))
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				if err := logs[g%2].Record(context.Background(), event(g*1000+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	r := verify(t, stores[0])
	if !r.OK || r.Events != 480 {
		t.Fatalf("verify = %+v, want ok with 480 events", r)
	}
}

// gatedStore records the size of each batch and holds the first one until
// release is closed, so a test can line events up behind it.
type gatedStore struct {
	audit.Store
	release chan struct{}
	mu      sync.Mutex
	batches []int
}

func (g *gatedStore) AppendAuditEvents(ctx context.Context, events []audit.Event) error {
	g.mu.Lock()
	first := len(g.batches) == 0
	g.batches = append(g.batches, len(events))
	g.mu.Unlock()
	if first {
		<-g.release
	}
	return g.Store.AppendAuditEvents(ctx, events)
}

func (g *gatedStore) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.batches...)
}

// Under concurrent load the writer keeps gathering for CommitDelay once several
// events wait, so events that arrive a moment later share their transaction;
// a lone event is written at once however long the delay.
func TestCommitDelayGathersConcurrentEventsAndNeverDelaysALoneOne(t *testing.T) {
	f := open(t, sqlstore.SQLite)
	g := &gatedStore{Store: f.store, release: make(chan struct{})}
	l := newLog(t, g, audit.Options{MaxBatch: 4, CommitDelay: time.Hour})

	var wg sync.WaitGroup
	recordAsync := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Record(context.Background(), event(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor := func(what string, ok func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s; batches %v", what, g.sizes())
			}
			time.Sleep(time.Millisecond)
		}
	}

	// A lone event: written at once although CommitDelay is an hour.
	recordAsync(0)
	waitFor("the first batch", func() bool { return len(g.sizes()) == 1 })
	// Two more queue behind it; once released, the writer finds them both
	// waiting and gathers until the batch is full (MaxBatch 4) instead of
	// writing two at once.
	recordAsync(1)
	recordAsync(2)
	waitFor("two queued events", func() bool { return l.Queued() == 2 })
	close(g.release)
	// The writer has taken both; without the delay it would write them now.
	waitFor("the writer to take them", func() bool { return l.Queued() == 0 })
	recordAsync(3)
	recordAsync(4)
	wg.Wait()
	if got := g.sizes(); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Fatalf("batches %v, want [1 4]", got)
	}
	if r := verify(t, f.store); !r.OK || r.Events != 5 {
		t.Fatalf("verify: %+v", r)
	}
}
