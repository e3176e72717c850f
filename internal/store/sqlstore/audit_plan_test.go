package sqlstore

import (
	"context"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
)

// A search must stay a backward scan of one index ending in seq: with a plan that
// sorts or scans the table, a search over millions of events takes seconds
// instead of a millisecond, and no functional test notices. SQLite's plan is
// fixed by the query's shape (it has no statistics), so it can be checked here.
func TestAuditSearchUsesTheFilterIndex(t *testing.T) {
	s, err := Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name  string
		f     audit.Filter
		index string
	}{
		{"agent", audit.Filter{AgentID: "agt_1"}, "audit_events_agent"},
		{"user", audit.Filter{User: "alice"}, "audit_events_user"},
		{"client", audit.Filter{ClientID: "cli_1"}, "audit_events_client"},
		{"agent and category", audit.Filter{AgentID: "agt_1", Category: "token"}, "audit_events_agent"},
		{"client and user", audit.Filter{ClientID: "cli_1", User: "alice"}, "audit_events_client"},
		{"resource", audit.Filter{ResourceType: "agent", Resource: "agt_1"}, "audit_events_resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			where, args := s.auditFieldFilters(tt.f)
			q := `EXPLAIN QUERY PLAN SELECT seq FROM audit_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY seq DESC LIMIT 51`
			rows, err := s.read.QueryContext(context.Background(), q, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			got := strings.Join(plan, "; ")
			if !strings.Contains(got, " INDEX "+tt.index+" ") || strings.Contains(got, "TEMP B-TREE") {
				t.Errorf("plan %q: want a scan of %s with no sort", got, tt.index)
			}
		})
	}
}
