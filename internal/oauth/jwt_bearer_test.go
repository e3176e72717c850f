package oauth_test

import (
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// workloadIssuer is a real local OIDC-style issuer (a Kubernetes API server or a CI
// provider): a discovery document, a JWKS, and tokens signed with its current key.
type workloadIssuer struct {
	*httptest.Server
	mu   sync.Mutex
	key  *ecdsa.PrivateKey
	kid  string
	old  []jose.JSONWebKey // still published after a rotation
	hits map[string]int
}

func newWorkloadIssuer(t *testing.T) *workloadIssuer {
	w := &workloadIssuer{hits: map[string]int{}}
	w.rotate(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(rw http.ResponseWriter, r *http.Request) {
		w.hit("discovery")
		json.NewEncoder(rw).Encode(map[string]string{"issuer": w.URL, "jwks_uri": w.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(rw http.ResponseWriter, r *http.Request) {
		w.hit("jwks")
		w.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{{Key: w.key.Public(), KeyID: w.kid, Algorithm: "ES256", Use: "sig"}}, w.old...)}
		w.mu.Unlock()
		json.NewEncoder(rw).Encode(set)
	})
	w.Server = httptest.NewServer(mux)
	t.Cleanup(w.Close)
	return w
}

func (w *workloadIssuer) hit(what string) {
	w.mu.Lock()
	w.hits[what]++
	w.mu.Unlock()
}

func (w *workloadIssuer) count(what string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits[what]
}

// rotate makes a new signing key with a new kid; the old one stays published.
func (w *workloadIssuer) rotate(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.key != nil {
		w.old = append(w.old, jose.JSONWebKey{Key: w.key.Public(), KeyID: w.kid, Algorithm: "ES256", Use: "sig"})
	}
	w.key, w.kid = newES256(t), randomID(t)
}

// token signs a workload token for subject; mutate may change the claims.
func (w *workloadIssuer) token(t *testing.T, subject, aud string, now time.Time, mutate func(*jwt.Claims)) string {
	w.mu.Lock()
	key, kid := w.key, w.kid
	w.mu.Unlock()
	c := jwt.Claims{Issuer: w.URL, Subject: subject, Audience: jwt.Audience{aud}, ID: randomID(t),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}
	if mutate != nil {
		mutate(&c)
	}
	return signJWT(t, key, jose.ES256, kid, c)
}

func jwtBearerForm(assertion string, extra url.Values) url.Values {
	f := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// Workload identity federation (RFC 7523 §2.1): an external issuer's token, mapped by
// issuer and subject, gets the agent a token without any stored secret.
func TestJWTBearerFederation(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) { testJWTBearer(t, d) })
	}
}

