package sdk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authServer is a small OAuth server on a real loopback socket for the SDK's own
// tests: it serves discovery and a token endpoint whose answers a test scripts
// (failures the real agentguard cannot be made to produce on demand: 5xx, delays,
// malformed answers). The SDK is tested end to end against the real agentguard in
// the main module's internal/sdktest.
type authServer struct {
	*httptest.Server
	t       testing.TB
	calls   atomic.Int64
	mu      sync.Mutex
	forms   []url.Values
	headers []http.Header
	// answer returns the status and JSON body of token request n (1-based).
	answer func(n int64, form url.Values, r *http.Request) (int, any)
	// api serves other paths (the credential API in tests).
	api http.HandlerFunc
	// issuer overrides the metadata's issuer.
	issuer string
}

func newAuthServer(t testing.TB) *authServer {
	s := &authServer{t: t}
	s.answer = func(n int64, form url.Values, r *http.Request) (int, any) {
		return 200, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer", "expires_in": 900, "scope": form.Get("scope")}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *authServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		iss := s.URL
		if s.issuer != "" {
			iss = s.issuer
		}
		writeJSON(w, 200, map[string]any{"issuer": iss, "token_endpoint": s.URL + "/oauth2/token", "jwks_uri": s.URL + "/oauth2/jwks"})
	case "/oauth2/token":
		if err := r.ParseForm(); err != nil {
			writeJSON(w, 400, map[string]any{"error": "invalid_request"})
			return
		}
		n := s.calls.Add(1)
		s.mu.Lock()
		s.forms = append(s.forms, r.PostForm)
		s.headers = append(s.headers, r.Header.Clone())
		s.mu.Unlock()
		status, body := s.answer(n, r.PostForm, r)
		if status == 401 {
			w.Header().Set("WWW-Authenticate", `Basic realm="agentguard"`)
		}
		writeJSON(w, status, body)
	default:
		if s.api != nil {
			s.api(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

func (s *authServer) form(i int) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forms[i]
}

func (s *authServer) header(i int) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers[i]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_test")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// secretClient is a Client with client_secret_basic against s.
func secretClient(t testing.TB, s *authServer, opts ...Option) *Client {
	t.Helper()
	c, err := New(Config{Issuer: s.URL, ClientID: "agt_test", ClientSecret: "agcs_test-secret-value-0123456789", AuthMethod: ClientSecretBasic},
		append([]Option{WithRetry(4, time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
