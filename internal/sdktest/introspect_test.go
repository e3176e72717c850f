package sdktest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/sdk"
	"github.com/agentguard/agentguard/sdk/verify"
)

// A service whose middleware introspects refuses a token revoked at the real
// server, and one whose agent was disabled, before they expire; a service that
// only verifies signatures still accepts them (the trade-off Introspection buys).
func TestMiddlewareWithIntrospectionSeesRevocation(t *testing.T) {
	f := start(t)
	svc, svcSecret := f.s.Agent(t, "files-service") // the service's own credentials
	introspecting, err := verify.New(verify.Config{Issuer: f.s.URL, Audience: filesAudience,
		Introspection: &verify.Introspection{ClientID: svc, ClientSecret: svcSecret, CacheFor: time.Nanosecond}})
	if err != nil {
		t.Fatal(err)
	}
	checking := service(t, introspecting, "read:file")
	local := service(t, f.verifier(t, filesAudience), "read:file")

	c := f.client(t, sdk.ClientSecretBasic)
	tok, err := c.AccessToken(context.Background(), filesAudience, "read:file")
	if err != nil {
		t.Fatal(err)
	}
	if code := call(t, checking.URL, tok.AccessToken, nil); code != 200 {
		t.Fatalf("active token: HTTP %d", code)
	}

	// The agent revokes its token (RFC 7009).
	req, _ := http.NewRequest("POST", f.s.URL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(f.agent, f.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	if code := call(t, checking.URL, tok.AccessToken, nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked token with introspection: HTTP %d, want 401", code)
	}
	if code := call(t, local.URL, tok.AccessToken, nil); code != 200 {
		t.Fatalf("revoked token without introspection: HTTP %d (accepted until it expires)", code)
	}

	// A fresh token, then the agent is disabled.
	c = f.client(t, sdk.ClientSecretBasic)
	tok2, err := c.AccessToken(context.Background(), filesAudience, "read:file")
	if err != nil {
		t.Fatal(err)
	}
	if code := call(t, checking.URL, tok2.AccessToken, nil); code != 200 {
		t.Fatalf("second token: HTTP %d", code)
	}
	if code := f.s.Do(t, "PATCH", "/api/v1/agents/"+f.agent, map[string]any{"status": "disabled"}, nil); code != 200 {
		t.Fatalf("disable: HTTP %d", code)
	}
	if code := call(t, checking.URL, tok2.AccessToken, nil); code != http.StatusUnauthorized {
		t.Fatalf("token of a disabled agent with introspection: HTTP %d, want 401", code)
	}

	// Introspecting with credentials the server refuses is 503: the service cannot
	// tell, so it does not admit.
	wrong, err := verify.New(verify.Config{Issuer: f.s.URL, Audience: filesAudience,
		Introspection: &verify.Introspection{ClientID: svc, ClientSecret: "not-the-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if code := call(t, service(t, wrong, "read:file").URL, tok2.AccessToken, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("introspection with a wrong secret: HTTP %d, want 503", code)
	}
}
