package oauth_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// RFC 7662: a valid token is active with its claims; every way a token stops being
// good makes it inactive, with nothing else said.
func TestIntrospection(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) { testIntrospection(t, d) })
	}
}

func testIntrospection(t *testing.T, d sqlstore.Dialect) {
	s := servertest.Start(t, servertest.Options{Dialect: d})
	resourceServer(t, s, apiAudience, 0, "read", "write")
	rsID, rsSec := s.Agent(t, "introspector")
	id, sec := s.Agent(t, "holder")
	grantScopes(t, s, id, apiAudience, "read", "write")

	t.Run("active with every claim", func(t *testing.T) {
		tr := secretToken(t, s, id, sec, url.Values{"resource": {apiAudience}})
		c, _ := verifyIndependently(t, s, tr.AccessToken, id, apiAudience, "read write", 15*time.Minute)
		got := introspect(t, s, rsID, rsSec, tr.AccessToken)
		want := map[string]any{
			"active": true, "scope": "read write", "client_id": id, "sub": id, "aud": apiAudience,
			"iss": s.Config.Issuer, "exp": float64(c.Expiry.Time().Unix()), "iat": float64(c.IssuedAt.Time().Unix()),
			"nbf": float64(c.NotBefore.Time().Unix()), "jti": c.ID, "token_type": "Bearer",
		}
		if mustJSON(t, got) != mustJSON(t, want) {
			t.Errorf("introspection\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
		}
	})

	// A foreign token: same issuer and kid, signed by a key the server never had.
	forge := func(t *testing.T) string {
		tr := secretToken(t, s, id, sec, nil)
		tok, err := jwt.ParseSigned(tr.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
			t.Fatal(err)
		}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: newES256(t), KeyID: tok.Headers[0].KeyID}},
			(&jose.SignerOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(sig).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	inactive := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"expired", func(t *testing.T) string {
			tr := secretToken(t, s, id, sec, nil)
			s.Clock.Advance(15*time.Minute + time.Minute)
			return tr.AccessToken
		}},
		{"revoked by its own agent", func(t *testing.T) string {
			tr := secretToken(t, s, id, sec, nil)
			if r := send(t, s, call{path: "/oauth2/revoke", form: url.Values{"token": {tr.AccessToken}, "token_type_hint": {"access_token"}}, basicID: id, basicSecret: sec}); r.status != 200 {
				t.Fatalf("revoke: HTTP %d %s", r.status, r.body)
			}
			return tr.AccessToken
		}},
		{"agent deleted", func(t *testing.T) string {
			did, dsec := s.Agent(t, "deleted")
			tr := secretToken(t, s, did, dsec, nil)
			if code := s.Do(t, "DELETE", "/api/v1/agents/"+did, nil, nil); code != 204 {
				t.Fatalf("delete agent: HTTP %d", code)
			}
			return tr.AccessToken
		}},
		{"agent disabled", func(t *testing.T) string {
			did, dsec := s.Agent(t, "disabled")
			tr := secretToken(t, s, did, dsec, nil)
			if code := s.Do(t, "PATCH", "/api/v1/agents/"+did, map[string]any{"status": "disabled"}, nil); code != 200 {
				t.Fatalf("disable agent: HTTP %d", code)
			}
			return tr.AccessToken
		}},
		{"garbage", func(t *testing.T) string { return "not-a-token" }},
		{"three empty segments", func(t *testing.T) string { return ".." }},
		{"signed by another key with our kid", forge},
		{"issued by another server", func(t *testing.T) string {
			other := servertest.Start(t, servertest.Options{Clock: s.Clock})
			oid, osec := other.Agent(t, "elsewhere")
			return secretToken(t, other, oid, osec, nil).AccessToken
		}},
		{"another server's token claiming our issuer", func(t *testing.T) string {
			other := servertest.Start(t, servertest.Options{Clock: s.Clock, Configure: func(c *config.Config) { c.Issuer = s.Config.Issuer }})
			oid, osec := other.Agent(t, "impostor")
			return secretToken(t, other, oid, osec, nil).AccessToken
		}},
	}
	for _, tt := range inactive {
		t.Run("inactive: "+tt.name, func(t *testing.T) {
			raw := tt.token(t)
			got := introspect(t, s, rsID, rsSec, raw)
			if mustJSON(t, got) != `{"active":false}` {
				t.Errorf("introspection = %s, want only {\"active\":false}", mustJSON(t, got))
			}
		})
	}

	t.Run("unauthenticated caller", func(t *testing.T) {
		tr := secretToken(t, s, id, sec, nil)
		for _, c := range []call{
			{path: "/oauth2/introspect", form: url.Values{"token": {tr.AccessToken}}},
			{path: "/oauth2/introspect", form: url.Values{"token": {tr.AccessToken}}, basicID: rsID, basicSecret: "wrong"},
		} {
			r := send(t, s, c)
			if e := r.err(t); r.status != http.StatusUnauthorized || e.Code != "invalid_client" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("HTTP %d %s, want 401 invalid_client with WWW-Authenticate", r.status, e.Code)
			}
			noLeak(t, r.body, []string{tr.AccessToken, rsSec})
		}
	})

	t.Run("missing token", func(t *testing.T) {
		r := send(t, s, call{path: "/oauth2/introspect", form: url.Values{}, basicID: rsID, basicSecret: rsSec})
		if e := r.err(t); r.status != 400 || e.Code != "invalid_request" {
			t.Errorf("HTTP %d %s, want 400 invalid_request", r.status, e.Code)
		}
	})
}

