package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// Every refusal of the token endpoint has the RFC's code and status, a description
// that names what was wrong, and no secret or token in the body.
func TestTokenRefusals(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) { testTokenRefusals(t, d) })
	}
}

func testTokenRefusals(t *testing.T, d sqlstore.Dialect) {
	s := servertest.Start(t, servertest.Options{Dialect: d})
	resourceServer(t, s, apiAudience, 0, "read", "write")
	resourceServer(t, s, otherAudience, 0, "x")
	id, sec := s.Agent(t, "refused")
	grantScopes(t, s, id, apiAudience, "read")
	key := registerJWK(t, s, id, newES256(t), jose.ES256)
	issuer := s.Config.Issuer
	// Every value that must never come back in an error body.
	leaks := []string{sec}
	cc := func(extra url.Values) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	basic := func(f url.Values) call { return call{form: f, basicID: id, basicSecret: sec} }
	assertion := func(mutate func(*jwt.Claims)) string {
		a := key.assertion(t, id, issuer, s.Clock.Now(), mutate)
		leaks = append(leaks, a)
		return a
	}

	tests := []struct {
		name    string
		setup   func(t *testing.T) call
		status  int
		code    string
		mention string // the description must name what was wrong
	}{
		{"wrong secret", func(t *testing.T) call {
			return call{form: cc(nil), basicID: id, basicSecret: sec + "x"}
		}, 401, "invalid_client", "wrong client_secret"},
		{"unknown client", func(t *testing.T) call {
			return call{form: cc(nil), basicID: "agt_nobody", basicSecret: sec}
		}, 401, "invalid_client", "unknown client_id"},
		// A NUL byte cannot be stored in PostgreSQL text: it must be refused as an
		// unknown client, not fail the query with a 500.
		{"client_id with a NUL byte", func(t *testing.T) call {
			return call{form: cc(url.Values{"client_id": {id + "\x00"}, "client_secret": {sec}})}
		}, 401, "invalid_client", "unknown client_id"},
		{"assertion whose jti holds a NUL byte is usable once", func(t *testing.T) call {
			a := assertion(func(c *jwt.Claims) { c.ID = "a\x00b" })
			mustToken(t, s, call{form: assertionForm(a, nil)})
			return call{form: assertionForm(a, nil)}
		}, 401, "invalid_client", "jti was already used"},
		{"assertion sub with a NUL byte", func(t *testing.T) call {
			return call{form: assertionForm(assertion(func(c *jwt.Claims) { c.Issuer, c.Subject = id+"\x00", id+"\x00" }), nil)}
		}, 401, "invalid_client", "not a valid client_id"},
		{"no client authentication", func(t *testing.T) call {
			return call{form: cc(nil)}
		}, 401, "invalid_client", "missing"},
		{"expired secret", func(t *testing.T) call {
			var out struct {
				ClientSecret string `json:"client_secret"`
			}
			if code := s.Do(t, "POST", "/api/v1/agents/"+id+"/secrets", map[string]any{"expires_in": 60}, &out); code != 201 {
				t.Fatalf("create secret: HTTP %d", code)
			}
			leaks = append(leaks, out.ClientSecret)
			mustToken(t, s, call{form: cc(nil), basicID: id, basicSecret: out.ClientSecret})
			s.Clock.Advance(61 * time.Second)
			return call{form: cc(url.Values{"client_id": {id}, "client_secret": {out.ClientSecret}})}
		}, 401, "invalid_client", "expired"},
		{"deleted secret", func(t *testing.T) call {
			var out struct {
				ID           string `json:"id"`
				ClientSecret string `json:"client_secret"`
			}
			if code := s.Do(t, "POST", "/api/v1/agents/"+id+"/secrets", nil, &out); code != 201 {
				t.Fatalf("create secret: HTTP %d", code)
			}
			leaks = append(leaks, out.ClientSecret)
			mustToken(t, s, call{form: cc(nil), basicID: id, basicSecret: out.ClientSecret})
			if code := s.Do(t, "DELETE", "/api/v1/agents/"+id+"/secrets/"+out.ID, nil, nil); code != 204 {
				t.Fatalf("delete secret: HTTP %d", code)
			}
			return call{form: cc(nil), basicID: id, basicSecret: out.ClientSecret}
		}, 401, "invalid_client", "wrong client_secret"},
		{"two auth methods: basic and client_secret", func(t *testing.T) call {
			return call{form: cc(url.Values{"client_secret": {sec}}), basicID: id, basicSecret: sec}
		}, 400, "invalid_request", "exactly one client authentication method"},
		{"two auth methods: client_secret and assertion", func(t *testing.T) call {
			return call{form: assertionForm(assertion(nil), url.Values{"client_id": {id}, "client_secret": {sec}})}
		}, 400, "invalid_request", "exactly one client authentication method"},
		{"replayed client assertion jti", func(t *testing.T) call {
			a := assertion(nil)
			mustToken(t, s, call{form: assertionForm(a, nil)})
			return call{form: assertionForm(a, nil)}
		}, 401, "invalid_client", "jti was already used"},
		{"assertion exp too far in the future", func(t *testing.T) call {
			return call{form: assertionForm(assertion(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(s.Clock.Now().Add(time.Hour)) }), nil)}
		}, 401, "invalid_client", "in the future"},
		{"assertion expired", func(t *testing.T) call {
			return call{form: assertionForm(assertion(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(s.Clock.Now().Add(-time.Hour)) }), nil)}
		}, 401, "invalid_client", "expired"},
		{"assertion without jti", func(t *testing.T) call {
			return call{form: assertionForm(assertion(func(c *jwt.Claims) { c.ID = "" }), nil)}
		}, 401, "invalid_client", "jti"},
		{"assertion wrong aud", func(t *testing.T) call {
			return call{form: assertionForm(assertion(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://evil.example.com"} }), nil)}
		}, 401, "invalid_client", "aud must be the issuer"},
		{"assertion iss != sub", func(t *testing.T) call {
			return call{form: assertionForm(assertion(func(c *jwt.Claims) { c.Issuer = "someone-else" }), nil)}
		}, 401, "invalid_client", "iss and sub"},
		{"assertion sub differs from client_id", func(t *testing.T) call {
			return call{form: assertionForm(assertion(nil), url.Values{"client_id": {"agt_other"}})}
		}, 401, "invalid_client", "differs from client_id"},
		{"assertion signed by an unregistered key", func(t *testing.T) call {
			rogue := assertionKey{priv: newES256(t), alg: jose.ES256, kid: key.kid}
			a := rogue.assertion(t, id, issuer, s.Clock.Now(), nil)
			leaks = append(leaks, a)
			return call{form: assertionForm(a, nil)}
		}, 401, "invalid_client", "not signed by a key registered"},
		{"assertion signed with alg none", func(t *testing.T) call {
			return call{form: assertionForm("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4Iiwic3ViIjoieCJ9.", nil)}
		}, 401, "invalid_client", "signed JWT"},
		{"wrong client_assertion_type", func(t *testing.T) call {
			f := assertionForm(assertion(nil), nil)
			f.Set("client_assertion_type", "urn:example:other")
			return call{form: f}
		}, 401, "invalid_client", "client_assertion_type"},
		{"ungranted audience", func(t *testing.T) call {
			return basic(cc(url.Values{"resource": {otherAudience}}))
		}, 400, "invalid_target", "no grant"},
		{"unknown audience", func(t *testing.T) call {
			return basic(cc(url.Values{"resource": {"https://nowhere.example.com"}}))
		}, 400, "invalid_target", "no resource server"},
		{"resource not an absolute URI", func(t *testing.T) call {
			return basic(cc(url.Values{"resource": {"not a uri"}}))
		}, 400, "invalid_target", "absolute URI"},
		{"granted audience, ungranted scope", func(t *testing.T) call {
			return basic(cc(url.Values{"resource": {apiAudience}, "scope": {"write"}}))
		}, 400, "invalid_scope", "not granted write"},
		{"granted audience, ungranted scope, compat form", func(t *testing.T) call {
			return basic(cc(url.Values{"scope": {apiAudience + "|read " + apiAudience + "|write"}}))
		}, 400, "invalid_scope", "not granted write"},
		{"scope the resource server does not define", func(t *testing.T) call {
			return basic(cc(url.Values{"resource": {apiAudience}, "scope": {"delete"}}))
		}, 400, "invalid_scope", "does not define the scope(s) delete"},
		{"admin scope not granted", func(t *testing.T) call {
			return basic(cc(url.Values{"scope": {"agentguard:admin"}}))
		}, 400, "invalid_scope", "not granted agentguard:admin"},
		{"two audiences as resources", func(t *testing.T) call {
			return basic(cc(url.Values{"resource": {apiAudience, otherAudience}}))
		}, 400, "invalid_target", "one audience"},
		{"two audiences in the compat form", func(t *testing.T) call {
			return basic(cc(url.Values{"scope": {apiAudience + "|read " + otherAudience + "|x"}}))
		}, 400, "invalid_target", "one audience"},
		{"audience parameter on client_credentials", func(t *testing.T) call {
			return basic(cc(url.Values{"audience": {apiAudience}}))
		}, 400, "invalid_request", "resource="},
		{"disabled agent", func(t *testing.T) call {
			did, dsec := s.Agent(t, "disabled")
			leaks = append(leaks, dsec)
			mustToken(t, s, call{form: cc(nil), basicID: did, basicSecret: dsec})
			if code := s.Do(t, "PATCH", "/api/v1/agents/"+did, map[string]any{"status": "disabled"}, nil); code != 200 {
				t.Fatalf("disable: HTTP %d", code)
			}
			return call{form: cc(nil), basicID: did, basicSecret: dsec}
		}, 401, "invalid_client", "disabled"},
		{"disabled agent with a client assertion", func(t *testing.T) call {
			did, dsec := s.Agent(t, "disabled-jwt")
			leaks = append(leaks, dsec)
			dkey := registerJWK(t, s, did, newES256(t), jose.ES256)
			if code := s.Do(t, "PATCH", "/api/v1/agents/"+did, map[string]any{"status": "disabled"}, nil); code != 200 {
				t.Fatalf("disable: HTTP %d", code)
			}
			return call{form: assertionForm(dkey.assertion(t, did, issuer, s.Clock.Now(), nil), nil)}
		}, 401, "invalid_client", "disabled"},
		{"unsupported grant type", func(t *testing.T) call {
			return basic(url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}})
		}, 400, "unsupported_grant_type", `"password" is not supported`},
		{"missing grant_type", func(t *testing.T) call {
			return basic(url.Values{"scope": {"agentguard:credentials"}})
		}, 400, "invalid_request", "grant_type is missing"},
		{"repeated parameter", func(t *testing.T) call {
			return call{rawBody: "grant_type=client_credentials&scope=a&scope=b", basicID: id, basicSecret: sec}
		}, 400, "invalid_request", "scope is repeated"},
		{"repeated grant_type", func(t *testing.T) call {
			return call{rawBody: "grant_type=client_credentials&grant_type=client_credentials", basicID: id, basicSecret: sec}
		}, 400, "invalid_request", "grant_type is repeated"},
		{"JSON body", func(t *testing.T) call {
			return call{rawBody: `{"grant_type":"client_credentials"}`, contentType: "application/json", basicID: id, basicSecret: sec}
		}, 400, "invalid_request", "application/x-www-form-urlencoded"},
		{"no Content-Type", func(t *testing.T) call {
			return call{form: cc(nil), contentType: "text/plain", basicID: id, basicSecret: sec}
		}, 400, "invalid_request", "application/x-www-form-urlencoded"},
		{"parameters in the query string", func(t *testing.T) call {
			return call{query: "grant_type=client_credentials&client_secret=" + url.QueryEscape(sec), form: url.Values{"client_id": {id}}}
		}, 400, "invalid_request", "not the URL query"},
		{"body over 64 KiB", func(t *testing.T) call {
			return basic(cc(url.Values{"scope": {strings.Repeat("a", 65<<10)}}))
		}, 400, "invalid_request", "limit"},
		{"scope over 4 KiB", func(t *testing.T) call {
			return basic(cc(url.Values{"scope": {strings.Repeat("a ", 2100)}}))
		}, 400, "invalid_scope", "4096"},
		{"malformed form", func(t *testing.T) call {
			return call{rawBody: "grant_type=client_credentials&scope=%zz", basicID: id, basicSecret: sec}
		}, 400, "invalid_request", "not a valid form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, s, tt.setup(t))
			e := r.err(t)
			if r.status != tt.status || e.Code != tt.code {
				t.Fatalf("HTTP %d %s (%s), want %d %s", r.status, e.Code, e.Description, tt.status, tt.code)
			}
			if !strings.Contains(e.Description, tt.mention) {
				t.Errorf("error_description %q does not mention %q", e.Description, tt.mention)
			}
			if tt.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate (RFC 6749 §5.2)")
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
			}
			noLeak(t, r.body, leaks)
		})
	}
}
