// Package storetest opens fresh stores for tests: SQLite in a temporary directory,
// and PostgreSQL in a schema of its own (from AGENTGUARD_TEST_DATABASE_URL) that is
// dropped when the test ends, so packages can test in parallel on one database.
package storetest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// EnvPostgres names the PostgreSQL URL the tests use; unset, PostgreSQL tests skip.
const EnvPostgres = "AGENTGUARD_TEST_DATABASE_URL"

// Backends lists the databases to run a test against: always sqlite, and postgres
// when EnvPostgres is set.
func Backends() []sqlstore.Dialect {
	return []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres}
}

// DatabaseURL returns a URL for a fresh, empty database of the dialect (for SQLite
// "" with dataDir set to a temporary directory). PostgreSQL skips the test when
// EnvPostgres is unset.
func DatabaseURL(t testing.TB, d sqlstore.Dialect) (databaseURL, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	if d == sqlstore.SQLite {
		return "", dataDir
	}
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable); `make test` sets it when a server answers on 127.0.0.1:5432", EnvPostgres)
	}
	schema := "t_" + strings.ReplaceAll(strings.TrimPrefix(secret.NewID("x"), "x_"), "-", "")
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), dataDir
}

// Open returns a fresh migrated store of the dialect, closed when the test ends.
func Open(t testing.TB, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	u, dir := DatabaseURL(t, d)
	s, err := sqlstore.Open(context.Background(), u, dir)
	if err != nil {
		t.Fatalf("open %s store: %v", d, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
