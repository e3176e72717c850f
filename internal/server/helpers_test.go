package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/server/servertest"
)

// problem is the RFC 9457 body the management API answers errors with.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
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

// send makes one raw HTTP request; contentType "" sends none, bearer "" no
// Authorization header.
func send(t testing.TB, s *servertest.Server, method, path, bearer, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
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
	return resp, b
}

// decodeProblem checks the response is problem+json and decodes it.
func decodeProblem(t testing.TB, resp *http.Response, b []byte) problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s: Content-Type %q, want application/problem+json (body %s)", resp.Request.Method, resp.Request.URL.Path, ct, b)
	}
	var p problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("problem body %q: %v", b, err)
	}
	if p.Status != resp.StatusCode || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v does not match HTTP %d or lacks title/type", p, resp.StatusCode)
	}
	return p
}

// oauthPost posts a form to an OAuth endpoint as the agent (client_secret_basic).
func oauthPost(t testing.TB, s *servertest.Server, path, id, sec string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("POST %s: %q: %v", path, b, err)
		}
	}
	return resp.StatusCode, out
}

// accessToken runs client_credentials and fails the test unless a token comes back.
func accessToken(t testing.TB, s *servertest.Server, id, sec string, form url.Values) string {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	code, out := oauthPost(t, s, "/oauth2/token", id, sec, form)
	tok, _ := out["access_token"].(string)
	if code != http.StatusOK || tok == "" {
		t.Fatalf("client_credentials for %s: HTTP %d %v", id, code, out)
	}
	return tok
}

// active introspects tok as the agent id/sec.
func active(t testing.TB, s *servertest.Server, id, sec, tok string) bool {
	t.Helper()
	code, out := oauthPost(t, s, "/oauth2/introspect", id, sec, url.Values{"token": {tok}})
	if code != http.StatusOK {
		t.Fatalf("introspect: HTTP %d %v", code, out)
	}
	return out["active"] == true
}

// grants lists the agent's grants.
func grants(t testing.TB, s *servertest.Server, agentID string) []grant.Grant {
	t.Helper()
	var l struct{ Items []grant.Grant }
	if code := s.Do(t, "GET", "/api/v1/agents/"+agentID+"/grants", nil, &l); code != http.StatusOK {
		t.Fatalf("list grants: HTTP %d", code)
	}
	return l.Items
}

// adminAgent registers an agent, grants it agentguard:admin on the issuer (beside
// the functional grant every agent starts with) and returns its credentials and
// an admin-scoped access token.
func adminAgent(t testing.TB, s *servertest.Server, name string) (id, sec, tok string) {
	t.Helper()
	id, sec = s.Agent(t, name)
	// Every agent starts with one grant on the issuer; a second grant on the same
	// audience is a conflict, so the functional grant is replaced by one with both scopes.
	gs := grants(t, s, id)
	if len(gs) != 1 {
		t.Fatalf("new agent has %d grants, want 1", len(gs))
	}
	if code := s.Do(t, "DELETE", "/api/v1/agents/"+id+"/grants/"+gs[0].ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete functional grant: HTTP %d", code)
	}
	body := map[string]any{"audience": s.Config.Issuer, "scopes": []string{grant.ScopeCredentials, grant.ScopeAdmin}}
	if code := s.Do(t, "POST", "/api/v1/agents/"+id+"/grants", body, nil); code != http.StatusCreated {
		t.Fatalf("grant agentguard:admin: HTTP %d", code)
	}
	tok = accessToken(t, s, id, sec, url.Values{"scope": {grant.ScopeAdmin}})
	return id, sec, tok
}
