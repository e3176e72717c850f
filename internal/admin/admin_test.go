package admin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/admin"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// Bootstrap on an empty store: the token goes to a fresh 0600 file and only its
// hash to the store, whatever was at the file's path before.
func TestBootstrapWritesTokenFile(t *testing.T) {
	tests := []struct {
		name   string
		before func(t *testing.T, path string) (check func(t *testing.T))
	}{
		{"no file yet", func(t *testing.T, path string) func(t *testing.T) { return nil }},
		{"stale world-readable file is replaced, not written through", func(t *testing.T, path string) func(t *testing.T) {
			if err := os.WriteFile(path, []byte("old-token\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"a symlink in its place is not followed", func(t *testing.T, path string) func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Skip("no symlinks here:", err)
			}
			return func(t *testing.T) {
				if b, _ := os.ReadFile(target); string(b) != "keep me" {
					t.Fatalf("the symlink target was overwritten with %q", b)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := storetest.Open(t, sqlstore.SQLite)
			dir := t.TempDir()
			path := filepath.Join(dir, admin.TokenFile)
			check := tc.before(t, path)
			envHash, err := admin.Bootstrap(context.Background(), st, dir, "", time.Now())
			if err != nil || envHash != "" {
				t.Fatalf("Bootstrap: %q, %v", envHash, err)
			}
			fi, err := os.Lstat(path)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("token file: %v, %v; want a regular 0600 file", fi.Mode(), err)
			}
			b, _ := os.ReadFile(path)
			tok := strings.TrimSpace(string(b))
			if !secret.HasPrefix(tok, "aga") {
				t.Fatalf("token %q lacks the aga prefix", tok)
			}
			stored, err := st.AdminTokenByHash(context.Background(), secret.Hash(tok))
			if err != nil || stored.Hash != secret.Hash(tok) {
				t.Fatalf("stored token %+v, %v", stored, err)
			}
			if check != nil {
				check(t)
			}
		})
	}
}

// Once an admin token exists, later starts generate nothing; an env token is
// kept in memory only and must be long enough to be a secret.
func TestBootstrapOnlyOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, sqlstore.SQLite)
	dir := t.TempDir()
	if _, err := admin.Bootstrap(ctx, st, dir, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, admin.TokenFile))
	if _, err := admin.Bootstrap(ctx, st, dir, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, admin.TokenFile)); !os.IsNotExist(err) {
		t.Fatal("a second bootstrap wrote another token file")
	}
	if n, _ := st.CountAdminTokens(ctx); n != 1 {
		t.Fatalf("%d admin tokens stored, want 1", n)
	}

	envDir := t.TempDir()
	st2 := storetest.Open(t, sqlstore.SQLite)
	h, err := admin.Bootstrap(ctx, st2, envDir, "an-env-token-of-length", time.Now())
	if err != nil || h != secret.Hash("an-env-token-of-length") {
		t.Fatalf("env bootstrap: %q, %v", h, err)
	}
	if n, _ := st2.CountAdminTokens(ctx); n != 0 {
		t.Fatal("the env token was stored")
	}
	if entries, _ := os.ReadDir(envDir); len(entries) != 0 {
		t.Fatalf("the env bootstrap wrote %v", entries)
	}
	if _, err := admin.Bootstrap(ctx, st2, envDir, "short", time.Now()); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("short env token: err %v, want a refusal that does not echo it", err)
	}
}
