package client_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

type clientJSON struct {
	ID                      string   `json:"id"`
	Name                    string   `json:"name"`
	Type                    string   `json:"type"`
	Public                  bool     `json:"public"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	RedirectURIs            []string `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris"`
	ClientSecret            string   `json:"client_secret"`
}

type problem struct {
	Status int
	Detail string
	Errors []struct{ Field, Detail string }
}

func (p problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// Each client type is registered with what it needs: a web (confidential) app gets
// a secret once, public apps none, and later reads never show a secret.
func TestCreateClients(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	for _, tt := range []struct {
		typ        string
		uris       []string
		public     bool
		authMethod string
	}{
		{"spa", []string{"https://spa.example.com/cb"}, true, "none"},
		{"web", []string{"https://web.example.com/cb", "https://web.example.com/cb2"}, false, "client_secret_basic"},
		{"native", []string{"http://127.0.0.1/cb", "com.example.app:/cb"}, true, "none"},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			var c clientJSON
			body := map[string]any{"name": tt.typ + " app", "type": tt.typ, "redirect_uris": tt.uris, "post_logout_redirect_uris": []string{tt.uris[0]}}
			if code := s.Do(t, "POST", "/api/v1/clients", body, &c); code != http.StatusCreated {
				t.Fatalf("HTTP %d", code)
			}
			if !strings.HasPrefix(c.ID, "cli_") || c.Public != tt.public || c.TokenEndpointAuthMethod != tt.authMethod || !slices.Equal(c.RedirectURIs, tt.uris) {
				t.Fatalf("created %+v", c)
			}
			if tt.public != (c.ClientSecret == "") {
				t.Fatalf("client_secret %q for a %s client", c.ClientSecret, tt.typ)
			}
			if !tt.public && !strings.HasPrefix(c.ClientSecret, "agcs_") {
				t.Fatalf("client_secret %q lacks the agcs_ prefix", c.ClientSecret)
			}
			var got clientJSON
			if code := s.Do(t, "GET", "/api/v1/clients/"+c.ID, nil, &got); code != 200 || got.ClientSecret != "" || got.Name != tt.typ+" app" {
				t.Fatalf("GET: HTTP %d %+v (the secret must never be shown again)", code, got)
			}
			var list struct{ Items []clientJSON }
			s.Do(t, "GET", "/api/v1/clients", nil, &list)
			for _, it := range list.Items {
				if it.ClientSecret != "" {
					t.Fatal("a list shows a client secret")
				}
			}
		})
	}
}

// Bad input names every wrong field.
func TestCreateClientValidation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	tests := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"empty", map[string]any{}, []string{"name", "type", "redirect_uris"}},
		{"bad type", map[string]any{"name": "a", "type": "desktop", "redirect_uris": []string{"https://a.example/cb"}}, []string{"type"}},
		{"http off loopback", map[string]any{"name": "a", "type": "web", "redirect_uris": []string{"http://a.example/cb"}}, []string{"redirect_uris[0]"}},
		{"fragment", map[string]any{"name": "a", "type": "spa", "redirect_uris": []string{"https://a.example/cb#x"}}, []string{"redirect_uris[0]"}},
		{"wildcard", map[string]any{"name": "a", "type": "spa", "redirect_uris": []string{"https://*.a.example/cb"}}, []string{"redirect_uris[0]"}},
		{"duplicate", map[string]any{"name": "a", "type": "spa", "redirect_uris": []string{"https://a.example/cb", "https://a.example/cb"}}, []string{"redirect_uris[1]"}},
		{"custom scheme for web", map[string]any{"name": "a", "type": "web", "redirect_uris": []string{"com.example.app:/cb"}}, []string{"redirect_uris[0]"}},
		{"javascript for native", map[string]any{"name": "a", "type": "native", "redirect_uris": []string{"javascript:alert(1)"}}, []string{"redirect_uris[0]"}},
		{"bad logout URI", map[string]any{"name": "a", "type": "spa", "redirect_uris": []string{"https://a.example/cb"}, "post_logout_redirect_uris": []string{"https://u@a.example/"}}, []string{"post_logout_redirect_uris[0]"}},
		{"too many", map[string]any{"name": "a", "type": "spa", "redirect_uris": manyURIs(21)}, []string{"redirect_uris"}},
		{"unknown field", map[string]any{"name": "a", "type": "spa", "redirect_uris": []string{"https://a.example/cb"}, "client_secret": "mine"}, []string{"client_secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problem
			if code := s.Do(t, "POST", "/api/v1/clients", tt.body, &p); code != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400", code)
			}
			if !slices.Equal(p.fields(), tt.fields) {
				t.Fatalf("fields %v, want %v (%+v)", p.fields(), tt.fields, p)
			}
		})
	}
}

