package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/sdk"
)

// mcpServer starts the example on a loopback socket for the issuer and returns its
// endpoint URL.
func mcpServer(t *testing.T, issuer string, scopes ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resource := "http://" + ln.Addr().String() + "/mcp"
	h, err := NewHandler(Config{Issuer: issuer, Resource: resource, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return resource
}

func connect(t *testing.T, endpoint string, hc *http.Client) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, nil)
	return c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
}

// Without a token the MCP endpoint answers 401 with a challenge naming its
// protected resource metadata, and the metadata names agentguard.
func TestMCPServerRefusesWithoutTokenAndPointsToAgentguard(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	endpoint := mcpServer(t, s.URL)

	if _, err := connect(t, endpoint, http.DefaultClient); err == nil {
		t.Fatal("an MCP client without a token connected")
	}
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != 401 || err != nil || len(challenges) != 1 || challenges[0].Scheme != "bearer" {
		t.Fatalf("HTTP %d, challenges %v %v", resp.StatusCode, challenges, err)
	}
	mdURL := challenges[0].Params["resource_metadata"]
	// The MCP SDK's own client-side discovery: fetch and validate (RFC 9728 §3.3).
	prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), mdURL, endpoint, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != s.URL || prm.ScopesSupported[0] != "agent.access" {
		t.Fatalf("metadata %+v", prm)
	}
	// From there, agentguard's own metadata.
	var asm struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	r, err := http.Get(prm.AuthorizationServers[0] + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r.Body).Decode(&asm)
	r.Body.Close()
	if asm.Issuer != s.URL || asm.TokenEndpoint != s.URL+"/oauth2/token" {
		t.Fatalf("authorization server metadata %+v", asm)
	}
}

// An agent with a grant on the MCP server's audience reaches its tools through the
// SDK's Transport; the tool sees the verified caller. A token for another audience
// does not get in.
func TestMCPServerWithAgentToken(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	endpoint := mcpServer(t, s.URL, "tools:call")
	if code := s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "example MCP server", "audience": endpoint,
		"scopes": []map[string]string{{"name": "tools:call"}}}, nil); code != 201 {
		t.Fatalf("HTTP %d", code)
	}
	if code := s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "other", "audience": "https://other.example.com",
		"scopes": []map[string]string{{"name": "tools:call"}}}, nil); code != 201 {
		t.Fatalf("HTTP %d", code)
	}
	id, secret := s.Agent(t, "mcp-caller")
	for _, aud := range []string{endpoint, "https://other.example.com"} {
		if code := s.Do(t, "POST", "/api/v1/agents/"+id+"/grants", map[string]any{"audience": aud, "scopes": []string{"tools:call"}}, nil); code != 201 {
			t.Fatalf("HTTP %d", code)
		}
	}
	ag, err := sdk.New(sdk.Config{Issuer: s.URL, ClientID: id, ClientSecret: secret, AuthMethod: sdk.ClientSecretBasic})
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(endpoint, "/mcp")

	wrong, _ := ag.Transport(nil, sdk.Target{Prefix: prefix, Audience: "https://other.example.com"})
	if _, err := connect(t, endpoint, &http.Client{Transport: wrong}); err == nil {
		t.Fatal("a token for another audience connected")
	}

	rt, err := ag.Transport(nil, sdk.Target{Prefix: prefix, Audience: endpoint, Scopes: []string{"tools:call"}})
	if err != nil {
		t.Fatal(err)
	}
	session, err := connect(t, endpoint, &http.Client{Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	res, err := session.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var who WhoAmI
	json.Unmarshal(b, &who)
	if who.Subject != id || who.ClientID != id || len(who.Scopes) != 1 || who.Scopes[0] != "tools:call" {
		t.Fatalf("whoami = %s", b)
	}
}
