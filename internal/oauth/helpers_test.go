package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// The end-to-end tests talk to a real server over loopback HTTP, through the same
// requests a client library or an agent would send.

const (
	apiAudience   = "https://api.example.com"
	otherAudience = "https://other.example.com"
	formType      = "application/x-www-form-urlencoded"
)

// rfcCodes are every error code the token, introspection and revocation endpoints
// may answer with (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2).
var rfcCodes = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope", "invalid_target", "unsupported_token_type", "server_error"}

type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

// resourceServer registers a resource server with the scopes and token lifetime
// (seconds; 0 keeps the default).
func resourceServer(t *testing.T, s *servertest.Server, audience string, lifetime int64, scopes ...string) {
	t.Helper()
	sc := make([]map[string]string, 0, len(scopes))
	for _, n := range scopes {
		sc = append(sc, map[string]string{"name": n, "description": "test scope " + n})
	}
	body := map[string]any{"name": "rs " + audience, "audience": audience, "scopes": sc}
	if lifetime > 0 {
		body["token_lifetime"] = lifetime
	}
	if code := s.Do(t, "POST", "/api/v1/resource-servers", body, nil); code != http.StatusCreated {
		t.Fatalf("create resource server %s: HTTP %d", audience, code)
	}
}

func grantScopes(t *testing.T, s *servertest.Server, agentID, audience string, scopes ...string) {
	t.Helper()
	if code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/grants", map[string]any{"audience": audience, "scopes": scopes}, nil); code != http.StatusCreated {
		t.Fatalf("grant %v on %s to %s: HTTP %d", scopes, audience, agentID, code)
	}
}

// call is one raw request to an OAuth endpoint.
type call struct {
	path        string // default /oauth2/token
	form        url.Values
	rawBody     string // overrides form
	basicID     string
	basicSecret string
	contentType string // default form
	query       string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) err(t *testing.T) oauthError {
	t.Helper()
	var e oauthError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("HTTP %d body %q is not an OAuth error: %v", r.status, r.body, err)
	}
	return e
}

