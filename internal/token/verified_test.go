package token_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/token"
)

// The issuer remembers tokens whose signature checked out. Remembering must not
// carry over anything but the signature: a remembered token is still refused once
// revoked or expired, and a token differing by one byte is checked afresh.
func TestRememberedSignatureStillChecksRevocationTimeAndBytes(t *testing.T) {
	ctx := context.Background()
	base := token.Claims{Subject: "agt_1", ClientID: "agt_1", Audience: jwt.Audience{issuerURL}}
	tests := []struct {
		name string
		// after the token verified once, change the world or the token
		change func(t *testing.T, is *token.Issuer, st *sqlstore.Store, advance func(time.Duration), raw string, c token.Claims) string
		want   error
	}{
		{"revoked after it was remembered", func(t *testing.T, _ *token.Issuer, st *sqlstore.Store, _ func(time.Duration), raw string, c token.Claims) string {
			if err := st.RevokeToken(ctx, c.ID, c.Expiry.Time()); err != nil {
				t.Fatal(err)
			}
			return raw
		}, token.ErrRevoked},
		{"expired after it was remembered", func(_ *testing.T, _ *token.Issuer, _ *sqlstore.Store, advance func(time.Duration), raw string, _ token.Claims) string {
			advance(time.Minute + token.Leeway + time.Second)
			return raw
		}, token.ErrExpired},
		{"one signature byte changed", func(_ *testing.T, _ *token.Issuer, _ *sqlstore.Store, _ func(time.Duration), raw string, _ token.Claims) string {
			b := []byte(raw)
			i := len(b) - 5
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}, token.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is, clock, st := newIssuer(t, jose.ES256)
			raw, issued, err := is.Issue(base, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second call is served from memory
				if _, err := is.Verify(ctx, raw); err != nil {
					t.Fatalf("fresh token: %v", err)
				}
			}
			raw = tt.change(t, is, st, clock.Advance, raw, issued)
			if _, err := is.Verify(ctx, raw); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// BenchmarkVerifySignatureES256Cold is a first verification (signature checked),
// BenchmarkVerifySignatureES256Remembered a repeated one (signature remembered).
func BenchmarkVerifySignatureES256Cold(b *testing.B) {
	is, _, _ := newIssuer(b, jose.ES256)
	raw := mustIssue(b, is, token.Claims{Subject: "agt_bench", ClientID: "agt_bench", Audience: jwt.Audience{issuerURL}, Scope: "read"}, time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		fresh := &token.Issuer{URL: is.URL, Keyring: is.Keyring, Store: is.Store, Now: is.Now} // nothing remembered
		if _, err := fresh.VerifySignature(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignatureES256Remembered(b *testing.B) {
	is, _, _ := newIssuer(b, jose.ES256)
	raw := mustIssue(b, is, token.Claims{Subject: "agt_bench", ClientID: "agt_bench", Audience: jwt.Audience{issuerURL}, Scope: "read"}, time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := is.VerifySignature(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
