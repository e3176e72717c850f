package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
	"github.com/agentguard/agentguard/internal/token"
)

const issuerURL = "https://agentguard.test"

// newIssuer is an Issuer over a real SQLite store and local KMS, on a settable clock.
func newIssuer(t testing.TB, alg jose.SignatureAlgorithm) (*token.Issuer, *servertest.Clock, *sqlstore.Store) {
	t.Helper()
	st := storetest.Open(t, sqlstore.SQLite)
	w, err := kms.OpenLocal(filepath.Join(t.TempDir(), kms.LocalKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	clock := servertest.NewClock(time.Unix(1_800_000_000, 0))
	kr, err := token.NewKeyring(context.Background(), st, kms.NewEnvelope(w), token.KeyringConfig{Algorithm: alg, Retain: 25 * time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &token.Issuer{URL: issuerURL, Keyring: kr, Store: st, Now: clock.Now}, clock, st
}

func mustIssue(t testing.TB, is *token.Issuer, c token.Claims, lifetime time.Duration) string {
	t.Helper()
	raw, _, err := is.Issue(c, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Each supported algorithm issues tokens that verify, with the RFC 9068 header and
// the claims filled in by the issuer.
func TestIssueAndVerifyEachAlgorithm(t *testing.T) {
	for _, alg := range token.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			is, clock, _ := newIssuer(t, alg)
			raw, issued, err := is.Issue(token.Claims{Subject: "agt_1", ClientID: "agt_1", Audience: jwt.Audience{"https://api.example.com"}, Scope: "read"}, 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{alg})
			if err != nil {
				t.Fatal(err)
			}
			if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" || tok.Headers[0].KeyID == "" {
				t.Errorf("header typ=%v kid=%q", typ, tok.Headers[0].KeyID)
			}
			c, err := is.Verify(context.Background(), raw)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if c.ID != issued.ID || c.Issuer != issuerURL || c.Subject != "agt_1" || c.Scope != "read" ||
				!c.Expiry.Time().Equal(clock.Now().Add(5*time.Minute)) || !c.IssuedAt.Time().Equal(clock.Now()) {
				t.Errorf("claims %+v", c)
			}
		})
	}
}

// Every way a token can be wrong is refused with the right sentinel.
func TestVerifyRefuses(t *testing.T) {
	is, clock, st := newIssuer(t, jose.ES256)
	other, _, _ := newIssuer(t, jose.ES256)
	ctx := context.Background()
	base := token.Claims{Subject: "agt_1", ClientID: "agt_1", Audience: jwt.Audience{issuerURL}}

	kid := func(raw string) string {
		tok, err := jwt.ParseSigned(raw, token.Algorithms)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Headers[0].KeyID
	}
	good := mustIssue(t, is, base, time.Minute)
	signWith := func(key any, alg jose.SignatureAlgorithm, k, typ string, claims any) string {
		opts := &jose.SignerOptions{}
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: k}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(sig).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := clock.Now()
	claims := map[string]any{"iss": issuerURL, "sub": "agt_1", "jti": "at_x", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}

	tests := []struct {
		name string
		raw  func() string
		want error
	}{
		{"another issuer's key with our kid", func() string { return signWith(stranger, jose.ES256, kid(good), "at+jwt", claims) }, token.ErrInvalid},
		{"another keyring", func() string { return mustIssue(t, other, base, time.Minute) }, token.ErrInvalid},
		{"payload swapped", func() string {
			p := strings.Split(good, ".")
			b, _ := json.Marshal(map[string]any{"iss": issuerURL, "sub": "agt_admin", "jti": "at_y", "exp": now.Add(time.Hour).Unix()})
			return p[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + p[2]
		}, token.ErrInvalid},
		{"signature stripped", func() string { p := strings.Split(good, "."); return p[0] + "." + p[1] + "." }, token.ErrInvalid},
		{"alg none", func() string {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"` + kid(good) + `"}`))
			return h + "." + strings.Split(good, ".")[1] + "."
		}, token.ErrInvalid},
		{"over 16 KiB", func() string { return strings.Repeat("a", 17<<10) }, token.ErrInvalid},
		{"expired", func() string { return mustIssue(t, is, base, -time.Minute) }, token.ErrExpired},
		{"revoked", func() string {
			raw, c, _ := is.Issue(base, time.Minute)
			if err := st.RevokeToken(ctx, c.ID, c.Expiry.Time()); err != nil {
				t.Fatal(err)
			}
			return raw
		}, token.ErrRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := is.Verify(ctx, tt.raw()); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := is.Verify(ctx, good); err != nil {
		t.Errorf("the untouched token stopped verifying: %v", err)
	}
}

// FuzzVerify: no string that is not one of the issuer's own tokens verifies. A
// mutation may re-encode a real token (base64 padding bits, ECDSA's (r, n-s)), so a
// string that verifies must decode to exactly an issued header and payload.
func FuzzVerify(f *testing.F) {
	is, _, _ := newIssuer(f, jose.ES256)
	other, _, _ := newIssuer(f, jose.ES256)
	issued := map[string]string{} // jti -> header.payload of the token issued
	for _, lt := range []time.Duration{time.Minute, -time.Minute} {
		raw, c, err := is.Issue(token.Claims{Subject: "agt_1", ClientID: "agt_1", Audience: jwt.Audience{issuerURL}, Scope: "read"}, lt)
		if err != nil {
			f.Fatal(err)
		}
		issued[c.ID] = decodedSigningInput(raw)
		f.Add(raw)
	}
	f.Add(mustIssue(f, other, token.Claims{Subject: "agt_1"}, time.Minute))
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c.d.e")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := is.VerifySignature(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, token.ErrInvalid) && !errors.Is(err, token.ErrExpired) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		want, ok := issued[c.ID]
		if !ok || decodedSigningInput(raw) != want {
			t.Fatalf("forged token verified: %q", raw)
		}
	})
}

func decodedSigningInput(raw string) string {
	p := strings.Split(raw, ".")
	if len(p) != 3 {
		return ""
	}
	h, err1 := base64.RawURLEncoding.DecodeString(p[0])
	b, err2 := base64.RawURLEncoding.DecodeString(p[1])
	if err1 != nil || err2 != nil {
		return ""
	}
	return string(h) + "\x00" + string(b)
}

func benchmarkIssue(b *testing.B, alg jose.SignatureAlgorithm) {
	is, _, _ := newIssuer(b, alg)
	c := token.Claims{Subject: "agt_bench", ClientID: "agt_bench", Audience: jwt.Audience{"https://api.example.com"}, Scope: "read write"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := is.Issue(c, 15*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueES256(b *testing.B) { benchmarkIssue(b, jose.ES256) }
func BenchmarkIssueRS256(b *testing.B) { benchmarkIssue(b, jose.RS256) }
func BenchmarkIssueEdDSA(b *testing.B) { benchmarkIssue(b, jose.EdDSA) }

// BenchmarkVerifyES256 is the signature and claims check without the revocation
// lookup (VerifySignature), the part a resource server pays per request.
func BenchmarkVerifyES256(b *testing.B) {
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
