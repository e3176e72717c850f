package audit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

func serve(t *testing.T, st audit.Store) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	(&audit.Handler{Store: st, Verifier: &audit.Verifier{Store: st}}).Register(mux, func(h http.Handler) http.Handler { return h })
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

func get(t *testing.T, hs *httptest.Server, path string, out any) int {
	t.Helper()
	resp, err := http.Get(hs.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// Each filter narrows the result, results come newest first, and following
// next_cursor pages through every match exactly once.
func TestSearchFiltersAndPages(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			f := open(t, d)
			l := newLog(t, f.store, audit.Options{})
			ctx := context.Background()
			for i := range 30 {
				e := event(i) // agent agt_{i%3}, one second apart from t0
				if i%5 == 0 {
					e.Category, e.Action, e.Decision, e.User, e.ClientID = audit.CategoryAdmin, "agent.disable", audit.Deny, "admin-token:env", "cli_1"
					e.ResourceType, e.Resource = "agent", "agt_x"
				}
				if err := l.Record(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			hs := serve(t, f.store)
			for _, tc := range []struct {
				query string
				want  int
			}{
				{"", 30},
				{"agent_id=agt_1", 10},
				{"category=admin", 6},
				{"decision=deny&category=admin", 6},
				{"decision=allow", 24},
				{"user=admin-token:env", 6},
				{"client_id=cli_1", 6},
				{"action=agent.disable", 6},
				{"resource_type=agent&resource=agt_x", 6},
				{"resource_type=resource_server", 24},
				{"from=" + url.QueryEscape(t0.Add(10*time.Second).Format(time.RFC3339)), 20},
				{"from=" + url.QueryEscape(t0.Add(10*time.Second).Format(time.RFC3339)) + "&to=" + url.QueryEscape(t0.Add(20*time.Second).Format(time.RFC3339)), 10},
				{"agent_id=agt_1&category=admin", 2},
				{"agent_id=nobody", 0},
			} {
				t.Run(tc.query, func(t *testing.T) {
					var seen []audit.Event
					cursor := ""
					for page := 0; page < 20; page++ {
						var out api.List[audit.Event]
						q := tc.query + "&limit=4"
						if cursor != "" {
							q += "&cursor=" + cursor
						}
						if code := get(t, hs, "/api/v1/audit/events?"+q, &out); code != 200 {
							t.Fatalf("HTTP %d", code)
						}
						seen = append(seen, out.Items...)
						if cursor = out.NextCursor; cursor == "" {
							break
						}
					}
					if len(seen) != tc.want {
						t.Fatalf("got %d events, want %d", len(seen), tc.want)
					}
					for i := 1; i < len(seen); i++ {
						if seen[i].Seq >= seen[i-1].Seq {
							t.Fatalf("not newest first: seq %d after %d", seen[i].Seq, seen[i-1].Seq)
						}
					}
				})
			}
		})
	}
}

// Wrong filters are a 400 problem that names the field, so a client can fix it.
func TestSearchRejectsBadFilters(t *testing.T) {
	f := open(t, "sqlite")
	hs := serve(t, f.store)
	for _, tc := range []struct{ query, field string }{
		{"category=network", "category"},
		{"decision=maybe", "decision"},
		{"from=yesterday", "from"},
		{"to=2025-13-01T00:00:00Z", "to"},
		{"from=2025-06-02T00:00:00Z&to=2025-06-01T00:00:00Z", "to"},
		{"limit=501", "limit"},
		{"limit=0", "limit"},
		{"cursor=not-a-cursor", "cursor"},
		{"agent=agt_1", "agent"},
		{"resource=" + strings.Repeat("x", 2000), "resource"},
	} {
		t.Run(tc.query[:min(len(tc.query), 40)], func(t *testing.T) {
			var p api.Error
			if code := get(t, hs, "/api/v1/audit/events?"+tc.query, &p); code != 400 {
				t.Fatalf("HTTP %d, want 400", code)
			}
			if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
				t.Fatalf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
}

// The verify endpoint reports the chain as the contract says.
func TestVerifyEndpoint(t *testing.T) {
	f := open(t, "sqlite")
	l := newLog(t, f.store, audit.Options{})
	record(t, l, 3)
	hs := serve(t, f.store)
	var r map[string]any
	if code := get(t, hs, "/api/v1/audit/verify", &r); code != 200 || r["ok"] != true || r["events"] != float64(3) {
		t.Fatalf("HTTP %d %v", code, r)
	}
	if _, err := f.raw.Exec(`UPDATE audit_events SET agent_id = 'agt_other' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	r = nil
	if code := get(t, hs, "/api/v1/audit/verify", &r); code != 200 || r["ok"] != false || r["broken_at"] != float64(2) || r["reason"] != "hash mismatch" {
		t.Fatalf("HTTP %d %v", code, r)
	}
}
