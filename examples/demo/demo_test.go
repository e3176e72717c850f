package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/signin/signintest"
)

// syncBuffer is an io.Writer safe for the demo's concurrent hops.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDemo(t *testing.T, human bool) (*Demo, *syncBuffer, context.Context) {
	t.Helper()
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	d, err := Start(ctx, Options{Human: human, Out: out})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	t.Cleanup(d.Close)
	return d, out, ctx
}

// has reports whether some event matches every non-empty field of want, and Reason
// as a prefix.
func has(events []AuditEvent, want AuditEvent) bool {
	for _, e := range events {
		if (want.Category == "" || e.Category == want.Category) && (want.Action == "" || e.Action == want.Action) &&
			(want.Decision == "" || e.Decision == want.Decision) && (want.AgentID == "" || e.AgentID == want.AgentID) &&
			(want.User == "" || e.User == want.User) && (want.ClientID == "" || e.ClientID == want.ClientID) &&
			(want.Resource == "" || e.Resource == want.Resource) && strings.HasPrefix(e.Reason, want.Reason) {
			return true
		}
	}
	return false
}

// The whole walkthrough in human mode, as make demo runs it: sign-in, both
// questions, the keys fetched on the user's behalf, the enterprise service called
// with the exchanged token, each hop printed and each decision audited.
func TestDemoHumanMode(t *testing.T) {
	d, out, ctx := startDemo(t, true)
	answers, err := d.Script(ctx, out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	p := d.Provisioned
	if !strings.Contains(answers[0], "Hangzhou") || !strings.Contains(answers[0], "light rain") {
		t.Errorf("weather answer %q", answers[0])
	}
	if !strings.Contains(answers[1], "Hello alice") || !strings.Contains(answers[1], p.AgentID+" acting on your behalf") {
		t.Errorf("enterprise answer %q", answers[1])
	}

	printed := out.String()
	for _, hop := range []string{
		"browser    → agentguard   POST /login → 303",
		"web        → agentguard   POST /oauth2/token grant_type=authorization_code → 200",
		"web        → agent        POST /openai/v1/chat/completions → 200",
		"agent      → agentguard   POST /oauth2/token grant_type=token-exchange resource=" + d.Issuer + " scope=agentguard:credentials → 200",
		"agent      → agentguard   GET /api/v1/agent/api-keys/demo-llm → 200",
		"agent      → llm          POST /v1/chat/completions → 200",
		"agent      → agentguard   GET /api/v1/agent/api-keys/weather-mcp → 200",
		"agent      → weather-mcp  POST /mcp → 200",
		"agent      → agentguard   POST /oauth2/token grant_type=token-exchange resource=" + enterpriseAudience + " scope=" + enterpriseScope + " → 200",
		"agent      → enterprise   GET /api/report → 200",
	} {
		if !strings.Contains(printed, hop) {
			t.Errorf("hop not printed: %q", hop)
		}
	}
	for _, secret := range []string{p.AgentSecret, p.ClientSecret, demoPassword, "sk-demo-", "wk-demo-"} {
		if strings.Contains(printed, secret) {
			t.Errorf("the demo printed a secret (%.8s…)", secret)
		}
	}

	events, err := d.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]AuditEvent{
		"sign-in":                            {Category: "inbound", Action: "signin.login", Decision: "allow", User: p.UserID, ClientID: p.ClientID},
		"inbound rule admits alice":          {Category: "inbound", Action: "agent.access", Decision: "allow", AgentID: p.AgentID, User: p.UserID, ClientID: p.ClientID},
		"user token for the agent":           {Category: "token", Action: "token.issue", Decision: "allow", User: p.UserID, ClientID: p.ClientID, Resource: p.AgentAudience, Reason: "authorization_code"},
		"credential API token for alice":     {Category: "token", Action: "token.issue", Decision: "allow", AgentID: p.AgentID, User: p.UserID, Resource: d.Issuer, Reason: "token_exchange"},
		"LLM key on alice's behalf":          {Category: "credential", Action: "api_key.retrieve", Decision: "allow", AgentID: p.AgentID, User: p.UserID, Resource: llmKeyID},
		"weather MCP key on alice's behalf":  {Category: "credential", Action: "api_key.retrieve", Decision: "allow", AgentID: p.AgentID, User: p.UserID, Resource: weatherKeyID},
		"exchanged token for the enterprise": {Category: "token", Action: "token.issue", Decision: "allow", AgentID: p.AgentID, User: p.UserID, Resource: enterpriseAudience, Reason: "token_exchange"},
	} {
		if !has(events, want) {
			t.Errorf("no audit event for %s: %+v", name, want)
		}
	}
	if !strings.Contains(printed, "agentguard's audit log for the walkthrough") {
		t.Error("the audit log was not printed")
	}
}

