package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/token"
	"github.com/agentguard/agentguard/internal/user"
)

// aliveSessions: the exchange does not look at sessions; the grants need the field.
type aliveSessions struct{}

func (aliveSessions) SessionAlive(context.Context, string) (bool, error) { return true, nil }

// exchangeBench is an authorization server on real SQLite with the real directory
// and inbound policy engine: a human agent granted read on a resource server, a
// user in group hr, a rule admitting hr through a client, and the user's token for
// the agent.
type exchangeBench struct {
	s        *Server
	basic    string
	form     string
	subject  string
	clientID string
	user     user.User
	agentAud string
}

func newExchangeBench(b *testing.B, rec func(*sqlstore.Store) audit.Recorder) *exchangeBench {
	b.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	w, err := kms.OpenLocal(filepath.Join(b.TempDir(), kms.LocalKeyFile))
	if err != nil {
		b.Fatal(err)
	}
	kr, err := token.NewKeyring(ctx, st, kms.NewEnvelope(w), token.KeyringConfig{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	const rsAud = "https://files.example.com"
	must(st.EnsureResourceServer(ctx, resource.Server{ID: resource.BuiltinID, Name: "agentguard", Audience: testIssuer,
		Scopes: []resource.Scope{{Name: grant.ScopeCredentials}}, TokenLifetime: time.Hour, CreatedAt: now, UpdatedAt: now}))
	rs := resource.Server{ID: "rs_files", Name: "files", Audience: rsAud, TokenLifetime: 15 * time.Minute, CreatedAt: now, UpdatedAt: now,
		Scopes: []resource.Scope{{Name: "read"}, {Name: "write", Groups: []string{"finance"}}}}
	must(st.CreateResourceServer(ctx, rs))
	a := agent.Agent{ID: secret.NewID("agt"), Name: "bench", Type: agent.TypeInteractive, AccessIdentity: agent.IdentityHuman,
		Status: agent.StatusActive, CreatedAt: now, UpdatedAt: now}
	a.Audience = agent.DefaultAudience(a.ID)
	must(st.CreateAgent(ctx, a, grant.Grant{ID: secret.NewID("grt"), AgentID: a.ID, ResourceServerID: rs.ID, Scopes: []string{"read", "write"}, CreatedAt: now}))
	sec := secret.New(agent.SecretPrefix)
	must(st.CreateSecret(ctx, agent.Secret{ID: secret.NewID("sec"), AgentID: a.ID, Hash: secret.Hash(sec), CreatedAt: now}))
	c := client.Client{ID: secret.NewID(client.IDPrefix), Name: "spa", Type: client.TypeSPA, RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: now, UpdatedAt: now}
	must(st.CreateClient(ctx, c))
	dir := &user.Directory{Store: st, Audit: audit.Discard{}, Now: time.Now}
	must(st.CreateGroup(ctx, user.Group{ID: secret.NewID("grp"), Name: "hr", CreatedAt: now, UpdatedAt: now}, nil, ""))
	u, err := dir.CreateUser(ctx, user.User{Username: "hanna", Groups: []string{"hr"}, Attributes: map[string]string{"department": "HR"}, Active: true, Source: user.SourceLocal}, "")
	must(err)
	must(st.CreateInboundRule(ctx, policy.Rule{ID: secret.NewID("inr"), AgentID: a.ID, ClientID: c.ID, Groups: []string{"hr"}, CreatedAt: now}))

	issuer := &token.Issuer{URL: testIssuer, Keyring: kr, Store: st, Now: time.Now}
	s := &Server{Issuer: issuer, Agents: st, Grants: st, Resources: st, Targets: st, Replay: st, Audit: rec(st), Now: time.Now,
		Clients: st, Users: dir, Policy: &policy.Engine{Store: st}, Codes: st, Refresh: st, Sessions: aliveSessions{}}
	s.Init(nil)
	subject, _, err := issuer.Issue(token.Claims{Subject: u.ID, ClientID: c.ID, Audience: []string{a.Audience}, Scope: "agent.access openid"}, time.Hour)
	must(err)
	form := url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject}, "subject_token_type": {TokenTypeAccessToken}, "resource": {rsAud}}
	return &exchangeBench{s: s, basic: "Basic " + basicAuth(a.ID, sec), form: form.Encode(), subject: subject,
		clientID: c.ID, user: u, agentAud: a.Audience}
}

