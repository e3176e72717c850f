package registration

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/client"
)

// FuzzRegistrationMetadata: whatever the body, decoding and validation either
// refuse it with an RFC 7591 error or produce a registration that keeps the
// promises: redirect URIs https or loopback http, a client type that matches the
// authentication method, a printable bounded name, only the code flow.
func FuzzRegistrationMetadata(f *testing.F) {
	f.Add([]byte(`{"client_name":"MCP Inspector","redirect_uris":["http://127.0.0.1:6274/oauth/callback"],"token_endpoint_auth_method":"none","application_type":"native"}`))
	f.Add([]byte(`{"redirect_uris":["https://a.example.com/cb"],"grant_types":["authorization_code","refresh_token"],"contacts":["a@example.com"]}`))
	f.Add([]byte(`{"redirect_uris":["javascript:alert(1)"]}`))
	f.Add([]byte(`{"redirect_uris":["http://[::1]:80/cb"],"token_endpoint_auth_method":"client_secret_post","scope":"openid email"}`))
	f.Add([]byte(`{"redirect_uris":null,"client_name":"\u0000"}`))
	h := &Registrar{}
	h.Init(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/oauth2/register", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		req, e := decode(httptest.NewRecorder(), r)
		var g Registration
		if e == nil {
			g, e = h.validate(req)
		}
		if e != nil {
			switch e.Code {
			case "invalid_client_metadata", "invalid_redirect_uri", "invalid_software_statement":
			default:
				t.Fatalf("error code %q", e.Code)
			}
			return
		}
		if len(g.RedirectURIs) == 0 || len(g.RedirectURIs) > MaxRedirectURIs {
			t.Fatalf("%d redirect URIs", len(g.RedirectURIs))
		}
		for _, u := range g.RedirectURIs {
			pu, err := url.Parse(u)
			if err != nil || !(pu.Scheme == "https" || (pu.Scheme == "http" && api.IsLoopback(pu.Hostname()))) || strings.Contains(u, "#") {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
		public := g.AuthMethod == "none"
		if public == (g.ClientType == client.TypeWeb) {
			t.Fatalf("auth method %s with client type %s", g.AuthMethod, g.ClientType)
		}
		if !utf8.ValidString(g.ClientName) || strings.ContainsFunc(g.ClientName, unicode.IsControl) || len(g.ClientName) > 300 {
			t.Fatalf("client name %q", g.ClientName)
		}
		if len(g.Metadata.ResponseTypes) != 1 || g.Metadata.ResponseTypes[0] != "code" {
			t.Fatalf("response types %v", g.Metadata.ResponseTypes)
		}
	})
}
