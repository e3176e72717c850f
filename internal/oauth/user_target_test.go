package oauth

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/agent"
)

// ParseUserTarget: what a client may ask for a user. Table of the accepted forms and
// the refusals, on a real store with one agent.
func TestParseUserTarget(t *testing.T) {
	ts := newTestServer(t)
	aud := agent.DefaultAudience(ts.agentID)
	ctx := context.Background()
	tests := []struct {
		scope     string
		resources []string
		wantScope string
		wantAud   string
		code      string
	}{
		{"openid profile", nil, "openid profile", "", ""},
		{"openid openid email", nil, "email openid", "", ""},
		{"openid agent.access", []string{aud}, "agent.access openid", aud, ""},
		{"openid", []string{aud}, "agent.access openid", aud, ""},
		{"openid " + aud + "|agent.access", nil, "agent.access openid", aud, ""},
		{"openid " + aud + "|agent.access", []string{aud}, "agent.access openid", aud, ""},
		{"", nil, "", "", "invalid_scope"},
		{"agent.access", nil, "", "", "invalid_scope"},
		{"openid agentguard:admin", nil, "", "", "invalid_scope"},
		{"openid read", []string{aud}, "", "", "invalid_scope"},
		{aud + "|read", nil, "", "", "invalid_scope"},
		{"|agent.access", nil, "", "", "invalid_scope"},
		{"openid", []string{"https://unknown.example"}, "", "", "invalid_target"},
		{"openid", []string{"not a uri"}, "", "", "invalid_target"},
		{"openid", []string{aud, "urn:other"}, "", "", "invalid_target"},
		{"openid urn:other|agent.access", []string{aud}, "", "", "invalid_target"},
		{strings.Repeat("openid ", 700), nil, "", "", "invalid_scope"},
	}
	for _, tt := range tests {
		got, e := ts.ParseUserTarget(ctx, tt.scope, tt.resources)
		if tt.code != "" {
			if e == nil || e.Code != tt.code || e.Description == "" {
				t.Errorf("%q %v: %+v, %+v; want %s", tt.scope, tt.resources, got, e, tt.code)
			}
			continue
		}
		if e != nil || got.Scope() != tt.wantScope || got.Audience != tt.wantAud || (tt.wantAud != "") != (got.AgentID == ts.agentID) {
			t.Errorf("%q %v: %+v, %v; want scope %q aud %q", tt.scope, tt.resources, got, e, tt.wantScope, tt.wantAud)
		}
	}
}

// FuzzUserTarget: any scope and resource never panics; what is accepted holds only
// user scopes, and agent.access exactly when it names an (existing) agent.
func FuzzUserTarget(f *testing.F) {
	ts := newTestServer(f)
	aud := agent.DefaultAudience(ts.agentID)
	for _, s := range []string{"openid", "openid profile email groups offline_access", aud + "|agent.access", "agent.access", "x|y", "|", "openid  \t email"} {
		f.Add(s, aud)
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, scope, resource string) {
		var resources []string
		if resource != "" {
			resources = []string{resource}
		}
		got, e := ts.ParseUserTarget(context.Background(), scope, resources)
		if e != nil {
			if e.Description == "" || !slices.Contains([]string{"invalid_scope", "invalid_target", "server_error"}, e.Code) {
				t.Fatalf("refusal %+v", e)
			}
			return
		}
		for _, sc := range got.Scopes {
			if !slices.Contains(UserScopes, sc) {
				t.Fatalf("accepted scope %q", sc)
			}
		}
		if got.Has(ScopeAgentAccess) != (got.Audience != "") || (got.Audience != "" && got.Audience != aud) || len(got.Scopes) == 0 {
			t.Fatalf("accepted %+v", got)
		}
	})
}
