package egress_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
)

// seen is what the upstream received.
type seen struct {
	Method, Path, RawPath, Query, Host string
	Header                             http.Header
	Body                               string
}

// upstream is a real local third-party API that records each request, answers
// with a JSON summary, and echoes the credential in a response header when asked.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []seen
	calls atomic.Int64
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Body: string(b)})
		u.mu.Unlock()
		if r.URL.Query().Get("echo") == "1" {
			// A careless API echoing the key back in a header.
			w.Header().Set("X-Debug-Key", r.Header.Get("X-Api-Key")+r.Header.Get("Authorization"))
		}
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("X-Request-Id", "upstream-req-1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"path":%q,"bytes":%d}`, r.URL.Path, len(b))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) seen {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream got no request")
	}
	return u.reqs[len(u.reqs)-1]
}

func admin(t testing.TB, s *servertest.Server, want int, method, path string, body any) {
	t.Helper()
	if code := s.Do(t, method, path, body, nil); code != want {
		t.Fatalf("%s %s: HTTP %d, want %d", method, path, code, want)
	}
}

func agentToken(t testing.TB, s *servertest.Server, id, sec string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if out.AccessToken == "" {
		t.Fatalf("token: HTTP %d", resp.StatusCode)
	}
	return out.AccessToken
}

// gw sends one request through the gateway and returns the raw response, headers
// included, as the agent receives it.
func gw(t *testing.T, s *servertest.Server, method, path, tok string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func dump(resp *http.Response, body []byte) string {
	var b bytes.Buffer
	resp.Header.Write(&b)
	b.Write(body)
	return b.String()
}

type fixture struct {
	s        *servertest.Server
	up       *upstream
	agentID  string
	tok      string
	keyValue string
}

// setup: an agent with an API key node "openai" whose upstream is a real local
// server under /v1, injected as X-API-Key.
func setup(t testing.TB, configure func(*config.Config)) *fixture {
	s := servertest.Start(t, servertest.Options{Configure: configure})
	up := newUpstream(t)
	id, sec := s.Agent(t, "gw-bot")
	fx := &fixture{s: s, up: up, agentID: id, tok: agentToken(t, s, id, sec), keyValue: "sk-upstream-0123456789abcdef"}
	admin(t, s, 201, "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "openai", "value": fx.keyValue})
	admin(t, s, 201, "POST", "/api/v1/agents/"+id+"/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key",
		"credential": "openai", "upstream_url": up.URL + "/v1", "header": "X-API-Key: {{key}}"})
	return fx
}

// The gateway forwards the agent's request to the node's upstream with the API key
// injected, strips the agent's token, keeps method, path, query and body, and the
// agent never sees the key, even when the upstream echoes it in a header.
func TestGatewayForwardsWithTheInjectedKey(t *testing.T) {
	fx := setup(t, nil)
	resp, body := gw(t, fx.s, "POST", "/gateway/openai/chat/completions?model=gpt&echo=1", fx.tok, strings.NewReader(`{"prompt":"hi"}`),
		map[string]string{"Content-Type": "application/json", "X-Api-Key": "smuggled-by-agent", "Connection": "X-Drop-Me", "X-Drop-Me": "1", "X-Forwarded-For": "6.6.6.6"})
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"path":"/v1/chat/completions"`) || resp.Header.Get("X-Upstream") != "yes" {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
	got := fx.up.last(t)
	if got.Method != "POST" || got.Path != "/v1/chat/completions" || got.Query != "model=gpt&echo=1" || got.Body != `{"prompt":"hi"}` {
		t.Fatalf("upstream got %+v", got)
	}
	if v := got.Header.Values("X-Api-Key"); len(v) != 1 || v[0] != fx.keyValue {
		t.Fatalf("upstream X-Api-Key %q, want the stored key once (the agent's own must not win)", v)
	}
	if got.Header.Get("Authorization") != "" {
		t.Fatalf("the agent's token reached the upstream: %q", got.Header.Get("Authorization"))
	}
	if got.Header.Get("X-Drop-Me") != "" || got.Header.Get("X-Forwarded-For") != "" {
		t.Fatalf("hop-by-hop or forwarding headers reached the upstream: %v", got.Header)
	}
	if u, _ := url.Parse(fx.up.URL); got.Host != u.Host {
		t.Fatalf("upstream Host %q, want %q", got.Host, u.Host)
	}
	if strings.Contains(dump(resp, body), fx.keyValue) {
		t.Fatalf("the agent received the key:\n%s", dump(resp, body))
	}
	if resp.Header.Get("X-Debug-Key") != "" {
		t.Fatal("the header echoing the key was passed on")
	}
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 || !strings.HasPrefix(ids[0], "req_") || resp.Header.Get("X-Upstream-Request-Id") != "upstream-req-1" {
		t.Fatalf("X-Request-Id %q, X-Upstream-Request-Id %q", ids, resp.Header.Get("X-Upstream-Request-Id"))
	}
	// One audit event per forwarded request.
	var l struct {
		Items []struct {
			Action, Decision, Reason, Resource string
			ResourceType                       string `json:"resource_type"`
			AgentID                            string `json:"agent_id"`
		}
	}
	fx.s.Do(t, "GET", "/api/v1/audit/events?action=proxy.forward", nil, &l)
	if len(l.Items) != 1 || l.Items[0].Decision != "allow" || l.Items[0].Resource != "openai" || l.Items[0].ResourceType != "api_key" ||
		l.Items[0].AgentID != fx.agentID || !strings.Contains(l.Items[0].Reason, "POST http://") || strings.Contains(l.Items[0].Reason, "model=gpt") {
		t.Fatalf("audit events %+v", l.Items)
	}
}

// An OAuth provider node injects a token the gateway gets from the provider, by
// default as Authorization: Bearer.
func TestGatewayInjectsOAuthTokens(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	up := newUpstream(t)
	var issued atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, sec, _ := r.BasicAuth()
		if id != "cid" || sec != "csecret" {
			w.WriteHeader(401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"upstream-at-%d","token_type":"Bearer","expires_in":600}`, issued.Add(1))
	}))
	defer idp.Close()
	id, sec := s.Agent(t, "oauth-bot")
	tok := agentToken(t, s, id, sec)
	admin(t, s, 201, "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "crm", "client_id": "cid",
		"client_secret": "csecret", "token_endpoint": idp.URL + "/token"})
	admin(t, s, 201, "POST", "/api/v1/agents/"+id+"/outbound", map[string]any{"node_type": "external_service",
		"credential_type": "oauth_provider", "credential": "crm", "upstream_url": up.URL})
	for range 3 {
		resp, body := gw(t, s, "GET", "/gateway/crm/contacts", tok, nil, nil)
		if resp.StatusCode != 201 || strings.Contains(dump(resp, body), "upstream-at-") {
			t.Fatalf("HTTP %d, or the token reached the agent:\n%s", resp.StatusCode, dump(resp, body))
		}
	}
	if got := up.last(t); got.Header.Get("Authorization") != "Bearer upstream-at-1" || got.Path != "/contacts" {
		t.Fatalf("upstream got %q on %s", got.Header.Get("Authorization"), got.Path)
	}
	if issued.Load() != 1 {
		t.Fatalf("%d tokens fetched for 3 requests, want 1 (cached)", issued.Load())
	}
}

