package policy_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/user"
)

type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func (p problem) fields() []string {
	out := []string{}
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

type evaluation struct {
	Allow    bool   `json:"allow"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	RuleID   string `json:"rule_id"`
}

func agentOf(t *testing.T, s *servertest.Server) string {
	t.Helper()
	var a struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "hr-assistant", "type": "interactive", "access_identity": "human"}, &a); code != 201 {
		t.Fatalf("create agent: HTTP %d", code)
	}
	return a.ID
}

// The HR-only agent through the API: a Cedar rule admits the HR user, refuses the
// Sales user, and deleting it takes effect at once.
func TestInboundRulesAPI(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID := agentOf(t, s)
	portal, _ := signintest.Client(t, s, "web", []string{"https://hr.example/cb"}, nil)
	var hr, sales user.User
	s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "Managers"}, nil)
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "harriet", "attributes": map[string]string{"department": "HR"}}, &hr)
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "sam", "attributes": map[string]string{"department": "Sales"}, "groups": []string{"managers"}}, &sales)

	var rule policy.Rule
	code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/inbound", map[string]any{
		"client_id": portal, "description": "only HR",
		"policy": `permit(principal, action, resource) when { principal.department == "HR" };`,
	}, &rule)
	if code != 201 || !strings.HasPrefix(rule.ID, "inr_") || rule.AgentID != agentID || rule.ClientID != portal {
		t.Fatalf("create: HTTP %d %+v", code, rule)
	}
	evaluate := func(who, client string) evaluation {
		t.Helper()
		var ev evaluation
		if code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/inbound/evaluate", map[string]any{"client_id": client, "user": who}, &ev); code != 200 {
			t.Fatalf("evaluate: HTTP %d", code)
		}
		return ev
	}
	if ev := evaluate("harriet", portal); !ev.Allow || ev.RuleID != rule.ID || ev.Decision != "allow" {
		t.Fatalf("HR user: %+v", ev)
	}
	if ev := evaluate(sales.ID, portal); ev.Allow || !strings.Contains(ev.Reason, "sam") {
		t.Fatalf("Sales user: %+v", ev)
	}
	if ev := evaluate("harriet", "cli_other"); ev.Allow {
		t.Fatalf("HR user through another client: %+v", ev)
	}

	// Users by username are stored as ids; groups as their stored name.
	var byName policy.Rule
	code = s.Do(t, "POST", "/api/v1/agents/"+agentID+"/inbound", map[string]any{"client_id": portal, "users": []string{"sam"}, "groups": []string{"MANAGERS"}}, &byName)
	if code != 201 || !slices.Equal(byName.Users, []string{sales.ID}) || !slices.Equal(byName.Groups, []string{"Managers"}) {
		t.Fatalf("create by names: HTTP %d %+v", code, byName)
	}
	if ev := evaluate("sam", portal); !ev.Allow || ev.RuleID != byName.ID {
		t.Fatalf("sam after the second rule: %+v", ev)
	}

	var l struct{ Items []policy.Rule }
	s.Do(t, "GET", "/api/v1/agents/"+agentID+"/inbound", nil, &l)
	if len(l.Items) != 2 {
		t.Fatalf("list: %+v", l)
	}
	s.Do(t, "GET", "/api/v1/agents/"+agentID+"/inbound?client_id=cli_nope", nil, &l)
	if len(l.Items) != 0 {
		t.Fatalf("list for another client: %+v", l)
	}

	if code := s.Do(t, "DELETE", "/api/v1/agents/"+agentID+"/inbound/"+rule.ID, nil, nil); code != 204 {
		t.Fatalf("delete: HTTP %d", code)
	}
	if ev := evaluate("harriet", portal); ev.Allow {
		t.Fatalf("HR user after the rule was deleted: %+v", ev)
	}
	if code := s.Do(t, "DELETE", "/api/v1/agents/"+agentID+"/inbound/"+rule.ID, nil, nil); code != 404 {
		t.Fatalf("delete twice: HTTP %d", code)
	}

	var es struct{ Items []audit.Event }
	s.Do(t, "GET", "/api/v1/audit/events?resource_type=inbound_rule", nil, &es)
	var got []string
	for _, e := range es.Items {
		got = append(got, e.Action+" "+e.Resource)
		if e.AgentID != agentID || e.ClientID != portal || e.Reason == "" {
			t.Fatalf("event %+v", e)
		}
	}
	want := []string{"inbound.delete " + rule.ID, "inbound.create " + byName.ID, "inbound.create " + rule.ID}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// A Cedar policy that does not parse is a 400 naming "policy", with the line and
// column in the detail and as fields of the problem.
func TestInboundRuleValidation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID := agentOf(t, s)
	web, _ := signintest.Client(t, s, "web", []string{"https://app.example/cb"}, nil)
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "alice"}, nil)
	path := "/api/v1/agents/" + agentID + "/inbound"

	var p problem
	code := s.Do(t, "POST", path, map[string]any{"client_id": web,
		"policy": "permit(principal, action, resource)\nwhen { principal.department = \"HR\" };"}, &p)
	if code != 400 || !slices.Equal(p.fields(), []string{"policy"}) || p.Line != 2 || p.Column != 31 ||
		!strings.HasPrefix(p.Errors[0].Detail, "line 2, column 31: ") {
		t.Fatalf("parse error: HTTP %d %+v", code, p)
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		fields []string
	}{
		{"no client", map[string]any{"users": []string{"alice"}}, 400, []string{"client_id"}},
		{"client with a space", map[string]any{"client_id": "cli web", "users": []string{"alice"}}, 400, []string{"client_id"}},
		{"client that does not exist", map[string]any{"client_id": "cli_nonesuch", "users": []string{"alice"}}, 400, []string{"client_id"}},
		{"nobody", map[string]any{"client_id": web}, 400, []string{"users"}},
		{"blank policy only", map[string]any{"client_id": web, "policy": "  \n"}, 400, []string{"users"}},
		{"unknown user", map[string]any{"client_id": web, "users": []string{"ghost"}}, 400, []string{"users"}},
		{"unknown group", map[string]any{"client_id": web, "groups": []string{"ghosts"}}, 400, []string{"groups"}},
		{"another agent in the policy", map[string]any{"client_id": web, "policy": `permit(principal, action, resource == Agent::"agt_other");`}, 400, []string{"policy"}},
		{"forbid only", map[string]any{"client_id": web, "policy": `forbid(principal, action, resource);`}, 400, []string{"policy"}},
		{"too many users", map[string]any{"client_id": web, "users": slices.Repeat([]string{"alice"}, 1001)}, 400, []string{"users"}},
		{"unknown field", map[string]any{"client_id": web, "group": []string{"x"}}, 400, []string{"group"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problem
			code := s.Do(t, "POST", path, tt.body, &p)
			if code != tt.status || !slices.Equal(p.fields(), tt.fields) {
				t.Fatalf("HTTP %d %+v, want %d naming %v", code, p, tt.status, tt.fields)
			}
		})
	}
	if code := s.Do(t, "POST", "/api/v1/agents/agt_none/inbound", map[string]any{"client_id": web, "users": []string{"alice"}}, &p); code != 404 {
		t.Fatalf("unknown agent: HTTP %d", code)
	}
	if code := s.Do(t, "GET", "/api/v1/agents/agt_none/inbound", nil, &p); code != 404 {
		t.Fatalf("list for an unknown agent: HTTP %d", code)
	}
	var ev json.RawMessage
	if code := s.Do(t, "POST", path+"/evaluate", map[string]any{"client_id": web, "user": "ghost"}, &p); code != 400 || !slices.Equal(p.fields(), []string{"user"}) {
		t.Fatalf("evaluate an unknown user: HTTP %d %s", code, ev)
	}
}
