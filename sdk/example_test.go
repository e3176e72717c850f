package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/agentguard/agentguard/sdk"
)

// The three-line quick start: configuration from AGENTGUARD_ISSUER,
// AGENTGUARD_CLIENT_ID and AGENTGUARD_CLIENT_SECRET, a token for a service, and a
// third-party API key by its identifier.
func Example() {
	ctx := context.Background()
	ag, err := sdk.NewFromEnv()
	if err != nil {
		log.Fatal(err) // names the setting that is wrong
	}
	tok, err := ag.AccessToken(ctx, "https://files.example.com", "read:file")
	if err != nil {
		log.Fatal(err)
	}
	key, err := ag.APIKey(ctx, "openai")
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://files.example.com/files/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	_ = key.Value // send it to the LLM provider
}

// A configuration file in the IDaaS SDK's shape; the secret comes from the
// environment variable the file names.
func ExampleLoadConfig() {
	dir, _ := os.MkdirTemp("", "agentguard")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "client-config.json")
	os.WriteFile(path, []byte(`{
	  "clientId": "agt_06h0fgw5dy47jwq3j9vqaw52j0",
	  "issuer": "https://agentguard.example.com",
	  "scope": "https://files.example.com|read:file",
	  "authnConfiguration": {
	    "identityType": "CLIENT",
	    "authnMethod": "CLIENT_SECRET_POST",
	    "clientSecretEnvVarName": "INVOICE_BOT_SECRET"
	  },
	  "httpConfiguration": {"connectTimeout": 3000, "readTimeout": 10000}
	}`), 0o600)
	os.Setenv("INVOICE_BOT_SECRET", "agcs_example")
	defer os.Unsetenv("INVOICE_BOT_SECRET")

	cfg, err := sdk.LoadConfig(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.ClientID, cfg.AuthMethod, cfg.Scope, cfg.RequestTimeout)
	// Output: agt_06h0fgw5dy47jwq3j9vqaw52j0 CLIENT_SECRET_POST https://files.example.com|read:file 10s
}

// A misconfigured SDK fails at construction, naming the setting.
func ExampleNew_misconfigured() {
	_, err := sdk.New(sdk.Config{ClientID: "agt_1", ClientSecret: "agcs_x", AuthMethod: sdk.ClientSecretBasic})
	fmt.Println(err)
	_, err = sdk.New(sdk.Config{Issuer: "https://agentguard.example.com", ClientID: "agt_1", AuthMethod: "MAGIC"})
	fmt.Println(err)
	// Output:
	// agentguard sdk: config issuer: is required: agentguard's URL, e.g. https://agentguard.example.com (or set AGENTGUARD_ISSUER)
	// agentguard sdk: config authnConfiguration.authnMethod: unknown method "MAGIC": use CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT or FEDERATED_TOKEN
}

// Tokens and keys print without their secret values.
func ExampleToken_String() {
	tok := sdk.Token{AccessToken: "eyJhbGciOiJFUzI1NiIs…", Audience: "https://files.example.com", Scope: "read:file",
		ExpiresAt: time.Date(2026, 11, 23, 9, 51, 24, 0, time.UTC)}
	key := sdk.APIKey{Identifier: "openai", Value: "sk-…", Version: 2}
	fmt.Println(tok)
	fmt.Println(key)
	// Output:
	// Token{audience="https://files.example.com" scope="read:file" expires=2026-11-23T09:51:24Z access_token=[redacted]}
	// APIKey{identifier="openai" version=2 value=[redacted]}
}

// Branch on what went wrong with errors.Is; errors.As gives the server's words.
func ExampleClient_APIKey() {
	ag, err := sdk.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	key, err := ag.APIKey(context.Background(), "openai")
	var e *sdk.Error
	switch {
	case errors.Is(err, sdk.ErrNotAuthorized):
		log.Printf("this agent may not use the openai key: ask for an outbound node (%v)", err)
	case errors.As(err, &e):
		log.Printf("agentguard said %d %s (request %s)", e.StatusCode, e.Detail, e.RequestID)
	case err == nil:
		_ = key.Value
	}
}

// On behalf of a signed-in user (human mode): exchange the user's token, which the
// agent received and validated, for a token for the enterprise service.
func ExampleClient_ExchangeToken() {
	ag, err := sdk.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	userToken := "eyJ…" // from the user's Authorization header, audience = this agent
	tok, err := ag.ExchangeToken(context.Background(), userToken, "https://hr.example.com", "employees:read")
	if errors.Is(err, sdk.ErrInvalidGrant) {
		log.Print("the user's token is expired, revoked, or no longer admitted")
	}
	_ = tok
}

// An http.Client whose requests to the files service carry the right token.
func ExampleClient_Transport() {
	ag, err := sdk.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	rt, err := ag.Transport(nil, sdk.Target{Prefix: "https://files.example.com", Scopes: []string{"read:file"}})
	if err != nil {
		log.Fatal(err)
	}
	hc := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://files.example.com/files/1")
	if err == nil {
		resp.Body.Close()
	}
}
