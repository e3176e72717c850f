package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkVerifyES256 runs, side by side, a bare crypto/ecdsa verification of an
// ES256 token's signature (digest, r and s computed beforehand) and the whole
// Verify of the same token with a warm key cache: parsing, header and algorithm
// checks, key lookup, hashing, the signature check, claims decoding and checks.
// The target: Verify within 20 % of bare (see docs/benchmarks.md).
func BenchmarkVerifyES256(b *testing.B) {
	is := newIssuer(b)
	v := is.verifier(b, nil)
	tok := is.sign(b, "es256", is.claims(map[string]any{"act": map[string]any{"sub": "agt_2"}}), nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	dot := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	sum := sha256.Sum256([]byte(tok[:dot]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	pub := &ecKey.PublicKey

	b.Run("bare-ecdsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.Verify(pub, sum[:], r, s) {
				b.Fatal("bad signature")
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	// interleaved alternates the two on every iteration and reports each one's
	// mean and the overhead, so drift in machine load affects both alike.
	b.Run("interleaved", func(b *testing.B) {
		var bare, full time.Duration
		for b.Loop() {
			t0 := time.Now()
			ecdsa.Verify(pub, sum[:], r, s)
			t1 := time.Now()
			v.Verify(ctx, tok)
			full += time.Since(t1)
			bare += t1.Sub(t0)
		}
		n := float64(b.N)
		b.ReportMetric(float64(bare.Nanoseconds())/n, "bare-ns/op")
		b.ReportMetric(float64(full.Nanoseconds())/n, "verify-ns/op")
		b.ReportMetric(100*(float64(full)/float64(bare)-1), "overhead-%")
	})
	// everything-but-ecdsa is what Verify adds to the signature check, alone: parse,
	// key lookup, hashing, claims decoding (no ECDSA). A figure that drifts less
	// with machine load than the ratio.
	b.Run("everything-but-ecdsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, _ := parseCompact(tok)
			v.keys.key(ctx, c.header.Kid)
			digest("ES256", c.signingInput)
			p, _ := b64.DecodeString(c.payload)
			var cl claims
			json.Unmarshal(p, &cl)
		}
	})
	// verify-introspected is Verify with Introspection on and the token's answer
	// remembered (what all but one request per token per CacheFor cost).
	b.Run("verify-introspected", func(b *testing.B) {
		vi := is.verifier(b, func(c *Config) {
			c.Introspection = &Introspection{ClientID: introClient, ClientSecret: introSecret, CacheFor: 5 * time.Minute}
		})
		if _, err := vi.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := vi.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("middleware", func(b *testing.B) {
		h := v.Require("read:file")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	})
}