func manyURIs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "https://a.example/cb" + strings.Repeat("x", i)
	}
	return out
}

// PATCH changes names and URI lists; the type is fixed; unknown ids are 404.
func TestUpdateAndDeleteClient(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var c clientJSON
	s.Do(t, "POST", "/api/v1/clients", map[string]any{"name": "a", "type": "spa", "redirect_uris": []string{"https://a.example/cb"}}, &c)
	var got clientJSON
	if code := s.Do(t, "PATCH", "/api/v1/clients/"+c.ID, map[string]any{"name": "b", "redirect_uris": []string{"https://b.example/cb"}}, &got); code != 200 ||
		got.Name != "b" || !slices.Equal(got.RedirectURIs, []string{"https://b.example/cb"}) {
		t.Fatalf("PATCH: HTTP %d %+v", code, got)
	}
	var p problem
	if code := s.Do(t, "PATCH", "/api/v1/clients/"+c.ID, map[string]any{"type": "web"}, &p); code != 400 || !slices.Equal(p.fields(), []string{"type"}) {
		t.Fatalf("changing the type: HTTP %d %+v", code, p)
	}
	if code := s.Do(t, "PATCH", "/api/v1/clients/"+c.ID, map[string]any{"redirect_uris": []string{}}, &p); code != 400 {
		t.Fatalf("removing every redirect URI: HTTP %d", code)
	}
	if code := s.Do(t, "PATCH", "/api/v1/clients/cli_missing", map[string]any{"name": "x"}, nil); code != 404 {
		t.Fatalf("PATCH unknown: HTTP %d", code)
	}
	if code := s.Do(t, "DELETE", "/api/v1/clients/"+c.ID, nil, nil); code != 204 {
		t.Fatalf("DELETE: HTTP %d", code)
	}
	if code := s.Do(t, "GET", "/api/v1/clients/"+c.ID, nil, nil); code != 404 {
		t.Fatalf("GET after delete: HTTP %d", code)
	}
	if code := s.Do(t, "DELETE", "/api/v1/clients/"+c.ID, nil, nil); code != 404 {
		t.Fatalf("DELETE twice: HTTP %d", code)
	}
}

// Confidential clients rotate secrets like agents (shown once, at most 5); public
// clients have none.
func TestClientSecrets(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var web, spa clientJSON
	s.Do(t, "POST", "/api/v1/clients", map[string]any{"name": "w", "type": "web", "redirect_uris": []string{"https://w.example/cb"}}, &web)
	s.Do(t, "POST", "/api/v1/clients", map[string]any{"name": "s", "type": "spa", "redirect_uris": []string{"https://s.example/cb"}}, &spa)
	if code := s.Do(t, "POST", "/api/v1/clients/"+spa.ID+"/secrets", nil, nil); code != http.StatusConflict {
		t.Fatalf("secret for a public client: HTTP %d, want 409", code)
	}
	var created struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}
	if code := s.Do(t, "POST", "/api/v1/clients/"+web.ID+"/secrets", map[string]any{"expires_in": 3600}, &created); code != 201 || created.ClientSecret == "" {
		t.Fatalf("new secret: HTTP %d %+v", code, created)
	}
	var list struct {
		Items []map[string]any
	}
	s.Do(t, "GET", "/api/v1/clients/"+web.ID+"/secrets", nil, &list)
	if len(list.Items) != 2 {
		t.Fatalf("%d secrets, want 2", len(list.Items))
	}
	for _, it := range list.Items {
		if _, shown := it["client_secret"]; shown {
			t.Fatal("secret list shows a secret")
		}
	}
	for i := 0; i < 3; i++ {
		s.Do(t, "POST", "/api/v1/clients/"+web.ID+"/secrets", nil, nil)
	}
	if code := s.Do(t, "POST", "/api/v1/clients/"+web.ID+"/secrets", nil, nil); code != http.StatusConflict {
		t.Fatalf("sixth secret: HTTP %d, want 409", code)
	}
	if code := s.Do(t, "DELETE", "/api/v1/clients/"+web.ID+"/secrets/"+created.ID, nil, nil); code != 204 {
		t.Fatalf("delete secret: HTTP %d", code)
	}
	if code := s.Do(t, "DELETE", "/api/v1/clients/"+web.ID+"/secrets/"+created.ID, nil, nil); code != 404 {
		t.Fatalf("delete secret twice: HTTP %d", code)
	}
}
