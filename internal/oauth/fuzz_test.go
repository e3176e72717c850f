package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/token"
)

const testIssuer = "https://agentguard.test"

// rfcErrorCodes are the codes the token endpoint may answer (RFC 6749 §5.2, RFC 8707).
var rfcErrorCodes = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope", "invalid_target", "server_error"}

// fixedNow is the tests' clock: fuzzing must not depend on the wall clock.
var fixedNow = time.Unix(1_800_000_000, 0)

// testServer is an authorization server over a real SQLite store and local KMS, with
// one active agent that has a client secret and a registered ES256 key.
type testServer struct {
	*Server
	agentID string
	secret  string
	key     *ecdsa.PrivateKey
	kid     string
}

func newTestServer(tb testing.TB) *testServer {
	tb.Helper()
	ctx := context.Background()
	// storetest imports this package (its conformance suite), so open SQLite directly.
	st, err := sqlstore.Open(ctx, "", tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	w, err := kms.OpenLocal(filepath.Join(tb.TempDir(), kms.LocalKeyFile))
	if err != nil {
		tb.Fatal(err)
	}
	now := func() time.Time { return fixedNow }
	kr, err := token.NewKeyring(ctx, st, kms.NewEnvelope(w), token.KeyringConfig{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Issuer: &token.Issuer{URL: testIssuer, Keyring: kr, Store: st, Now: now},
		Agents: st, Grants: st, Resources: st, Replay: st, Audit: audit.Discard{}, Now: now}
	s.Init(nil)

	ts := &testServer{Server: s, agentID: secret.NewID("agt"), secret: secret.New(agent.SecretPrefix)}
	a := agent.Agent{ID: ts.agentID, Name: "fuzz", Type: agent.TypeAutonomous, AccessIdentity: agent.IdentityMachine,
		Audience: agent.DefaultAudience(ts.agentID), Status: agent.StatusActive, CreatedAt: fixedNow, UpdatedAt: fixedNow}
	if err := st.CreateAgent(ctx, a); err != nil {
		tb.Fatal(err)
	}
	if err := st.CreateSecret(ctx, agent.Secret{ID: secret.NewID("sec"), AgentID: a.ID, Hash: secret.Hash(ts.secret), CreatedAt: fixedNow}); err != nil {
		tb.Fatal(err)
	}
	if ts.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	jwkJSON, _ := json.Marshal(jose.JSONWebKey{Key: ts.key.Public(), Algorithm: "ES256", Use: "sig"})
	k, err := agent.ParsePublicKey(jwkJSON, "", "", "")
	if err != nil {
		tb.Fatal(err)
	}
	k.AgentID, k.CreatedAt, ts.kid = a.ID, fixedNow, k.KID
	if err := st.CreateKey(ctx, k); err != nil {
		tb.Fatal(err)
	}
	return ts
}

// assertion signs a client assertion for the test agent with its registered key.
func (ts *testServer) assertion(tb testing.TB, jti string) string {
	tb.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ts.key, KeyID: ts.kid}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: ts.agentID, Subject: ts.agentID, Audience: jwt.Audience{testIssuer},
		ID: jti, Expiry: jwt.NewNumericDate(fixedNow.Add(time.Minute))}).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// FuzzTokenForm: any body through the token endpoint's parsing (form, repeated
