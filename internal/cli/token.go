package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenOutput is the token response as the CLI prints it (RFC 6749 §5.1).
type tokenOutput struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

func newTokenCmd(g *globals) *cobra.Command {
	var clientID, clientSecret, authMethod string
	var resources, scopes []string
	var raw bool
	cmd := &cobra.Command{
		Use:   "token --client-id AGENT_ID",
		Short: "Get an access token as an agent (client_credentials)",
		Long: `Get an access token as an agent with the client_credentials grant, the way the
agent itself would. The client secret comes from --client-secret or, better (it stays
out of shell history), AGENTGUARD_CLIENT_SECRET. Name the resource server with
--resource and its scopes with --scope, or write a scope as <audience>|<scope>.
Without either, the token is for agentguard itself with scope agentguard:credentials.

Prints the token response as JSON, or only the access token with --raw.`,
		Example: `  export AGENTGUARD_CLIENT_SECRET=agcs_...
  agentguard token --client-id agt_... --resource https://files.example.com --scope read:file
  agentguard token --client-id agt_... --scope 'https://files.example.com|read:file' --raw`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if clientID == "" {
				return errors.New("--client-id is required: the agent's id")
			}
			if clientSecret == "" {
				clientSecret = g.getenv("AGENTGUARD_CLIENT_SECRET")
			}
			if clientSecret == "" {
				return errors.New("no client secret: set AGENTGUARD_CLIENT_SECRET or pass --client-secret")
			}
			var style oauth2.AuthStyle
			switch authMethod {
			case "client_secret_basic":
				style = oauth2.AuthStyleInHeader
			case "client_secret_post":
				style = oauth2.AuthStyleInParams
			default:
				return fmt.Errorf("--auth-method %q must be client_secret_basic or client_secret_post", authMethod)
			}
			base, err := g.serverURL()
			if err != nil {
				return err
			}
			warnPlainHTTP(cmd.ErrOrStderr(), base)
			cc := clientcredentials.Config{
				ClientID: clientID, ClientSecret: clientSecret, TokenURL: base + "/oauth2/token",
				Scopes: scopes, AuthStyle: style,
			}
			if len(resources) > 0 {
				cc.EndpointParams = url.Values{"resource": resources}
			}
			ctx := context.WithValue(cmd.Context(), oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
			tok, err := cc.Token(ctx)
			if err != nil {
				return redactErr(tokenError(err), clientSecret)
			}
			if raw {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
				return err
			}
			out := tokenOutput{AccessToken: tok.AccessToken, TokenType: tok.TokenType}
			// x/oauth2 turns expires_in into Expiry; the raw value is still in Extra.
			if v, ok := tok.Extra("expires_in").(float64); ok {
				out.ExpiresIn = int64(v)
			}
			if s, ok := tok.Extra("scope").(string); ok {
				out.Scope = s
			}
			b, err := json.Marshal(out)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), b)
		},
	}
	f := cmd.Flags()
	f.StringVar(&clientID, "client-id", "", "the agent's id (its OAuth client_id) (required)")
	f.StringVar(&clientSecret, "client-secret", "", "the agent's client secret (default: env AGENTGUARD_CLIENT_SECRET)")
	f.StringArrayVar(&resources, "resource", nil, "audience of the resource server the token is for (RFC 8707)")
	f.StringArrayVar(&scopes, "scope", nil, "a scope to ask for, or <audience>|<scope> (repeatable)")
	f.StringVar(&authMethod, "auth-method", "client_secret_basic", "client_secret_basic or client_secret_post")
	f.BoolVar(&raw, "raw", false, "print only the access token")
	return cmd
}

// tokenError shows the token endpoint's RFC 6749 error as `401 Unauthorized:
// invalid_client: description`.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return responseError(re.Response.StatusCode, re.Body)
	}
	return fmt.Errorf("token request failed: %w", unwrapURLError(err))
}
