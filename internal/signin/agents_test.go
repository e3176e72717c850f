package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

type userClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Act      *struct {
		Sub string         `json:"sub"`
		Act map[string]any `json:"act"`
	} `json:"act"`
}

// claimsOf reads a token's claims without verifying it (verification is tested
// elsewhere; here the content matters).
func claimsOf(t *testing.T, raw string) userClaims {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c userClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A user gets a token for an agent (resource=<agent audience>, scope agent.access, or
// the <audience>|agent.access form) only if the agent's inbound rules admit the user
// through this client: the HR-only agent (a Cedar rule over the department attribute,
// created through the API) admits an HR user and refuses a Sales user, and both
// decisions are audited with user, client and agent.
func TestUserTokenForAgentUnderInboundPolicy(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			f := start(t, d)
			hr := f.addUser(t, "hanna", "hanna-pass-phrase")
			f.setAttributes(t, hr.ID, map[string]string{"department": "HR"})
			sales := f.addUser(t, "sam", "sam-pass-phrase")
			f.setAttributes(t, sales.ID, map[string]string{"department": "Sales"})
			agentID, audience, _ := f.agent(t, "hr-assistant", "human")
			spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
			f.allow(t, agentID, spa, nil, `permit(principal, action, resource) when { principal.department == "HR" };`)

			for _, form := range []url.Values{
				{"resource": {audience}, "scope": {"openid agent.access"}},
				{"scope": {"openid " + audience + "|agent.access"}},
				{"resource": {audience}, "scope": {"openid"}}, // agent.access implied by the resource
			} {
				b := signintest.NewBrowser(t, f.URL)
				fl := newFlow(spa, form)
				status, tok := f.redeem(t, spa, "", f.code(t, b, fl, "hanna", "hanna-pass-phrase"), nil, fl.verifier)
				if status != 200 {
					t.Fatalf("%v: HTTP %d %v", form, status, tok)
				}
				c := claimsOf(t, tok["access_token"].(string))
				if c.Subject != hr.ID || c.ClientID != spa || len(c.Audience) != 1 || c.Audience[0] != audience || !strings.Contains(c.Scope, "agent.access") {
					t.Fatalf("%v: token sub=%s client_id=%s aud=%v scope=%q", form, c.Subject, c.ClientID, c.Audience, c.Scope)
				}
			}

			b := signintest.NewBrowser(t, f.URL)
			fl := newFlow(spa, url.Values{"resource": {audience}})
			loc := signIn(t, b, f.authorizeURL(fl.params), "sam", "sam-pass-phrase")
			if loc.Query().Get("error") != "access_denied" || loc.Query().Has("code") || loc.Query().Get("state") != "st-1" {
				t.Fatalf("sales user: redirected to %s, want error=access_denied", loc)
			}

			events := f.events(t, "category=inbound&agent_id="+agentID)
			if !hasEvent(events, func(e audit.Event) bool {
				return e.Decision == audit.Allow && e.User == hr.ID && e.ClientID == spa && e.Action == "agent.access"
			}) {
				t.Error("no inbound allow event for the HR user")
			}
			if !hasEvent(events, func(e audit.Event) bool {
				return e.Decision == audit.Deny && e.User == sales.ID && e.ClientID == spa && e.Action == "agent.access" && e.Reason != ""
			}) {
				t.Errorf("no inbound deny event for the sales user: %+v", events)
			}
		})
	}
}

// The inbound rules are asked again when tokens are issued from the code and from a
// refresh token: a user removed from them, or a disabled agent, gets invalid_grant.
func TestInboundPolicyIsReevaluatedAtTheTokenEndpoint(t *testing.T) {
	f := start(t, "sqlite")
	f.addUser(t, "hanna", "hanna-pass-phrase", "hr")
	agentID, audience, _ := f.agent(t, "hr-assistant", "human")
	spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	rule := f.allowGroup(t, agentID, spa, "hr")
	b := signintest.NewBrowser(t, f.URL)

	fl := newFlow(spa, url.Values{"resource": {audience}})
	status, tok := f.redeem(t, spa, "", f.code(t, b, fl, "hanna", "hanna-pass-phrase"), nil, fl.verifier)
	if status != 200 {
		t.Fatalf("HTTP %d %v", status, tok)
	}
	pending := newFlow(spa, url.Values{"resource": {audience}})
	code := f.code(t, b, pending, "", "")

	f.removeRule(t, agentID, rule)
	if status, out := f.refresh(t, spa, "", tok["refresh_token"].(string)); status != 400 || errCode(out) != "invalid_grant" {
		t.Fatalf("refresh after the rule was removed: HTTP %d %v", status, out)
	}
	if status, out := f.redeem(t, spa, "", code, nil, pending.verifier); status != 400 || errCode(out) != "invalid_grant" {
		t.Fatalf("code issued before the rule was removed: HTTP %d %v", status, out)
	}
	if n := len(f.events(t, "category=inbound&decision=deny&agent_id="+agentID)); n < 2 {
		t.Fatalf("%d inbound deny events, want the refresh and the code redemption", n)
	}

	f.allowGroup(t, agentID, spa, "hr")
	if code := f.Do(t, "PATCH", "/api/v1/agents/"+agentID, map[string]any{"status": "disabled"}, nil); code != 200 {
		t.Fatal(code)
	}
	fl = newFlow(spa, url.Values{"resource": {audience}})
	p := b.Get(t, f.authorizeURL(fl.params))
	if p.Status != http.StatusFound || p.Location.Query().Get("error") != "invalid_target" {
		t.Fatalf("authorization for a disabled agent: HTTP %d %v", p.Status, p.Location)
	}
}