func send(t *testing.T, s *servertest.Server, c call) reply {
	t.Helper()
	path := c.path
	if path == "" {
		path = "/oauth2/token"
	}
	if c.query != "" {
		path += "?" + c.query
	}
	body := c.rawBody
	if body == "" {
		body = c.form.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ct := c.contentType
	if ct == "" {
		ct = formType
	}
	req.Header.Set("Content-Type", ct)
	if c.basicID != "" {
		req.SetBasicAuth(url.QueryEscape(c.basicID), url.QueryEscape(c.basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

type tokenReply struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// mustToken sends a token request that must succeed.
func mustToken(t *testing.T, s *servertest.Server, c call) tokenReply {
	t.Helper()
	r := send(t, s, c)
	if r.status != http.StatusOK {
		t.Fatalf("token request: HTTP %d %s", r.status, r.body)
	}
	var tr tokenReply
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", r.body, err)
	}
	return tr
}

// secretToken gets a client_credentials token with client_secret_basic.
func secretToken(t *testing.T, s *servertest.Server, id, sec string, extra url.Values) tokenReply {
	t.Helper()
	f := url.Values{"grant_type": {"client_credentials"}}
	for k, v := range extra {
		f[k] = v
	}
	return mustToken(t, s, call{form: f, basicID: id, basicSecret: sec})
}

// introspect asks s about tok as the agent id/sec.
func introspect(t *testing.T, s *servertest.Server, id, sec, tok string) map[string]any {
	t.Helper()
	r := send(t, s, call{path: "/oauth2/introspect", form: url.Values{"token": {tok}}, basicID: id, basicSecret: sec})
	if r.status != http.StatusOK {
		t.Fatalf("introspect: HTTP %d %s", r.status, r.body)
	}
	var out map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// accessClaims are the RFC 9068 claims the independent verifier reads.
type accessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// fetchJWKS reads the server's published key set.
func fetchJWKS(t *testing.T, s *servertest.Server) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(s.URL + "/oauth2/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /oauth2/jwks: HTTP %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("JWKS publishes private key material for kid %s", k.KeyID)
		}
	}
	return set
}

// verifyIndependently checks an access token the way a resource server would, with
// go-jose and the published JWKS only: header typ/alg/kid, signature, and the RFC 9068
// claims. It returns the claims and the kid.
func verifyIndependently(t *testing.T, s *servertest.Server, raw, wantSub, wantAud, wantScope string, lifetime time.Duration) (accessClaims, string) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("access token is not an ES256 JWS: %v", err)
	}
	if len(tok.Headers) != 1 {
		t.Fatalf("access token has %d signatures", len(tok.Headers))
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		t.Errorf("header typ = %q, want at+jwt (RFC 9068 §2.1)", typ)
	}
	if h.Algorithm != string(jose.ES256) {
		t.Errorf("header alg = %q, want ES256", h.Algorithm)
	}
	if h.KeyID == "" {
		t.Fatal("header has no kid")
	}
	set := fetchJWKS(t, s)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s is published %d times in the JWKS", h.KeyID, len(keys))
	}
	if keys[0].Algorithm != string(jose.ES256) || keys[0].Use != "sig" {
		t.Errorf("JWKS key alg=%q use=%q, want ES256 sig", keys[0].Algorithm, keys[0].Use)
	}
	var c accessClaims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("signature does not verify with the published key: %v", err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.Config.Issuer, Subject: wantSub, AnyAudience: jwt.Audience{wantAud}, Time: s.Clock.Now()}, 0); err != nil {
		t.Errorf("claims: %v (got iss=%q sub=%q aud=%v)", err, c.Issuer, c.Subject, c.Audience)
	}
	if len(c.Audience) != 1 {
		t.Errorf("aud = %v, want exactly [%s]", c.Audience, wantAud)
	}
	if c.ClientID != wantSub {
		t.Errorf("client_id = %q, want %q", c.ClientID, wantSub)
	}
	if c.Scope != wantScope {
		t.Errorf("scope = %q, want %q", c.Scope, wantScope)
	}
	if c.ID == "" || c.Expiry == nil || c.IssuedAt == nil || c.NotBefore == nil {
		t.Fatalf("jti/exp/iat/nbf missing: %+v", c.Claims)
	}
	if got := c.Expiry.Time().Sub(c.IssuedAt.Time()); got != lifetime {
		t.Errorf("exp - iat = %s, want %s", got, lifetime)
	}
	if !c.NotBefore.Time().Equal(c.IssuedAt.Time()) {
		t.Errorf("nbf %v != iat %v", c.NotBefore.Time(), c.IssuedAt.Time())
	}
	return c, h.KeyID
}

// assertionKey is a private_key_jwt key pair registered for an agent.
type assertionKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newES256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// registerJWK registers priv's public key as a JWK and returns it with the kid the
// server assigned.
func registerJWK(t *testing.T, s *servertest.Server, agentID string, priv crypto.Signer, alg jose.SignatureAlgorithm) assertionKey {
	t.Helper()
	body := map[string]any{"jwk": jose.JSONWebKey{Key: priv.Public(), Algorithm: string(alg), Use: "sig"}}
	var out struct{ KID, Alg string }
	if code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/keys", body, &out); code != http.StatusCreated {
		t.Fatalf("register %s key: HTTP %d", alg, code)
	}
	if out.KID == "" || out.Alg != string(alg) {
		t.Fatalf("registered key kid=%q alg=%q, want alg %s", out.KID, out.Alg, alg)
	}
	return assertionKey{priv: priv, alg: alg, kid: out.KID}
}

// assertion builds an RFC 7523 client assertion; mutate may change the claims.
func (k assertionKey) assertion(t testing.TB, clientID, aud string, now time.Time, mutate func(*jwt.Claims)) string {
	t.Helper()
	c := jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud}, ID: randomID(t),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	if mutate != nil {
		mutate(&c)
	}
	return signJWT(t, k.priv, k.alg, k.kid, c)
}

func signJWT(t testing.TB, priv crypto.Signer, alg jose.SignatureAlgorithm, kid string, claims any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func randomID(t testing.TB) string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// assertionForm is a client_credentials request authenticated by a client assertion.
func assertionForm(assertion string, extra url.Values) url.Values {
	f := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// noLeak fails if any of the secret values appears in body.
func noLeak(t *testing.T, body []byte, secrets []string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(string(body), sec) {
			t.Errorf("response body %q contains a secret or token", body)
		}
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func isRFCCode(code string) bool { return slices.Contains(rfcCodes, code) }

var background = context.Background()
