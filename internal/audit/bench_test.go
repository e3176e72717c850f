package audit_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// BenchmarkRecordParallel measures events/s with 16 callers per CPU waiting on
// group commit, as concurrent token requests do, until every event is in the
// database (on SQLite the journal's applier has moved them: AuditHead waits).
func BenchmarkRecordParallel(b *testing.B) {
	for _, d := range storetest.Backends() {
		b.Run(string(d), func(b *testing.B) {
			st := storetest.Open(b, d)
			l := audit.New(st, audit.Options{})
			defer l.Close()
			e := event(1)
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Record(context.Background(), e); err != nil {
						b.Error(err)
					}
				}
			})
			if _, _, err := st.AuditHead(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkRecordThreeWritersPostgres measures events/s of three writers on one
// PostgreSQL schema: three sqlstore.Open handles, each with its own audit.Log (as
// three `serve` processes have), in this one test process; the callers are spread
// over the three. The writers queue on the audit_head row lock.
func BenchmarkRecordThreeWritersPostgres(b *testing.B) {
	u, dir := storetest.DatabaseURL(b, sqlstore.Postgres)
	var logs []*audit.Log
	for range 3 {
		st, err := sqlstore.Open(context.Background(), u, dir)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		l := audit.New(st, audit.Options{})
		defer l.Close()
		logs = append(logs, l)
	}
	e := event(1)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		l := logs[next.Add(1)%3]
		for pb.Next() {
			if err := l.Record(context.Background(), e); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkSearch measures a newest-first page of 50 over AUDIT_BENCH_EVENTS
// generated events (default 100000), one second apart: 1000 agents, 100 users,
// 100 clients, 100 resources, every 7th event an admin deny. Events are written
// straight through AppendAuditEvents in transactions of 5000 (chained, as Record
// would, but without its per-event round trip).
func BenchmarkSearch(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("AUDIT_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for _, d := range storetest.Backends() {
		b.Run(fmt.Sprintf("%s/%d", d, n), func(b *testing.B) {
			st := storetest.Open(b, d)
			ctx := context.Background()
			batch := make([]audit.Event, 0, 5000)
			start := time.Now()
			for i := range n {
				e := event(i)
				e.ID = fmt.Sprintf("evt_%d", i)
				e.AgentID = fmt.Sprintf("agt_%d", i%1000)
				e.User = fmt.Sprintf("user_%d", i%100)
				e.ClientID = fmt.Sprintf("cli_%d", i%100)
				e.Resource = fmt.Sprintf("https://api%d.example.com", i%100)
				if i%7 == 0 {
					e.Category, e.Decision = audit.CategoryAdmin, audit.Deny
				}
				batch = append(batch, e)
				if len(batch) == cap(batch) || i == n-1 {
					if err := st.AppendAuditEvents(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			b.Logf("generated %d events in %s", n, time.Since(start).Round(time.Second))
			mid := t0.Add(time.Duration(n/2) * time.Second)
			for _, c := range []struct {
				name string
				f    audit.Filter
			}{
				{"none", audit.Filter{}},
				{"agent_id", audit.Filter{AgentID: "agt_42"}},
				{"user", audit.Filter{User: "user_42"}},
				{"client_id", audit.Filter{ClientID: "cli_42"}},
				{"agent_id+category", audit.Filter{AgentID: "agt_42", Category: audit.CategoryAdmin}},
				{"decision=deny+from", audit.Filter{Decision: audit.Deny, From: mid}},
				{"resource_type+resource", audit.Filter{ResourceType: "resource_server", Resource: "https://api42.example.com"}},
				{"time_range", audit.Filter{From: t0.Add(time.Duration(n/4) * time.Second), To: mid}},
			} {
				c.f.Limit = 51
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						got, err := st.SearchAuditEvents(ctx, c.f)
						if err != nil {
							b.Fatal(err)
						}
						if len(got) == 0 {
							b.Fatal("no events: the filter matches nothing, so the benchmark measures nothing")
						}
					}
				})
			}
		})
	}
}
