package oauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentguard/agentguard/internal/oauth"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// An independent client library (x/oauth2) gets tokens with both secret methods and
// both target forms, and every token verifies independently against the JWKS.
func TestClientCredentialsWithXOAuth2(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			resourceServer(t, s, apiAudience, 0, "read", "write")
			id, sec := s.Agent(t, "xoauth2")
			grantScopes(t, s, id, apiAudience, "read", "write")

			tests := []struct {
				name      string
				style     oauth2.AuthStyle
				scopes    []string
				params    url.Values
				wantAud   string
				wantScope string
			}{
				{"basic, no target: the issuer's functional scope", oauth2.AuthStyleInHeader, nil, nil, s.Config.Issuer, "agentguard:credentials"},
				{"post, no target", oauth2.AuthStyleInParams, nil, nil, s.Config.Issuer, "agentguard:credentials"},
				{"basic, resource parameter, one scope", oauth2.AuthStyleInHeader, []string{"read"}, url.Values{"resource": {apiAudience}}, apiAudience, "read"},
				{"post, resource parameter, every granted scope", oauth2.AuthStyleInParams, nil, url.Values{"resource": {apiAudience}}, apiAudience, "read write"},
				{"basic, compat audience|scope form", oauth2.AuthStyleInHeader, []string{apiAudience + "|write"}, nil, apiAudience, "write"},
				{"post, compat form, two scopes", oauth2.AuthStyleInParams, []string{apiAudience + "|write", apiAudience + "|read"}, nil, apiAudience, "read write"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					cfg := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: s.URL + "/oauth2/token",
						Scopes: tt.scopes, EndpointParams: tt.params, AuthStyle: tt.style}
					tok, err := cfg.Token(background)
					if err != nil {
						t.Fatalf("x/oauth2: %v", err)
					}
					if tok.TokenType != "Bearer" {
						t.Errorf("token_type = %q, want Bearer", tok.TokenType)
					}
					if got, _ := tok.Extra("scope").(string); got != tt.wantScope {
						t.Errorf("response scope = %q, want %q", got, tt.wantScope)
					}
					verifyIndependently(t, s, tok.AccessToken, id, tt.wantAud, tt.wantScope, 15*time.Minute)
				})
			}
		})
	}
}

// private_key_jwt with keys registered as JWK (EC) and PEM (RSA), and both audiences
// RFC 7523 allows (the issuer, the token endpoint).
func TestClientCredentialsWithPrivateKeyJWT(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) { testPrivateKeyJWT(t, d) })
	}
}

func testPrivateKeyJWT(t *testing.T, d sqlstore.Dialect) {
	s := servertest.Start(t, servertest.Options{Dialect: d})
	resourceServer(t, s, apiAudience, 0, "read")

	ecID, _ := s.Agent(t, "ec-jwk")
	grantScopes(t, s, ecID, apiAudience, "read")
	ecKey := registerJWK(t, s, ecID, newES256(t), jose.ES256)

	rsaID, _ := s.Agent(t, "rsa-pem")
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(rsaPriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	var reg struct{ KID, Alg string }
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if code := s.Do(t, "POST", "/api/v1/agents/"+rsaID+"/keys", map[string]any{"pem": pemText}, &reg); code != http.StatusCreated || reg.Alg != "RS256" {
		t.Fatalf("register PEM: HTTP %d alg %q", code, reg.Alg)
	}
	rsaKey := assertionKey{priv: rsaPriv, alg: jose.RS256, kid: reg.KID}

	tokenURL := s.URL + "/oauth2/token"
	tests := []struct {
		name    string
		id      string
		key     assertionKey
		aud     string
		extra   url.Values
		wantAud string
		scope   string
	}{
		{"ES256 JWK, aud = issuer", ecID, ecKey, s.Config.Issuer, nil, s.Config.Issuer, "agentguard:credentials"},
		{"ES256 JWK, aud = token endpoint, resource", ecID, ecKey, tokenURL, url.Values{"resource": {apiAudience}}, apiAudience, "read"},
		{"RS256 PEM, aud = issuer", rsaID, rsaKey, s.Config.Issuer, nil, s.Config.Issuer, "agentguard:credentials"},
		{"RS256 PEM, aud = token endpoint", rsaID, rsaKey, tokenURL, nil, s.Config.Issuer, "agentguard:credentials"},
		{"RS256 PEM, client_id given as well", rsaID, rsaKey, tokenURL, url.Values{"client_id": {rsaID}}, s.Config.Issuer, "agentguard:credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.key.assertion(t, tt.id, tt.aud, s.Clock.Now(), nil)
			tr := mustToken(t, s, call{form: assertionForm(a, tt.extra)})
			if tr.Scope != tt.scope || tr.TokenType != "Bearer" {
				t.Errorf("scope %q token_type %q, want %q Bearer", tr.Scope, tr.TokenType, tt.scope)
			}
			verifyIndependently(t, s, tr.AccessToken, tt.id, tt.wantAud, tt.scope, 15*time.Minute)
		})
	}
}

