package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
)

// The MCP authorization flow end to end, with the official Go MCP SDK's own OAuth
// client: it connects without a token, gets 401 with resource_metadata, reads the
// protected resource metadata, discovers agentguard from it, registers itself
// dynamically (RFC 7591), is approved by an administrator, signs the user in
// (authorization code + PKCE, resource = the MCP server), and calls a tool that
// sees the user.
func TestMCPClientDiscoversAgentguardAndSignsIn(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	endpoint := mcpServer(t, s.URL) // requires agent.access
	// The MCP server is registered in agentguard as an agent whose audience is its
	// URL: users get tokens for it (agent.access) through clients its inbound rules
	// name.
	var server struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "example MCP server", "owner": "tests", "type": "interactive",
		"audience": endpoint}, &server); code != 201 {
		t.Fatalf("register the MCP server: HTTP %d", code)
	}
	s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "mcp-users"}, nil)
	var alice struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": "alice-mcp-password", "groups": []string{"mcp-users"}}, &alice); code != 201 {
		t.Fatalf("user: HTTP %d", code)
	}

	const redirect = "http://127.0.0.1:33418/callback"
	var registered string
	// The administrator's and the user's part, done when the SDK opens the
	// authorization URL: approve the registration, let mcp-users reach the MCP
	// server through this client, then sign in as a browser would.
	fetcher := func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		u, err := url.Parse(args.URL)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		registered = q.Get("client_id")
		if q.Get("resource") != endpoint || q.Get("code_challenge_method") != "S256" {
			return nil, errors.New("the authorization request lacks the resource or PKCE: " + args.URL)
		}
		if code := s.Do(t, "POST", "/api/v1/client-registrations/"+registered+"/approve", nil, nil); code != 200 {
			return nil, errors.New("approve: HTTP " + http.StatusText(code))
		}
		if code := s.Do(t, "POST", "/api/v1/agents/"+server.ID+"/inbound", map[string]any{"client_id": registered, "groups": []string{"mcp-users"}}, nil); code != 201 {
			return nil, errors.New("inbound rule: HTTP " + http.StatusText(code))
		}
		b := signintest.NewBrowser(t, s.URL)
		page := b.Get(t, args.URL)
		res := b.Submit(t, page, map[string]string{"username": "alice", "password": "alice-mcp-password"})
		if res.Location == nil {
			return nil, errors.New("no redirect after sign-in: " + res.Body)
		}
		rq := res.Location.Query()
		return &auth.AuthorizationResult{Code: rq.Get("code"), State: rq.Get("state"), Iss: rq.Get("iss")}, nil
	}
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "test MCP client", RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}},
		RedirectURL:              redirect,
		AuthorizationCodeFetcher: fetcher,
		Client:                   &http.Client{Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "test MCP client", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: handler, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer session.Close()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var who WhoAmI
	json.Unmarshal(b, &who)
	if who.Subject != alice.ID || who.ClientID != registered || !strings.HasPrefix(registered, "cli_") {
		t.Fatalf("whoami = %s (registered client %s, alice %s)", b, registered, alice.ID)
	}
}
