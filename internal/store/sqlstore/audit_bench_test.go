package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
)

// BenchmarkAppendAuditEvents measures the audit writer's own cost per batch on
// SQLite, without the Log's queue or any caller: under the token endpoint's load
// batches hold a handful of events. The time includes moving every event from
// the journal into the database (the AuditHead at the end waits for it).
func BenchmarkAppendAuditEvents(b *testing.B) {
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s, err := Open(context.Background(), "", b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			events := make([]audit.Event, n)
			t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			b.ResetTimer()
			for i := range b.N {
				for j := range events {
					// A machine token's event: agent and resource set, no user or client.
					events[j] = audit.Event{ID: fmt.Sprintf("evt_%d_%d", i, j), Time: t, Category: audit.CategoryToken,
						Action: "token.issue", Decision: audit.Allow, AgentID: "agt_bench", ResourceType: "resource_server",
						Resource: "https://api.example.com", SourceIP: "127.0.0.1", RequestID: "req_0123456789"}
				}
				if err := s.AppendAuditEvents(context.Background(), events); err != nil {
					b.Fatal(err)
				}
			}
			if _, _, err := s.AuditHead(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/event")
		})
	}
}
