package credential_test

import (
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

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/token"
)

// problem is an RFC 9457 body, with the 502 extension members.
type problem struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail"`
	Provider      string `json:"provider"`
	ProviderError string `json:"provider_error"`
	Failure       string `json:"failure"`
	Errors        []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func (p problem) fields() []string {
	var f []string
	for _, e := range p.Errors {
		f = append(f, e.Field)
	}
	return f
}

// response is one raw answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, out any) {
	t.Helper()
	if err := json.Unmarshal(r.body, out); err != nil {
		t.Fatalf("HTTP %d body %q: %v", r.code, r.body, err)
	}
}

func (r response) problem(t testing.TB) problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("HTTP %d: Content-Type %q, want problem+json (body %s)", r.code, ct, r.body)
	}
	var p problem
	r.json(t, &p)
	if p.Status != r.code || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v does not match HTTP %d", p, r.code)
	}
	return p
}

// call sends a request with an optional bearer token and a raw body.
func call(t testing.TB, s *servertest.Server, method, path, bearer, contentType string, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// callJSON sends body as JSON.
func callJSON(t testing.TB, s *servertest.Server, method, path, bearer string, body any) response {
	t.Helper()
	if body == nil {
		return call(t, s, method, path, bearer, "", nil)
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return call(t, s, method, path, bearer, "application/json", b)
}

// admin sends an admin request that must answer want.
func admin(t testing.TB, s *servertest.Server, want int, method, path string, body, out any) {
	t.Helper()
	r := callJSON(t, s, method, path, servertest.AdminToken, body)
	if r.code != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, r.code, want, r.body)
	}
	if out != nil {
		r.json(t, out)
	}
}

// agentToken gets the agent's own token for the Credential API (no target: the
// issuer's audience with agentguard:credentials).
func agentToken(t testing.TB, s *servertest.Server, id, secret string, form url.Values) string {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	if resp.StatusCode != 200 || out.AccessToken == "" {
		t.Fatalf("token for %s: HTTP %d %s", id, resp.StatusCode, b)
	}
	return out.AccessToken
}

// agentWithToken registers an agent and returns its id and Credential API token.
func agentWithToken(t testing.TB, s *servertest.Server, name string) (id, tok string) {
	t.Helper()
	id, sec := s.Agent(t, name)
	return id, agentToken(t, s, id, sec, nil)
}

func createAPIKey(t testing.TB, s *servertest.Server, identifier, value string) {
	t.Helper()
	admin(t, s, 201, "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": identifier, "name": identifier, "value": value}, nil)
}

func addNode(t testing.TB, s *servertest.Server, agentID, nodeType, credType, identifier string, extra map[string]any) {
	t.Helper()
	body := map[string]any{"node_type": nodeType, "credential_type": credType, "credential": identifier}
	for k, v := range extra {
		body[k] = v
	}
	admin(t, s, 201, "POST", "/api/v1/agents/"+agentID+"/outbound", body, nil)
}

type keyValue struct {
	Identifier string `json:"identifier"`
	Value      string `json:"value"`
	Version    int64  `json:"version"`
}

func getKey(t testing.TB, s *servertest.Server, tok, identifier string) (response, keyValue) {
	t.Helper()
	r := call(t, s, "GET", "/api/v1/agent/api-keys/"+identifier, tok, "", nil)
	var kv keyValue
	if r.code == 200 {
		r.json(t, &kv)
	}
	return r, kv
}

type upstreamToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

func getToken(t testing.TB, s *servertest.Server, tok, identifier string, body any) (response, upstreamToken) {
	t.Helper()
	r := callJSON(t, s, "POST", "/api/v1/agent/oauth-tokens/"+identifier, tok, body)
	var ut upstreamToken
	if r.code == 200 {
		r.json(t, &ut)
	}
	return r, ut
}

// Token endpoint modes.
const (
	modeOK        = "ok"
	modeNoExpiry  = "no_expiry"  // a token without expires_in
	modeError     = "error"      // 400 {"error":"invalid_client"}
	modeNotJSON   = "not_json"   // 200 text/html
	modeSlow      = "slow"       // answers after the server's timeout
	modeServerErr = "server_err" // 503 with an HTML page
	modeEchoBody  = "echo"       // 500 echoing the request (secret included) in the body
)

