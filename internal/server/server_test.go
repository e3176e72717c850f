package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/internal/server"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// The whole slice on each backend: register, get a secret, get a token.
func TestServerStartsAndIssuesOnEachBackend(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			id, sec := s.Agent(t, "smoke")
			if id == "" || sec == "" {
				t.Fatal("no agent id or secret")
			}
		})
	}
}

// Health, readiness and metrics answer without a token.
func TestHealthReadinessAndMetrics(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	resp, b := send(t, s, "GET", "/healthz", "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: HTTP %d %s", resp.StatusCode, b)
	}
	var ready map[string]string
	resp, b = send(t, s, "GET", "/readyz", "", "", nil)
	if err := json.Unmarshal(b, &ready); err != nil || resp.StatusCode != http.StatusOK || ready["storage"] != "ok" || ready["kms"] != "ok" {
		t.Fatalf("/readyz: HTTP %d %s, want 200 with storage and kms ok", resp.StatusCode, b)
	}

	id, sec := s.Agent(t, "metered")
	accessToken(t, s, id, sec, nil)
	resp, b = send(t, s, "GET", "/metrics", "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", resp.StatusCode)
	}
	for _, want := range []string{
		"agentguard_token_requests_total{",
		`agentguard_http_request_duration_seconds_count{code="200",route="POST /oauth2/token"}`,
		`agentguard_http_request_duration_seconds_count{code="201",route="POST /api/v1/agents"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Storage gone: not ready, and the answer says which part.
	s.Store.Close()
	resp, b = send(t, s, "GET", "/readyz", "", "", nil)
	ready = nil
	json.Unmarshal(b, &ready)
	if resp.StatusCode != http.StatusServiceUnavailable || ready["storage"] == "ok" || ready["kms"] != "ok" {
		t.Fatalf("/readyz with the store closed: HTTP %d %s, want 503 naming storage", resp.StatusCode, b)
	}
	if resp, _ := send(t, s, "GET", "/healthz", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with the store closed: HTTP %d, want 200 (the process is up)", resp.StatusCode)
	}
}

// Every response carries a request id: the caller's if it is sane, else a new one.
func TestRequestIDEchoedOrGenerated(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"none sent", "", false},
		{"sane id echoed", "trace-42_a.b", true},
		{"too long replaced", strings.Repeat("a", 129), false},
		{"spaces replaced", "two words", false},
		{"non-ASCII replaced", "répété", false},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+"/api/v1/agents", nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-Id", tc.sent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-Id")
			if tc.echoed && got != tc.sent {
				t.Fatalf("X-Request-Id %q, want %q echoed", got, tc.sent)
			}
			if !tc.echoed && (got == "" || got == tc.sent || seen[got]) {
				t.Fatalf("X-Request-Id %q, want a fresh generated id", got)
			}
			seen[got] = true
		})
	}
}

// Paths under /api/ that no route serves are a 404 problem, not the mux's text.
func TestUnknownAPIPathIsProblem404(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	for _, p := range []string{"/api/v2/agents", "/api/v1/nothing", "/api/v1/agents/a/b/c/d", "/api/"} {
		for _, bearer := range []string{servertest.AdminToken, ""} {
			resp, b := send(t, s, "GET", p, bearer, "", nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET %s: HTTP %d %s, want 404", p, resp.StatusCode, b)
			}
			if pr := decodeProblem(t, resp, b); !strings.Contains(pr.Detail, p) {
				t.Fatalf("GET %s: detail %q does not name the path", p, pr.Detail)
			}
		}
	}
}

// A path the API serves, called with a method it does not take, is 405 with the
// methods it does take, for any caller.
func TestWrongMethodOnAPIPathIs405WithAllow(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	tests := []struct{ method, path, allow string }{
		{"PATCH", "/api/v1/agents", "GET, POST"},
		{"PUT", "/api/v1/agents/agt_x", "GET, PATCH, DELETE"},
		{"DELETE", "/api/v1/users", "GET, POST"},
	}
	for _, tt := range tests {
		for _, bearer := range []string{servertest.AdminToken, ""} {
			resp, b := send(t, s, tt.method, tt.path, bearer, "", nil)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tt.allow {
				t.Fatalf("%s %s: HTTP %d Allow %q %s, want 405 Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), b, tt.allow)
			}
			if pr := decodeProblem(t, resp, b); !strings.Contains(pr.Detail, tt.allow) {
				t.Fatalf("%s %s: detail %q does not name the methods", tt.method, tt.path, pr.Detail)
			}
		}
	}
}

// notifyListener reports when Serve's shutdown closes the listener.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// On cancel, Serve stops accepting but lets a request in flight finish: here an
// agent create whose body is still uploading when shutdown begins.
func TestServeDrainsInFlightRequestsOnShutdown(t *testing.T) {
	srv, err := server.New(context.Background(), testConfig(t.TempDir(), servertest.AdminToken), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	entered := make(chan struct{}, 1)
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.URL.Path == "/api/v1/agents" {
			entered <- struct{}{}
		}
		inner.ServeHTTP(w, r)
	})
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &notifyListener{Listener: base, closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+base.Addr().String()+"/api/v1/agents", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+servertest.AdminToken)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	if _, err := pw.Write([]byte(`{"name":"slow`)); err != nil {
		t.Fatal(err)
	}
	<-entered // the handler is reading the body
	cancel()
	<-ln.closed // shutdown has begun
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	default:
	}
	if _, err := pw.Write([]byte(`-agent"}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-done; r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("in-flight request: HTTP %d, err %v; want 201", r.code, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after a clean shutdown, want nil", err)
	}
}

// SQLite serves one instance: a second server on the same data dir would fork
// the audit chain (the journal holds its head in memory), so it refuses to
// start and says why; once the first has stopped, a new one starts.
func TestASecondServerOnTheSameDataDirFailsAtStart(t *testing.T) {
	dir := t.TempDir()
	first, err := server.New(context.Background(), testConfig(dir, servertest.AdminToken), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), testConfig(dir, servertest.AdminToken), server.Options{})
	if err == nil || !strings.Contains(err.Error(), "locked by another agentguard process") || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("second server on one data dir: %v, want a refusal naming the lock and PostgreSQL", err)
	}
	first.Close()
	again, err := server.New(context.Background(), testConfig(dir, servertest.AdminToken), server.Options{})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	again.Close()
}
