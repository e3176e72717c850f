package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
)

func journalEvents(n int, seq int64, hash string) []audit.Event {
	events := make([]audit.Event, n)
	for i := range events {
		events[i] = audit.Event{ID: "evt_" + string(rune('a'+i)), Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
			Category: audit.CategoryToken, Action: "token.issue", Decision: audit.Allow, AgentID: "agt_1"}
	}
	audit.Chain(events, seq, hash)
	return events
}

// What a crash leaves in the journal (answered events the database lacks) is
// applied before the log is read again; a record cut short by the crash (a
// write that never returned, so nobody was answered) is dropped; the journal
// is emptied.
func TestAuditJournalRecovery(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	first := journalEvents(2, 0, "")
	if err := s.AppendAuditEvents(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The crash: two more batches written to the journal, never applied, and
	// the start of a third.
	more := journalEvents(3, 2, first[1].Hash)
	var file []byte
	for _, batch := range [][]audit.Event{more[:1], more[1:]} {
		rec, err := encodeJournalRecord(batch)
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, rec...)
	}
	torn, _ := encodeJournalRecord(journalEvents(1, 5, more[2].Hash))
	file = append(file, torn[:len(torn)-3]...)
	path := filepath.Join(dir, "agentguard.db-audit")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}

	s, err = Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seq, hash, err := s.AuditHead(context.Background())
	if err != nil || seq != 5 || hash != more[2].Hash {
		t.Fatalf("head after recovery = %d %q %v, want 5 %q", seq, hash, err, more[2].Hash)
	}
	events, err := s.AuditEventsAfter(context.Background(), 0, 10)
	if err != nil || len(events) != 5 {
		t.Fatalf("events after recovery: %d %v, want 5", len(events), err)
	}
	report, err := (&audit.Verifier{Store: s}).Verify(context.Background())
	if err != nil || !report.OK {
		t.Fatalf("verify after recovery = %+v %v", report, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("journal after recovery: %v %v, want empty", fi.Size(), err)
	}
	// Appending goes on from the recovered head.
	next := []audit.Event{{ID: "evt_next", Time: time.Now(), Category: audit.CategoryAdmin, Action: "agent.create", Decision: audit.Allow}}
	if err := s.AppendAuditEvents(context.Background(), next); err != nil || next[0].Seq != 6 || next[0].PrevHash != more[2].Hash {
		t.Fatalf("append after recovery: %+v %v", next[0], err)
	}
}

// The journal keeps the chain head in memory, so a second process appending
// to the same SQLite database would fork the chain: it is refused, and says
// why; it can still read what is in the database.
func TestAuditJournalRefusesASecondAppender(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Another process's lock: flock locks belong to the open file, so a
	// second open in this process conflicts as another process would.
	f, err := os.OpenFile(filepath.Join(dir, "agentguard.db-audit"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	err = s.AppendAuditEvents(context.Background(), journalEvents(1, 0, ""))
	if !errors.Is(err, ErrAuditJournalLocked) {
		t.Fatalf("append beside another appender: %v, want ErrAuditJournalLocked", err)
	}
	if _, _, err := s.AuditHead(context.Background()); err != nil {
		t.Fatalf("reading beside another appender: %v", err)
	}
}

// A read waits for the events appended before it, although the applier
// otherwise lets events gather for a while.
func TestAuditJournalReadsSeeEveryAppendedEvent(t *testing.T) {
	s, err := Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var seq int64
	var hash string
	for i := range 50 {
		events := journalEvents(1+i%3, 0, "")
		if err := s.AppendAuditEvents(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		seq, hash = events[len(events)-1].Seq, events[len(events)-1].Hash
		got, gotHash, err := s.AuditHead(context.Background())
		if err != nil || got != seq || gotHash != hash {
			t.Fatalf("append %d: head %d, want %d (%v)", i, got, seq, err)
		}
	}
}

// The journal is read back after a crash, whatever the crash left: any bytes
// either decode into whole records (each one a batch that was written) or end
// the journal; nothing panics, and a valid record followed by garbage still
// yields that record.
func FuzzReadJournal(f *testing.F) {
	rec, err := encodeJournalRecord(journalEvents(2, 0, ""))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(append(append([]byte{}, rec...), rec[:5]...))
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, '[', ']'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		batches, err := readJournal(bytes.NewReader(data))
		if err != nil {
			return // a record whose checksum holds but does not decode: refused, not guessed
		}
		if len(batches) > len(data)/9 {
			t.Fatalf("read %d records from %d bytes (a record takes at least 9)", len(batches), len(data))
		}
		// A valid record in front of these bytes is always read.
		got, err := readJournal(bytes.NewReader(append(append([]byte{}, rec...), data...)))
		if err == nil && len(got) < 1 {
			t.Fatal("the valid first record was not read")
		}
	})
}
