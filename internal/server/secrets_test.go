package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/admin"
	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/server"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/storetest"
	"github.com/agentguard/agentguard/internal/token"
)

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureLogs sends the default slog logger, at debug level and as JSON, to a
// buffer until the test ends. Tests in this package do not run in parallel, so
// swapping the process-wide default is safe here.
func captureLogs(t *testing.T) *logBuffer {
	t.Helper()
	b := &logBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return b
}

func testConfig(dataDir, adminToken string) config.Config {
	return config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:0", DataDir: dataDir, KMS: "local",
		LogFormat: "json", LogLevel: "debug", SigningAlg: "ES256",
		ShutdownTimeout: 5 * time.Second, GCInterval: time.Minute, AdminToken: adminToken,
	}
}

// dataFiles reads the SQLite database and its WAL as they are on disk.
func dataFiles(t *testing.T, dir string) []byte {
	t.Helper()
	all := storetest.SQLiteBytes(t, dir)
	if len(all) == 0 {
		t.Fatal("no database bytes read")
	}
	return all
}

func adminStatus(t *testing.T, h http.Handler, bearer string) int {
	t.Helper()
	hs := httptest.NewServer(h)
	defer hs.Close()
	req, _ := http.NewRequest("GET", hs.URL+"/api/v1/agents", nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Without AGENTGUARD_ADMIN_TOKEN the first start generates a token into a 0600
// file, keeps only its hash, logs the path but not the token, and later starts
// reuse it. With the env token set, no file is written.
func TestBootstrapAdminToken(t *testing.T) {
	logs := captureLogs(t)
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := server.New(ctx, testConfig(dir, ""), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, admin.TokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no bootstrap token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(raw))
	if len(tok) < 32 {
		t.Fatalf("bootstrap token %d chars, want a long random one", len(tok))
	}
	if code := adminStatus(t, srv.Handler, tok); code != http.StatusOK {
		t.Fatalf("the generated token gives HTTP %d, want 200", code)
	}
	if code := adminStatus(t, srv.Handler, tok+"x"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token gives HTTP %d, want 401", code)
	}
	srv.Close()

	db := dataFiles(t, dir)
	if bytes.Contains(db, []byte(tok)) {
		t.Fatal("the database holds the bootstrap token in plain text")
	}
	if !bytes.Contains(db, []byte(secret.Hash(tok))) {
		t.Fatal("the database does not hold the token's hash (is the scan reading the right file?)")
	}
	l := logs.String()
	if strings.Contains(l, tok) {
		t.Fatal("the log shows the bootstrap token")
	}
	if !strings.Contains(l, path) {
		t.Fatalf("the log does not name the token file %s:\n%s", path, l)
	}

	// A second start keeps the first token and writes no new one.
	srv2, err := server.New(ctx, testConfig(dir, ""), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	raw2, _ := os.ReadFile(path)
	if string(raw2) != string(raw) {
		t.Fatal("a second start wrote another bootstrap token")
	}
	if code := adminStatus(t, srv2.Handler, tok); code != http.StatusOK {
		t.Fatalf("after a restart the generated token gives HTTP %d", code)
	}

	// With the env token, nothing is written and only that token works.
	envDir := t.TempDir()
	srv3, err := server.New(ctx, testConfig(envDir, servertest.AdminToken), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv3.Close()
	if _, err := os.Stat(filepath.Join(envDir, admin.TokenFile)); !os.IsNotExist(err) {
		t.Fatalf("with AGENTGUARD_ADMIN_TOKEN set a token file was written (stat: %v)", err)
	}
	if code := adminStatus(t, srv3.Handler, servertest.AdminToken); code != http.StatusOK {
		t.Fatalf("the env token gives HTTP %d", code)
	}
	if bytes.Contains(dataFiles(t, envDir), []byte(servertest.AdminToken)) {
		t.Fatal("the database holds the env admin token")
	}
	if strings.Contains(logs.String(), servertest.AdminToken) {
		t.Fatal("the log shows the env admin token")
	}
}

// A too-short env token is refused at start with an error that does not echo it.
func TestBootstrapRefusesShortEnvToken(t *testing.T) {
	_, err := server.New(context.Background(), testConfig(t.TempDir(), "short-secret"), server.Options{})
	if err == nil || !strings.Contains(err.Error(), "AGENTGUARD_ADMIN_TOKEN") || strings.Contains(err.Error(), "short-secret") {
		t.Fatalf("err = %v, want one naming AGENTGUARD_ADMIN_TOKEN without its value", err)
	}
}

// A whole flow, failures included, with debug logs: no secret reaches the log,
// and none is stored in plain text on disk.
func TestSecretsNeverLeakToLogsOrDisk(t *testing.T) {
	logs := captureLogs(t)
	s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.AdminToken = ""; c.LogLevel = "debug" }})
	dir := s.Config.DataDir
	raw, err := os.ReadFile(filepath.Join(dir, admin.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	adminTok := strings.TrimSpace(string(raw))

	var a struct{ ID string }
	if code := s.DoAs(t, adminTok, "POST", "/api/v1/agents", map[string]any{"name": "leaky"}, &a); code != http.StatusCreated {
		t.Fatalf("create agent: HTTP %d", code)
	}
	var sec struct {
		ClientSecret string `json:"client_secret"`
	}
	s.DoAs(t, adminTok, "POST", "/api/v1/agents/"+a.ID+"/secrets", nil, &sec)
	if sec.ClientSecret == "" {
		t.Fatal("no client secret")
	}
	tok := accessToken(t, s, a.ID, sec.ClientSecret, nil)
	active(t, s, a.ID, sec.ClientSecret, tok)
	active(t, s, a.ID, sec.ClientSecret, tok+"x")
	// Failures that carry the secrets: two auth methods at once, a wrong secret, the
	// access token used as an admin token, the admin token as a client secret.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.ID}, "client_secret": {sec.ClientSecret}}
	oauthPost(t, s, "/oauth2/token", a.ID, sec.ClientSecret, form)
	oauthPost(t, s, "/oauth2/token", a.ID, sec.ClientSecret+"x", url.Values{"grant_type": {"client_credentials"}})
	oauthPost(t, s, "/oauth2/token", a.ID, adminTok, url.Values{"grant_type": {"client_credentials"}})
	oauthPost(t, s, "/oauth2/token", a.ID, sec.ClientSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"agentguard:admin"}})
	s.DoAs(t, tok, "GET", "/api/v1/agents", nil, nil)
	s.DoAs(t, adminTok+"x", "GET", "/api/v1/agents", nil, nil)
	s.DoAs(t, adminTok, "GET", "/api/v1/nothing?token="+url.QueryEscape(tok), nil, nil)
	s.DoAs(t, adminTok, "POST", "/api/v1/agents", map[string]any{"name": sec.ClientSecret[:4], "nope": tok}, nil)
	oauthPost(t, s, "/oauth2/revoke", a.ID, sec.ClientSecret, url.Values{"token": {tok}})
	if active(t, s, a.ID, sec.ClientSecret, tok) {
		t.Fatal("revoked token still active")
	}
	s.DoAs(t, adminTok, "DELETE", "/api/v1/agents/"+a.ID, nil, nil)
	oauthPost(t, s, "/oauth2/token", a.ID, sec.ClientSecret, url.Values{"grant_type": {"client_credentials"}})

	l := logs.String()
	if !strings.Contains(l, `"msg":"request"`) {
		t.Fatalf("the debug request log is missing; is the capture working?\n%s", l)
	}
	for name, v := range map[string]string{"client secret": sec.ClientSecret, "admin token": adminTok, "access token": tok} {
		if strings.Contains(l, v) {
			t.Errorf("the log contains the %s", name)
		}
		// The JWT's signature alone identifies it too.
		if name == "access token" && strings.Contains(l, tok[strings.LastIndex(tok, ".")+1:]) {
			t.Errorf("the log contains the access token's signature")
		}
	}

	// On disk: hashes, never the values; signing keys only sealed.
	s.HTTP.Close()
	keys, err := s.Store.ListSigningKeys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("signing keys: %v (%d)", err, len(keys))
	}
	db := dataFiles(t, dir)
	if !bytes.Contains(db, []byte(secret.Hash(adminTok))) {
		t.Fatal("the admin token's hash is not in the database files (is the scan reading them?)")
	}
	for name, v := range map[string]string{"client secret": sec.ClientSecret, "admin token": adminTok, "PEM text": "-----BEGIN"} {
		if bytes.Contains(db, []byte(v)) {
			t.Errorf("the database files contain the %s", name)
		}
	}
	for _, k := range keys {
		der, err := s.Envelope.Open(context.Background(), k.PrivateSealed, token.SigningKeyAAD(k.KID))
		if err != nil {
			t.Fatalf("open sealed key %s: %v", k.KID, err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
			t.Fatalf("sealed key %s is not PKCS#8 inside: %v", k.KID, err)
		}
		if bytes.Contains(db, der) || bytes.Contains(k.PrivateSealed, der) {
			t.Errorf("signing key %s is stored unsealed", k.KID)
		}
	}
	for _, name := range []string{"agentguard.db", "agentguard.db-wal", "agentguard.db-shm", kms.LocalKeyFile, admin.TokenFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if os.IsNotExist(err) && name != "agentguard.db" && name != kms.LocalKeyFile && name != admin.TokenFile {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}