// tokenEndpoint is a real local OAuth token endpoint (client credentials) that
// checks the client's id and secret, counts its calls, and fails on demand.
type tokenEndpoint struct {
	*httptest.Server
	clientID, secret string
	calls            atomic.Int64
	mode             atomic.Value // string
	expiresIn        atomic.Int64
	release          chan struct{} // modeSlow waits for it (or the request's end)
	mu               sync.Mutex
	lastForm         url.Values
	lastAuth         string
	issued           []string
}

func newTokenEndpoint(t testing.TB, clientID, secret string) *tokenEndpoint {
	e := &tokenEndpoint{clientID: clientID, secret: secret, release: make(chan struct{})}
	e.mode.Store(modeOK)
	e.expiresIn.Store(3600)
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(func() {
		select {
		case <-e.release:
		default:
			close(e.release)
		}
		e.Server.Close()
	})
	return e
}

func (e *tokenEndpoint) URL() string { return e.Server.URL + "/oauth2/token" }

func (e *tokenEndpoint) setMode(m string) { e.mode.Store(m) }

func (e *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	n := e.calls.Add(1)
	r.ParseForm()
	e.mu.Lock()
	e.lastForm, e.lastAuth = r.PostForm, r.Header.Get("Authorization")
	e.mu.Unlock()
	switch e.mode.Load().(string) {
	case modeError:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad client secret `+e.secret+`"}`)
		return
	case modeNotJSON:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>sign in</html>")
		return
	case modeSlow:
		select {
		case <-e.release:
		case <-r.Context().Done():
		}
		return
	case modeServerErr:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(503)
		fmt.Fprint(w, "<html>maintenance</html>")
		return
	case modeEchoBody:
		w.WriteHeader(500)
		fmt.Fprintf(w, "debug: %s %s", r.Header.Get("Authorization"), r.PostForm.Encode())
		return
	}
	id, sec, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
	} else {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" || id != e.clientID || sec != e.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	tok := fmt.Sprintf("upstream-token-%d-%d", n, time.Now().UnixNano())
	e.mu.Lock()
	e.issued = append(e.issued, tok)
	e.mu.Unlock()
	out := map[string]any{"access_token": tok, "token_type": "Bearer"}
	if e.mode.Load().(string) != modeNoExpiry {
		out["expires_in"] = e.expiresIn.Load()
	}
	if sc := r.PostForm.Get("scope"); sc != "" {
		out["scope"] = sc
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (e *tokenEndpoint) form() (url.Values, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastForm, e.lastAuth
}

func (e *tokenEndpoint) issuedTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.issued...)
}

// createProvider registers an OAuth provider for e.
func createProvider(t testing.TB, s *servertest.Server, identifier string, e *tokenEndpoint, extra map[string]any) {
	t.Helper()
	body := map[string]any{"identifier": identifier, "client_id": e.clientID, "client_secret": e.secret,
		"token_endpoint": e.URL(), "default_scopes": []string{"read", "write"}}
	for k, v := range extra {
		body[k] = v
	}
	admin(t, s, 201, "POST", "/api/v1/credentials/oauth-providers", body, nil)
}

type auditEvent struct {
	Category     string `json:"category"`
	Action       string `json:"action"`
	Decision     string `json:"decision"`
	Reason       string `json:"reason"`
	AgentID      string `json:"agent_id"`
	User         string `json:"user"`
	ClientID     string `json:"client_id"`
	ResourceType string `json:"resource_type"`
	Resource     string `json:"resource"`
}

// events lists the credential audit events, newest first.
func events(t testing.TB, s *servertest.Server, query string) []auditEvent {
	t.Helper()
	var l struct{ Items []auditEvent }
	admin(t, s, 200, "GET", "/api/v1/audit/events?category=credential&limit=500&"+query, nil, &l)
	return l.Items
}

// tokenClaims are the claims of a token for the issuer's audience with the
// credentials scope: delegated (act.sub = actor) when actor is set.
func tokenClaims(s *servertest.Server, sub, clientID, actor string) token.Claims {
	c := token.Claims{Subject: sub, ClientID: clientID, Scope: "agentguard:credentials", Audience: jwt.Audience{s.Config.Issuer}}
	if actor != "" {
		c.Act = &token.Actor{Subject: actor}
	}
	return c
}
