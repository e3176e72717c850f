package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Tokens signed by go-jose with every accepted algorithm verify, and the caller is
// read from them.
func TestVerifyAcceptsGoJoseTokens(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, nil)
	for _, kid := range []string{"es256", "es384", "rs256", "ps256", "eddsa"} {
		t.Run(kid, func(t *testing.T) {
			tok := is.sign(t, kid, is.claims(nil), nil)
			c, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "agt_1" || c.ClientID != "agt_1" || !c.HasScopes("read:file", "write:file") || c.Delegated() ||
				c.Agent() != "agt_1" || c.TokenID != "at_1" || !c.ExpiresAt.Equal(testNow.Add(15*time.Minute)) || c.Token != tok {
				t.Fatalf("caller %+v", c)
			}
		})
	}
}

// A delegated token (token exchange) exposes the user and the actor chain; aud may
// be an array; typ may be the full media type.
func TestVerifyDelegatedCaller(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, nil)
	tok := is.sign(t, "es256", is.claims(map[string]any{
		"sub": "usr_alice", "client_id": "agt_2", "aud": []string{"https://other", testAudience},
		"act": map[string]any{"sub": "agt_2", "act": map[string]any{"sub": "agt_1"}},
	}), map[jose.HeaderKey]any{jose.HeaderType: "application/at+jwt"})
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "usr_alice" || !slices.Equal(c.Actors, []string{"agt_2", "agt_1"}) || c.Agent() != "agt_2" || !c.Delegated() {
		t.Fatalf("caller %+v", c)
	}
	if s := c.String() + c.GoString(); strings.Contains(s, tok) {
		t.Fatal("the caller prints its token")
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rawToken(header, payload map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	return b64url(h) + "." + b64url(p) + "." + b64url(sig)
}

// Every kind of bad token is refused with its reason, each in a case of its own.
func TestVerifyRefusals(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, nil)
	good := is.claims(nil)

	// HS256 "signed" with the issuer's public key as the HMAC secret: the classic
	// algorithm-confusion attack on verifiers that take the algorithm from the token.
	der, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hsInput := func(kid string) string {
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid})
		p, _ := json.Marshal(good)
		return b64url(h) + "." + b64url(p)
	}
	hs := func(secret []byte, kid string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(hsInput(kid)))
		return hsInput(kid) + "." + b64url(m.Sum(nil))
	}
	jwkJSON, _ := json.Marshal(jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "es256"})

	tampered := func() string {
		tok := is.sign(t, "es256", good, nil)
		parts := strings.Split(tok, ".")
		p, _ := json.Marshal(is.claims(map[string]any{"scope": "admin"}))
		return parts[0] + "." + b64url(p) + "." + parts[2]
	}()
	// A token signed by an attacker's key, naming the issuer's kid and embedding
	// the attacker's public key in the header (jwk): the header's key is ignored.
	embedded := signWith(t, jose.ES256, attackerEC, "es256", good, map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: &attackerEC.PublicKey}})

	cases := []struct {
		name   string
		token  string
		reason string
	}{
		{"alg none, empty signature", rawToken(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "es256"}, good, nil), "malformed"},
		{"alg none with a signature", rawToken(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "es256"}, good, []byte("x")), "algorithm"},
		{"alg None (case)", rawToken(map[string]any{"alg": "None", "typ": "at+jwt", "kid": "es256"}, good, []byte("x")), "algorithm"},
		{"HS256 with the public key PEM as secret", hs(pubPEM, "es256"), "algorithm"},
		{"HS256 with the public JWK as secret", hs(jwkJSON, "es256"), "algorithm"},
		{"typ JWT (an ID token or other JWT)", is.sign(t, "es256", good, map[jose.HeaderKey]any{jose.HeaderType: "JWT"}), "type"},
		{"no typ", is.sign(t, "es256", good, map[jose.HeaderKey]any{jose.HeaderType: nil}), "type"},
		{"expired beyond the leeway", is.sign(t, "es256", is.claims(map[string]any{"exp": testNow.Add(-31 * time.Second).Unix()}), nil), "expired"},
		{"not valid yet (nbf)", is.sign(t, "es256", is.claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), nil), "not_yet_valid"},
		{"issued in the future (iat)", is.sign(t, "es256", is.claims(map[string]any{"iat": testNow.Add(time.Hour).Unix()}), nil), "not_yet_valid"},
		{"another issuer", is.sign(t, "es256", is.claims(map[string]any{"iss": "https://evil.example.com"}), nil), "issuer"},
		{"issuer with a trailing slash", is.sign(t, "es256", is.claims(map[string]any{"iss": is.URL + "/"}), nil), "issuer"},
		{"another audience", is.sign(t, "es256", is.claims(map[string]any{"aud": "https://other.example.com"}), nil), "audience"},
		{"no audience", is.sign(t, "es256", is.claims(map[string]any{"aud": nil}), nil), "audience"},
		{"no exp", is.sign(t, "es256", is.claims(map[string]any{"exp": nil}), nil), "claims"},
		{"no sub", is.sign(t, "es256", is.claims(map[string]any{"sub": nil}), nil), "claims"},
		{"exp out of range", is.sign(t, "es256", is.claims(map[string]any{"exp": 1e300}), nil), "malformed"},
		{"act without sub", is.sign(t, "es256", is.claims(map[string]any{"act": map[string]any{"act": map[string]any{"sub": "x"}}}), nil), "claims"},
		{"unknown kid", signWith(t, jose.ES256, attackerEC, "not-published", good, nil), "unknown_key"},
		{"no kid", signWith(t, jose.ES256, ecKey, "", good, nil), "unknown_key"},
		{"ES384 header on the ES256 key", signWith(t, jose.ES384, ec384Key, "es256", good, nil), "algorithm"},
		{"RS256 header on the PS256 key", signWith(t, jose.RS256, otherRSA, "ps256", good, nil), "algorithm"},
		{"ES256 token signed by another key under the issuer's kid", signWith(t, jose.ES256, attackerEC, "es256", good, nil), "signature"},
		{"embedded jwk of the attacker", embedded, "signature"},
		{"tampered payload", tampered, "signature"},
		{"crit header", is.sign(t, "es256", good, map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}), "malformed"},
		{"two parts", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0", "malformed"},
		{"four parts", is.sign(t, "es256", good, nil) + ".x", "malformed"},
		{"empty header", "." + b64url([]byte(`{}`)) + ".c2ln", "malformed"},
		{"header not base64url", "e$J.e30.c2ln", "malformed"},
		{"padded base64", b64url([]byte(`{"alg":"ES256"}`)) + "=.e30.c2ln", "malformed"},
		{"header not JSON", b64url([]byte("hello")) + ".e30.c2ln", "malformed"},
		{"header a JSON array", b64url([]byte("[1]")) + ".e30.c2ln", "malformed"},
		{"empty", "", "malformed"},
		{"over 16 KiB", strings.Repeat("a", 17<<10), "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.token)
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want a *TokenError", err)
			}
			if te.Reason != tc.reason {
				t.Fatalf("reason %q (%s), want %q", te.Reason, te.Detail, tc.reason)
			}
		})
	}
}

