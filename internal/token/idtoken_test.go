package token_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/token"
)

// ID tokens are signed by the access-token keyring but typed JWT, verify with an
// independent OIDC library (at_hash included) for every algorithm, and are never
// accepted as access tokens; access tokens are never accepted as ID tokens.
func TestIDTokens(t *testing.T) {
	for _, alg := range token.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			is, clock, _ := newIssuer(t, alg)
			ctx := context.Background()
			access := mustIssue(t, is, token.Claims{Subject: "usr_1", ClientID: "cli_1", Audience: jwt.Audience{issuerURL}, Scope: "openid"}, 5*time.Minute)
			raw, err := is.IssueIDToken(token.IDClaims{Subject: "usr_1", Audience: jwt.Audience{"cli_1"}, Nonce: "n-1", SID: "ses_1",
				AuthTime: jwt.NewNumericDate(clock.Now()), Email: "u@example.com"}, time.Hour, access)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.ParseSigned(raw, token.Algorithms)
			if err != nil {
				t.Fatal(err)
			}
			if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "JWT" {
				t.Fatalf("ID token typ %v, want JWT", typ)
			}

			// go-oidc against the published JWKS, at the token's own time.
			jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(is.Keyring.JWKS()) }))
			defer jwks.Close()
			keys := oidc.NewRemoteKeySet(ctx, jwks.URL)
			v := oidc.NewVerifier(issuerURL, keys, &oidc.Config{ClientID: "cli_1", SupportedSigningAlgs: []string{string(alg)}, Now: clock.Now})
			id, err := v.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("go-oidc: %v", err)
			}
			if id.Nonce != "n-1" || id.Subject != "usr_1" {
				t.Fatalf("nonce %q sub %q", id.Nonce, id.Subject)
			}
			if err := id.VerifyAccessToken(access); err != nil {
				t.Fatalf("at_hash: %v", err)
			}
			var extra struct {
				SID   string `json:"sid"`
				Email string `json:"email"`
			}
			id.Claims(&extra)
			if extra.SID != "ses_1" || extra.Email != "u@example.com" {
				t.Fatalf("claims %+v", extra)
			}

			if _, err := is.Verify(ctx, raw); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify(ID token) = %v, want ErrInvalid: an ID token is not an access token", err)
			}
			if _, err := is.VerifyIDToken(ctx, access); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("VerifyIDToken(access token) = %v, want ErrInvalid", err)
			}
			// An expired ID token still identifies its session (logout's id_token_hint).
			clock.Advance(2 * time.Hour)
			c, err := is.VerifyIDToken(ctx, raw)
			if err != nil || c.SID != "ses_1" || c.Audience[0] != "cli_1" {
				t.Fatalf("VerifyIDToken of an expired ID token: %+v, %v", c, err)
			}
			// Tampering breaks it.
			if _, err := is.VerifyIDToken(ctx, raw[:len(raw)-3]+"AAA"); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("tampered ID token: %v", err)
			}
		})
	}
}