// Paths that could leave the upstream's base path never reach the upstream.
func TestGatewayPathTraversal(t *testing.T) {
	fx := setup(t, nil)
	for _, p := range []string{
		"/gateway/openai/../admin",
		"/gateway/openai/%2e%2e/admin",
		"/gateway/openai/a/..%2F..%2Fadmin",
		"/gateway/openai/a%2Fb",
		"/gateway/openai/a%5C..%5Cb",
	} {
		resp, body := gw(t, fx.s, "GET", p, fx.tok, nil, nil)
		if resp.StatusCode == 201 || resp.StatusCode < 300 {
			t.Errorf("%s: HTTP %d %s", p, resp.StatusCode, body)
		}
	}
	fx.up.mu.Lock()
	defer fx.up.mu.Unlock()
	for _, r := range fx.up.reqs {
		if !strings.HasPrefix(r.Path, "/v1/") {
			t.Errorf("the upstream got %s", r.Path)
		}
	}
}

// Who may use the gateway: the agent whose rule holds the node; answers for an
// unknown node and another agent's node are alike; every request is audited.
func TestGatewayAuthorization(t *testing.T) {
	fx := setup(t, nil)
	otherID, otherSec := fx.s.Agent(t, "other")
	otherTok := agentToken(t, fx.s, otherID, otherSec)
	admin(t, fx.s, 201, "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "no-upstream", "value": "v"})
	admin(t, fx.s, 201, "POST", "/api/v1/agents/"+fx.agentID+"/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "no-upstream"})

	tests := []struct {
		name, path, tok string
		want            int
	}{
		{"no token", "/gateway/openai/x", "", 401},
		{"admin token", "/gateway/openai/x", servertest.AdminToken, 401},
		{"another agent", "/gateway/openai/x", otherTok, 403},
		{"unknown node", "/gateway/nope/x", fx.tok, 403},
		{"node without upstream_url", "/gateway/no-upstream/x", fx.tok, 403},
		{"the agent", "/gateway/openai/x", fx.tok, 201},
		{"the agent, bare node path", "/gateway/openai", fx.tok, 201},
	}
	var alike [][]byte
	for _, tc := range tests {
		resp, body := gw(t, fx.s, "GET", tc.path, tc.tok, nil, nil)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: HTTP %d, want %d: %s", tc.name, resp.StatusCode, tc.want, body)
		}
		if tc.name == "unknown node" {
			alike = append(alike, body)
		}
	}
	// Another agent asking for "openai" and this agent asking for "nope": same shape.
	resp, body := gw(t, fx.s, "GET", "/gateway/nope/x", otherTok, nil, nil)
	resp2, body2 := gw(t, fx.s, "GET", "/gateway/openai/x", otherTok, nil, nil)
	if resp.StatusCode != 403 || !bytes.Equal(body, body2) || resp2.StatusCode != 403 {
		t.Fatalf("unknown vs forbidden differ:\n%s\n%s", body, body2)
	}
	var l struct{ Items []struct{ Decision string } }
	fx.s.Do(t, "GET", "/api/v1/audit/events?action=proxy.forward&limit=100", nil, &l)
	if len(l.Items) != len(tests)+2 {
		t.Fatalf("%d audit events for %d gateway requests", len(l.Items), len(tests)+2)
	}
}

// The body is limited, the exchange is bounded in time, and an unreachable
// upstream is a 502.
func TestGatewayLimits(t *testing.T) {
	fx := setup(t, func(c *config.Config) { c.GatewayMaxBody = 1024; c.GatewayTimeout = 300 * time.Millisecond })
	resp, _ := gw(t, fx.s, "POST", "/gateway/openai/upload", fx.tok, strings.NewReader(strings.Repeat("x", 2048)), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("body over the limit: HTTP %d", resp.StatusCode)
	}
	// Without a Content-Length (chunked), the limit holds while streaming.
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte(strings.Repeat("y", 4096))); pw.Close() }()
	resp, _ = gw(t, fx.s, "POST", "/gateway/openai/upload", fx.tok, pr, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the limit: HTTP %d", resp.StatusCode)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	admin(t, fx.s, 200, "PATCH", "/api/v1/agents/"+fx.agentID+"/outbound/openai", map[string]any{"upstream_url": slow.URL})
	if resp, _ := gw(t, fx.s, "GET", "/gateway/openai/x", fx.tok, nil, nil); resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("slow upstream: HTTP %d", resp.StatusCode)
	}
	slow.Close()
	if resp, _ := gw(t, fx.s, "GET", "/gateway/openai/x", fx.tok, nil, nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("unreachable upstream: HTTP %d", resp.StatusCode)
	}
}

