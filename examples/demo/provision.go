package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The provisioning step: everything the walkthrough needs, created through
// agentguard's management API with the admin token, each call printed (secrets
// redacted) so this file doubles as documentation of the API. The same with the
// CLI is in docs/sdk.md ("The demo").

type admin struct {
	base  string
	token string
	http  *http.Client
	out   io.Writer
}

// call sends one management API request and decodes the answer into out.
func (a *admin) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	shown := ""
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
		shown = " " + redactJSON(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(a.out, "  %s %s%s → %d\n", method, path, shown, resp.StatusCode)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// redactJSON hides the values of secret fields in a request body for printing.
func redactJSON(b []byte) string {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return string(b)
	}
	for _, k := range []string{"value", "password", "client_secret"} {
		if _, ok := m[k]; ok {
			m[k] = "[redacted]"
		}
	}
	out, _ := json.Marshal(m)
	return string(out)
}

// Provisioned is what the provisioning created.
type Provisioned struct {
	AgentID, AgentSecret, AgentAudience string
	ClientID, ClientSecret              string
	UserID                              string
}

const (
	demoUser     = "alice"
	demoPassword = "alice-demo-password"
	demoGroup    = "employees"
)

func provision(ctx context.Context, a *admin, human bool, webBase, llmKey, weatherKey string) (Provisioned, error) {
	var p Provisioned
	fmt.Fprintln(a.out, "Provisioning through the management API:")
	step := func(title string) { fmt.Fprintf(a.out, "# %s\n", title) }

	step("a group and a user (the directory)")
	if err := a.call(ctx, "POST", "/api/v1/groups", map[string]any{"name": demoGroup, "display_name": "Employees"}, nil); err != nil {
		return p, err
	}
	var u struct{ ID string }
	if err := a.call(ctx, "POST", "/api/v1/users", map[string]any{"username": demoUser, "password": demoPassword,
		"display_name": "Alice", "email": "alice@example.com", "groups": []string{demoGroup}, "attributes": map[string]string{"department": "finance"}}, &u); err != nil {
		return p, err
	}
	p.UserID = u.ID

	step("the enterprise service (a resource server with its audience and scope)")
	if err := a.call(ctx, "POST", "/api/v1/resource-servers", map[string]any{"name": "enterprise service", "audience": enterpriseAudience,
		"scopes": []map[string]string{{"name": enterpriseScope, "description": "read the user's purchase orders"}}}, nil); err != nil {
		return p, err
	}

	identity := "machine"
	if human {
		identity = "human"
	}
	step("the agent (" + identity + " mode), its client secret, and its grant on the enterprise service")
	var ag struct{ ID, Audience string }
	if err := a.call(ctx, "POST", "/api/v1/agents", map[string]any{"name": "demo-assistant", "owner": "demo", "type": "interactive",
		"access_identity": identity, "description": "answers about the weather and the user's enterprise service"}, &ag); err != nil {
		return p, err
	}
	p.AgentID, p.AgentAudience = ag.ID, ag.Audience
	var sec struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := a.call(ctx, "POST", "/api/v1/agents/"+ag.ID+"/secrets", nil, &sec); err != nil {
		return p, err
	}
	p.AgentSecret = sec.ClientSecret
	if err := a.call(ctx, "POST", "/api/v1/agents/"+ag.ID+"/grants", map[string]any{"audience": enterpriseAudience, "scopes": []string{enterpriseScope}}, nil); err != nil {
		return p, err
	}

	step("the credentials (sealed by the KMS) and the agent's outbound nodes: an LLM node and an external service node")
	for _, k := range []struct{ id, name, value string }{{llmKeyID, "Demo LLM API key", llmKey}, {weatherKeyID, "Weather MCP API key", weatherKey}} {
		if err := a.call(ctx, "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": k.id, "name": k.name, "value": k.value}, nil); err != nil {
			return p, err
		}
	}
	if err := a.call(ctx, "POST", "/api/v1/agents/"+ag.ID+"/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": llmKeyID}, nil); err != nil {
		return p, err
	}
	if err := a.call(ctx, "POST", "/api/v1/agents/"+ag.ID+"/outbound", map[string]any{"node_type": "external_service", "credential_type": "api_key", "credential": weatherKeyID}, nil); err != nil {
		return p, err
	}

	step("the web app users sign in through (a client), and the agent's inbound rule: employees may call it through that app")
	var cl struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := a.call(ctx, "POST", "/api/v1/clients", map[string]any{"name": "demo web app", "type": "web", "redirect_uris": []string{webBase + "/callback"}}, &cl); err != nil {
		return p, err
	}
	p.ClientID, p.ClientSecret = cl.ID, cl.ClientSecret
	if err := a.call(ctx, "POST", "/api/v1/agents/"+ag.ID+"/inbound", map[string]any{"client_id": cl.ID, "groups": []string{demoGroup},
		"description": "employees may use the assistant through the demo web app"}, nil); err != nil {
		return p, err
	}

	step("the agent's topology")
	var topo struct {
		Nodes []map[string]any `json:"nodes"`
		Edges []map[string]any `json:"edges"`
	}
	if err := a.call(ctx, "GET", "/api/v1/agents/"+ag.ID+"/topology", nil, &topo); err == nil {
		for _, e := range topo.Edges {
			fmt.Fprintf(a.out, "    %v → %v (%v)\n", e["from"], e["to"], e["kind"])
		}
	}
	return p, nil
}
