package idp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// upstream is a small but real OpenID Connect provider on a loopback socket: its
// own signing key, discovery, JWKS, an authorization endpoint that signs in one
// configured user at once, a token endpoint that checks the client secret and the
// PKCE verifier, and userinfo. Misbehaviours can be switched on to test refusals.
type upstream struct {
	*httptest.Server
	ClientID, Secret string

	mu                                    sync.Mutex
	claims                                map[string]any // of the next sign-in
	extra                                 map[string]any // served by userinfo
	codes                                 map[string]grant
	key                                   *ecdsa.PrivateKey
	rogue                                 *ecdsa.PrivateKey // signs when BadSignature is set
	Deny                                  bool              // answer error=access_denied
	BadNonce, BadSignature, WrongAudience bool
	Tokens                                int // token requests served
}

type grant struct {
	nonce, challenge, redirect string
	claims                     map[string]any
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rogue, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := &upstream{ClientID: "agentguard", Secret: "upstream-client-secret-0123456789", codes: map[string]grant{}, key: key, rogue: rogue}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": u.URL, "authorization_endpoint": u.URL + "/authorize", "token_endpoint": u.URL + "/token",
			"jwks_uri": u.URL + "/jwks", "userinfo_endpoint": u.URL + "/userinfo",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", u.authorize)
	mux.HandleFunc("POST /token", u.token)
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		defer u.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer at-for-"+u.claims["sub"].(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		out := map[string]any{"sub": u.claims["sub"]}
		for k, v := range u.extra {
			out[k] = v
		}
		json.NewEncoder(w).Encode(out)
	})
	u.Server = httptest.NewServer(mux)
	t.Cleanup(u.Close)
	return u
}

// SignInAs sets the claims of the next sign-in.
func (u *upstream) SignInAs(claims map[string]any) {
	u.mu.Lock()
	u.claims = claims
	u.mu.Unlock()
}

func (u *upstream) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u.mu.Lock()
	defer u.mu.Unlock()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != u.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if u.Deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "the user declined")
	} else {
		code := randomString()
		u.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), claims: u.claims}
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (u *upstream) token(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Tokens++
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if id != u.ClientID || subtle.ConstantTimeCompare([]byte(sec), []byte(u.Secret)) != 1 {
		fail("invalid_client")
		return
	}
	g, ok := u.codes[r.PostFormValue("code")]
	delete(u.codes, r.PostFormValue("code"))
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	if !ok || g.redirect != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		fail("invalid_grant")
		return
	}
	now := time.Now()
	claims := map[string]any{"iss": u.URL, "aud": u.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": g.nonce}
	if u.BadNonce {
		claims["nonce"] = "not-the-nonce"
	}
	if u.WrongAudience {
		claims["aud"] = "someone-else"
	}
	for k, v := range g.claims {
		claims[k] = v
	}
	key := u.key
	if u.BadSignature {
		key = u.rogue
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	idt, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-for-" + g.claims["sub"].(string), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

func randomString() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
