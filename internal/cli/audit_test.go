package cli

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// search and tail find the events of an agent's creation; verify passes on the
// intact chain and exits 1 naming the seq once a row is changed behind its back.
func TestAuditCommands(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, _ := s.Agent(t, "audited")

	var page struct {
		Items []struct {
			Seq    int64  `json:"seq"`
			Action string `json:"action"`
		} `json:"items"`
	}
	okJSON(t, s, &page, "audit", "search", "--agent", id, "--category", "admin", "--since", "1h")
	if len(page.Items) != 2 || page.Items[0].Action != "agent.secret.create" || page.Items[1].Action != "agent.create" {
		t.Fatalf("search = %+v, want the secret and the agent creation, newest first", page.Items)
	}
	r := ok(t, s, "audit", "tail", "-n", "5")
	if !strings.Contains(r.stdout, "agent.create") || strings.Index(r.stdout, "agent.create") > strings.Index(r.stdout, "agent.secret.create") {
		t.Fatalf("tail is not oldest first:\n%s", r.stdout)
	}
	fails(t, s, "category: must be one of", "audit", "search", "--category", "network")
	fails(t, s, "use --since or --from", "audit", "search", "--since", "1h", "--from", "2025-01-01T00:00:00Z")

	if r := ok(t, s, "audit", "verify"); !strings.HasPrefix(r.stdout, "ok: ") {
		t.Fatalf("verify: %q", r.stdout)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.Config.DataDir, "agentguard.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_events SET user_name = 'someone-else' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	fails(t, s, "broken at seq 1: hash mismatch", "audit", "verify")
}