// RFC 7009: only the token's own client may revoke it; an invalid token is 200.
func TestRevocation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, sec := s.Agent(t, "owner")
	otherID, otherSec := s.Agent(t, "other")
	tr := secretToken(t, s, id, sec, nil)

	r := send(t, s, call{path: "/oauth2/revoke", form: url.Values{"token": {tr.AccessToken}}, basicID: otherID, basicSecret: otherSec})
	if e := r.err(t); r.status != 400 || e.Code != "unauthorized_client" {
		t.Errorf("revoke by another agent: HTTP %d %s, want 400 unauthorized_client", r.status, e.Code)
	}
	noLeak(t, r.body, []string{tr.AccessToken, sec, otherSec})
	if got := introspect(t, s, otherID, otherSec, tr.AccessToken); got["active"] != true {
		t.Errorf("the token stopped being active after another agent's refused revocation: %v", got)
	}

	for _, tok := range []string{"garbage", tr.AccessToken + "x"} {
		if r := send(t, s, call{path: "/oauth2/revoke", form: url.Values{"token": {tok}}, basicID: otherID, basicSecret: otherSec}); r.status != 200 {
			t.Errorf("revoke an invalid token: HTTP %d %s, want 200", r.status, r.body)
		}
	}

	r = send(t, s, call{path: "/oauth2/revoke", form: url.Values{"token": {tr.AccessToken}, "token_type_hint": {"id_token"}}, basicID: id, basicSecret: sec})
	if e := r.err(t); r.status != 400 || e.Code != "unsupported_token_type" {
		t.Errorf("unknown token_type_hint: HTTP %d %s, want 400 unsupported_token_type", r.status, e.Code)
	}

	r = send(t, s, call{path: "/oauth2/revoke", form: url.Values{"token": {tr.AccessToken}}})
	if e := r.err(t); r.status != 401 || e.Code != "invalid_client" {
		t.Errorf("unauthenticated revoke: HTTP %d %s, want 401 invalid_client", r.status, e.Code)
	}

	// Revoking twice is fine (idempotent), and the token is then inactive.
	for range 2 {
		if r := send(t, s, call{path: "/oauth2/revoke", form: url.Values{"token": {tr.AccessToken}}, basicID: id, basicSecret: sec}); r.status != 200 {
			t.Fatalf("revoke by its own agent: HTTP %d %s", r.status, r.body)
		}
	}
	if got := introspect(t, s, otherID, otherSec, tr.AccessToken); got["active"] != false {
		t.Errorf("revoked token introspects %v", got)
	}
}
