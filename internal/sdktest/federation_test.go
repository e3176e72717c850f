package sdktest

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/sdk"
)

// workloadIssuer plays a Kubernetes API server: discovery, JWKS, and projected
// service-account tokens it signs.
type workloadIssuer struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func newWorkloadIssuer(t *testing.T) *workloadIssuer {
	key, _ := newKeyPEM(t)
	w := &workloadIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(rw http.ResponseWriter, r *http.Request) {
		json.NewEncoder(rw).Encode(map[string]string{"issuer": w.URL, "jwks_uri": w.URL + "/openid/v1/jwks"})
	})
	mux.HandleFunc("GET /openid/v1/jwks", func(rw http.ResponseWriter, r *http.Request) {
		json.NewEncoder(rw).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "sa-key", Algorithm: "ES256", Use: "sig"}}})
	})
	w.Server = httptest.NewServer(mux)
	t.Cleanup(w.Close)
	return w
}

func (w *workloadIssuer) token(t *testing.T, sub, aud string) string {
	t.Helper()
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: w.key, KeyID: "sa-key"}}, (&jose.SignerOptions{}).WithType("JWT"))
	now := time.Now()
	raw, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: w.URL, Subject: sub, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// FEDERATED_TOKEN: no stored secret; the SDK sends the pod's service-account token
// (re-read from its file) with the jwt-bearer grant, and the agent's tokens come back.
func TestFederatedTokenEndToEnd(t *testing.T) {
	f := start(t)
	w := newWorkloadIssuer(t)
	const sub = "system:serviceaccount:agents:invoice-bot"
	if code := f.s.Do(t, "POST", "/api/v1/agents/"+f.agent+"/federation", map[string]any{"issuer": w.URL, "subject": sub}, nil); code != 201 {
		t.Fatalf("federation: HTTP %d", code)
	}
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(w.token(t, sub, f.s.URL)), 0o600)
	c, err := sdk.New(sdk.Config{Issuer: f.s.URL, AuthMethod: sdk.FederatedToken, TokenFile: file})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.AccessToken(context.Background(), filesAudience, "read:file")
	if err != nil {
		t.Fatal(err)
	}
	v := f.verifier(t, filesAudience)
	caller, err := v.Verify(context.Background(), tok.AccessToken)
	if err != nil || caller.Subject != f.agent {
		t.Fatalf("caller %v err %v", caller, err)
	}
	// A token for another subject (another pod) is refused.
	os.WriteFile(file, []byte(w.token(t, "system:serviceaccount:agents:other", f.s.URL)), 0o600)
	if _, err := c.AccessToken(context.Background(), "https://files.example.com", "write:file"); err == nil {
		t.Fatal("an unmapped workload got a token")
	}
}
