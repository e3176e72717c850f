package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/sdk"
)

// people is a signed-in user with a token for a human-mode agent.
type people struct {
	userID    string
	userToken string // the user's access token, audience = the agent
	agentID   string
	agentAud  string
	secret    string
	clientID  string // the public client the user signed in through
}

// signedIn creates a group, a user, a human agent granted read:file, a public client
// with an inbound rule for the group, signs the user in through the real login page
// (authorization code + PKCE) and returns the user's token for the agent.
func signedIn(t *testing.T, f *fixture, identity string) people {
	t.Helper()
	s := f.s
	if code := s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "staff-" + identity}, nil); code != 201 {
		t.Fatalf("group: HTTP %d", code)
	}
	var u struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "alice-" + identity, "password": "correct horse battery staple",
		"groups": []string{"staff-" + identity}}, &u); code != 201 {
		t.Fatalf("user: HTTP %d", code)
	}
	var a struct{ ID, Audience string }
	if code := s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "assistant-" + identity, "owner": "tests", "type": "interactive", "access_identity": identity}, &a); code != 201 {
		t.Fatalf("agent: HTTP %d", code)
	}
	var sec struct {
		ClientSecret string `json:"client_secret"`
	}
	s.Do(t, "POST", "/api/v1/agents/"+a.ID+"/secrets", nil, &sec)
	f.grant(t, a.ID, filesAudience, "read:file")
	const redirect = "http://127.0.0.1:9/callback"
	clientID, _ := signintest.Client(t, s, "spa", []string{redirect}, nil)
	if code := s.Do(t, "POST", "/api/v1/agents/"+a.ID+"/inbound", map[string]any{"client_id": clientID, "groups": []string{"staff-" + identity}}, nil); code != 201 {
		t.Fatalf("inbound rule: HTTP %d", code)
	}

	b := signintest.NewBrowser(t, s.URL)
	verifier, challenge := signintest.PKCE()
	auth := s.URL + "/oauth2/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid"}, "resource": {a.Audience}, "state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	page := b.Get(t, auth)
	res := b.Submit(t, page, map[string]string{"username": "alice-" + identity, "password": "correct horse battery staple"})
	if res.Location == nil || res.Location.Query().Get("code") == "" {
		t.Fatalf("sign-in: HTTP %d %v\n%s", res.Status, res.Location, res.Body)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {res.Location.Query().Get("code")}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_id": {clientID}}
	resp, err := http.PostForm(s.URL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tr)
	if resp.StatusCode != 200 || tr.AccessToken == "" {
		t.Fatalf("code redemption: HTTP %d", resp.StatusCode)
	}
	return people{userID: u.ID, userToken: tr.AccessToken, agentID: a.ID, agentAud: a.Audience, secret: sec.ClientSecret, clientID: clientID}
}

func (p people) client(t *testing.T, f *fixture) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{Issuer: f.s.URL, ClientID: p.agentID, ClientSecret: p.secret, AuthMethod: sdk.ClientSecretBasic})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ExchangeToken against the real server: the user's token for the agent becomes a
// token for the files service whose sub is the user and whose act names the agent;
// the middleware exposes both; the result is cached per user token.
func TestExchangeTokenEndToEnd(t *testing.T) {
	f := start(t)
	p := signedIn(t, f, "human")
	c := p.client(t, f)
	ctx := context.Background()

	// The agent's own middleware accepts the user's token (audience = the agent).
	agentSide := f.verifier(t, p.agentAud)
	caller, err := agentSide.Verify(ctx, p.userToken)
	if err != nil || caller.Subject != p.userID || !caller.HasScopes("agent.access") {
		t.Fatalf("user token at the agent: %v %v", caller, err)
	}

	tok, err := c.ExchangeToken(ctx, p.userToken, filesAudience, "read:file")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.ExchangeToken(ctx, p.userToken, filesAudience, "read:file")
	if again.AccessToken != tok.AccessToken {
		t.Fatal("the exchanged token was not cached")
	}
	srv := service(t, f.verifier(t, filesAudience), "read:file")
	var got map[string]any
	if code := call(t, srv.URL, tok.AccessToken, &got); code != 200 {
		t.Fatalf("files service: HTTP %d", code)
	}
	if got["sub"] != p.userID || got["act"].([]any)[0] != p.agentID {
		t.Fatalf("caller at the files service %v", got)
	}

	// On behalf of the user at the credential API: the audit event names both.
	if code := f.s.Do(t, "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "llm", "name": "llm", "value": "sk-user-scoped-0001"}, nil); code != 201 {
		t.Fatalf("HTTP %d", code)
	}
	f.s.Do(t, "POST", "/api/v1/agents/"+p.agentID+"/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "llm"}, nil)
	if k, err := c.APIKeyFor(ctx, p.userToken, "llm"); err != nil || k.Value != "sk-user-scoped-0001" {
		t.Fatalf("APIKeyFor: %v %v", k, err)
	}
	var events struct {
		Items []struct {
			Action   string `json:"action"`
			Decision string `json:"decision"`
			AgentID  string `json:"agent_id"`
			User     string `json:"user"`
		} `json:"items"`
	}
	f.s.Do(t, "GET", "/api/v1/audit/events?category=credential&agent_id="+p.agentID, nil, &events)
	if len(events.Items) == 0 || events.Items[0].User != p.userID || events.Items[0].Decision != "allow" {
		t.Fatalf("credential audit %+v", events.Items)
	}

	// The Transport on the user's behalf.
	type userKey struct{}
	rt, _ := c.Transport(nil, sdk.Target{Prefix: srv.URL, Audience: filesAudience, Scopes: []string{"read:file"},
		UserToken: func(r *http.Request) string { s, _ := r.Context().Value(userKey{}).(string); return s }})
	req, _ := http.NewRequestWithContext(context.WithValue(ctx, userKey{}, p.userToken), "GET", srv.URL, nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("transport on behalf: %v %v", resp, err)
	}
	resp.Body.Close()
}

// What token exchange refuses, as typed errors with the server's reasons.
func TestExchangeTokenRefusals(t *testing.T) {
	f := start(t)
	human := signedIn(t, f, "human")
	machine := signedIn(t, f, "machine")
	ctx := context.Background()
	hc := human.client(t, f)

	cases := []struct {
		name   string
		c      *sdk.Client
		token  string
		aud    string
		scopes []string
		want   error
		words  string
	}{
		{"not a token of this issuer", hc, "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", filesAudience, nil, sdk.ErrInvalidGrant, "subject_token"},
		{"another agent's user token", hc, machine.userToken, filesAudience, nil, sdk.ErrInvalidGrant, "audience"},
		{"a scope the agent was not granted", hc, human.userToken, filesAudience, []string{"write:file"}, sdk.ErrNotAuthorized, "write:file"},
		{"an agent acting as itself (machine) may not exchange", machine.client(t, f), machine.userToken, filesAudience, nil, sdk.ErrNotAuthorized, "access_identity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.ExchangeToken(ctx, tc.token, tc.aud, tc.scopes...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.words)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Fatal("the error holds the user's token")
			}
		})
	}
	// Revoked: once the client revokes the user's token, a new exchange is refused
	// (one already cached stays valid until it expires, like any JWT).
	if _, err := hc.ExchangeToken(ctx, human.userToken, filesAudience); err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(f.s.URL+"/oauth2/revoke", url.Values{"token": {human.userToken}, "client_id": {human.clientID}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := hc.ExchangeToken(ctx, human.userToken, filesAudience, "read:file"); !errors.Is(err, sdk.ErrInvalidGrant) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("after revocation: %v", err)
	}
}
