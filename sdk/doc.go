// Package sdk is the Go SDK for agents that use agentguard: it gets the agent
// short-lived access tokens for the services it was granted, the third-party API
// keys and OAuth tokens its outbound rule allows, and tokens on behalf of a
// signed-in user (token exchange).
//
// Three lines, with AGENTGUARD_ISSUER, AGENTGUARD_CLIENT_ID and
// AGENTGUARD_CLIENT_SECRET set:
//
//	ag, err := sdk.NewFromEnv()
//	tok, err := ag.AccessToken(ctx, "https://files.example.com", "read:file")
//	key, err := ag.APIKey(ctx, "openai")
//
// The configuration can also come from a JSON file in the shape of the Alibaba
// Cloud IDaaS agent SDK's client-config.json (LoadConfig), or be built in code
// (Config). Secrets are read from the environment, never from the file.
//
// Tokens are cached per target and fetched again shortly before they expire, with
// one request for many concurrent callers; a cached AccessToken costs well under a
// microsecond and allocates nothing. Calls are retried with backoff and jitter on
// network errors and 5xx answers, never on 4xx, within the caller's context.
// Errors wrap sentinels (ErrNotAuthorized, ErrInvalidClient, …) for errors.Is, and
// *Error carries the server's OAuth error or problem detail. Nothing the SDK
// returns or prints contains a secret: Token and APIKey print redacted.
//
// Transport attaches the right token to outgoing HTTP requests per URL prefix.
// Services that receive agentguard tokens use the sibling package verify.
package sdk
