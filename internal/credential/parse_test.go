package credential_test

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/credential"
)

// A header template is one header with the type's placeholder once; anything
// that could add another header or mislead the gateway is refused.
func TestParseHeaderTemplate(t *testing.T) {
	tests := []struct {
		tmpl, typ string
		name      string // "" means refused
		render    string // the value with the secret "S3CR3T"
	}{
		{"Authorization: Bearer {{key}}", "api_key", "Authorization", "Bearer S3CR3T"},
		{"authorization:Bearer {{token}}", "oauth_provider", "Authorization", "Bearer S3CR3T"},
		{"X-API-Key: {{key}}", "api_key", "X-Api-Key", "S3CR3T"},
		{"x-goog-api-key:\t{{key}} ", "api_key", "X-Goog-Api-Key", "S3CR3T"},
		{"X-Auth: token={{key}};v=1", "api_key", "X-Auth", "token=S3CR3T;v=1"},
		{"X-Key: {{token}}", "api_key", "", ""},                      // the other type's placeholder
		{"X-Key: {{key}}", "oauth_provider", "", ""},                 // ditto
		{"X-Key: static", "api_key", "", ""},                         // no placeholder
		{"X-Key: {{key}}{{key}}", "api_key", "", ""},                 // twice
		{"X-Key: {{key}} {{other}}", "api_key", "", ""},              // unknown placeholder
		{"X-Key {{key}}", "api_key", "", ""},                         // no colon
		{"X Key: {{key}}", "api_key", "", ""},                        // space in the name
		{": {{key}}", "api_key", "", ""},                             // no name
		{"X-Key: {{key}}\r\nX-Evil: 1", "api_key", "", ""},           // CRLF injection
		{"X-Key: {{key}}\nX-Evil: 1", "api_key", "", ""},             // LF
		{"X-Key: \x00{{key}}", "api_key", "", ""},                    // NUL
		{"X-Key: é{{key}}", "api_key", "", ""},                       // non-ASCII
		{"Host: {{key}}", "api_key", "", ""},                         // gateway-owned headers
		{"Content-Length: {{key}}", "api_key", "", ""},               //
		{"Transfer-Encoding: {{key}}", "api_key", "", ""},            //
		{"Proxy-Authorization: Basic {{key}}", "api_key", "", ""},    //
		{"X-Forwarded-For: {{key}}", "api_key", "", ""},              //
		{strings.Repeat("X", 1100) + ": {{key}}", "api_key", "", ""}, // too long
	}
	for _, tc := range tests {
		tm, err := credential.ParseHeaderTemplate(tc.tmpl, tc.typ)
		if tc.name == "" {
			if err == nil {
				t.Errorf("%q (%s) accepted as %+v", tc.tmpl, tc.typ, tm)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q (%s): %v", tc.tmpl, tc.typ, err)
			continue
		}
		v, err := tm.Render("S3CR3T")
		if tm.Name != tc.name || err != nil || v != tc.render {
			t.Errorf("%q: name %q value %q (%v), want %q %q", tc.tmpl, tm.Name, v, err, tc.name, tc.render)
		}
		// The canonical form parses to the same template.
		again, err := credential.ParseHeaderTemplate(tm.String(tc.typ), tc.typ)
		if err != nil || again != tm {
			t.Errorf("%q: canonical form %q parses to %+v, %v", tc.tmpl, tm.String(tc.typ), again, err)
		}
	}
	// A secret that would break the header is refused at injection.
	tm, _ := credential.ParseHeaderTemplate("X-Key: {{key}}", "api_key")
	for _, bad := range []string{"", "a\r\nX-Evil: 1", "a\nb", "tab\there", "\x7f", "ünïcode"} {
		if _, err := tm.Render(bad); !errors.Is(err, credential.ErrBadHeaderValue) {
			t.Errorf("Render(%q) = %v, want ErrBadHeaderValue", bad, err)
		}
	}
}

// Whatever the template, an accepted one renders a single valid header whose
// name the gateway does not own.
func FuzzParseHeaderTemplate(f *testing.F) {
	for _, s := range []string{"Authorization: Bearer {{key}}", "X-API-Key: {{key}}", "X: {{token}}", "X-Key: {{key}}\r\nEvil: 1",
		"Host: {{key}}", ": {{key}}", "X-Key: {{key}}{{key}}", "a:{{key}}}}", "a:{{{key}}"} {
		f.Add(s, "api_key", "secret-value")
	}
	f.Add("Authorization: Bearer {{token}}", "oauth_provider", "tok")
	f.Fuzz(func(t *testing.T, tmpl, typ, secret string) {
		tm, err := credential.ParseHeaderTemplate(tmpl, typ)
		if err != nil {
			return
		}
		if !httpguts.ValidHeaderFieldName(tm.Name) || tm.Name == "Host" || tm.Name == "Content-Length" || strings.HasPrefix(tm.Name, "Proxy-") {
			t.Fatalf("%q gives the header name %q", tmpl, tm.Name)
		}
		v, err := tm.Render(secret)
		if err != nil {
			return
		}
		if !httpguts.ValidHeaderFieldValue(v) || strings.ContainsAny(v, "\r\n\x00") || !strings.Contains(v, secret) {
			t.Fatalf("%q with %q renders %q", tmpl, secret, v)
		}
	})
}

// The optional body of an OAuth token retrieval: nothing, or {"scopes": [...]}.
func TestParseTokenRequest(t *testing.T) {
	tests := []struct {
		ct, body string
		scopes   []string
		status   int
	}{
		{"", "", nil, 0},
		{"application/json", "", nil, 0},
		{"application/json", "  \n", nil, 0},
		{"application/json", `{}`, nil, 0},
		{"application/json", `{"scopes":["read"]}`, []string{"read"}, 0},
		{"application/json; charset=utf-8", `{"scopes":[]}`, []string{}, 0},
		{"text/plain", `{"scopes":["read"]}`, nil, 415},
		{"", `{"scopes":["read"]}`, nil, 415},
		{"application/json", `{"scopes":"read"}`, nil, 400},
		{"application/json", `{"scope":["read"]}`, nil, 400},
		{"application/json", `{"scopes":["a b"]}`, nil, 400},
		{"application/json", `{"scopes":[""]}`, nil, 400},
		{"application/json", `{"scopes":["read"]} {}`, nil, 400},
		{"application/json", `[`, nil, 400},
		{"application/json", `{"scopes":["` + strings.Repeat("a", api.MaxBody) + `"]}`, nil, 413},
	}
	for _, tc := range tests {
		scopes, err := parse(tc.ct, tc.body)
		if tc.status == 0 {
			if err != nil || strings.Join(scopes, ",") != strings.Join(tc.scopes, ",") {
				t.Errorf("%q %q: %v, %v", tc.ct, tc.body, scopes, err)
			}
			continue
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Status != tc.status {
			t.Errorf("%q %.40q: %v, want HTTP %d", tc.ct, tc.body, err, tc.status)
		}
	}
}

func parse(ct, body string) ([]string, error) {
	r := httptest.NewRequest("POST", "/api/v1/agent/oauth-tokens/x", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return credential.ParseTokenRequest(httptest.NewRecorder(), r)
}

// Any body: no panic, and either valid scope tokens or a 400/413/415 problem.
func FuzzParseTokenRequest(f *testing.F) {
	for _, b := range []string{"", `{}`, `{"scopes":["a","b"]}`, `{"scopes":null}`, `{"scopes":[1]}`, `{"x":1}`, "\xff", `{"scopes":["a"]}x`} {
		f.Add("application/json", b)
	}
	f.Add("text/plain", "x")
	f.Fuzz(func(t *testing.T, ct, body string) {
		scopes, err := parse(ct, body)
		if err != nil {
			var e *api.Error
			if !errors.As(err, &e) || (e.Status != 400 && e.Status != 413 && e.Status != 415) {
				t.Fatalf("%q %q: %v", ct, body, err)
			}
			return
		}
		for _, s := range scopes {
			var v api.Validator
			v.Scope("scopes", s)
			if v.Err() != nil {
				t.Fatalf("accepted the scope %q", s)
			}
		}
	})
}

// Presets: an accepted parameter set always gives an https endpoint on the host
// the parameters name, never one smuggled through a parameter.
func FuzzApplyPreset(f *testing.F) {
	f.Add("entra_id", "tenant", "contoso.onmicrosoft.com", "", "")
	f.Add("okta", "domain", "dev-1.okta.com", "authorization_server", "default")
	f.Add("okta", "domain", "evil.com/x?", "authorization_server", "../../x")
	f.Add("auth0", "domain", "a.auth0.com", "audience", "https://api")
	f.Add("keycloak", "base_url", "https://sso.example.com", "realm", "r")
	f.Add("keycloak", "base_url", "http://sso.example.com", "realm", "../admin")
	f.Add("keycloak", "base_url", "https://sso.example.com/x?y", "realm", "r")
	f.Add("keycloak", "base_url", "https://sso.example.com/a/../b", "realm", "r")
	f.Fuzz(func(t *testing.T, preset, k1, v1, k2, v2 string) {
		params := map[string]string{k1: v1}
		if k2 != "" {
			params[k2] = v2
		}
		res, probs := credential.ApplyPreset(preset, params, false)
		if len(probs) > 0 {
			return
		}
		u, err := url.Parse(res.TokenEndpoint)
		if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("%s %v gives the endpoint %q", preset, params, res.TokenEndpoint)
		}
		if msg := credential.CheckSecretURL(res.TokenEndpoint, false, true); msg != "" {
			t.Fatalf("%s %v: %s", preset, params, msg)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == ".." {
				t.Fatalf("%s %v: dot segment in %q", preset, params, res.TokenEndpoint)
			}
		}
		if d := params["domain"]; d != "" && u.Host != d {
			t.Fatalf("%s %v: host %q is not the domain", preset, params, u.Host)
		}
		if res.AuthMethod != credential.AuthBasic && res.AuthMethod != credential.AuthPost {
			t.Fatalf("auth method %q", res.AuthMethod)
		}
	})
}

// Where a credential may be sent.
func TestCheckSecretURL(t *testing.T) {
	tests := []struct {
		raw                  string
		insecure, allowQuery bool
		ok                   bool
	}{
		{"https://api.example.com/v1", false, false, true},
		{"http://localhost:8080/x", false, false, true},
		{"http://127.0.0.1/x", false, false, true},
		{"http://[::1]:9/x", false, false, true},
		{"http://127.attacker.example/x", false, false, false},
		{"http://api.example.com/x", false, false, false},
		{"http://api.example.com/x", true, false, true},
		{"https://api.example.com/x?a=1", false, false, false},
		{"https://api.example.com/x?a=1", false, true, true},
		{"https://user:pw@api.example.com/x", false, true, false},
		{"https://api.example.com/x#frag", false, true, false},
		{"ftp://api.example.com/x", true, true, false},
		{"/relative", true, true, false},
		{"https://", true, true, false},
		{"https://api.example.com/a b", true, true, false},
		{"", true, true, false},
		{"https://api.example.com/" + strings.Repeat("a", 2048), false, false, false},
	}
	for _, tc := range tests {
		msg := credential.CheckSecretURL(tc.raw, tc.insecure, tc.allowQuery)
		if (msg == "") != tc.ok {
			t.Errorf("CheckSecretURL(%.60q, insecure=%v, query=%v) = %q, want ok=%v", tc.raw, tc.insecure, tc.allowQuery, msg, tc.ok)
		}
	}
}

// Requested scopes must be a subset of the provider's defaults; the result is
// canonical, so the same set is one cache entry whatever the order.
func TestResolveScopes(t *testing.T) {
	p := &credential.OAuthProvider{DefaultScopes: []string{"read", "write", "admin"}}
	tests := []struct {
		req  []string
		want string // "" with ok=false means refused
		ok   bool
	}{
		{nil, "admin read write", true},
		{[]string{}, "admin read write", true},
		{[]string{"write", "read", "read"}, "read write", true},
		{[]string{"delete"}, "", false},
		{[]string{"read", "Read"}, "", false},
	}
	for _, tc := range tests {
		got, err := credential.ResolveScopes(p, tc.req)
		if tc.ok != (err == nil) || (tc.ok && strings.Join(got, " ") != tc.want) {
			t.Errorf("ResolveScopes(%v) = %v, %v", tc.req, got, err)
		}
	}
	if a, b := credential.CacheKey("op_1", 1, []string{"a", "b"}), credential.CacheKey("op_1", 2, []string{"a", "b"}); a == b {
		t.Error("a new generation has the same cache key")
	}
}
