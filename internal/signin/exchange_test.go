package signin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

const (
	filesAudience = "https://files.example.com"
	exchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessType    = "urn:ietf:params:oauth:token-type:access_token"
)

// delegation is a user signed in through a client, with a token for an agent that
// acts for users, and a resource server the agent is granted scopes on.
type delegation struct {
	*fixture
	spa                    string
	agentID, agentAud, sec string
	userID                 string
	rule                   string // the inbound rule admitting hr through spa
	subject                string // the user's token for the agent
}

func newDelegation(t *testing.T, f *fixture) *delegation {
	t.Helper()
	d := &delegation{fixture: f}
	d.userID = f.addUser(t, "hanna", "hanna-pass-phrase", "hr").ID
	// read for everyone, write only for finance.
	if code := f.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "files", "audience": filesAudience, "token_lifetime": 3600,
		"scopes": []map[string]any{{"name": "read"}, {"name": "write", "groups": []string{"finance"}}}}, nil); code != 201 {
		t.Fatalf("resource server: HTTP %d", code)
	}
	d.agentID, d.agentAud, d.sec = f.agent(t, "hr-assistant", "human")
	if code := f.Do(t, "POST", "/api/v1/agents/"+d.agentID+"/grants", map[string]any{"audience": filesAudience, "scopes": []string{"read", "write"}}, nil); code != 201 {
		t.Fatalf("grant: HTTP %d", code)
	}
	d.spa, _ = signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	d.rule = f.allowGroup(t, d.agentID, d.spa, "hr")
	d.subject = d.signIn(t, d.agentAud)
	return d
}

// signIn gets hanna's access token for the agent with audience aud.
func (d *delegation) signIn(t *testing.T, aud string) string {
	t.Helper()
	b := signintest.NewBrowser(t, d.URL)
	fl := newFlow(d.spa, url.Values{"resource": {aud}, "scope": {"openid"}})
	status, tok := d.redeem(t, d.spa, "", d.code(t, b, fl, "hanna", "hanna-pass-phrase"), nil, fl.verifier)
	if status != 200 {
		t.Fatalf("sign-in for %s: HTTP %d %v", aud, status, tok)
	}
	return tok["access_token"].(string)
}

// exchange posts a token exchange as the agent id/sec.
func (d *delegation) exchange(t *testing.T, id, sec, subject string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {exchangeGrant}, "subject_token": {subject}, "subject_token_type": {accessType}}
	for k, v := range extra {
		form[k] = v
	}
	return tokenForm(t, d.URL, form, id, sec)
}

