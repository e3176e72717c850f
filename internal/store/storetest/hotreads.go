package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/user"
)

// hotReadTests: the reads every token request makes (answered from memory, see
// readcache.go) see each change that matters to them as soon as the change
// returns. Each case reads first, so a cached answer exists to go stale; each read
// is its own request (on PostgreSQL a request reads the generation once).
func request() context.Context { return sqlstore.WithRequest(ctx) }

var hotReadTests = []struct {
	name string
	run  func(t *testing.T, s *sqlstore.Store)
}{
	{"HotReadsSeeAgentChanges", testHotReadsAgent},
	{"HotReadsSeeUserChanges", testHotReadsUser},
	{"HotReadsSeeResourceAndGrantChanges", testHotReadsTarget},
	{"HotReadsSeeClientInboundAndRevocationChanges", testHotReadsOthers},
	{"HotReadsInOneRequestSeeItsOwnChanges", testHotReadsOwnChanges},
}

// A request that changes what it read reads the change next (on PostgreSQL it
// would otherwise keep the generation it read first).
func testHotReadsOwnChanges(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	rctx := request()
	got, _, err := s.GetAgentWithSecrets(rctx, a.ID)
	mustOK(t, "GetAgentWithSecrets", err)
	wantEqual(t, "status before", got.Status, agent.StatusActive)
	_, err = s.UpdateAgent(rctx, a.ID, func(x *agent.Agent) error { x.Status = agent.StatusDisabled; return nil })
	mustOK(t, "UpdateAgent", err)
	got, _, err = s.GetAgentWithSecrets(rctx, a.ID)
	mustOK(t, "GetAgentWithSecrets", err)
	wantEqual(t, "status after the same request disabled it", got.Status, agent.StatusDisabled)
}

func testHotReadsAgent(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	status := func() string {
		t.Helper()
		got, _, err := s.GetAgentWithSecrets(request(), a.ID)
		mustOK(t, "GetAgentWithSecrets", err)
		return got.Status
	}
	secrets := func() int {
		t.Helper()
		_, secs, err := s.GetAgentWithSecrets(request(), a.ID)
		mustOK(t, "GetAgentWithSecrets", err)
		return len(secs)
	}
	wantEqual(t, "status before", status(), agent.StatusActive)
	_, err := s.UpdateAgent(ctx, a.ID, func(x *agent.Agent) error { x.Status = agent.StatusDisabled; return nil })
	mustOK(t, "UpdateAgent", err)
	wantEqual(t, "status after disabling", status(), agent.StatusDisabled)

	wantEqual(t, "secrets before", secrets(), 0)
	mustOK(t, "CreateSecret", s.CreateSecret(ctx, agent.Secret{ID: "sec_1", AgentID: a.ID, Hash: "h", CreatedAt: t0}))
	wantEqual(t, "secrets after adding one", secrets(), 1)

	// A caller changing what it got must not change what the next caller gets.
	_, secs, _ := s.GetAgentWithSecrets(request(), a.ID)
	secs[0].Hash = "forged"
	_, secs, _ = s.GetAgentWithSecrets(request(), a.ID)
	wantEqual(t, "secret hash after a caller changed its copy", secs[0].Hash, "h")

	mustOK(t, "DeleteSecret", s.DeleteSecret(ctx, a.ID, "sec_1"))
	wantEqual(t, "secrets after deleting it", secrets(), 0)

	mustOK(t, "DeleteAgent", s.DeleteAgent(ctx, a.ID))
	_, _, err = s.GetAgentWithSecrets(request(), a.ID)
	wantErr(t, "GetAgentWithSecrets after delete", err, store.ErrNotFound)
}