// Machine mode: the agent fetches the keys and the enterprise token as itself.
func TestDemoMachineMode(t *testing.T) {
	d, out, ctx := startDemo(t, false)
	answers, err := d.Script(ctx, out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	p := d.Provisioned
	if !strings.Contains(answers[1], "Hello agent "+p.AgentID) || !strings.Contains(answers[1], "no user") {
		t.Errorf("enterprise answer %q", answers[1])
	}
	events, _ := d.Audit(ctx)
	if !has(events, AuditEvent{Category: "token", Action: "token.issue", Decision: "allow", AgentID: p.AgentID, Resource: enterpriseAudience, Reason: "client_credentials"}) {
		t.Error("no client_credentials token for the enterprise service in the audit log")
	}
	if !has(events, AuditEvent{Category: "credential", Action: "api_key.retrieve", Decision: "allow", AgentID: p.AgentID, User: "", Resource: llmKeyID}) {
		t.Error("no LLM key retrieval by the agent in the audit log")
	}
	if strings.Contains(out.String(), "token-exchange") {
		t.Error("machine mode exchanged a token")
	}
}

func status(t *testing.T, method, u, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"message":"hi"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Demo-Chat", "1")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Who may not call each part: every service refuses a caller without its key or
// token, and a user outside the inbound rule cannot sign in to the agent.
func TestDemoRefusals(t *testing.T) {
	d, _, _ := startDemo(t, true)
	for name, c := range map[string]struct {
		method, url, bearer string
	}{
		"web chat without a session":           {"POST", d.WebURL + "/chat", ""},
		"agent without a token":                {"POST", d.AgentURL, ""},
		"agent with the admin token":           {"POST", d.AgentURL, d.AdminToken},
		"agent with the agent's client secret": {"POST", d.AgentURL, d.Provisioned.AgentSecret},
		"LLM without its key":                  {"POST", d.LLMURL + "/chat/completions", ""},
		"LLM with another key":                 {"POST", d.LLMURL + "/chat/completions", "sk-guess"},
		"weather MCP without its key":          {"POST", d.WeatherURL, ""},
		"enterprise service without a token":   {"GET", d.EnterpriseURL + "/api/report", ""},
	} {
		if code := status(t, c.method, c.url, c.bearer); code != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d, want 401", name, code)
		}
	}

	// bob exists but is not an employee: the agent's inbound rule keeps him out.
	adm := &admin{base: d.Issuer, token: d.AdminToken, http: http.DefaultClient, out: &bytes.Buffer{}}
	if err := adm.call(context.Background(), "POST", "/api/v1/users", map[string]any{"username": "bob", "password": "bob-demo-password"}, nil); err != nil {
		t.Fatal(err)
	}
	b := signintest.NewBrowser(t, d.Issuer)
	b.Follow = true
	page := b.Get(t, d.WebURL+"/login")
	res := b.Submit(t, page, map[string]string{"username": "bob", "password": "bob-demo-password"})
	if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "access_denied") || strings.Contains(res.Body, "Signed in as") {
		t.Fatalf("bob: HTTP %d at %s: %s", res.Status, res.URL, res.Body)
	}
	events, _ := d.Audit(context.Background())
	if !has(events, AuditEvent{Category: "inbound", Action: "agent.access", Decision: "deny", AgentID: d.Provisioned.AgentID}) {
		t.Error("bob's refusal is not in the audit log")
	}
}