// The exchanged token says who the user is (sub) and which agent acts (act.sub =
// client_id), carries what the agent's grant and the user's groups both allow, and
// ends no later than the user's token. Chained delegation nests act.
func TestTokenExchange(t *testing.T) {
	for _, db := range storetest.Backends() {
		t.Run(string(db), func(t *testing.T) {
			d := newDelegation(t, start(t, db))
			status, out := d.exchange(t, d.agentID, d.sec, d.subject, url.Values{"resource": {filesAudience}})
			if status != 200 {
				t.Fatalf("exchange: HTTP %d %v", status, out)
			}
			if out["issued_token_type"] != accessType || out["token_type"] != "Bearer" || out["scope"] != "read" {
				t.Fatalf("response %v: want issued_token_type access_token and scope read (write is for finance only)", out)
			}
			c := claimsOf(t, out["access_token"].(string))
			subj := claimsOf(t, d.subject)
			if c.Subject != d.userID || c.ClientID != d.agentID || c.Act == nil || c.Act.Sub != d.agentID || c.Act.Act != nil {
				t.Fatalf("claims sub=%s client_id=%s act=%+v", c.Subject, c.ClientID, c.Act)
			}
			if len(c.Audience) != 1 || c.Audience[0] != filesAudience || c.Scope != "read" {
				t.Fatalf("aud=%v scope=%q", c.Audience, c.Scope)
			}
			if c.Expiry.Time().After(subj.Expiry.Time()) {
				t.Fatalf("exchanged token expires at %v, after the subject token (%v)", c.Expiry.Time(), subj.Expiry.Time())
			}
			// Introspection shows the actor.
			_, info := postForm(t, d.URL+"/oauth2/introspect", url.Values{"token": {out["access_token"].(string)}}, d.agentID, d.sec)
			if act, _ := info["act"].(map[string]any); info["active"] != true || act["sub"] != d.agentID || info["sub"] != d.userID {
				t.Fatalf("introspection %v", info)
			}
			// The Credential API form: no target means the issuer with agentguard:credentials.
			status, out = d.exchange(t, d.agentID, d.sec, d.subject, nil)
			if c := claimsOf(t, out["access_token"].(string)); status != 200 || c.Audience[0] != d.URL || c.Scope != "agentguard:credentials" || c.Act.Sub != d.agentID {
				t.Fatalf("exchange for the credential API: HTTP %d %v", status, out)
			}
			// A scope the user may not hold is refused, even though the agent holds it.
			status, out = d.exchange(t, d.agentID, d.sec, d.subject, url.Values{"scope": {filesAudience + "|write"}})
			if status != 400 || errCode(out) != "invalid_scope" {
				t.Fatalf("write for an HR user: HTTP %d %v", status, out)
			}
			// The management API is never delegated.
			status, out = d.exchange(t, d.agentID, d.sec, d.subject, url.Values{"scope": {"agentguard:admin"}})
			if status != 400 {
				t.Fatalf("admin scope by delegation: HTTP %d %v", status, out)
			}
			events := d.events(t, "category=token&decision=allow&agent_id="+d.agentID)
			if !hasEvent(events, func(e audit.Event) bool {
				return e.User == d.userID && e.ClientID == d.spa && strings.Contains(e.Reason, "token_exchange") && strings.Contains(e.Reason, "act="+d.agentID)
			}) {
				t.Errorf("no token event naming agent, user and client: %+v", events)
			}
		})
	}
}

// Chained delegation: agent A gets a token for agent B (B's inbound rules admit the
// user through A), B exchanges it in turn, and the result nests act.
func TestChainedTokenExchange(t *testing.T) {
	d := newDelegation(t, start(t, "sqlite"))
	bID, bAud, bSec := d.agent(t, "files-agent", "human")
	if code := d.Do(t, "POST", "/api/v1/agents/"+bID+"/grants", map[string]any{"audience": filesAudience, "scopes": []string{"read"}}, nil); code != 201 {
		t.Fatal(code)
	}
	status, out := d.exchange(t, d.agentID, d.sec, d.subject, url.Values{"audience": {bAud}})
	if status != 400 || errCode(out) != "invalid_grant" {
		t.Fatalf("B does not admit the user through A yet: HTTP %d %v", status, out)
	}
	d.allowGroup(t, bID, d.agentID, "hr")
	status, out = d.exchange(t, d.agentID, d.sec, d.subject, url.Values{"audience": {bAud}})
	if status != 200 {
		t.Fatalf("A for B: HTTP %d %v", status, out)
	}
	toB := out["access_token"].(string)
	if c := claimsOf(t, toB); c.Audience[0] != bAud || c.Scope != "agent.access" || c.ClientID != d.agentID || c.Act.Sub != d.agentID {
		t.Fatalf("token for B: %+v", c)
	}
	status, out = d.exchange(t, bID, bSec, toB, url.Values{"resource": {filesAudience}})
	if status != 200 {
		t.Fatalf("B for files: HTTP %d %v", status, out)
	}
	c := claimsOf(t, out["access_token"].(string))
	if c.Subject != d.userID || c.ClientID != bID || c.Act.Sub != bID || c.Act.Act["sub"] != d.agentID {
		t.Fatalf("chained claims: sub=%s client_id=%s act=%+v", c.Subject, c.ClientID, c.Act)
	}
}

