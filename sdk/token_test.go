package sdk

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// A cached token is served without a request, per audience and scope list.
func TestAccessTokenCachedPerTarget(t *testing.T) {
	s := newAuthServer(t)
	c := secretClient(t, s)
	ctx := context.Background()
	a1, err := c.AccessToken(ctx, "https://files.example.com", "read:file")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := c.AccessToken(ctx, "https://files.example.com", "read:file")
	b, _ := c.AccessToken(ctx, "https://files.example.com", "write:file")
	d, _ := c.AccessToken(ctx, "https://other.example.com")
	if a1.AccessToken != a2.AccessToken || a1.AccessToken == b.AccessToken || b.AccessToken == d.AccessToken {
		t.Fatalf("tokens: %s %s %s %s", a1.AccessToken, a2.AccessToken, b.AccessToken, d.AccessToken)
	}
	if n := s.calls.Load(); n != 3 {
		t.Fatalf("token requests = %d, want 3 (one per target)", n)
	}
	f := s.form(0)
	if f.Get("grant_type") != "client_credentials" || f.Get("resource") != "https://files.example.com" || f.Get("scope") != "read:file" {
		t.Fatalf("form = %v", f)
	}
	if a1.Audience != "https://files.example.com" || a1.Scope != "read:file" {
		t.Fatalf("token = %v", a1)
	}
}

// The hit path must not allocate (the target: zero allocations).
func TestAccessTokenCachedAllocatesNothing(t *testing.T) {
	s := newAuthServer(t)
	c := secretClient(t, s)
	ctx := context.Background()
	if _, err := c.AccessToken(ctx, "https://files.example.com", "read:file"); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := c.AccessToken(ctx, "https://files.example.com", "read:file"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("cached AccessToken allocates %.1f times per call, want 0", allocs)
	}
}

// Shortly before expiry the token is fetched again; after a failed refresh the
// still-valid token is served; 4xx on refresh is returned.
func TestAccessTokenRefreshBeforeExpiry(t *testing.T) {
	s := newAuthServer(t)
	clk := newClock()
	c := secretClient(t, s, WithClock(clk.Now))
	ctx := context.Background()
	first, _ := c.AccessToken(ctx, "https://files.example.com")
	clk.Advance(800 * time.Second) // 900 s token: refreshed 60 s before expiry
	same, _ := c.AccessToken(ctx, "https://files.example.com")
	if same.AccessToken != first.AccessToken || s.calls.Load() != 1 {
		t.Fatalf("refreshed too early: %d calls", s.calls.Load())
	}
	clk.Advance(45 * time.Second) // 55 s left
	fresh, err := c.AccessToken(ctx, "https://files.example.com")
	if err != nil || fresh.AccessToken == first.AccessToken {
		t.Fatalf("not refreshed: %v %v", fresh, err)
	}

	// agentguard down: the cached token, still valid, is served.
	clk.Advance(850 * time.Second)
	s.answer = func(int64, url.Values, *http.Request) (int, any) { return 503, map[string]any{"error": "server_error"} }
	stale, err := c.AccessToken(ctx, "https://files.example.com")
	if err != nil || stale.AccessToken != fresh.AccessToken {
		t.Fatalf("stale token not served while agentguard is down: %v %v", stale, err)
	}
	// Refused (agent disabled): the error, not the stale token.
	s.answer = func(int64, url.Values, *http.Request) (int, any) {
		return 401, map[string]any{"error": "invalid_client", "error_description": "agent agt_test is disabled"}
	}
	if _, err := c.AccessToken(ctx, "https://files.example.com"); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("err = %v, want ErrInvalidClient", err)
	}
}

// Many concurrent callers of a missing token share one request.
func TestAccessTokenSingleFlight(t *testing.T) {
	s := newAuthServer(t)
	release := make(chan struct{})
	s.answer = func(n int64, f url.Values, _ *http.Request) (int, any) {
		<-release
		return 200, map[string]any{"access_token": fmt.Sprint("tok-", n), "token_type": "Bearer", "expires_in": 900}
	}
	c := secretClient(t, s)
	var wg sync.WaitGroup
	toks := make([]string, 50)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.AccessToken(context.Background(), "https://files.example.com")
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok.AccessToken
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the callers queue up on the one request
	close(release)
	wg.Wait()
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	for _, tok := range toks {
		if tok != "tok-1" {
			t.Fatalf("a caller got %q", tok)
		}
	}
}