func testHotReadsUser(t *testing.T, s *sqlstore.Store) {
	u := createUser(t, s, newUser("usr_1", "ann"), "")
	get := func() user.User {
		t.Helper()
		got, err := s.GetUser(request(), u.ID)
		mustOK(t, "GetUser", err)
		return got
	}
	wantEqual(t, "department before", get().Attributes["department"], "HR")

	// A caller changing its copy's map must not change the next caller's.
	mine := get()
	mine.Attributes["department"] = "Sales"
	wantEqual(t, "department after a caller changed its copy", get().Attributes["department"], "HR")

	_, _, err := s.UpdateUser(ctx, u.ID, user.Orphaning{}, func(x *user.User) error {
		x.Attributes = map[string]string{"department": "Sales"}
		return nil
	})
	mustOK(t, "UpdateUser", err)
	wantEqual(t, "department after update", get().Attributes["department"], "Sales")

	g := createGroup(t, s, newGroup("grp_1", "hr"))
	wantEqual(t, "groups before joining", get().Groups, []string{})
	mustOK(t, "AddMembers", s.AddMembers(ctx, g.ID, []string{u.ID}, user.SourceLocal, at(time.Minute)))
	wantEqual(t, "groups after joining", get().Groups, []string{"hr"})
	_, err = s.UpdateGroup(ctx, g.ID, func(x *user.Group) error { x.Name = "people"; return nil })
	mustOK(t, "UpdateGroup", err)
	wantEqual(t, "groups after the group's rename", get().Groups, []string{"people"})
	mustOK(t, "DeleteGroup", s.DeleteGroup(ctx, g.ID))
	wantEqual(t, "groups after the group's deletion", get().Groups, []string{})

	_, _, err = s.UpdateUser(ctx, u.ID, user.Orphaning{}, func(x *user.User) error { x.Active = false; return nil })
	mustOK(t, "deactivate", err)
	wantEqual(t, "active after deactivation", get().Active, false)

	_, _, err = s.DeleteUser(ctx, u.ID, user.Orphaning{})
	mustOK(t, "DeleteUser", err)
	_, err = s.GetUser(request(), u.ID)
	wantErr(t, "GetUser after delete", err, store.ErrNotFound)
}

func testHotReadsTarget(t *testing.T, s *sqlstore.Store) {
	rs := newRS("rs_1")
	mustOK(t, "CreateResourceServer", s.CreateResourceServer(ctx, rs))
	a := createAgent(t, s, "ag_1")
	scopes := func() []string {
		t.Helper()
		_, g, err := s.ResourceServerAndGrant(request(), rs.Audience, a.ID)
		mustOK(t, "ResourceServerAndGrant", err)
		if g == nil {
			return nil
		}
		return g.Scopes
	}
	wantEqual(t, "grant before", scopes(), nil)
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, newGrant("gr_1", a.ID, rs, "read")))
	wantEqual(t, "grant after granting", scopes(), []string{"read"})
	_, err := s.UpdateGrantScopes(ctx, a.ID, "gr_1", []string{"read", "write"})
	mustOK(t, "UpdateGrantScopes", err)
	wantEqual(t, "grant after widening", scopes(), []string{"read", "write"})

	_, err = s.UpdateResourceServer(ctx, rs.ID, func(x *resource.Server) error {
		x.Scopes = []resource.Scope{{Name: "read", Groups: []string{"hr"}}, {Name: "write"}}
		return nil
	})
	mustOK(t, "UpdateResourceServer", err)
	got, _, err := s.ResourceServerAndGrant(request(), rs.Audience, a.ID)
	mustOK(t, "ResourceServerAndGrant", err)
	wantEqual(t, "scope groups after update", got.Scopes[0].Groups, []string{"hr"})

	mustOK(t, "DeleteGrant", s.DeleteGrant(ctx, a.ID, "gr_1"))
	wantEqual(t, "grant after revoking it", scopes(), nil)
	mustOK(t, "DeleteResourceServer", s.DeleteResourceServer(ctx, rs.ID))
	_, _, err = s.ResourceServerAndGrant(request(), rs.Audience, a.ID)
	wantErr(t, "ResourceServerAndGrant after delete", err, store.ErrNotFound)
}

func testHotReadsOthers(t *testing.T, s *sqlstore.Store) {
	c := newClient("cli_1", client.TypeWeb)
	mustOK(t, "CreateClient", s.CreateClient(ctx, c))
	exists, err := s.ClientExists(request(), c.ID)
	mustOK(t, "ClientExists", err)
	wantEqual(t, "client exists before delete", exists, true)
	mustOK(t, "DeleteClient", s.DeleteClient(ctx, c.ID))
	exists, err = s.ClientExists(request(), c.ID)
	mustOK(t, "ClientExists", err)
	wantEqual(t, "client exists after delete", exists, false)

	a := createAgent(t, s, "ag_1")
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("cli_2", client.TypeWeb)))
	before, err := s.InboundVersion(request(), a.ID)
	mustOK(t, "InboundVersion", err)
	mustOK(t, "CreateInboundRule", s.CreateInboundRule(ctx, newRule("ibr_1", a.ID, "cli_2")))
	after, err := s.InboundVersion(request(), a.ID)
	mustOK(t, "InboundVersion", err)
	if after == before {
		t.Fatalf("InboundVersion stayed %d after a rule was added", after)
	}

	revoked, err := s.IsRevoked(request(), "jti_1")
	mustOK(t, "IsRevoked", err)
	wantEqual(t, "revoked before", revoked, false)
	mustOK(t, "RevokeToken", s.RevokeToken(ctx, "jti_1", at(time.Hour)))
	revoked, err = s.IsRevoked(request(), "jti_1")
	mustOK(t, "IsRevoked", err)
	wantEqual(t, "revoked after revoking", revoked, true)
}