// Every way a subject token can be wrong is invalid_grant (or the request's own
// error), and every refusal is audited.
func TestTokenExchangeRefusals(t *testing.T) {
	f := start(t, "sqlite")
	d := newDelegation(t, f)
	otherID, _, otherSec := f.agent(t, "other-agent", "human")
	machineID, machineAud, machineSec := f.agent(t, "machine-agent", "machine")
	f.allowGroup(t, machineID, d.spa, "hr")
	machineSubject := d.signIn(t, machineAud)
	plainOIDC := func() string {
		b := signintest.NewBrowser(t, f.URL)
		fl := newFlow(d.spa, nil)
		_, tok := f.redeem(t, d.spa, "", f.code(t, b, fl, "hanna", "hanna-pass-phrase"), nil, fl.verifier)
		return tok["access_token"].(string)
	}()
	target := url.Values{"resource": {filesAudience}}

	tests := []struct {
		name    string
		id, sec string
		form    url.Values
		subject string
		status  int
		code    string
		desc    string // in the description, when it says which check refused
	}{
		{"stolen: another agent presents the token", otherID, otherSec, target, d.subject, 400, "invalid_grant", "another audience"},
		{"the user's token for the issuer (not for the agent)", d.agentID, d.sec, target, plainOIDC, 400, "invalid_grant", "another audience"},
		{"forged: signed by another key under the real kid", d.agentID, d.sec, target, forge(t, d.subject), 400, "invalid_grant", "not an access token of this issuer"},
		{"garbage", d.agentID, d.sec, target, "not-a-token", 400, "invalid_grant", ""},
		{"machine agent", machineID, machineSec, target, machineSubject, 400, "unauthorized_client", "client_credentials"},
		{"missing subject_token", d.agentID, d.sec, target, "", 400, "invalid_request", ""},
		{"refresh token as subject type", d.agentID, d.sec, url.Values{"resource": {filesAudience}, "subject_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, d.subject, 400, "invalid_request", ""},
		{"an actor token", d.agentID, d.sec, url.Values{"actor_token": {"x"}, "actor_token_type": {accessType}}, d.subject, 400, "invalid_request", ""},
		{"a JWT requested", d.agentID, d.sec, url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}, d.subject, 400, "invalid_request", ""},
		{"no client authentication", "", "", target, d.subject, 401, "invalid_client", ""},
		{"wrong secret", d.agentID, "wrong", target, d.subject, 401, "invalid_client", ""},
		{"an unknown resource", d.agentID, d.sec, url.Values{"resource": {"https://unknown.example"}}, d.subject, 400, "invalid_target", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := d.exchange(t, tt.id, tt.sec, tt.subject, tt.form)
			desc, _ := out["error_description"].(string)
			if status != tt.status || errCode(out) != tt.code || !strings.Contains(desc, tt.desc) {
				t.Fatalf("HTTP %d %v, want %d %s (%q)", status, out, tt.status, tt.code, tt.desc)
			}
		})
	}

	t.Run("a client cannot exchange", func(t *testing.T) {
		form := url.Values{"grant_type": {exchangeGrant}, "client_id": {d.spa}, "subject_token": {d.subject}, "subject_token_type": {accessType}}
		if status, out := tokenForm(t, f.URL, form, "", ""); status != 400 || errCode(out) != "unauthorized_client" {
			t.Fatalf("HTTP %d %v", status, out)
		}
	})
	t.Run("policy no longer admits the user", func(t *testing.T) {
		f.removeRule(t, d.agentID, d.rule)
		defer func() { d.rule = f.allowGroup(t, d.agentID, d.spa, "hr") }()
		if status, out := d.exchange(t, d.agentID, d.sec, d.subject, target); status != 400 || errCode(out) != "invalid_grant" {
			t.Fatalf("HTTP %d %v", status, out)
		}
		if !hasEvent(f.events(t, "category=inbound&decision=deny&agent_id="+d.agentID), func(e audit.Event) bool {
			return e.User == d.userID && e.ClientID == d.spa && strings.HasPrefix(e.Reason, "token_exchange")
		}) {
			t.Fatal("the policy's refusal at exchange was not audited")
		}
	})
	t.Run("deactivated user", func(t *testing.T) {
		f.setActive(t, d.userID, false)
		defer f.setActive(t, d.userID, true)
		if status, out := d.exchange(t, d.agentID, d.sec, d.subject, target); status != 400 || errCode(out) != "invalid_grant" {
			t.Fatalf("HTTP %d %v", status, out)
		}
	})
	t.Run("revoked by the client", func(t *testing.T) {
		subject := d.signIn(t, d.agentAud)
		if status, _ := postForm(t, f.URL+"/oauth2/revoke", url.Values{"token": {subject}, "client_id": {d.spa}}, "", ""); status != http.StatusOK {
			t.Fatalf("revoke: HTTP %d", status)
		}
		if status, out := d.exchange(t, d.agentID, d.sec, subject, target); status != 400 || errCode(out) != "invalid_grant" || !strings.Contains(out["error_description"].(string), "revoked") {
			t.Fatalf("HTTP %d %v", status, out)
		}
	})
	t.Run("expired", func(t *testing.T) {
		f.Clock.Advance(16 * time.Minute)
		if status, out := d.exchange(t, d.agentID, d.sec, d.subject, target); status != 400 || errCode(out) != "invalid_grant" || !strings.Contains(out["error_description"].(string), "expired") {
			t.Fatalf("HTTP %d %v", status, out)
		}
	})
	if n := len(f.events(t, "category=token&decision=deny&agent_id="+d.agentID)); n < 8 {
		t.Fatalf("%d token deny events for the agent, want every refusal recorded", n)
	}
}

