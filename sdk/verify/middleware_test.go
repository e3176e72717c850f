package verify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// service is a protected handler on a real socket that echoes its caller.
func service(t *testing.T, v *Verifier, scopes ...string) *httptest.Server {
	t.Helper()
	h := v.Require(scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := CallerFrom(r.Context())
		if !ok {
			t.Error("no caller in the context")
		}
		json.NewEncoder(w).Encode(map[string]any{"sub": c.Subject, "act": c.Actors})
	}))
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// Who may and who may not call a protected route, with the RFC 6750 answers.
func TestMiddlewareAnswers(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, func(c *Config) {
		c.RequiredScopes = []string{"read:file"}
		c.ResourceMetadataURL = "https://files.example.com/.well-known/oauth-protected-resource"
	})
	srv := service(t, v, "write:file")
	good := is.sign(t, "es256", is.claims(nil), nil)
	readOnly := is.sign(t, "es256", is.claims(map[string]any{"scope": "read:file"}), nil)
	expired := is.sign(t, "es256", is.claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil)
	rm := `resource_metadata="https://files.example.com/.well-known/oauth-protected-resource"`

	cases := []struct {
		name      string
		headers   []string
		path      string
		status    int
		challenge []string // substrings of WWW-Authenticate
		noError   bool     // the challenge must not carry error= (RFC 6750 §3.1)
	}{
		{"valid token with both scopes", []string{"Authorization", "Bearer " + good}, "/", 200, nil, false},
		{"scheme in lower case", []string{"Authorization", "bearer " + good}, "/", 200, nil, false},
		{"no token", nil, "/", 401, []string{"Bearer ", rm, `scope="read:file write:file"`}, true},
		{"token in the query only", nil, "/?access_token=" + good, 401, []string{rm}, true},
		{"Basic credentials", []string{"Authorization", "Basic YTpi"}, "/", 401, []string{`error="invalid_request"`}, false},
		{"two Authorization headers", []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good}, "/", 401, []string{`error="invalid_request"`}, false},
		{"expired token", []string{"Authorization", "Bearer " + expired}, "/", 401, []string{`error="invalid_token"`, "expired", rm}, false},
		{"garbage token", []string{"Authorization", "Bearer abc"}, "/", 401, []string{`error="invalid_token"`}, false},
		{"missing a scope", []string{"Authorization", "Bearer " + readOnly}, "/", 403, []string{`error="insufficient_scope"`, `scope="read:file write:file"`, rm}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path, tc.headers...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			for _, want := range tc.challenge {
				if !strings.Contains(ch, want) {
					t.Fatalf("WWW-Authenticate %q lacks %q", ch, want)
				}
			}
			if tc.noError && strings.Contains(ch, "error=") {
				t.Fatalf("WWW-Authenticate %q has an error code for a request without a token", ch)
			}
			if tc.status == 200 && !strings.Contains(body, `"sub":"agt_1"`) {
				t.Fatalf("body %s", body)
			}
			if tc.status != 200 && strings.Contains(body+ch, good) {
				t.Fatal("the refusal echoes the token")
			}
		})
	}
}

// When the issuer's keys cannot be fetched the middleware answers 503, not 401 (the
// token may well be valid).
func TestMiddlewareKeysUnavailable(t *testing.T) {
	is := newIssuer(t)
	tok := is.sign(t, "es256", is.claims(nil), nil)
	is.down.Store(true)
	srv := service(t, is.verifier(t, nil))
	resp, _ := get(t, srv.URL, "Authorization", "Bearer "+tok)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// Middleware (no extra scopes) admits any valid token.
func TestMiddlewareWithoutScopes(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, nil)
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+is.sign(t, "eddsa", is.claims(map[string]any{"scope": ""}), nil))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 204 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// An unknown kid refetches the JWKS (a rotation is picked up at once), but at most
// once per MinRefreshInterval however many bad tokens arrive.
func TestJWKSRefetchRateLimited(t *testing.T) {
	is := newIssuer(t)
	now := testNow
	v := is.verifier(t, func(c *Config) { c.Now = func() time.Time { return now } })
	ctx := context.Background()
	if _, err := v.Verify(ctx, is.sign(t, "es256", is.claims(nil), nil)); err != nil {
		t.Fatal(err)
	}
	if n := is.fetches.Load(); n != 1 {
		t.Fatalf("fetches %d", n)
	}
	// Garbage kids: one refetch per interval.
	now = now.Add(11 * time.Second)
	for range 100 {
		v.Verify(ctx, signWith(t, jose.ES256, attackerEC, "garbage", is.claims(nil), nil))
	}
	if n := is.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d after 100 unknown kids, want 2", n)
	}
	// Rotation: a new key is published; once the interval has passed, its first
	// token triggers a refetch and verifies.
	is.add("new", jose.ES256, attackerEC)
	now = now.Add(11 * time.Second)
	if _, err := v.Verify(ctx, is.sign(t, "new", is.claims(nil), nil)); err != nil {
		t.Fatal(err)
	}
	// A retired key stays usable while the issuer cannot be reached.
	is.remove("new")
	is.down.Store(true)
	now = now.Add(10 * time.Minute)
	if _, err := v.Verify(ctx, is.sign(t, "es256", is.claims(nil), nil)); err != nil {
		t.Fatalf("stale key refused while the issuer is down: %v", err)
	}
	// Back up: after the TTL the set is refreshed and the removed key is gone.
	is.down.Store(false)
	now = now.Add(time.Minute)
	tok := signWith(t, jose.ES256, attackerEC, "new", is.claims(nil), nil)
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Fatal("a key no longer published still verifies")
	}
}

// A service's first requests arrive together: those that find no keys yet wait
// for the one fetch in flight instead of answering 503.
func TestJWKSFirstRequestsShareTheFirstFetch(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t, nil)
	tok := is.sign(t, "es256", is.claims(nil), nil)
	verifyAtOnce(t, v, tok, 32)
	if n := is.fetches.Load(); n != 1 {
		t.Fatalf("32 first requests made %d JWKS fetches, want 1", n)
	}
}

// Only usable public signature keys are taken from the JWKS.
func TestJWKSSkipsUnusableKeys(t *testing.T) {
	genKeys()
	cases := []struct {
		name string
		key  jose.JSONWebKey
	}{
		{"symmetric key", jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k", Algorithm: "HS256"}},
		{"encryption key", jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "enc"}},
		{"alg that does not fit the curve", jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "k", Algorithm: "ES384"}},
		{"private key published by mistake", jose.JSONWebKey{Key: ecKey, KeyID: "k", Algorithm: "ES256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := usableKey(tc.key); ok && tc.key.IsPublic() && tc.key.Use != "enc" {
				t.Fatal("kept")
			}
			b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{tc.key}})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(b) }))
			defer srv.Close()
			kc := &keyCache{http: srv.Client(), jwksURL: srv.URL, now: time.Now, ttl: time.Minute, minInterval: time.Second}
			ks, err := kc.fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(ks.keys) != 0 {
				t.Fatalf("kept %v", ks.keys)
			}
		})
	}
}

// Discovery refuses metadata naming another issuer.
func TestJWKSDiscoveryChecksIssuer(t *testing.T) {
	is := newIssuer(t)
	is.metaIss = "https://evil.example.com"
	_, err := is.verifier(t, nil).Verify(context.Background(), is.sign(t, "es256", is.claims(nil), nil))
	if err == nil || !strings.Contains(err.Error(), "evil") {
		t.Fatalf("err = %v", err)
	}
}