func basicAuth(id, sec string) string {
	return encodeBasic(url.QueryEscape(id) + ":" + url.QueryEscape(sec))
}

func (eb *exchangeBench) once(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(eb.form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", eb.basic)
	w := httptest.NewRecorder()
	eb.s.handleToken(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("exchange: HTTP %d %s", w.Code, w.Body)
	}
}

// BenchmarkTokenExchange is one token exchange through the token endpoint's
// handler: form parsing, client_secret_basic, the subject token's verification and
// revocation check, the user, the client, the inbound policy decision, the target
// (resource server, grant, scope groups), the ES256 signature; no audit writes (see
// BenchmarkTokenExchangeAudited).
func BenchmarkTokenExchange(b *testing.B) {
	eb := newExchangeBench(b, func(*sqlstore.Store) audit.Recorder { return audit.Discard{} })
	b.ReportAllocs()
	for b.Loop() {
		eb.once(b)
	}
}

// BenchmarkTokenExchangeAudited is the same with the real audit log (two events per
// exchange: the inbound decision and the token), from parallel callers, so group
// commit shares transactions as it does under load.
func BenchmarkTokenExchangeAudited(b *testing.B) {
	var log *audit.Log
	eb := newExchangeBench(b, func(st *sqlstore.Store) audit.Recorder {
		log = audit.New(st, audit.Options{})
		return log
	})
	b.Cleanup(func() { log.Close() })
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			eb.once(b)
		}
	})
}

func encodeBasic(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// post sends a form to the token endpoint's handler and decodes the answer.
func (eb *exchangeBench) post(b *testing.B, form url.Values) map[string]any {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	eb.s.handleToken(w, r)
	var out map[string]any
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil {
		b.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	return out
}

// BenchmarkAuthorizationCode is a code for an agent issued (as the authorization
// endpoint does after the inbound policy) and redeemed by a public client with PKCE:
// the code's checks, the user, the policy again, the code marked used with the
// refresh token family created, access and ID tokens signed.
func BenchmarkAuthorizationCode(b *testing.B) {
	eb := newExchangeBench(b, func(*sqlstore.Store) audit.Recorder { return audit.Discard{} })
	ctx := context.Background()
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	t, e := eb.s.ParseUserTarget(ctx, "openid profile", []string{eb.agentAud})
	if e != nil {
		b.Fatal(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		code, err := eb.s.IssueCode(ctx, CodeGrant{ClientID: eb.clientID, UserID: eb.user.ID, SID: "ses_bench", RedirectURI: "https://app.example/cb",
			CodeChallenge: challenge, Target: t, AuthTime: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		eb.post(b, url.Values{"grant_type": {GrantAuthorizationCode}, "client_id": {eb.clientID}, "code": {code},
			"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}})
	}
}

// BenchmarkRefreshToken is one refresh of a public client: the token and its family
// read, the user and the policy again, the rotation in one transaction, new access
// and ID tokens. Each iteration uses the refresh token the previous one returned.
func BenchmarkRefreshToken(b *testing.B) {
	eb := newExchangeBench(b, func(*sqlstore.Store) audit.Recorder { return audit.Discard{} })
	ctx := context.Background()
	t, _ := eb.s.ParseUserTarget(ctx, "openid offline_access", []string{eb.agentAud})
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	code, err := eb.s.IssueCode(ctx, CodeGrant{ClientID: eb.clientID, UserID: eb.user.ID, SID: "ses_bench", RedirectURI: "https://app.example/cb",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Target: t, AuthTime: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	out := eb.post(b, url.Values{"grant_type": {GrantAuthorizationCode}, "client_id": {eb.clientID}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}})
	rt := out["refresh_token"].(string)
	b.ReportAllocs()
	for b.Loop() {
		out = eb.post(b, url.Values{"grant_type": {GrantRefreshToken}, "client_id": {eb.clientID}, "refresh_token": {rt}})
		rt = out["refresh_token"].(string)
	}
}
