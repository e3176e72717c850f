package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// runIn runs an admin command with stdin as standard input.
func runIn(t *testing.T, s *servertest.Server, stdin string, args ...string) result {
	t.Helper()
	root := NewRoot()
	var out, errb bytes.Buffer
	root.SetArgs(append(args, "--server", s.URL, "--token", servertest.AdminToken))
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	code := 0
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(&errb, "error:", err)
		code = 1
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// agentKey fetches an API key through the Credential API as the agent.
func agentKey(t *testing.T, s *servertest.Server, id, sec, identifier string) (int, string) {
	t.Helper()
	r := run(t, "token", "--server", s.URL, "--client-id", id, "--client-secret", sec, "--raw")
	if r.code != 0 {
		t.Fatalf("agent token: %s", r.stderr)
	}
	var out struct{ Value string }
	code := s.DoAs(t, strings.TrimSpace(r.stdout), "GET", "/api/v1/agent/api-keys/"+identifier, nil, &out)
	return code, out.Value
}

// API keys from the CLI: the value comes from a file, standard input or the
// environment, never an argument, and is never printed.
func TestCredentialAPIKeyCommands(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, sec := s.Agent(t, "cli-bot")
	dir := t.TempDir()
	file := filepath.Join(dir, "openai.key")
	if err := os.WriteFile(file, []byte("sk-from-file-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := ok(t, s, "credential", "apikey", "create", "openai", "--name", "OpenAI", "--value-file", file)
	if !strings.Contains(r.stdout, "openai") || strings.Contains(r.stdout+r.stderr, "sk-from-file") {
		t.Fatalf("create output:\n%s%s", r.stdout, r.stderr)
	}
	r = runIn(t, s, "sk-from-stdin-456\n", "credential", "apikey", "create", "stdin-key", "--value-file", "-")
	if r.code != 0 || strings.Contains(r.stdout, "sk-from-stdin") {
		t.Fatalf("create from stdin: %+v", r)
	}
	t.Setenv(envAPIKeyValue, "sk-from-env-789")
	ok(t, s, "credential", "apikey", "create", "env-key")
	t.Setenv(envAPIKeyValue, "")
	fails(t, s, "pass --value-file FILE", "credential", "apikey", "create", "no-value")
	// There is no flag that takes the value itself.
	if r := admin(t, s, "credential", "apikey", "create", "x", "--value", "sk-argv"); r.code == 0 {
		t.Fatal("--value was accepted")
	}

	ok(t, s, "outbound", "add", id, "--api-key", "openai")
	if code, v := agentKey(t, s, id, sec, "openai"); code != 200 || v != "sk-from-file-123" {
		t.Fatalf("the agent got HTTP %d %q (the file's line break must be dropped)", code, v)
	}

	if err := os.WriteFile(file, []byte("sk-rotated-000"), 0o600); err != nil {
		t.Fatal(err)
	}
	var k apiKeyJSON
	okJSON(t, s, &k, "credential", "apikey", "rotate", "openai", "--value-file", file, "--keep-previous", "24h")
	if k.Version != 2 || len(k.Versions) != 2 {
		t.Fatalf("after rotate: %+v", k)
	}
	if _, v := agentKey(t, s, id, sec, "openai"); v != "sk-rotated-000" {
		t.Fatalf("after rotate the agent got %q", v)
	}
	r = ok(t, s, "credential", "apikey", "get", "openai")
	if !strings.Contains(r.stdout, "kept until") || !strings.Contains(r.stdout, "used by: "+id) || strings.Contains(r.stdout, "sk-") {
		t.Fatalf("get output:\n%s", r.stdout)
	}
	okJSON(t, s, &k, "credential", "apikey", "rollback", "openai")
	if _, v := agentKey(t, s, id, sec, "openai"); k.Version != 1 || v != "sk-from-file-123" {
		t.Fatalf("after rollback: version %d, agent got %q", k.Version, v)
	}
	okJSON(t, s, &k, "credential", "apikey", "update", "openai", "--description", "prod")
	if k.Description != "prod" {
		t.Fatalf("after update: %+v", k)
	}
	fails(t, s, "nothing to change", "credential", "apikey", "update", "openai")
	var l struct{ Items []apiKeyJSON }
	okJSON(t, s, &l, "credential", "apikey", "list")
	if len(l.Items) != 3 {
		t.Fatalf("list: %+v", l.Items)
	}
	fails(t, s, "409 Conflict: the outbound nodes of 1 agent(s) use \"openai\": "+id, "credential", "apikey", "delete", "openai")
	ok(t, s, "credential", "apikey", "delete", "openai", "--force")
	if code, _ := agentKey(t, s, id, sec, "openai"); code != 403 {
		t.Fatalf("after a forced delete: HTTP %d", code)
	}
}

// OAuth providers, outbound nodes and the topology from the CLI.
func TestCredentialOAuthOutboundAndTopology(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, _ := s.Agent(t, "graph-bot")
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":60}`))
	}))
	defer idp.Close()

	secretFile := filepath.Join(t.TempDir(), "crm.secret")
	os.WriteFile(secretFile, []byte("crm-secret-1\n"), 0o600)
	var p providerJSON
	okJSON(t, s, &p, "credential", "oauth", "create", "crm", "--client-id", "cid", "--client-secret-file", secretFile,
		"--token-endpoint", idp.URL+"/token", "--scope", "read", "--scope", "write", "--token-param", "audience=https://crm.example.com")
	if p.Generation != 1 || p.TokenParams["audience"] != "https://crm.example.com" || len(p.DefaultScopes) != 2 {
		t.Fatalf("created %+v", p)
	}
	t.Setenv(envOAuthClientSecret, "graph-secret")
	okJSON(t, s, &p, "credential", "oauth", "create", "graph", "--client-id", "g", "--preset", "entra_id", "--preset-param", "tenant=contoso.onmicrosoft.com")
	if p.TokenEndpoint != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" || p.AuthMethod != "client_secret_post" {
		t.Fatalf("preset: %+v", p)
	}
	t.Setenv(envOAuthClientSecret, "")
	fails(t, s, "preset_params.tenant: is required", "credential", "oauth", "create", "bad", "--client-id", "g", "--client-secret-file", secretFile, "--preset", "entra_id")
	fails(t, s, "--token-param \"audience\" must be KEY=VALUE", "credential", "oauth", "update", "crm", "--token-param", "audience")

	// A new secret is a new generation; a rename is not.
	okJSON(t, s, &p, "credential", "oauth", "update", "crm", "--client-secret-file", secretFile)
	if p.Generation != 2 {
		t.Fatalf("after a new secret: generation %d", p.Generation)
	}
	okJSON(t, s, &p, "credential", "oauth", "update", "crm", "--name", "CRM")
	if p.Generation != 2 || p.Name != "CRM" {
		t.Fatalf("after a rename: %+v", p)
	}
	if r := ok(t, s, "credential", "oauth", "presets"); !strings.Contains(r.stdout, "tenant=") || !strings.Contains(r.stdout, "keycloak") {
		t.Fatalf("presets:\n%s", r.stdout)
	}
	r := ok(t, s, "credential", "oauth", "get", "crm")
	if !strings.Contains(r.stdout, "audience") || strings.Contains(r.stdout, "crm-secret") {
		t.Fatalf("get:\n%s", r.stdout)
	}

	ok(t, s, "credential", "apikey", "create", "openai", "--value-file", secretFile)
	fails(t, s, "give exactly one of --api-key or --oauth-provider", "outbound", "add", id)
	ok(t, s, "outbound", "add", id, "--api-key", "openai", "--upstream-url", "https://api.openai.com/v1", "--header", "X-API-Key: {{key}}")
	ok(t, s, "outbound", "add", id, "--oauth-provider", "crm")
	fails(t, s, "header:", "outbound", "update", id, "openai", "--header", "X-API-Key: {{token}}")
	var nodes struct{ Items []nodeJSON }
	okJSON(t, s, &nodes, "outbound", "list", id)
	if len(nodes.Items) != 2 || nodes.Items[1].NodeType != "llm" || nodes.Items[0].NodeType != "external_service" || nodes.Items[1].GatewayPath != "/gateway/openai/" {
		t.Fatalf("nodes %+v", nodes.Items)
	}

	r = ok(t, s, "topology", id)
	for _, want := range []string{"agent graph-bot (" + id + "), active", "comes in: no client", "openai (api_key)", "gateway → https://api.openai.com/v1", "crm (oauth_provider)", "──oauth──▶"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("topology output lacks %q:\n%s", want, r.stdout)
		}
	}
	var g graphJSON
	okJSON(t, s, &g, "topology", id)
	if len(g.Nodes) != 3 || len(g.Edges) != 2 {
		t.Fatalf("topology json %+v", g)
	}

	ok(t, s, "outbound", "remove", id, "openai")
	okJSON(t, s, &nodes, "outbound", "list", id)
	if len(nodes.Items) != 1 {
		t.Fatalf("after remove %+v", nodes.Items)
	}
	ok(t, s, "credential", "oauth", "delete", "graph")
	var l struct{ Items []json.RawMessage }
	okJSON(t, s, &l, "credential", "oauth", "list")
	if len(l.Items) != 1 {
		t.Fatalf("providers after delete: %d", len(l.Items))
	}
}
