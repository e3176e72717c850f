package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// introVerifier verifies with introspection against the test issuer, on a clock
// the test moves.
func introVerifier(t *testing.T, is *issuer, clock *time.Time, edit func(*Introspection)) *Verifier {
	t.Helper()
	in := &Introspection{ClientID: introClient, ClientSecret: introSecret}
	if edit != nil {
		edit(in)
	}
	return is.verifier(t, func(c *Config) {
		c.Introspection = in
		c.Now = func() time.Time { return *clock }
	})
}

// With introspection a token revoked at agentguard is refused once the remembered
// "active" answer is older than CacheFor; agentguard is asked once per token per
// CacheFor, not per request.
func TestIntrospectionRefusesRevokedTokens(t *testing.T) {
	is := newIssuer(t)
	clock := testNow
	v := introVerifier(t, is, &clock, func(in *Introspection) { in.CacheFor = 10 * time.Second })
	tok := is.sign(t, "es256", is.claims(nil), nil)

	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("active token: %v", err)
		}
	}
	if n := is.introCalls.Load(); n != 1 {
		t.Fatalf("introspected %d times for three requests within CacheFor, want 1", n)
	}

	is.revoked.Store(tok, true)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("within CacheFor the remembered answer stands: %v", err)
	}
	clock = clock.Add(11 * time.Second)
	_, err := v.Verify(context.Background(), tok)
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != "revoked" || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked token after CacheFor: %v", err)
	}
	// The inactive answer stands until the token expires: no further call.
	calls := is.introCalls.Load()
	clock = clock.Add(time.Minute)
	if _, err := v.Verify(context.Background(), tok); !errors.As(err, &te) || te.Reason != "revoked" {
		t.Fatalf("revoked token later: %v", err)
	}
	if n := is.introCalls.Load(); n != calls {
		t.Fatalf("a revoked token was introspected again (%d calls, want %d)", n, calls)
	}

	// A token the issuer still holds active is unaffected by another's revocation.
	other := is.sign(t, "es256", is.claims(map[string]any{"jti": "at_2"}), nil)
	if _, err := v.Verify(context.Background(), other); err != nil {
		t.Fatalf("another token: %v", err)
	}
}

// Tokens verified at the same time share one introspection call.
func TestIntrospectionCallsOncePerToken(t *testing.T) {
	is := newIssuer(t)
	clock := testNow
	v := introVerifier(t, is, &clock, nil)
	tok := is.sign(t, "es256", is.claims(nil), nil)
	verifyAtOnce(t, v, tok, 16)
	if n := is.introCalls.Load(); n > 2 { // the first wave may race the cache once
		t.Fatalf("16 concurrent verifications made %d introspection calls", n)
	}
}

// A token that fails locally is refused without asking agentguard.
func TestIntrospectionOnlyAfterLocalChecks(t *testing.T) {
	is := newIssuer(t)
	clock := testNow
	v := introVerifier(t, is, &clock, nil)
	for _, tok := range []string{
		is.sign(t, "es256", is.claims(map[string]any{"aud": "https://other.example.com"}), nil),
		signWith(t, "ES256", attackerEC, "es256", is.claims(nil), nil),
		is.sign(t, "es256", is.claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil),
	} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("bad token accepted: %v", err)
		}
	}
	if n := is.introCalls.Load(); n != 0 {
		t.Fatalf("introspected %d tokens that failed local checks", n)
	}
}

// When agentguard cannot answer (down, or refusing the credentials) the token is
// not accepted, the middleware answers 503, and no error carries the secret.
func TestIntrospectionUnavailable(t *testing.T) {
	is := newIssuer(t)
	clock := testNow
	tok := is.sign(t, "es256", is.claims(nil), nil)

	wrong := introVerifier(t, is, &clock, func(in *Introspection) { in.ClientSecret = "wrong-secret-not-real" })
	_, err := wrong.Verify(context.Background(), tok)
	if !errors.Is(err, ErrIntrospectionUnavailable) || !strings.Contains(err.Error(), introClient) || strings.Contains(err.Error(), "wrong-secret-not-real") {
		t.Fatalf("wrong credentials: %v", err)
	}

	v := introVerifier(t, is, &clock, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil { // keys fetched and cached
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute) // the active answer is stale; the keys are not
	is.down.Store(true)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrIntrospectionUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("issuer down: %v", err)
	}
	srv := service(t, v)
	resp, body := get(t, srv.URL, "Authorization", "Bearer "+tok)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "status") || strings.Contains(body, introSecret) {
		t.Fatalf("middleware with the issuer down: %d %s", resp.StatusCode, body)
	}
}

// The middleware refuses a revoked token with 401 invalid_token.
func TestMiddlewareRefusesRevokedToken(t *testing.T) {
	is := newIssuer(t)
	clock := testNow
	tok := is.sign(t, "es256", is.claims(nil), nil)
	is.revoked.Store(tok, true)
	srv := service(t, introVerifier(t, is, &clock, nil))
	resp, _ := get(t, srv.URL, "Authorization", "Bearer "+tok)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestIntrospectionConfig(t *testing.T) {
	is := newIssuer(t)
	for _, tt := range []struct {
		in   Introspection
		want string
	}{
		{Introspection{ClientSecret: "s"}, "ClientID and ClientSecret"},
		{Introspection{ClientID: "c"}, "ClientID and ClientSecret"},
		{Introspection{ClientID: "c", ClientSecret: "s", CacheFor: time.Hour}, "CacheFor"},
		{Introspection{ClientID: "c", ClientSecret: "s", Endpoint: "http://agentguard.example.com/oauth2/introspect"}, "https"},
	} {
		_, err := New(Config{Issuer: is.URL, Audience: testAudience, Introspection: &tt.in})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), `"s"`) {
			t.Errorf("%+v: %v, want an error naming %s", tt.in, err, tt.want)
		}
	}
}

// The introspection secret does not show in prints or logs of the configuration.
func TestIntrospectionSecretNotPrinted(t *testing.T) {
	in := Introspection{ClientID: "agt_svc", ClientSecret: "s3cret-introspection-value"}
	cfg := Config{Issuer: "https://agentguard.example.com", Audience: testAudience, Introspection: &in}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "introspection", in)
	for _, out := range []string{fmt.Sprint(in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in), fmt.Sprintf("%v", &in), fmt.Sprintf("%+v", cfg), logs.String()} {
		if strings.Contains(out, in.ClientSecret) || !strings.Contains(out, "agt_svc") {
			t.Errorf("printed %q", out)
		}
	}
}
