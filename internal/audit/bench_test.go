package audit_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// BenchmarkRecordParallel measures events/s with 16 callers per CPU waiting on
// group commit, as concurrent token requests do.
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
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkSearch measures a filtered newest-first page over AUDIT_BENCH_EVENTS
// generated events (default 100000): agent_id over 1000 agents, plus category.
func BenchmarkSearch(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("AUDIT_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for _, d := range storetest.Backends() {
		b.Run(fmt.Sprintf("%s/%d", d, n), func(b *testing.B) {
			st := storetest.Open(b, d)
			ctx := context.Background()
			batch := make([]audit.Event, 0, 2000)
			for i := range n {
				e := event(i)
				e.ID = fmt.Sprintf("evt_%d", i)
				e.AgentID = fmt.Sprintf("agt_%d", i%1000)
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
			for _, f := range []audit.Filter{
				{Limit: 51},
				{AgentID: "agt_42", Limit: 51},
				{AgentID: "agt_42", Category: audit.CategoryAdmin, Limit: 51},
				{Decision: audit.Deny, From: t0.Add(time.Duration(n/2) * time.Second), Limit: 51},
			} {
				name := fmt.Sprintf("agent=%s,category=%s,decision=%s", f.AgentID, f.Category, f.Decision)
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						if _, err := st.SearchAuditEvents(ctx, f); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
