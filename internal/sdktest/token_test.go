package sdktest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/sdk"
)

// The SDK gets a token with each client-secret method from the real server,
// discovering the token endpoint, and the middleware accepts it for the audience.
func TestAccessTokenAcceptedByMiddleware(t *testing.T) {
	f := start(t)
	srv := service(t, f.verifier(t, filesAudience), "read:file")
	for _, m := range []sdk.AuthMethod{sdk.ClientSecretBasic, sdk.ClientSecretPost} {
		t.Run(string(m), func(t *testing.T) {
			c := f.client(t, m)
			tok, err := c.AccessToken(context.Background(), filesAudience, "read:file")
			if err != nil {
				t.Fatal(err)
			}
			if tok.Scope != "read:file" || tok.Audience != filesAudience {
				t.Fatalf("token %v", tok)
			}
			var caller map[string]any
			if code := call(t, srv.URL, tok.AccessToken, &caller); code != 200 {
				t.Fatalf("service answered %d", code)
			}
			if caller["sub"] != f.agent || caller["client_id"] != f.agent {
				t.Fatalf("caller %v", caller)
			}
		})
	}
}

func call(t *testing.T, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// Who may and may not reach the service: only tokens of this issuer, for this
// audience, with the scope.
func TestMiddlewareRefusesOtherTokens(t *testing.T) {
	f := start(t)
	if code := f.s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{
		"name": "hr", "audience": "https://hr.example.com", "scopes": []map[string]string{{"name": "employees:read"}},
	}, nil); code != 201 {
		t.Fatalf("HTTP %d", code)
	}
	f.grant(t, f.agent, "https://hr.example.com", "employees:read")
	srv := service(t, f.verifier(t, filesAudience), "read:file")
	c := f.client(t, sdk.ClientSecretBasic)
	ctx := context.Background()

	hr, err := c.AccessToken(ctx, "https://hr.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := c.AccessToken(ctx, "") // agentguard itself
	if err != nil {
		t.Fatal(err)
	}
	other := servertest.Start(t, servertest.Options{}) // another agentguard
	if code := other.Do(t, "POST", "/api/v1/resource-servers", map[string]any{
		"name": "files", "audience": filesAudience, "scopes": []map[string]string{{"name": "read:file"}},
	}, nil); code != 201 {
		t.Fatalf("HTTP %d", code)
	}
	oid, osec := other.Agent(t, "impostor")
	other.Do(t, "POST", "/api/v1/agents/"+oid+"/grants", map[string]any{"audience": filesAudience, "scopes": []string{"read:file"}}, nil)
	oc, _ := sdk.New(sdk.Config{Issuer: other.URL, ClientID: oid, ClientSecret: osec, AuthMethod: sdk.ClientSecretBasic})
	foreign, err := oc.AccessToken(ctx, filesAudience, "read:file")
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"token for another service":           hr.AccessToken,
		"token for agentguard itself":         cred.AccessToken,
		"same audience, another issuer":       foreign.AccessToken,
		"no token":                            "",
		"the admin bootstrap token":           servertest.AdminToken,
		"the client secret as a bearer token": f.secret,
	} {
		if code := call(t, srv.URL, tok, nil); code != 401 {
			t.Errorf("%s: HTTP %d, want 401", name, code)
		}
	}
}

// A scope the agent was not granted, an unknown audience and a wrong secret come
// back as typed errors with the server's own words.
func TestServerRefusalsAreTyped(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	c := f.client(t, sdk.ClientSecretBasic)
	_, err := c.AccessToken(ctx, filesAudience, "write:file")
	var e *sdk.Error
	if !errors.Is(err, sdk.ErrNotAuthorized) || !errors.As(err, &e) || e.Code != "invalid_scope" || !strings.Contains(e.Description, "write:file") {
		t.Fatalf("not granted: %v", err)
	}
	if _, err := c.AccessToken(ctx, "https://unknown.example.com"); !errors.Is(err, sdk.ErrNotAuthorized) || !strings.Contains(err.Error(), "invalid_target") {
		t.Fatalf("unknown audience: %v", err)
	}
	bad, _ := sdk.New(sdk.Config{Issuer: f.s.URL, ClientID: f.agent, ClientSecret: "agcs_wrong-secret-value", AuthMethod: sdk.ClientSecretBasic})
	_, err = bad.AccessToken(ctx, filesAudience)
	if !errors.Is(err, sdk.ErrInvalidClient) || strings.Contains(err.Error(), "agcs_wrong-secret-value") {
		t.Fatalf("wrong secret: %v", err)
	}
	// Disabling the agent: its next token request is refused.
	if code := f.s.Do(t, "PATCH", "/api/v1/agents/"+f.agent, map[string]any{"status": "disabled"}, nil); code != 200 {
		t.Fatalf("disable: HTTP %d", code)
	}
	if _, err := c.AccessToken(ctx, filesAudience, "write:file"); !errors.Is(err, sdk.ErrInvalidClient) {
		t.Fatalf("disabled agent: %v", err)
	}
}