// exp and nbf have a small leeway (30 s by default, configurable).
func TestVerifyLeeway(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, nil)
	for _, c := range []map[string]any{
		{"exp": testNow.Add(-29 * time.Second).Unix()},
		{"nbf": testNow.Add(29 * time.Second).Unix()},
	} {
		if _, err := v.Verify(context.Background(), is.sign(t, "es256", is.claims(c), nil)); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	strict := is.verifier(t, func(c *Config) { c.Leeway = time.Second })
	if _, err := strict.Verify(context.Background(), is.sign(t, "es256", is.claims(map[string]any{"exp": testNow.Add(-5 * time.Second).Unix()}), nil)); err == nil {
		t.Error("a 1 s leeway accepted a token expired 5 s ago")
	}
}

// The allow-list narrows accepted algorithms; HMAC and none cannot be configured.
func TestAlgorithmAllowList(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(c *Config) { c.Algorithms = []string{"EdDSA"} })
	if _, err := v.Verify(context.Background(), is.sign(t, "es256", is.claims(nil), nil)); err == nil {
		t.Fatal("ES256 accepted with an EdDSA-only allow-list")
	}
	if _, err := v.Verify(context.Background(), is.sign(t, "eddsa", is.claims(nil), nil)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"none", "HS256", "HS512", "es256"} {
		if _, err := New(Config{Issuer: is.URL, Audience: testAudience, Algorithms: []string{bad}}); err == nil {
			t.Errorf("algorithm %q accepted in the allow-list", bad)
		}
	}
}

// New refuses a configuration without issuer or audience, or with http to a remote
// host.
func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Audience: testAudience},
		{Issuer: "https://ag.example.com"},
		{Issuer: "http://ag.example.com", Audience: testAudience},
		{Issuer: "ag.example.com", Audience: testAudience},
		{Issuer: "https://ag.example.com", Audience: testAudience, JWKSURL: "http://keys.example.com/jwks"},
		{Issuer: "https://ag.example.com", Audience: testAudience, Leeway: time.Hour},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
