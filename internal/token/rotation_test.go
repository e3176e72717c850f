package token_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// getToken runs client_credentials with client_secret_basic against s.
func getToken(t *testing.T, s *servertest.Server, id, sec string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("token: HTTP %d %s", resp.StatusCode, b)
	}
	return out.AccessToken
}

func active(t *testing.T, s *servertest.Server, id, sec, tok string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("introspect: HTTP %d", resp.StatusCode)
	}
	return out.Active
}

func jwks(t *testing.T, s *servertest.Server) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(s.URL + "/oauth2/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}

// verifies checks raw with the published JWKS only, as a resource server would.
func verifies(t *testing.T, set jose.JSONWebKeySet, raw string) bool {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return false
	}
	var c jwt.Claims
	return tok.Claims(keys[0].Key, &c) == nil
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// A rotation signs new tokens with a new key and keeps the old key published until
// every token it signed has expired; then the old key leaves the JWKS.
func TestKeyRotation(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			id, sec := s.Agent(t, "rotation")
			t1 := getToken(t, s, id, sec)

			var rotated struct{ KID string }
			if code := s.Do(t, "POST", "/api/v1/keys/rotate", nil, &rotated); code != http.StatusCreated || rotated.KID == "" {
				t.Fatalf("rotate: HTTP %d %+v", code, rotated)
			}
			if code := s.DoAs(t, "", "POST", "/api/v1/keys/rotate", nil, nil); code != http.StatusUnauthorized {
				t.Errorf("rotate without admin token: HTTP %d, want 401", code)
			}
			t2 := getToken(t, s, id, sec)
			k1, k2 := kidOf(t, t1), kidOf(t, t2)
			if k2 != rotated.KID || k1 == k2 {
				t.Fatalf("T1 kid %s, T2 kid %s, rotation answered %s", k1, k2, rotated.KID)
			}
			set := jwks(t, s)
			if len(set.Key(k1)) != 1 || len(set.Key(k2)) != 1 {
				t.Fatalf("JWKS kids %v, want both %s and %s", kids(set), k1, k2)
			}
			if !verifies(t, set, t1) || !verifies(t, set, t2) {
				t.Error("T1 or T2 does not verify with the JWKS after the rotation")
			}
			if !active(t, s, id, sec, t1) || !active(t, s, id, sec, t2) {
				t.Error("T1 or T2 is inactive after the rotation")
			}

			var list struct {
				Items []struct {
					KID     string `json:"kid"`
					Current bool   `json:"current"`
				} `json:"items"`
			}
			if code := s.Do(t, "GET", "/api/v1/keys", nil, &list); code != 200 {
				t.Fatalf("list keys: HTTP %d", code)
			}
			for _, k := range list.Items {
				if k.Current != (k.KID == k2) {
					t.Errorf("key %s current=%v", k.KID, k.Current)
				}
			}

			// Past the retention (the longest token lifetime plus leeway) the old key
			// is dropped at the next reload.
			s.Clock.Advance(25 * time.Hour)
			if err := s.Keyring.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			set = jwks(t, s)
			if len(set.Key(k1)) != 0 || len(set.Key(k2)) != 1 {
				t.Errorf("JWKS kids after the retention %v, want only %s", kids(set), k2)
			}
			if t3 := getToken(t, s, id, sec); kidOf(t, t3) != k2 || !active(t, s, id, sec, t3) {
				t.Error("the current key stopped signing after the old one was dropped")
			}
		})
	}
}

// A replica sharing the store sees another replica's rotation: an unknown kid makes
// its keyring reload, so tokens signed by the new key introspect active.
func TestKeyRotationSeenByReplica(t *testing.T) {
	dbURL, dir := storetest.DatabaseURL(t, sqlstore.Postgres)
	opts := servertest.Options{Dialect: sqlstore.Postgres, DatabaseURL: dbURL, DataDir: dir, Clock: servertest.NewClock(time.Now()),
		Configure: func(c *config.Config) { c.Issuer = "https://agentguard.replicas.test" }}
	a, b := servertest.Start(t, opts), servertest.Start(t, opts)
	id, sec := a.Agent(t, "replica-rotation")
	t1 := getToken(t, a, id, sec)
	if !active(t, b, id, sec, t1) {
		t.Fatal("a token of A is inactive on B before any rotation")
	}
	if code := a.Do(t, "POST", "/api/v1/keys/rotate", nil, nil); code != http.StatusCreated {
		t.Fatalf("rotate on A: HTTP %d", code)
	}
	t2 := getToken(t, a, id, sec)
	if kidOf(t, t2) == kidOf(t, t1) {
		t.Fatal("A did not sign with the new key")
	}
	if !active(t, b, id, sec, t2) {
		t.Error("B does not accept a token signed by the key A rotated in")
	}
	if !active(t, b, id, sec, t1) {
		t.Error("B stopped accepting the old key's token after reloading")
	}
	if !verifies(t, jwks(t, b), t2) {
		t.Error("B's JWKS does not publish the new key after reloading")
	}
	// After B's reload it signs with the new key too.
	if kidOf(t, getToken(t, b, id, sec)) != kidOf(t, t2) {
		t.Error("B still signs with the retired key after it reloaded")
	}
}