// Answers stream: the agent reads the first part before the upstream has sent
// the rest (server-sent events from an LLM, say).
func TestGatewayStreamsTheAnswer(t *testing.T) {
	fx := setup(t, nil)
	release := make(chan struct{})
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "data: two\n\n")
	}))
	defer sse.Close()
	defer close(release)
	admin(t, fx.s, 200, "PATCH", "/api/v1/agents/"+fx.agentID+"/outbound/openai", map[string]any{"upstream_url": sse.URL})
	req, _ := http.NewRequest("GET", fx.s.URL+"/gateway/openai/stream", nil)
	req.Header.Set("Authorization", "Bearer "+fx.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
}

// An upstream that answers 401 to an injected OAuth token (the provider revoked it
// early) makes the gateway forget it: the agent's next call carries a new token
// instead of failing until the cached one's refresh point.
func TestGatewayForgetsAnOAuthTokenTheUpstreamRefuses(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var issued atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"upstream-at-%d","token_type":"Bearer","expires_in":3600}`, issued.Add(1))
	}))
	defer idp.Close()
	// The service honours only the second token: the first was revoked.
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer upstream-at-2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer svc.Close()
	id, sec := s.Agent(t, "oauth-bot")
	tok := agentToken(t, s, id, sec)
	admin(t, s, 201, "POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "crm", "client_id": "cid",
		"client_secret": "csecret", "token_endpoint": idp.URL + "/token"})
	admin(t, s, 201, "POST", "/api/v1/agents/"+id+"/outbound", map[string]any{"node_type": "external_service",
		"credential_type": "oauth_provider", "credential": "crm", "upstream_url": svc.URL})

	if resp, body := gw(t, s, "GET", "/gateway/crm/x", tok, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("first call: HTTP %d, want the upstream's 401\n%s", resp.StatusCode, dump(resp, body))
	}
	for i := range 2 {
		if resp, body := gw(t, s, "GET", "/gateway/crm/x", tok, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d after the refusal: HTTP %d\n%s", i+2, resp.StatusCode, dump(resp, body))
		}
	}
	if n := issued.Load(); n != 2 {
		t.Fatalf("%d tokens fetched, want 2 (the refused one, then one cached new one)", n)
	}
}
