package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/server/servertest"
)

// client calls the SCIM endpoints with a bearer token.
type client struct {
	t     *testing.T
	s     *servertest.Server
	token string
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (c client) do(method, path, body string) answer {
	c.t.Helper()
	req, err := newRequest(method, c.s.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return send(c.t, req)
}

var ctx = context.Background()

func newRequest(method, url, body string) (*http.Request, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return http.NewRequest(method, url, rd)
}

func send(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	a.raw, _ = io.ReadAll(resp.Body)
	if len(a.raw) > 0 {
		if err := json.Unmarshal(a.raw, &a.body); err != nil {
			t.Fatalf("%s %s: answer %q is not a JSON object", req.Method, req.URL.Path, a.raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/scim+json" {
			t.Fatalf("%s %s: Content-Type %q", req.Method, req.URL.Path, ct)
		}
	}
	return a
}

// must checks the status, printing the answer if it differs.
func (a answer) must(t *testing.T, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("HTTP %d %s, want %d", a.status, a.raw, status)
	}
	return a
}

// scimError checks an RFC 7644 §3.12 error body.
func (a answer) scimError(t *testing.T, status int, scimType string) {
	t.Helper()
	a.must(t, status)
	schemas, _ := a.body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || a.body["status"] != itoa(status) {
		t.Fatalf("error body %s", a.raw)
	}
	if got, _ := a.body["scimType"].(string); got != scimType {
		t.Fatalf("scimType %q, want %q (%s)", got, scimType, a.raw)
	}
	if d, _ := a.body["detail"].(string); d == "" {
		t.Fatalf("error without detail: %s", a.raw)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func (a answer) str(key string) string { s, _ := a.body[key].(string); return s }

func (a answer) resources() []map[string]any {
	var out []map[string]any
	list, _ := a.body["Resources"].([]any)
	for _, r := range list {
		out = append(out, r.(map[string]any))
	}
	return out
}

// scimToken makes a SCIM token through the admin API.
func scimToken(t *testing.T, s *servertest.Server, body map[string]any) (id, token string) {
	t.Helper()
	var out struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if code := s.Do(t, "POST", "/api/v1/scim/tokens", body, &out); code != 201 || !strings.HasPrefix(out.Token, "agscim_") {
		t.Fatalf("create SCIM token: HTTP %d %+v", code, out)
	}
	return out.ID, out.Token
}

func start(t *testing.T) (*servertest.Server, client) {
	s := servertest.Start(t, servertest.Options{})
	_, tok := scimToken(t, s, map[string]any{"name": "entra"})
	return s, client{t: t, s: s, token: tok}
}

const entraUser = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
  "userName": "Test_User_ab6490ee@contoso.com",
  "active": true,
  "displayName": "Test User",
  "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}],
  "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
  "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
  "title": "Engineer",
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "HR", "employeeNumber": "1234", "manager": {"value": "boss"}}
}`

// Who may call SCIM: only a live SCIM token. The bootstrap admin token, an agent
// token with agentguard:admin, a deleted or expired SCIM token are refused, and a
// SCIM token does not open the management API.
func TestSCIMAuthentication(t *testing.T) {
	s, c := start(t)
	delID, delTok := scimToken(t, s, map[string]any{"name": "to delete"})
	_, shortTok := scimToken(t, s, map[string]any{"name": "short", "expires_in": 3600})
	if code := s.Do(t, "DELETE", "/api/v1/scim/tokens/"+delID, nil, nil); code != 204 {
		t.Fatalf("delete token: HTTP %d", code)
	}
	agentAdmin := agentAdminToken(t, s)

	paths := []struct{ method, path, body string }{
		{"GET", "/scim/v2/Users", ""},
		{"GET", "/scim/v2/ServiceProviderConfig", ""},
		{"POST", "/scim/v2/Users", entraUser},
		{"PATCH", "/scim/v2/Groups/grp_x", `{"Operations":[]}`},
		{"DELETE", "/scim/v2/Users/usr_x", ""},
	}
	refused := []struct{ name, token string }{
		{"no token", ""},
		{"bootstrap admin token", servertest.AdminToken},
		{"agent token with agentguard:admin", agentAdmin},
		{"deleted SCIM token", delTok},
		{"garbage", "agscim_not-a-real-token"},
	}
	for _, p := range paths {
		for _, r := range refused {
			a := client{t: t, s: s, token: r.token}.do(p.method, p.path, p.body)
			if a.status != 401 || a.header.Get("WWW-Authenticate") == "" || a.str("status") != "401" {
				t.Fatalf("%s %s with %s: HTTP %d %s %v, want 401 with a challenge", p.method, p.path, r.name, a.status, a.raw, a.header)
			}
		}
	}
	c.do("GET", "/scim/v2/Users", "").must(t, 200)
	client{t: t, s: s, token: shortTok}.do("GET", "/scim/v2/Users", "").must(t, 200)
	s.Clock.Advance(61 * time.Minute)
	if a := (client{t: t, s: s, token: shortTok}).do("GET", "/scim/v2/Users", ""); a.status != 401 || !strings.Contains(a.str("detail"), "expired") {
		t.Fatalf("expired token: HTTP %d %s", a.status, a.raw)
	}
	// The SCIM token is not an admin token.
	if code := s.DoAs(t, c.token, "GET", "/api/v1/users", nil, nil); code != 401 {
		t.Fatalf("SCIM token on the management API: HTTP %d", code)
	}
	// Refusals are audited.
	var es struct{ Items []audit.Event }
	s.Do(t, "GET", "/api/v1/audit/events?resource_type=scim&decision=deny&limit=500", nil, &es)
	if len(es.Items) < len(paths)*len(refused) {
		t.Fatalf("%d refusal events, want at least %d", len(es.Items), len(paths)*len(refused))
	}
	// Tokens are listed without their value.
	var l struct{ Items []map[string]any }
	s.Do(t, "GET", "/api/v1/scim/tokens", nil, &l)
	raw, _ := json.Marshal(l)
	if len(l.Items) != 2 || bytes.Contains(raw, []byte("agscim_")) {
		t.Fatalf("token list %s", raw)
	}
}

// agentAdminToken is an access token of an agent granted agentguard:admin.
func agentAdminToken(t *testing.T, s *servertest.Server) string {
	t.Helper()
	id, sec := s.Agent(t, "automation")
	var grants struct {
		Items []struct {
			ID       string `json:"id"`
			Audience string `json:"audience"`
		}
	}
	s.Do(t, "GET", "/api/v1/agents/"+id+"/grants", nil, &grants)
	if code := s.Do(t, "PATCH", "/api/v1/agents/"+id+"/grants/"+grants.Items[0].ID, map[string]any{"scopes": []string{"agentguard:credentials", "agentguard:admin"}}, nil); code != 200 {
		t.Fatalf("grant admin: HTTP %d", code)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"agentguard:admin"}}
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if tok.AccessToken == "" {
		t.Fatalf("no admin access token (HTTP %d)", resp.StatusCode)
	}
	return tok.AccessToken
}
