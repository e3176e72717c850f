package credential_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// captureLogs sends the process's default logger, at debug level, to a buffer
// until the test ends (tests of this package do not run in parallel).
func captureLogs(t *testing.T) *logBuffer {
	b := &logBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return b
}

func randomSecret(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// A whole life of credentials, failures included, with debug logs: no API key
// value, client secret or upstream token is in the SQLite file and its WAL, in any
// text or bytea column of the PostgreSQL schema, in the log, or in an audit event.
func TestNoPlaintextSecretAnywhere(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			logs := captureLogs(t)
			dbURL, dir := storetest.DatabaseURL(t, d)
			s := servertest.Start(t, servertest.Options{DatabaseURL: dbURL, DataDir: dir, Configure: func(c *config.Config) { c.LogLevel = "debug" }})

			keyV1, keyV2 := randomSecret("sk-one-"), randomSecret("sk-two-")
			clientSecret := randomSecret("cs-")
			e := newTokenEndpoint(t, "cid", clientSecret)
			upstreamSaw := make(chan string, 16)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				upstreamSaw <- r.Header.Get("Authorization")
				w.Header().Set("X-Echo", r.Header.Get("Authorization")) // scrubbed by the gateway
				io.WriteString(w, "ok")
			}))
			defer up.Close()

			agentID, tok := agentWithToken(t, s, "leaky")
			createAPIKey(t, s, "k", keyV1)
			admin(t, s, 200, "PUT", "/api/v1/credentials/api-keys/k/value", map[string]any{"value": keyV2, "keep_previous_for": 3600}, nil)
			createProvider(t, s, "p", e, nil)
			addNode(t, s, agentID, "llm", "api_key", "k", map[string]any{"upstream_url": up.URL})
			addNode(t, s, agentID, "external_service", "oauth_provider", "p", map[string]any{"upstream_url": up.URL})

			if _, kv := getKey(t, s, tok, "k"); kv.Value != keyV2 {
				t.Fatalf("retrieval got %q", kv.Value)
			}
			if r, _ := getToken(t, s, tok, "p", nil); r.code != 200 {
				t.Fatalf("token: HTTP %d", r.code)
			}
			getToken(t, s, tok, "p", map[string]any{"scopes": []string{"read"}})
			for _, node := range []string{"k", "p"} {
				r := call(t, s, "GET", "/gateway/"+node+"/x?q=1", tok, "", nil)
				if r.code != 200 || strings.Contains(fmt.Sprint(r.header), keyV2) {
					t.Fatalf("gateway %s: HTTP %d %v", node, r.code, r.header)
				}
			}
			// Failures whose upstream answers contain the secret.
			for _, m := range []string{modeError, modeEchoBody} {
				e.setMode(m)
				admin(t, s, 200, "PATCH", "/api/v1/credentials/oauth-providers/p", map[string]any{"client_secret": clientSecret}, nil) // new generation: no cache
				getToken(t, s, tok, "p", nil)
			}
			e.setMode(modeOK)
			// Bad requests that carry secrets in odd places.
			getKey(t, s, keyV2, "k")
			call(t, s, "POST", "/api/v1/credentials/api-keys", servertest.AdminToken, "application/json", []byte(`{"identifier":"bad id","value":"`+keyV1+`"}`))
			admin(t, s, 200, "POST", "/api/v1/credentials/api-keys/k/rollback", nil, nil)

			issued := e.issuedTokens()
			if len(issued) < 2 {
				t.Fatalf("the provider issued %d tokens", len(issued))
			}
			secrets := map[string]string{"API key v1": keyV1, "API key v2": keyV2, "client secret": clientSecret,
				"client secret (Basic)": base64.StdEncoding.EncodeToString([]byte("cid:" + clientSecret))}
			for i, tk := range issued {
				secrets[fmt.Sprintf("upstream token %d", i)] = tk
			}

			// The log.
			l := logs.Bytes()
			if !bytes.Contains(l, []byte("OAuth provider token request failed")) {
				t.Fatalf("the capture missed the server's log:\n%s", l)
			}
			for name, v := range secrets {
				if bytes.Contains(l, []byte(v)) {
					t.Errorf("the log holds the %s", name)
				}
			}
			// The audit events, all of them, as the API serves them.
			var all bytes.Buffer
			for cursor := ""; ; {
				r := call(t, s, "GET", "/api/v1/audit/events?limit=500&cursor="+cursor, servertest.AdminToken, "", nil)
				all.Write(r.body)
				var page struct {
					NextCursor string `json:"next_cursor"`
				}
				r.json(t, &page)
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			if !bytes.Contains(all.Bytes(), []byte("proxy.forward")) {
				t.Fatal("the audit read missed the gateway events")
			}
			for name, v := range secrets {
				if bytes.Contains(all.Bytes(), []byte(v)) {
					t.Errorf("an audit event holds the %s", name)
				}
			}
			// Storage, as it is on disk or in the database.
			stored := storedBytes(t, d, dbURL, dir)
			if !bytes.Contains(stored, []byte("upstream-token-")) && !bytes.Contains(stored, []byte("oauth_token")) && !bytes.Contains(stored, []byte(agentID)) {
				t.Fatal("the storage read found nothing of the test's data (is it reading the right place?)")
			}
			for name, v := range secrets {
				if bytes.Contains(stored, []byte(v)) {
					t.Errorf("storage holds the %s in plain text", name)
				}
			}
		})
	}
}

// storedBytes is everything stored: the SQLite file and WAL, or every text, json
// and bytea column of every table of the test's PostgreSQL schema.
func storedBytes(t *testing.T, d sqlstore.Dialect, dbURL, dir string) []byte {
	t.Helper()
	if d == sqlstore.SQLite {
		return storetest.SQLiteBytes(t, dir)
	}
	var all []byte
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea', 'character varying', 'json', 'jsonb')`)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][3]string
	for rows.Next() {
		var c [3]string
		rows.Scan(&c[0], &c[1], &c[2])
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) < 20 {
		t.Fatalf("only %d text/bytea columns in the schema", len(cols))
	}
	for _, c := range cols {
		expr := fmt.Sprintf(`convert_to(%q::text, 'UTF8')`, c[1])
		if c[2] == "bytea" {
			expr = fmt.Sprintf("%q", c[1])
		}
		r, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT %s FROM %q`, expr, c[0]))
		if err != nil {
			t.Fatalf("read %s.%s: %v", c[0], c[1], err)
		}
		for r.Next() {
			var b []byte
			if err := r.Scan(&b); err != nil {
				t.Fatalf("read %s.%s: %v", c[0], c[1], err)
			}
			all = append(all, b...)
			all = append(all, '\n')
		}
		if err := r.Err(); err != nil {
			t.Fatalf("read %s.%s: %v", c[0], c[1], err)
		}
		r.Close()
	}
	return all
}
