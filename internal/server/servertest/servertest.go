// Package servertest runs a whole agentguard server on a real loopback socket for
// tests, with a bootstrap admin token and a controllable clock.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// AdminToken is the bootstrap admin token every test server accepts.
const AdminToken = "test-admin-token-0123456789"

// Clock is a settable clock; the zero value starts at the real time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Server is a running test server.
type Server struct {
	*server.Server
	URL   string
	Clock *Clock
	HTTP  *httptest.Server
}

// Options tune a test server.
type Options struct {
	Dialect     sqlstore.Dialect // default SQLite
	DatabaseURL string           // share a database with another test server
	DataDir     string           // share a data dir (the KMS keyring) with another
	Clock       *Clock
	Configure   func(*config.Config)
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Dialect == "" {
		opts.Dialect = sqlstore.SQLite
	}
	if opts.DataDir == "" {
		opts.DatabaseURL, opts.DataDir = storetest.DatabaseURL(t, opts.Dialect)
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(time.Now())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{
		Addr: ln.Addr().String(), Issuer: "http://" + ln.Addr().String(), DataDir: opts.DataDir,
		DatabaseURL: opts.DatabaseURL, KMS: "local", LogFormat: "text", LogLevel: "error", SigningAlg: "ES256",
		ShutdownTimeout: 5 * time.Second, GCInterval: time.Minute, AdminToken: AdminToken,
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	srv, err := server.New(context.Background(), cfg, server.Options{Now: opts.Clock.Now})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &Server{Server: srv, URL: hs.URL, Clock: opts.Clock, HTTP: hs}
}

// Stop shuts the server down before the test ends (to start another on its
// SQLite data dir, which serves one server at a time).
func (s *Server) Stop() {
	s.HTTP.Close()
	s.Server.Close()
}

// Do sends a JSON request with the admin token and decodes a JSON answer into out
// (if non-nil). It returns the status code.
func (s *Server) Do(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	return s.DoAs(t, AdminToken, method, path, body, out)
}

// DoAs is Do with another bearer token ("" for none).
func (s *Server) DoAs(t testing.TB, bearer, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// Agent registers an agent with one client secret and returns its id and secret.
func (s *Server) Agent(t testing.TB, name string) (id, clientSecret string) {
	t.Helper()
	var a struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": name, "owner": "tests"}, &a); code != 201 {
		t.Fatalf("create agent: HTTP %d", code)
	}
	var sec struct {
		ClientSecret string `json:"client_secret"`
	}
	if code := s.Do(t, "POST", "/api/v1/agents/"+a.ID+"/secrets", nil, &sec); code != 201 {
		t.Fatalf("create secret: HTTP %d", code)
	}
	return a.ID, sec.ClientSecret
}
