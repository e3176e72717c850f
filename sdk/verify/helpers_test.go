package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// issuer is a JWKS and metadata server on a real loopback socket, with keys whose
// tokens the tests sign with go-jose (the library agentguard itself signs with).
type issuer struct {
	*httptest.Server
	mu       sync.Mutex
	keys     map[string]testKey // published
	fetches  atomic.Int64
	down     atomic.Bool
	metaIss  string
	clockNow time.Time
	// The introspection endpoint: who may call it, how often it was called, and
	// the tokens it says are not active.
	introCalls atomic.Int64
	revoked    sync.Map
}

const introClient, introSecret = "agt_service", "introspection-secret-not-real"

type testKey struct {
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
	jwk  jose.JSONWebKey // as published
}

var (
	keyOnce          sync.Once
	ecKey, ec384Key  *ecdsa.PrivateKey
	rsaKey, otherRSA *rsa.PrivateKey
	edKey            ed25519.PrivateKey
	attackerEC       *ecdsa.PrivateKey
)

func genKeys() {
	keyOnce.Do(func() {
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec384Key, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		otherRSA, _ = rsa.GenerateKey(rand.Reader, 2048)
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
		attackerEC, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
}

func newIssuer(t testing.TB) *issuer {
	genKeys()
	is := &issuer{keys: map[string]testKey{}}
	is.Server = httptest.NewServer(http.HandlerFunc(is.serve))
	t.Cleanup(is.Close)
	is.add("es256", jose.ES256, ecKey)
	is.add("es384", jose.ES384, ec384Key)
	is.add("rs256", jose.RS256, rsaKey)
	is.add("ps256", jose.PS256, otherRSA)
	is.add("eddsa", jose.EdDSA, edKey)
	return is
}

func (is *issuer) add(kid string, alg jose.SignatureAlgorithm, priv crypto.Signer) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys[kid] = testKey{alg: alg, priv: priv, jwk: jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}}
}

func (is *issuer) remove(kid string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	delete(is.keys, kid)
}

func (is *issuer) serve(w http.ResponseWriter, r *http.Request) {
	if is.down.Load() {
		http.Error(w, "down", 503)
		return
	}
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		iss := is.URL
		if is.metaIss != "" {
			iss = is.metaIss
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": is.URL + "/oauth2/jwks"})
	case "/oauth2/jwks":
		is.fetches.Add(1)
		is.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.jwk)
		}
		is.mu.Unlock()
		json.NewEncoder(w).Encode(set)
	case "/oauth2/introspect":
		is.introCalls.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok || id != introClient || secret != introSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		_, revoked := is.revoked.Load(r.PostFormValue("token"))
		json.NewEncoder(w).Encode(map[string]bool{"active": !revoked})
	default:
		http.NotFound(w, r)
	}
}

// sign makes a token with go-jose: header typ at+jwt (unless typ overrides), the
// kid's key and algorithm.
func (is *issuer) sign(t testing.TB, kid string, claims map[string]any, hdr map[jose.HeaderKey]any) string {
	t.Helper()
	is.mu.Lock()
	k, ok := is.keys[kid]
	is.mu.Unlock()
	if !ok {
		t.Fatalf("no key %s", kid)
	}
	return signWith(t, k.alg, k.priv, kid, claims, hdr)
}

func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any, hdr map[jose.HeaderKey]any) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"}}
	for k, v := range hdr {
		if v == nil {
			delete(opts.ExtraHeaders, k)
		} else {
			opts.ExtraHeaders[k] = v
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const testAudience = "https://files.example.com"

var testNow = time.Unix(1_800_000_000, 0)

// claimsFor are valid claims for the test issuer and audience, changed by edits.
func (is *issuer) claims(edits map[string]any) map[string]any {
	c := map[string]any{
		"iss": is.URL, "sub": "agt_1", "aud": testAudience, "client_id": "agt_1", "scope": "read:file write:file",
		"iat": testNow.Unix(), "nbf": testNow.Unix(), "exp": testNow.Add(15 * time.Minute).Unix(), "jti": "at_1",
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (is *issuer) verifier(t testing.TB, edit func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Issuer: is.URL, Audience: testAudience, Now: func() time.Time { return testNow }}
	if edit != nil {
		edit(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verifyAtOnce verifies tok from n goroutines started together; each must pass.
func verifyAtOnce(t *testing.T, v *Verifier, tok string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