func testJWTBearer(t *testing.T, d sqlstore.Dialect) {
	s := servertest.Start(t, servertest.Options{Dialect: d})
	resourceServer(t, s, apiAudience, 0, "read")
	issuer := newWorkloadIssuer(t)
	explicit := newWorkloadIssuer(t)

	id, _ := s.Agent(t, "workload")
	grantScopes(t, s, id, apiAudience, "read")
	const subject = "system:serviceaccount:agents:summarizer"
	federate := func(t *testing.T, agentID string, body map[string]any) {
		t.Helper()
		if code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/federation", body, nil); code != http.StatusCreated {
			t.Fatalf("register federation %v: HTTP %d", body, code)
		}
	}
	// Discovery: no jwks_uri, the issuer's openid-configuration names it.
	federate(t, id, map[string]any{"issuer": issuer.URL, "subject": subject})
	// Explicit jwks_uri and a custom audience.
	const customAud = "https://agentguard.example/workloads"
	expID, _ := s.Agent(t, "explicit")
	federate(t, expID, map[string]any{"issuer": explicit.URL, "subject": subject, "jwks_uri": explicit.URL + "/keys", "audience": customAud})
	disabledID, _ := s.Agent(t, "disabled-workload")
	federate(t, disabledID, map[string]any{"issuer": issuer.URL, "subject": "disabled"})
	if code := s.Do(t, "PATCH", "/api/v1/agents/"+disabledID, map[string]any{"status": "disabled"}, nil); code != 200 {
		t.Fatalf("disable: HTTP %d", code)
	}

	aud := s.Config.Issuer
	ok := []struct {
		name    string
		token   func(t *testing.T) string
		extra   url.Values
		agentID string
		wantAud string
		scope   string
	}{
		{"discovered JWKS, aud = issuer", func(t *testing.T) string { return issuer.token(t, subject, aud, s.Clock.Now(), nil) },
			nil, id, aud, "agentguard:credentials"},
		{"aud = token endpoint, resource", func(t *testing.T) string {
			return issuer.token(t, subject, s.URL+"/oauth2/token", s.Clock.Now(), nil)
		}, url.Values{"resource": {apiAudience}}, id, apiAudience, "read"},
		{"explicit jwks_uri and custom audience", func(t *testing.T) string {
			return explicit.token(t, subject, customAud, s.Clock.Now(), nil)
		}, nil, expID, aud, "agentguard:credentials"},
		{"key rotated at the issuer: the new kid is fetched", func(t *testing.T) string {
			issuer.rotate(t)
			// The cache refetches on an unknown kid at most every 10 s.
			s.Clock.Advance(11 * time.Second)
			return issuer.token(t, subject, aud, s.Clock.Now(), nil)
		}, nil, id, aud, "agentguard:credentials"},
	}
	for _, tt := range ok {
		t.Run("ok: "+tt.name, func(t *testing.T) {
			tr := mustToken(t, s, call{form: jwtBearerForm(tt.token(t), tt.extra)})
			verifyIndependently(t, s, tr.AccessToken, tt.agentID, tt.wantAud, tt.scope, 15*time.Minute)
		})
	}
	// Discovery is cached: one fetch serves every request within its lifetime.
	if n := issuer.count("discovery"); n != 1 {
		t.Errorf("the issuer's discovery document was fetched %d times, want once", n)
	}
	if explicit.count("discovery") != 0 {
		t.Error("discovery fetched although jwks_uri was registered")
	}

	stranger := newWorkloadIssuer(t)
	refused := []struct {
		name    string
		token   func(t *testing.T) string
		mention string
	}{
		{"unknown subject", func(t *testing.T) string {
			return issuer.token(t, "system:serviceaccount:x:y", aud, s.Clock.Now(), nil)
		}, "no agent trusts"},
		{"unknown issuer", func(t *testing.T) string { return stranger.token(t, subject, aud, s.Clock.Now(), nil) }, "no agent trusts"},
		{"wrong audience", func(t *testing.T) string {
			return issuer.token(t, subject, "https://elsewhere.example", s.Clock.Now(), nil)
		}, "aud must include"},
		{"custom audience required, issuer given", func(t *testing.T) string { return explicit.token(t, subject, aud, s.Clock.Now(), nil) }, "aud must include"},
		{"expired", func(t *testing.T) string {
			return issuer.token(t, subject, aud, s.Clock.Now(), func(c *jwt.Claims) {
				c.IssuedAt = jwt.NewNumericDate(s.Clock.Now().Add(-time.Hour))
				c.NotBefore = c.IssuedAt
				c.Expiry = jwt.NewNumericDate(s.Clock.Now().Add(-time.Minute))
			})
		}, "expired"},
		{"not yet valid", func(t *testing.T) string {
			return issuer.token(t, subject, aud, s.Clock.Now(), func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(s.Clock.Now().Add(time.Hour)) })
		}, "not yet valid"},
		{"no exp", func(t *testing.T) string {
			return issuer.token(t, subject, aud, s.Clock.Now(), func(c *jwt.Claims) { c.Expiry = nil })
		}, "no exp"},
		{"bad signature: right kid, another key", func(t *testing.T) string {
			issuer.mu.Lock()
			kid := issuer.kid
			issuer.mu.Unlock()
			c := jwt.Claims{Issuer: issuer.URL, Subject: subject, Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(s.Clock.Now().Add(time.Minute))}
			return signJWT(t, newES256(t), jose.ES256, kid, c)
		}, "does not verify"},
		{"unknown kid", func(t *testing.T) string {
			c := jwt.Claims{Issuer: issuer.URL, Subject: subject, Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(s.Clock.Now().Add(time.Minute))}
			return signJWT(t, newES256(t), jose.ES256, "no-such-kid", c)
		}, "no key"},
		{"disabled agent", func(t *testing.T) string { return issuer.token(t, "disabled", aud, s.Clock.Now(), nil) }, "disabled"},
		{"not a JWT", func(t *testing.T) string { return "opaque-token" }, "not a signed JWT"},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			a := tt.token(t)
			r := send(t, s, call{form: jwtBearerForm(a, nil)})
			e := r.err(t)
			if r.status != 400 || e.Code != "invalid_grant" {
				t.Fatalf("HTTP %d %s (%s), want 400 invalid_grant", r.status, e.Code, e.Description)
			}
			if !containsFold(e.Description, tt.mention) {
				t.Errorf("error_description %q does not mention %q", e.Description, tt.mention)
			}
			noLeak(t, r.body, []string{a})
		})
	}

	t.Run("refused: missing assertion", func(t *testing.T) {
		r := send(t, s, call{form: url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}}})
		if e := r.err(t); r.status != 400 || e.Code != "invalid_request" {
			t.Errorf("HTTP %d %s, want 400 invalid_request", r.status, e.Code)
		}
	})
}
