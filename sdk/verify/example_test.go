package verify_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/agentguard/agentguard/sdk/verify"
)

// A service accepts agentguard tokens for its audience, with scopes per route.
func Example() {
	v, err := verify.New(verify.Config{
		Issuer:              "https://agentguard.example.com",
		Audience:            "https://files.example.com",
		ResourceMetadataURL: "https://files.example.com/.well-known/oauth-protected-resource",
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /files/{id}", v.Require("read:file")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.CallerFrom(r.Context())
		fmt.Fprintf(w, "hello %s (via %s)\n", c.Subject, c.Agent())
	})))
	mux.Handle("PUT /files/{id}", v.Require("write:file")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	// RFC 9728 metadata so OAuth (and MCP) clients find agentguard.
	verify.ResourceMetadata{
		Resource:             "https://files.example.com",
		AuthorizationServers: []string{"https://agentguard.example.com"},
		ScopesSupported:      []string{"read:file", "write:file"},
	}.Register(mux)
	_ = http.ListenAndServe // http.ListenAndServe(":8443", mux) behind TLS
}

func ExampleMetadataURL() {
	u, _ := verify.MetadataURL("https://tools.example.com/mcp")
	fmt.Println(u)
	// Output: https://tools.example.com/.well-known/oauth-protected-resource/mcp
}

// A delegated caller: an agent acting for a user.
func ExampleCaller() {
	ctx := verify.WithCaller(context.Background(), &verify.Caller{
		Subject: "usr_alice", ClientID: "agt_assistant", Actors: []string{"agt_assistant"}, Scopes: []string{"employees:read"},
	})
	c, _ := verify.CallerFrom(ctx)
	fmt.Println(c.Subject, c.Delegated(), c.Agent(), c.HasScopes("employees:read"))
	fmt.Println(c)
	// Output:
	// usr_alice true agt_assistant true
	// Caller{sub="usr_alice" client="agt_assistant" act=agt_assistant scope="employees:read"}
}