// Retries: 5xx and network errors are retried, 4xx never.
func TestRetryPolicy(t *testing.T) {
	cases := []struct {
		name      string
		statuses  []int
		wantCalls int64
		wantErr   error
	}{
		{"503 then success", []int{503, 200}, 2, nil},
		{"500 three times then success", []int{500, 502, 504, 200}, 4, nil},
		{"always 503: gives up after 4", []int{503, 503, 503, 503, 503}, 4, ErrUnavailable},
		{"400 not retried", []int{400, 200}, 1, ErrNotAuthorized},
		{"401 not retried", []int{401, 200}, 1, ErrInvalidClient},
		{"429 not retried", []int{429, 200}, 1, ErrRateLimited},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newAuthServer(t)
			s.answer = func(n int64, f url.Values, _ *http.Request) (int, any) {
				switch st := tc.statuses[n-1]; st {
				case 200:
					return 200, map[string]any{"access_token": "ok", "token_type": "Bearer", "expires_in": 60}
				case 400:
					return 400, map[string]any{"error": "invalid_scope", "error_description": "agent agt_test is not granted write:file"}
				case 401:
					return 401, map[string]any{"error": "invalid_client", "error_description": "unknown client"}
				default:
					return st, map[string]any{"error": "server_error"}
				}
			}
			c := secretClient(t, s)
			_, err := c.AccessToken(context.Background(), "https://files.example.com")
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n := s.calls.Load(); n != tc.wantCalls {
				t.Fatalf("requests = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

// A network error (nothing listening) is retried and ends as ErrUnavailable.
func TestRetryNetworkError(t *testing.T) {
	s := newAuthServer(t)
	url := s.URL
	s.Close()
	c, err := New(Config{Issuer: url, ClientID: "agt_test", ClientSecret: "agcs_x-secret-value", AuthMethod: ClientSecretBasic, TokenEndpoint: url + "/oauth2/token"},
		WithRetry(3, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AccessToken(context.Background(), "https://files.example.com")
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Attempts != 3 || e.StatusCode != 0 {
		t.Fatalf("err = %#v", err)
	}
}

// The caller's context bounds the retries: a deadline ends the call while the
// server keeps failing, and the error says so.
func TestRetryBoundedByContext(t *testing.T) {
	s := newAuthServer(t)
	s.answer = func(int64, url.Values, *http.Request) (int, any) { return 503, map[string]any{"error": "server_error"} }
	c, _ := New(Config{Issuer: s.URL, ClientID: "agt_test", ClientSecret: "agcs_x-secret-value", AuthMethod: ClientSecretBasic},
		WithRetry(1000, 20*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := c.AccessToken(ctx, "https://files.example.com")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if n := s.calls.Load(); n >= 1000 {
		t.Fatalf("%d attempts: the context did not stop the retries", n)
	}
}

// Every OAuth error maps to its sentinel and keeps the server's words.
func TestTokenErrorsTyped(t *testing.T) {
	cases := []struct {
		status int
		body   map[string]any
		want   error
	}{
		{400, map[string]any{"error": "invalid_scope", "error_description": "not granted write:file"}, ErrNotAuthorized},
		{400, map[string]any{"error": "invalid_target", "error_description": "unknown resource"}, ErrNotAuthorized},
		{400, map[string]any{"error": "unauthorized_client", "error_description": "human agents only"}, ErrNotAuthorized},
		{400, map[string]any{"error": "invalid_grant", "error_description": "subject_token has expired"}, ErrInvalidGrant},
		{400, map[string]any{"error": "invalid_request", "error_description": "scope is repeated"}, ErrInvalidRequest},
		{400, map[string]any{"error": "unsupported_grant_type", "error_description": "nope"}, ErrInvalidRequest},
		{401, map[string]any{"error": "invalid_client", "error_description": "wrong secret"}, ErrInvalidClient},
		{404, map[string]any{"title": "Not Found", "detail": "no such thing"}, ErrNotFound},
		{403, map[string]any{"title": "Forbidden", "detail": "not in the outbound rule"}, ErrNotAuthorized},
		{429, map[string]any{"title": "Too Many Requests"}, ErrRateLimited},
		{200, map[string]any{"token_type": "Bearer"}, ErrProtocol},
		{200, map[string]any{"access_token": "x", "token_type": "mac"}, ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status, tc.body), func(t *testing.T) {
			s := newAuthServer(t)
			s.answer = func(int64, url.Values, *http.Request) (int, any) { return tc.status, tc.body }
			_, err := secretClient(t, s).AccessToken(context.Background(), "https://files.example.com")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != tc.status {
				t.Fatalf("err = %#v", err)
			}
			if d, _ := tc.body["error_description"].(string); d != "" && (e.Description != d || !strings.Contains(err.Error(), d)) {
				t.Fatalf("description lost: %q", err.Error())
			}
			if d, _ := tc.body["detail"].(string); d != "" && !strings.Contains(err.Error(), d) {
				t.Fatalf("detail lost: %q", err.Error())
			}
			if e.RequestID != "req_test" {
				t.Fatalf("request id = %q", e.RequestID)
			}
		})
	}
}

// Problem details with field errors are kept.
func TestProblemFieldErrors(t *testing.T) {
	s := newAuthServer(t)
	s.answer = func(int64, url.Values, *http.Request) (int, any) {
		return 400, map[string]any{"type": "https://agentguard.dev/problems/validation", "title": "Bad Request", "status": 400,
			"detail": "the request has invalid fields; see errors", "errors": []map[string]string{{"field": "scopes", "detail": "must not be empty"}}}
	}
	_, err := secretClient(t, s).AccessToken(context.Background(), "https://files.example.com")
	var e *Error
	if !errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0].Field != "scopes" || !strings.Contains(err.Error(), "scopes: must not be empty") {
		t.Fatalf("err = %v", err)
	}
}

// A secret never appears in an error, even if a server echoed it.
func TestErrorsNeverHoldSecrets(t *testing.T) {
	const secret = "agcs_test-secret-value-0123456789"
	s := newAuthServer(t)
	s.answer = func(int64, url.Values, *http.Request) (int, any) {
		return 401, map[string]any{"error": "invalid_client", "error_description": "secret " + secret + " is wrong"}
	}
	c := secretClient(t, s)
	_, err := c.AccessToken(context.Background(), "https://files.example.com")
	if err == nil || strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), secret) {
		t.Fatalf("secret leaked: %v", err)
	}
	if _, err := c.ExchangeToken(context.Background(), "user-token-abcdefgh", "https://files.example.com"); err == nil ||
		strings.Contains(fmt.Sprintf("%v %#v", err, err), secret) {
		t.Fatalf("secret leaked: %v", err)
	}
}

// client_secret_basic form-encodes both parts (RFC 6749 §2.3.1); client_secret_post
// puts them in the body.
func TestClientSecretMethods(t *testing.T) {
	s := newAuthServer(t)
	for _, m := range []AuthMethod{ClientSecretBasic, ClientSecretPost} {
		c, err := New(Config{Issuer: s.URL, ClientID: "agt:1", ClientSecret: "se cret+/=", AuthMethod: m})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AccessToken(context.Background(), "https://x.example.com"); err != nil {
			t.Fatal(err)
		}
	}
	auth := s.header(0).Get("Authorization")
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
	if string(raw) != url.QueryEscape("agt:1")+":"+url.QueryEscape("se cret+/=") {
		t.Fatalf("basic credentials = %q", raw)
	}
	if f := s.form(1); f.Get("client_id") != "agt:1" || f.Get("client_secret") != "se cret+/=" || s.header(1).Get("Authorization") != "" {
		t.Fatalf("post form = %v", f)
	}
}

// private_key_jwt: a fresh, verifiable assertion per request with the agent as iss
// and sub, the token endpoint as aud, a short exp and a unique jti.
func TestPrivateKeyJWTAssertion(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := newAuthServer(t)
	c, err := New(Config{Issuer: s.URL, ClientID: "agt_pk", PrivateKey: key, KeyID: "k1", AuthMethod: PrivateKeyJWT})
	if err != nil {
		t.Fatal(err)
	}
	c.AccessToken(context.Background(), "https://a.example.com")
	c.AccessToken(context.Background(), "https://b.example.com")
	seen := map[string]bool{}
	for i := range 2 {
		f := s.form(i)
		if f.Get("client_assertion_type") != assertionTypeJWT {
			t.Fatalf("form = %v", f)
		}
		tok, err := jwt.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Headers[0].KeyID != "k1" {
			t.Fatalf("kid = %q", tok.Headers[0].KeyID)
		}
		var cl jwt.Claims
		if err := tok.Claims(&key.PublicKey, &cl); err != nil {
			t.Fatal(err)
		}
		if cl.Issuer != "agt_pk" || cl.Subject != "agt_pk" || !cl.Audience.Contains(s.URL+"/oauth2/token") || cl.ID == "" || seen[cl.ID] {
			t.Fatalf("claims = %+v", cl)
		}
		if life := cl.Expiry.Time().Sub(cl.IssuedAt.Time()); life <= 0 || life > 5*time.Minute {
			t.Fatalf("assertion lifetime %v", life)
		}
		seen[cl.ID] = true
	}
}

// Without keyId, the kid is the key's RFC 7638 thumbprint (agentguard's default).
func TestPrivateKeyJWTDefaultKid(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := newAuthServer(t)
	c, _ := New(Config{Issuer: s.URL, ClientID: "agt_pk", PrivateKey: key, AuthMethod: PrivateKeyJWT})
	c.AccessToken(context.Background(), "https://a.example.com")
	tok, _ := jwt.ParseSigned(s.form(0).Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	tp, _ := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if tok.Headers[0].KeyID != base64.RawURLEncoding.EncodeToString(tp) {
		t.Fatalf("kid = %q", tok.Headers[0].KeyID)
	}
}

// The federated method reads the workload token file before every request, so a
// rotated token is used, and sends the jwt-bearer grant without client auth.
func TestFederatedTokenFileReread(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("workload-token-1\n"), 0o600)
	s := newAuthServer(t)
	c, err := New(Config{Issuer: s.URL, TokenFile: file, AuthMethod: FederatedToken})
	if err != nil {
		t.Fatal(err)
	}
	c.AccessToken(context.Background(), "https://a.example.com")
	os.WriteFile(file, []byte("workload-token-2"), 0o600)
	c.AccessToken(context.Background(), "https://b.example.com")
	for i, want := range []string{"workload-token-1", "workload-token-2"} {
		f := s.form(i)
		if f.Get("grant_type") != grantJWTBearer || f.Get("assertion") != want || f.Get("client_secret") != "" || s.header(i).Get("Authorization") != "" {
			t.Fatalf("request %d: %v", i, f)
		}
	}
	// A token exchange needs client authentication.
	if _, err := c.ExchangeToken(context.Background(), "user", "https://a.example.com"); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("err = %v", err)
	}
}

// Without tokenEndpoint the endpoint is discovered once; a metadata document naming
// another issuer is refused (RFC 8414 §3.3).
func TestDiscovery(t *testing.T) {
	s := newAuthServer(t)
	c := secretClient(t, s)
	md, err := c.Metadata(context.Background())
	if err != nil || md.TokenEndpoint != s.URL+"/oauth2/token" {
		t.Fatalf("metadata %+v %v", md, err)
	}
	c.AccessToken(context.Background(), "https://a.example.com")
	if s.calls.Load() != 1 {
		t.Fatal("token endpoint not used")
	}

	evil := newAuthServer(t)
	evil.issuer = "https://evil.example.com"
	_, err = secretClient(t, evil).AccessToken(context.Background(), "https://a.example.com")
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "evil.example.com") {
		t.Fatalf("err = %v", err)
	}
	if evil.calls.Load() != 0 {
		t.Fatal("a secret was sent to a token endpoint of another issuer")
	}
}

// The default target (Config.Scope) is used by AccessToken(ctx, "").
func TestDefaultTarget(t *testing.T) {
	s := newAuthServer(t)
	c, _ := New(Config{Issuer: s.URL, ClientID: "a", ClientSecret: "s", AuthMethod: ClientSecretPost, Scope: "https://files.example.com|read:file https://files.example.com|write:file"})
	tok, err := c.AccessToken(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if f := s.form(0); f.Get("resource") != "https://files.example.com" || f.Get("scope") != "read:file write:file" || tok.Audience != "https://files.example.com" {
		t.Fatalf("form = %v", f)
	}
	c.AccessToken(context.Background(), "", "agentguard:credentials")
	if f := s.form(1); f.Get("resource") != s.URL {
		t.Fatalf("form = %v", f)
	}
}

// Printing a Token or APIKey never shows its value.
func TestTokenAndKeyPrintRedacted(t *testing.T) {
	tok := Token{AccessToken: "eyJsecret-token", Audience: "https://a", Scope: "read"}
	key := APIKey{Identifier: "openai", Value: "sk-secret-key", Version: 2}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprintf("%v %+v %#v", key, key, key),
		fmt.Sprint([]Token{tok}), fmt.Sprintf("%+v", struct{ T Token }{tok})} {
		if strings.Contains(s, "secret") {
			t.Fatalf("printed a secret: %s", s)
		}
	}
}

func BenchmarkAccessTokenCached(b *testing.B) {
	s := newAuthServer(b)
	c := secretClient(b, s)
	ctx := context.Background()
	if _, err := c.AccessToken(ctx, "https://files.example.com", "read:file"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.AccessToken(ctx, "https://files.example.com", "read:file"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessTokenCachedParallel(b *testing.B) {
	s := newAuthServer(b)
	c := secretClient(b, s)
	ctx := context.Background()
	c.AccessToken(ctx, "https://files.example.com", "read:file")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.AccessToken(ctx, "https://files.example.com", "read:file")
		}
	})
}
