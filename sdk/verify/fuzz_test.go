package verify

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// goJoseVerdict checks raw with go-jose the way a careful service would (README
// "Look inside and verify"): allow-listed algorithm, typ at+jwt, the kid's key and
// its algorithm, then the claims. It is the reference the lean parser is held to.
func goJoseVerdict(is *issuer, raw string) (sub string, ok bool) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return "", false
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); strings.ToLower(typ) != "at+jwt" && strings.ToLower(typ) != "application/at+jwt" {
		return "", false
	}
	is.mu.Lock()
	k, found := is.keys[h.KeyID]
	is.mu.Unlock()
	if !found || string(k.alg) != h.Algorithm {
		return "", false
	}
	var c jwt.Claims
	if err := tok.Claims(k.priv.Public(), &c); err != nil {
		return "", false
	}
	if c.Expiry == nil || c.Subject == "" {
		return "", false
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: is.URL, AnyAudience: jwt.Audience{testAudience}, Time: testNow}, 30*time.Second); err != nil {
		return "", false
	}
	return c.Subject, true
}

// FuzzVerify holds the lean verifier to go-jose's verdict: whatever it accepts,
// go-jose accepts with the same subject; and whatever go-jose accepts, it accepts
// too unless it refused the encoding as malformed (it is stricter on base64 and
// JSON). Run: go test -fuzz FuzzVerify ./verify
func FuzzVerify(f *testing.F) {
	is := newIssuer(f)
	v := is.verifier(f, nil)
	for _, kid := range []string{"es256", "es384", "rs256", "ps256", "eddsa"} {
		f.Add(is.sign(f, kid, is.claims(nil), nil))
	}
	f.Add(is.sign(f, "es256", is.claims(map[string]any{"aud": []string{"x", testAudience}, "act": map[string]any{"sub": "agt_2"}}), nil))
	f.Add(is.sign(f, "es256", is.claims(map[string]any{"exp": 1e300}), nil))
	f.Add(is.sign(f, "es256", is.claims(nil), map[jose.HeaderKey]any{jose.HeaderType: "JWT"}))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		sub, ok := goJoseVerdict(is, raw)
		if err == nil {
			if !ok || c.Subject != sub {
				t.Fatalf("accepted a token go-jose refuses (sub %q vs %q): %q", c.Subject, sub, raw)
			}
			return
		}
		var te *TokenError
		if ok && (!errors.As(err, &te) || !slices.Contains([]string{"malformed", "claims"}, te.Reason)) {
			t.Fatalf("refused (%v) a token go-jose accepts: %q", err, raw)
		}
	})
}