// forge signs the claims of a real token with a key of its own, under the real kid.
func forge(t *testing.T, real string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(real, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, real)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: tok.Headers[0].KeyID}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A delegated token for the issuer with agentguard:credentials (the exchange with no
// target) works at the Credential API: the agent's outbound rule decides and the
// audit event names both the agent and the user.
func TestDelegatedTokenAtTheCredentialAPI(t *testing.T) {
	f := start(t, "sqlite")
	d := newDelegation(t, f)
	if code := f.Do(t, "POST", "/api/v1/credentials/api-keys", map[string]any{"identifier": "hr-system", "name": "HR system", "value": "hr-api-key-0123456789"}, nil); code != 201 {
		t.Fatalf("api key: HTTP %d", code)
	}
	if code := f.Do(t, "POST", "/api/v1/agents/"+d.agentID+"/outbound", map[string]any{"node_type": "external_service", "credential_type": "api_key", "credential": "hr-system"}, nil); code != 201 {
		t.Fatalf("outbound: HTTP %d", code)
	}
	status, out := d.exchange(t, d.agentID, d.sec, d.subject, nil)
	if status != 200 {
		t.Fatalf("exchange: HTTP %d %v", status, out)
	}
	var key struct{ Value string }
	if code := f.DoAs(t, out["access_token"].(string), "GET", "/api/v1/agent/api-keys/hr-system", nil, &key); code != 200 || key.Value != "hr-api-key-0123456789" {
		t.Fatalf("Credential API with the delegated token: HTTP %d %+v", code, key)
	}
	if !hasEvent(f.events(t, "category=credential&agent_id="+d.agentID), func(e audit.Event) bool {
		return e.User == d.userID && e.Decision == audit.Allow
	}) {
		t.Fatal("the credential event does not name the user")
	}
	// The user's own token (no act) is not the agent's.
	if code := f.DoAs(t, d.subject, "GET", "/api/v1/agent/api-keys/hr-system", nil, nil); code != 401 {
		t.Fatalf("the user's token at the Credential API: HTTP %d, want 401", code)
	}
}
