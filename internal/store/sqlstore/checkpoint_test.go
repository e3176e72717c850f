package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
)

// Writers (and the requests waiting for their audit events) stay fast only if the
// write connection never runs a checkpoint, with its copy and fsync, itself.
func TestSQLiteWriteConnectionLeavesCheckpointsToTheBackground(t *testing.T) {
	s, err := Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		pragma string
		want   int
	}{
		{"synchronous", 1}, // NORMAL: see docs/audit.md on durability
		{"wal_autocheckpoint", 0},
	} {
		var got int
		if err := s.write.QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("write connection: PRAGMA %s = %d, want %d", tt.pragma, got, tt.want)
		}
	}
}

// With autocheckpoint off, only the background checkpointer moves pages out of the
// WAL; a closed store must leave everything in the database file.
func TestSQLiteCheckpointsMoveTheWALIntoTheDatabase(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		events := make([]audit.Event, 100)
		for j := range events {
			events[j] = audit.Event{ID: "evt_x", Time: time.Unix(int64(i*100+j), 0), Category: audit.CategoryToken,
				Action: "token.issue", Decision: audit.Allow, AgentID: "agt_1"}
		}
		if err := s.AppendAuditEvents(context.Background(), events); err != nil {
			t.Fatal(err)
		}
	}
	if pages := checkpoint(s.ckpt, "PASSIVE"); pages == 0 {
		t.Fatal("the WAL is empty after 50 commits: the write connection checkpointed by itself")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "agentguard.db-wal")); err == nil && fi.Size() > 0 {
		t.Errorf("after Close the WAL holds %d bytes, want none", fi.Size())
	}
	s, err = Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seq, _, err := s.AuditHead(context.Background()); err != nil || seq != 5000 {
		t.Errorf("reopened: audit head %d, %v; want 5000", seq, err)
	}
}