// private_key_jwt against the real server: a PEM key registered without a kid is
// found by its thumbprint (the SDK's default kid); with a kid, by that kid. Each
// request signs a fresh assertion (the server refuses a replayed jti).
func TestPrivateKeyJWT(t *testing.T) {
	f := start(t)
	for _, kid := range []string{"", "agent-key-1"} {
		t.Run("kid="+kid, func(t *testing.T) {
			key, pubPEM := newKeyPEM(t)
			body := map[string]any{"pem": pubPEM}
			if kid != "" {
				body["kid"] = kid
			}
			if code := f.s.Do(t, "POST", "/api/v1/agents/"+f.agent+"/keys", body, nil); code != 201 {
				t.Fatalf("register key: HTTP %d", code)
			}
			c, err := sdk.New(sdk.Config{Issuer: f.s.URL, ClientID: f.agent, PrivateKey: key, KeyID: kid, AuthMethod: sdk.PrivateKeyJWT})
			if err != nil {
				t.Fatal(err)
			}
			for _, aud := range []string{filesAudience, ""} {
				if _, err := c.AccessToken(context.Background(), aud); err != nil {
					t.Fatalf("%q: %v", aud, err)
				}
			}
		})
	}
}

// A config file with PRIVATE_KEY_JWT, the key's path in AGENTGUARD_PRIVATE_KEY.
func TestConfigFileAgainstServer(t *testing.T) {
	f := start(t)
	key, pubPEM := newKeyPEM(t)
	if code := f.s.Do(t, "POST", "/api/v1/agents/"+f.agent+"/keys", map[string]any{"pem": pubPEM, "kid": "k1"}, nil); code != 201 {
		t.Fatalf("HTTP %d", code)
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "agent.key")
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	cfgPath := filepath.Join(dir, "client-config.json")
	os.WriteFile(cfgPath, []byte(`{"clientId": "`+f.agent+`", "issuer": "`+f.s.URL+`", "scope": "`+filesAudience+`|read:file",
		"authnConfiguration": {"identityType": "CLIENT", "authnMethod": "PRIVATE_KEY_JWT", "keyId": "k1"}}`), 0o600)
	t.Setenv("AGENTGUARD_PRIVATE_KEY", keyPath)
	t.Setenv("AGENTGUARD_SDK_CONFIG", cfgPath)
	c, err := sdk.NewFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.AccessToken(context.Background(), "") // the file's default target
	if err != nil || tok.Audience != filesAudience || tok.Scope != "read:file" {
		t.Fatalf("%v %v", tok, err)
	}
}

// After a signing key rotation, the middleware fetches the JWKS again for the new
// kid and accepts the new tokens; tokens of the old key stay valid.
func TestMiddlewareFollowsKeyRotation(t *testing.T) {
	f := start(t)
	srv := service(t, f.verifier(t, filesAudience))
	c := f.client(t, sdk.ClientSecretBasic)
	ctx := context.Background()
	before, _ := c.AccessToken(ctx, filesAudience)
	if code := call(t, srv.URL, before.AccessToken, nil); code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	if code := f.s.Do(t, "POST", "/api/v1/keys/rotate", nil, nil); code != 201 {
		t.Fatalf("rotate: HTTP %d", code)
	}
	c.InvalidateToken(filesAudience)
	after, err := c.AccessToken(ctx, filesAudience)
	if err != nil || after.AccessToken == before.AccessToken {
		t.Fatalf("%v %v", after, err)
	}
	for _, tok := range []string{after.AccessToken, before.AccessToken} {
		if code := call(t, srv.URL, tok, nil); code != 200 {
			t.Fatalf("HTTP %d after rotation", code)
		}
	}
}

// The Transport carries the SDK's tokens to a protected service.
func TestTransportToProtectedService(t *testing.T) {
	f := start(t)
	srv := service(t, f.verifier(t, filesAudience), "read:file")
	c := f.client(t, sdk.ClientSecretBasic)
	rt, err := c.Transport(nil, sdk.Target{Prefix: srv.URL, Audience: filesAudience, Scopes: []string{"read:file"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt}).Get(srv.URL + "/files/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
}
