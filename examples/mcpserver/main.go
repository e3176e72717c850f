// Command mcpserver is an MCP server, built with the official Go MCP SDK, that only
// callers authorized by agentguard can use. Every request to its endpoint must carry
// an agentguard access token for the server's audience (its URL) with the required
// scope; it serves RFC 9728 protected resource metadata naming agentguard as its
// authorization server, so an MCP client that gets a 401 finds agentguard, registers
// (RFC 7591) and signs the user in on its own.
//
//	go run ./examples/mcpserver -issuer http://127.0.0.1:8080 -addr 127.0.0.1:8090
//
// Register it in agentguard as an agent whose audience is its URL (users get tokens
// for it with scope agent.access; its inbound rules say who may), or as a resource
// server (agents get tokens for it with client_credentials); see docs/sdk.md, "MCP".
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/sdk/verify"
)

// Config is what the server needs.
type Config struct {
	Issuer   string   // agentguard's issuer URL
	Resource string   // this server's MCP endpoint URL, also the audience tokens must carry
	Scopes   []string // required scopes (default agent.access)
}

// NewHandler returns the MCP endpoint (at the resource URL's path) protected by the
// verify middleware, and the protected resource metadata, on one mux.
func NewHandler(cfg Config) (http.Handler, error) {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"agent.access"}
	}
	mux := http.NewServeMux()
	md := verify.ResourceMetadata{
		Resource:             cfg.Resource,
		AuthorizationServers: []string{cfg.Issuer},
		ScopesSupported:      cfg.Scopes,
		ResourceName:         "agentguard example MCP server",
	}
	mdURL, err := md.Register(mux)
	if err != nil {
		return nil, err
	}
	v, err := verify.New(verify.Config{Issuer: cfg.Issuer, Audience: cfg.Resource, RequiredScopes: cfg.Scopes, ResourceMetadataURL: mdURL})
	if err != nil {
		return nil, err
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "agentguard-example", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Say who is calling, as agentguard's token tells it"}, whoami)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echo a message"}, echo)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)

	// verify checks the token and answers refusals (RFC 6750, with
	// resource_metadata); the MCP SDK's bearer middleware then only copies the
	// verified caller into its TokenInfo, which binds each MCP session to its user
	// and reaches the tools as req.Extra.TokenInfo.
	fromCaller := func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		c, ok := verify.CallerFrom(r.Context())
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Scopes: c.Scopes, Expiration: c.ExpiresAt, UserID: c.Subject, Extra: map[string]any{"caller": c}}, nil
	}
	path := "/"
	if i := strings.Index(strings.TrimPrefix(strings.TrimPrefix(cfg.Resource, "https://"), "http://"), "/"); i >= 0 {
		path = strings.TrimPrefix(strings.TrimPrefix(cfg.Resource, "https://"), "http://")[i:]
	}
	mux.Handle(path, v.Middleware(auth.RequireBearerToken(fromCaller, nil)(mcpHandler)))
	return mux, nil
}

// WhoAmI is the whoami tool's answer.
type WhoAmI struct {
	Subject  string   `json:"subject" jsonschema:"the user or agent the token is for"`
	ClientID string   `json:"client_id" jsonschema:"the OAuth client the token was issued to"`
	Actors   []string `json:"actors,omitempty" jsonschema:"the agents acting on the subject's behalf, nearest first"`
	Scopes   []string `json:"scopes" jsonschema:"the scopes granted"`
}

func whoami(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoAmI, error) {
	c, ok := callerOf(req)
	if !ok {
		return nil, WhoAmI{}, fmt.Errorf("no verified caller")
	}
	return nil, WhoAmI{Subject: c.Subject, ClientID: c.ClientID, Actors: c.Actors, Scopes: c.Scopes}, nil
}

// EchoIn is the echo tool's input.
type EchoIn struct {
	Message string `json:"message" jsonschema:"what to echo"`
}

func echo(ctx context.Context, req *mcp.CallToolRequest, in EchoIn) (*mcp.CallToolResult, EchoIn, error) {
	return nil, in, nil
}

func callerOf(req *mcp.CallToolRequest) (*verify.Caller, bool) {
	if req.Extra == nil || req.Extra.TokenInfo == nil {
		return nil, false
	}
	c, ok := req.Extra.TokenInfo.Extra["caller"].(*verify.Caller)
	return c, ok
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "agentguard's issuer URL")
	resource := flag.String("resource", "", "this server's MCP endpoint URL, the audience of its tokens (default http://<addr>/mcp)")
	scope := flag.String("scope", "agent.access", "required scopes, space-separated")
	flag.Parse()
	if *resource == "" {
		*resource = "http://" + *addr + "/mcp"
	}
	h, err := NewHandler(Config{Issuer: *issuer, Resource: *resource, Scopes: strings.Fields(*scope)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	slog.Info("MCP server", "endpoint", *resource, "issuer", *issuer)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
