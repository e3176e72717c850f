package topology_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/topology"
)

func find(g topology.Graph, id string) (topology.Node, bool) {
	for _, n := range g.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return topology.Node{}, false
}

func edgeTo(g topology.Graph, to string) (topology.Edge, bool) {
	for _, e := range g.Edges {
		if e.To == to {
			return e, true
		}
	}
	return topology.Edge{}, false
}

// The graph holds the agent, its outbound nodes with their credential's state,
// and the enterprise services it is granted (not agentguard itself); disabling
// the agent disables every edge.
func TestTopology(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, sec := s.Agent(t, "graph-bot")
	do := func(method, path string, body any, want int) {
		t.Helper()
		if code := s.Do(t, method, path, body, nil); code != want {
			t.Fatalf("%s %s: HTTP %d, want %d", method, path, code, want)
		}
	}
	do("POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "openai", "name": "OpenAI", "value": "sk-1"}, 201)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"invalid_client"}`))
	}))
	defer broken.Close()
	do("POST", "/api/v1/credentials/oauth-providers", map[string]any{"identifier": "crm", "name": "CRM", "client_id": "c", "client_secret": "s", "token_endpoint": broken.URL}, 201)
	do("POST", "/api/v1/agents/"+id+"/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": "openai", "upstream_url": "https://api.openai.com/v1"}, 201)
	do("POST", "/api/v1/agents/"+id+"/outbound", map[string]any{"node_type": "external_service", "credential_type": "oauth_provider", "credential": "crm"}, 201)
	do("POST", "/api/v1/resource-servers", map[string]any{"name": "files", "audience": "https://files.example.com", "scopes": []map[string]string{{"name": "read"}}}, 201)
	do("POST", "/api/v1/agents/"+id+"/grants", map[string]any{"audience": "https://files.example.com", "scopes": []string{"read"}}, 201)

	// The provider fails once: its node is marked failing.
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decodeJSON(t, resp, &tok)
	if code := s.DoAs(t, tok.AccessToken, "POST", "/api/v1/agent/oauth-tokens/crm", nil, nil); code != 502 {
		t.Fatalf("token from the broken provider: HTTP %d", code)
	}

	// Users reach the agent through the client of its inbound rules (two rules, one
	// client), shown by the client's name.
	var portal struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/clients", map[string]any{"name": "HR portal", "type": "spa", "redirect_uris": []string{"https://portal.example.com/cb"}}, &portal); code != 201 {
		t.Fatalf("create client: HTTP %d", code)
	}
	do("POST", "/api/v1/groups", map[string]any{"name": "hr"}, 201)
	for range 2 {
		do("POST", "/api/v1/agents/"+id+"/inbound", map[string]any{"client_id": portal.ID, "groups": []string{"hr"}}, 201)
	}
	// A rule cannot name a client that does not exist.
	do("POST", "/api/v1/agents/"+id+"/inbound", map[string]any{"client_id": "cli_nonexistent", "groups": []string{"hr"}}, 400)

	var g topology.Graph
	do("GET", "/api/v1/agents/"+id+"/topology", nil, 200)
	s.Do(t, "GET", "/api/v1/agents/"+id+"/topology", nil, &g)
	if c, ok := find(g, "client:"+portal.ID); !ok || c.Type != "client" || c.Label != "HR portal" || c.Status != "ok" {
		t.Fatalf("client node %+v in %+v", c, g.Nodes)
	}
	if e, _ := edgeTo(g, "agent:"+id); e.From != "client:"+portal.ID || e.Kind != "inbound" || e.Status != "ok" {
		t.Fatalf("client edge %+v", e)
	}
	if len(g.Nodes) != 5 || len(g.Edges) != 4 {
		t.Fatalf("graph %+v", g)
	}
	self, ok := find(g, "agent:"+id)
	if !ok || self.Type != "agent" || self.Label != "graph-bot" || self.Status != "active" {
		t.Fatalf("agent node %+v", self)
	}
	llm, _ := find(g, "credential:openai")
	if llm.Type != "llm" || llm.Label != "OpenAI" || llm.CredentialType != "api_key" || llm.UpstreamURL != "https://api.openai.com/v1" || llm.Status != "ok" {
		t.Fatalf("llm node %+v", llm)
	}
	crm, _ := find(g, "credential:crm")
	if crm.Type != "external_service" || crm.Status != "failing" || crm.Error != "invalid_client" {
		t.Fatalf("crm node %+v", crm)
	}
	if e, _ := edgeTo(g, "credential:crm"); e.From != "agent:"+id || e.Kind != "oauth" || e.Status != "failing" {
		t.Fatalf("crm edge %+v", e)
	}
	var rsNode topology.Node
	for _, n := range g.Nodes {
		if n.Type == "enterprise_service" {
			rsNode = n
		}
	}
	if rsNode.Audience != "https://files.example.com" || len(rsNode.Scopes) != 1 || rsNode.Label != "files" {
		t.Fatalf("enterprise node %+v", rsNode)
	}
	if e, _ := edgeTo(g, rsNode.ID); e.Kind != "grant" || e.Status != "ok" {
		t.Fatalf("grant edge %+v", e)
	}

	// A deleted client stays in the graph, marked missing, while rules name it.
	do("DELETE", "/api/v1/clients/"+portal.ID, nil, 204)
	s.Do(t, "GET", "/api/v1/agents/"+id+"/topology", nil, &g)
	if c, _ := find(g, "client:"+portal.ID); c.Status != "missing" {
		t.Fatalf("node of a deleted client %+v", c)
	}
	if e, _ := edgeTo(g, "agent:"+id); e.Status != "missing" {
		t.Fatalf("edge from a deleted client %+v", e)
	}

	do("PATCH", "/api/v1/agents/"+id, map[string]any{"status": "disabled"}, 200)
	s.Do(t, "GET", "/api/v1/agents/"+id+"/topology", nil, &g)
	for _, e := range g.Edges {
		if e.Status != "disabled" {
			t.Fatalf("edge of a disabled agent %+v", e)
		}
	}

	// Client nodes come from a source of inbound rules when one is wired.
	h := &topology.Handler{Store: s.Store, Clients: func(_ context.Context, agentID string) ([]topology.ClientNode, error) {
		return []topology.ClientNode{{ID: "cli_hr", Label: "HR portal"}}, nil
	}}
	g, err = h.Build(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := find(g, "client:cli_hr"); !ok || c.Type != "client" || c.Label != "HR portal" {
		t.Fatalf("client node %+v", c)
	}
	if e, _ := edgeTo(g, "agent:"+id); e.From != "client:cli_hr" || e.Kind != "inbound" || e.Status != "disabled" {
		t.Fatalf("client edge %+v", e)
	}
}

func decodeJSON(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
