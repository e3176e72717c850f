package sdktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/sdk"
	"github.com/agentguard/agentguard/sdk/verify"
)

const filesAudience = "https://files.example.com"

// fixture is a running agentguard with a files service, an agent granted read:file
// on it, and the agent's client secret.
type fixture struct {
	s      *servertest.Server
	agent  string
	secret string
}

func start(t *testing.T) *fixture {
	t.Helper()
	s := servertest.Start(t, servertest.Options{})
	f := &fixture{s: s}
	if code := s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{
		"name": "files", "audience": filesAudience,
		"scopes": []map[string]string{{"name": "read:file"}, {"name": "write:file"}},
	}, nil); code != http.StatusCreated {
		t.Fatalf("create resource server: HTTP %d", code)
	}
	f.agent, f.secret = s.Agent(t, "invoice-bot")
	f.grant(t, f.agent, filesAudience, "read:file")
	return f
}

func (f *fixture) grant(t *testing.T, agentID, aud string, scopes ...string) {
	t.Helper()
	if code := f.s.Do(t, "POST", "/api/v1/agents/"+agentID+"/grants", map[string]any{"audience": aud, "scopes": scopes}, nil); code != http.StatusCreated {
		t.Fatalf("grant %v on %s: HTTP %d", scopes, aud, code)
	}
}

// client is an SDK client for the fixture's agent with a client secret.
func (f *fixture) client(t *testing.T, m sdk.AuthMethod) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{Issuer: f.s.URL, ClientID: f.agent, ClientSecret: f.secret, AuthMethod: m},
		sdk.WithRetry(2, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifier accepts the fixture issuer's tokens for audience.
func (f *fixture) verifier(t *testing.T, audience string) *verify.Verifier {
	t.Helper()
	v, err := verify.New(verify.Config{Issuer: f.s.URL, Audience: audience, MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// service runs a handler protected by v requiring scopes, answering with the
// caller as JSON.
func service(t *testing.T, v *verify.Verifier, scopes ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(v.Require(scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.CallerFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"sub": c.Subject, "client_id": c.ClientID, "act": c.Actors, "scope": c.Scopes})
	})))
	t.Cleanup(srv.Close)
	return srv
}

func newKeyPEM(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
