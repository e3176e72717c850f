package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// The JSON-lines file holds every committed event, in seq order, as the search API
// renders it, hash included.
func TestJSONLinesExportWritesCommittedEvents(t *testing.T) {
	f := open(t, sqlstore.SQLite)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sinks, err := audit.OpenSinks(context.Background(), "file:"+path, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(f.store, audit.Options{Sinks: sinks})
	record(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var seq int64
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		seq++
		if e.Seq != seq || e.Hash != audit.HashEvent(e) || e.Category != audit.CategoryToken {
			t.Fatalf("line %d = %+v", seq, e)
		}
	}
	if seq != 5 {
		t.Fatalf("%d lines, want 5", seq)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenSinksRejectsUnknownSink(t *testing.T) {
	for _, spec := range []string{"syslog", "file:", "stdout,kafka"} {
		if _, err := audit.OpenSinks(context.Background(), spec, io.Discard); err == nil {
			t.Errorf("OpenSinks(%q) accepted", spec)
		}
	}
}

// A real OTLP/HTTP receiver gets one log record per event, with the event's
// fields as attributes.
func TestOTLPExportReachesAReceiver(t *testing.T) {
	var mu sync.Mutex
	got := map[string]map[string]string{} // event id -> attributes
	names := map[string]string{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("request %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		body, _ := io.ReadAll(r.Body)
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("decode: %v", err)
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					attrs := map[string]string{}
					for _, kv := range lr.Attributes {
						attrs[kv.Key] = kv.Value.GetStringValue()
					}
					got[attrs["audit.id"]] = attrs
					names[attrs["audit.id"]] = lr.EventName
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{})
		w.Write(b)
	}))
	defer hs.Close()

	f := open(t, sqlstore.SQLite)
	sinks, err := audit.OpenSinks(context.Background(), "otlp:"+hs.URL, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(f.store, audit.Options{Sinks: sinks})
	record(t, l, 3)
	if err := l.Close(); err != nil { // flushes the batch processor
		t.Fatal(err)
	}
	events, _ := f.store.SearchAuditEvents(context.Background(), audit.Filter{Limit: 10})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("receiver got %d records, want 3", len(got))
	}
	for _, e := range events {
		a := got[e.ID]
		if a == nil || a["audit.category"] != e.Category || a["audit.agent_id"] != e.AgentID || a["audit.hash"] != e.Hash || names[e.ID] != audit.EventName {
			t.Fatalf("event %s arrived as %v", e.ID, a)
		}
	}
}