// A resource server's token_lifetime sets expires_in and exp - iat; no resource
// means the 15-minute default.
func TestTokenLifetimes(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	resourceServer(t, s, apiAudience, 120, "read")
	resourceServer(t, s, otherAudience, 7200, "x")
	id, sec := s.Agent(t, "lifetimes")
	grantScopes(t, s, id, apiAudience, "read")
	grantScopes(t, s, id, otherAudience, "x")
	tests := []struct {
		name     string
		extra    url.Values
		aud      string
		scope    string
		lifetime time.Duration
	}{
		{"default (issuer)", nil, s.Config.Issuer, "agentguard:credentials", 15 * time.Minute},
		{"two minutes", url.Values{"resource": {apiAudience}}, apiAudience, "read", 2 * time.Minute},
		{"two hours, compat form", url.Values{"scope": {otherAudience + "|x"}}, otherAudience, "x", 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := secretToken(t, s, id, sec, tt.extra)
			if time.Duration(tr.ExpiresIn)*time.Second != tt.lifetime {
				t.Errorf("expires_in = %d, want %s", tr.ExpiresIn, tt.lifetime)
			}
			verifyIndependently(t, s, tr.AccessToken, id, tt.aud, tt.scope, tt.lifetime)
		})
	}
}

// Every endpoint, grant, authentication method and algorithm the discovery documents
// list works; a document that promises what the server cannot do misleads clients.
func TestDiscoveryListsOnlyRealCapabilities(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, sec := s.Agent(t, "discovery")
	var docs [2]map[string]any
	for i, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		resp, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: HTTP %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(resp.Body).Decode(&docs[i]); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got, want := mustJSON(t, docs[0]), mustJSON(t, docs[1]); got != want {
		t.Errorf("the two discovery documents differ:\n%s\n%s", got, want)
	}
	doc := docs[0]
	str := func(k string) string { v, _ := doc[k].(string); return v }
	list := func(k string) []string {
		var out []string
		for _, v := range doc[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if str("issuer") != s.Config.Issuer {
		t.Errorf("issuer = %q, want %q", str("issuer"), s.Config.Issuer)
	}

	t.Run("endpoints answer", func(t *testing.T) {
		for k, v := range doc {
			u, ok := v.(string)
			if !ok || !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
				continue
			}
			if !strings.HasPrefix(u, s.Config.Issuer+"/") {
				t.Errorf("%s = %q is not under the issuer", k, u)
				continue
			}
			method := http.MethodPost
			if k == "jwks_uri" || k == "authorization_endpoint" || k == "userinfo_endpoint" || k == "end_session_endpoint" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("%s %s (%s): HTTP %d", method, u, k, resp.StatusCode)
			}
		}
	})

	t.Run("grants are recognised", func(t *testing.T) {
		grants := list("grant_types_supported")
		if !slices.Contains(grants, "client_credentials") || !slices.Contains(grants, "urn:ietf:params:oauth:grant-type:jwt-bearer") {
			t.Errorf("grant_types_supported = %v lacks client_credentials or jwt-bearer", grants)
		}
		for _, g := range grants {
			r := send(t, s, call{form: url.Values{"grant_type": {g}}})
			if e := r.err(t); e.Code == "unsupported_grant_type" || !isRFCCode(e.Code) {
				t.Errorf("advertised grant %s answered %s: %s", g, e.Code, e.Description)
			}
		}
	})

	t.Run("auth methods work at the token endpoint", func(t *testing.T) {
		methods := list("token_endpoint_auth_methods_supported")
		key := registerJWK(t, s, id, newES256(t), jose.ES256)
		for _, m := range methods {
			c := call{form: url.Values{"grant_type": {"client_credentials"}}}
			switch m {
			case "client_secret_basic":
				c.basicID, c.basicSecret = id, sec
			case "client_secret_post":
				c.form.Set("client_id", id)
				c.form.Set("client_secret", sec)
			case "private_key_jwt":
				c.form = assertionForm(key.assertion(t, id, s.Config.Issuer, s.Clock.Now(), nil), nil)
			case "none":
				// A public client names itself: authentication passes, the made-up
				// refresh token does not.
				var cl struct{ ID string }
				s.Do(t, "POST", "/api/v1/clients", map[string]any{"name": "spa", "type": "spa", "redirect_uris": []string{"https://spa.example/cb"}}, &cl)
				r := send(t, s, call{form: url.Values{"grant_type": {"refresh_token"}, "client_id": {cl.ID}, "refresh_token": {"agrt_made-up"}}})
				if e := r.err(t); e.Code != "invalid_grant" {
					t.Errorf("public client (none): %s %s, want invalid_grant past authentication", e.Code, e.Description)
				}
				continue
			default:
				t.Errorf("advertised auth method %q is not tested here", m)
				continue
			}
			mustToken(t, s, c)
		}
		// Public clients may revoke their own tokens but not introspect.
		if got := list("revocation_endpoint_auth_methods_supported"); !slices.Equal(got, methods) {
			t.Errorf("revocation_endpoint_auth_methods_supported = %v, want %v", got, methods)
		}
		authenticated := slices.DeleteFunc(slices.Clone(methods), func(m string) bool { return m == "none" })
		if got := list("introspection_endpoint_auth_methods_supported"); !slices.Equal(got, authenticated) {
			t.Errorf("introspection_endpoint_auth_methods_supported = %v, want %v", got, authenticated)
		}
	})

	t.Run("assertion algorithms verify", func(t *testing.T) {
		for _, alg := range list("token_endpoint_auth_signing_alg_values_supported") {
			var priv crypto.Signer
			var err error
			switch jose.SignatureAlgorithm(alg) {
			case jose.ES256:
				priv = newES256(t)
			case jose.ES384:
				priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			case jose.RS256, jose.PS256:
				priv, err = rsa.GenerateKey(rand.Reader, 2048)
			case jose.EdDSA:
				_, priv, err = ed25519.GenerateKey(rand.Reader)
			default:
				t.Errorf("advertised assertion algorithm %q is not tested here", alg)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			aid, _ := s.Agent(t, "alg-"+strings.ToLower(alg))
			k := registerJWK(t, s, aid, priv, jose.SignatureAlgorithm(alg))
			mustToken(t, s, call{form: assertionForm(k.assertion(t, aid, s.Config.Issuer, s.Clock.Now(), nil), nil)})
		}
	})

	t.Run("access token algorithm is the JWKS's", func(t *testing.T) {
		algs := list("access_token_signing_alg_values_supported")
		if !slices.Equal(algs, []string{"ES256"}) {
			t.Errorf("access_token_signing_alg_values_supported = %v, want [ES256]", algs)
		}
		tr := secretToken(t, s, id, sec, nil)
		tok, err := jwt.ParseSigned(tr.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		set := fetchJWKS(t, s)
		if keys := set.Key(tok.Headers[0].KeyID); len(keys) != 1 || !slices.Contains(algs, keys[0].Algorithm) {
			t.Errorf("the signing key is not published with an advertised algorithm: %+v", keys)
		}
	})

	t.Run("scopes are defined by the built-in resource server or are users'", func(t *testing.T) {
		for _, sc := range list("scopes_supported") {
			switch {
			case sc == "agentguard:admin":
				continue // granted only by an admin, so asking for it is invalid_scope
			case slices.Contains(oauth.UserScopes, sc):
				continue // what a client asks for a user at /oauth2/authorize (internal/signin tests)
			}
			secretToken(t, s, id, sec, url.Values{"scope": {sc}})
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