// parameters, grant-independent fields, audience and scope) never panics, and every
// refusal carries an RFC error code and a description.
func FuzzTokenForm(f *testing.F) {
	s := &Server{Issuer: &token.Issuer{URL: testIssuer}}
	for _, seed := range []string{
		"grant_type=client_credentials",
		"grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com&scope=read+write",
		"grant_type=client_credentials&scope=https%3A%2F%2Fapi.example.com%7Cread+https%3A%2F%2Fapi.example.com%7Cwrite",
		"grant_type=client_credentials&scope=https%3A%2F%2Fa.example%7Cx+https%3A%2F%2Fb.example%7Cy",
		"grant_type=client_credentials&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c",
		"grant_type=client_credentials&scope=a&scope=b",
		"grant_type=client_credentials&scope=%7Cread",
		"grant_type=client_credentials&resource=not+a+uri",
		"grant_type=client_credentials&scope=%zz",
		"scope=read",
		"",
		"a=1;b=2",
	} {
		f.Add(seed, "application/x-www-form-urlencoded", "")
	}
	f.Add("grant_type=client_credentials", "application/json", "")
	f.Add("grant_type=client_credentials", "application/x-www-form-urlencoded; charset=utf-8", "scope=x")
	f.Fuzz(func(t *testing.T, body, contentType, query string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.URL.RawQuery = query
		check := func(e *Error) {
			if e == nil {
				return
			}
			if !slices.Contains(rfcErrorCodes, e.Code) || e.Description == "" {
				t.Fatalf("error %q (%q) is not an RFC error with a description", e.Code, e.Description)
			}
			if e.status != http.StatusBadRequest {
				t.Fatalf("parsing error %s has status %d, want 400", e.Code, e.status)
			}
		}
		form, e := parseForm(httptest.NewRecorder(), r)
		check(e)
		if e != nil {
			return
		}
		if query != "" {
			t.Fatalf("query %q accepted", query)
		}
		req, e := parseTokenRequest(r, form)
		check(e)
		if e != nil {
			return
		}
		aud, scopes, e := s.requestedTarget(req)
		check(e)
		if e != nil {
			return
		}
		if aud == "" || len(scopes) == 0 && aud == testIssuer {
			t.Fatalf("target aud=%q scopes=%v", aud, scopes)
		}
		for _, sc := range scopes {
			if sc == "" || strings.ContainsFunc(sc, unicode.IsSpace) {
				t.Fatalf("scope %q survived parsing", sc)
			}
		}
	})
}

// FuzzClientAssertion: no string authenticates as a client assertion, through the
// real store and replay table. The seeds include a correctly signed assertion that is
// used once before fuzzing, so its replays must fail too.
func FuzzClientAssertion(f *testing.F) {
	ts := newTestServer(f)
	ctx := context.Background()
	valid := ts.assertion(f, "seed-jti")
	if _, e := ts.authenticateAssertion(ctx, ts.agentID, valid); e != nil {
		f.Fatalf("the valid seed does not authenticate: %v", e)
	}
	f.Add(ts.agentID, valid)
	f.Add("", valid)
	f.Add("agt_other", valid)
	f.Add(ts.agentID, "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4Iiwic3ViIjoieCJ9.")
	f.Add(ts.agentID, "a.b.c")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, clientID, assertion string) {
		c, e := ts.authenticateAssertion(ctx, clientID, assertion)
		if e == nil {
			t.Fatalf("assertion authenticated %s: %q", c.Agent.ID, assertion)
		}
		if e.Code != "invalid_client" || e.Description == "" {
			t.Fatalf("refusal %q (%q), want invalid_client with a description", e.Code, e.Description)
		}
		if strings.Contains(e.Description, assertion) && len(assertion) > 16 {
			t.Fatalf("the description repeats the assertion: %q", e.Description)
		}
	})
}

// The form parser refuses what RFC 6749 §3.2 forbids before anything else runs.
func TestParseFormRefusals(t *testing.T) {
	tests := []struct {
		name, body, contentType, query, want string
	}{
		{"query string", "grant_type=client_credentials", "application/x-www-form-urlencoded", "scope=x", "not the URL query"},
		{"json", `{}`, "application/json", "", "x-www-form-urlencoded"},
		{"repeated", "a=1&a=2", "application/x-www-form-urlencoded", "", "a is repeated"},
		{"resource 17 times", strings.Repeat("resource=x&", 17), "application/x-www-form-urlencoded", "", "more than 16"},
		{"over 64 KiB", "scope=" + strings.Repeat("a", 64<<10), "application/x-www-form-urlencoded", "", "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token?"+tt.query, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			_, e := parseForm(httptest.NewRecorder(), r)
			if e == nil || e.Code != "invalid_request" || !strings.Contains(e.Description, tt.want) {
				t.Errorf("parseForm = %v, want invalid_request mentioning %q", e, tt.want)
			}
		})
	}
	// resource may repeat (RFC 8707), up to 16 times.
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(url.Values{"resource": {"https://a.example", "https://b.example"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, e := parseForm(httptest.NewRecorder(), r); e != nil {
		t.Errorf("repeated resource refused: %v", e)
	}
}
