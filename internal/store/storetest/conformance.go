package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/admin"
	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/token"
)

// The store must satisfy every domain interface; a missing method fails the build
// here rather than at run time in the server.
var (
	_ agent.Store    = (*sqlstore.Store)(nil)
	_ grant.Store    = (*sqlstore.Store)(nil)
	_ resource.Store = (*sqlstore.Store)(nil)
	_ token.Store    = (*sqlstore.Store)(nil)
	_ admin.Store    = (*sqlstore.Store)(nil)
)

// t0 is the conformance suite's fake clock: every time is a fixed offset from it,
// so expiry is tested by passing times, never by sleeping. It carries microseconds
// to check they survive the round trip.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// RunConformance checks a storage implementation against the behaviour the domain
// packages rely on. open must return a fresh, empty, migrated store each call.
func RunConformance(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *sqlstore.Store)
	}{
		{"AgentCRUD", testAgentCRUD},
		{"AgentConflicts", testAgentConflicts},
		{"CreateAgentWithGrantsIsAtomic", testCreateAgentAtomic},
		{"ListAgentsPagingAndFilters", testListAgents},
		{"ListAgentsQueryTreatsLikeMetacharactersLiterally", testListAgentsLike},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"Secrets", testSecrets},
		{"Keys", testKeys},
		{"Federations", testFederations},
		{"DeleteAgentCascades", testDeleteAgentCascades},
		{"ResourceServerCRUD", testResourceServers},
		{"ListResourceServersPaging", testListResourceServers},
		{"EnsureResourceServer", testEnsureResourceServer},
		{"Grants", testGrants},
		{"DeleteResourceServerCascadesToGrants", testDeleteResourceServerCascades},
		{"SigningKeys", testSigningKeys},
		{"RevocationAndReplay", testRevocationAndReplay},
		{"GarbageCollectDeletesOnlyExpired", testGarbageCollect},
		{"AdminTokens", testAdminTokens},
	}
	tests = append(tests, directoryTests...)
	tests = append(tests, signinTests...)
	tests = append(tests, registrationTests...)
	tests = append(tests, hotReadTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
	for _, tt := range credentialCases {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

var ctx = context.Background()

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func newAgent(id string) agent.Agent {
	return agent.Agent{
		ID: id, Name: "Agent " + id, Description: "does " + id, Owner: "team-a",
		Type: agent.TypeAutonomous, AccessIdentity: agent.IdentityMachine,
		Audience: "agent:" + id, Status: agent.StatusActive, CreatedAt: t0, UpdatedAt: t0,
	}
}

func newRS(id string) resource.Server {
	return resource.Server{
		ID: id, Name: "RS " + id, Audience: "https://" + id + ".example",
		Scopes:        []resource.Scope{{Name: "read", Description: "read things"}, {Name: "write"}},
		TokenLifetime: 10 * time.Minute, CreatedAt: t0, UpdatedAt: t0,
	}
}

func createAgent(t *testing.T, s *sqlstore.Store, id string) agent.Agent {
	t.Helper()
	a := newAgent(id)
	mustOK(t, "CreateAgent "+id, s.CreateAgent(ctx, a))
	return a
}

func createRS(t *testing.T, s *sqlstore.Store, id string) resource.Server {
	t.Helper()
	rs := newRS(id)
	mustOK(t, "CreateResourceServer "+id, s.CreateResourceServer(ctx, rs))
	return rs
}

func newGrant(id, agentID string, rs resource.Server, scopes ...string) grant.Grant {
	return grant.Grant{ID: id, AgentID: agentID, ResourceServerID: rs.ID, Audience: rs.Audience, Scopes: scopes, CreatedAt: t0}
}

func testAgentCRUD(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	got, err := s.GetAgent(ctx, a.ID)
	mustOK(t, "GetAgent", err)
	wantEqual(t, "GetAgent", got, a)
	got, err = s.GetAgentByAudience(ctx, a.Audience)
	mustOK(t, "GetAgentByAudience", err)
	wantEqual(t, "GetAgentByAudience", got, a)

	updated, err := s.UpdateAgent(ctx, a.ID, func(x *agent.Agent) error {
		x.Name, x.Status, x.Owner, x.UpdatedAt = "renamed", agent.StatusDisabled, "team-b", at(time.Hour)
		return nil
	})
	mustOK(t, "UpdateAgent", err)
	want := a
	want.Name, want.Status, want.Owner, want.UpdatedAt = "renamed", agent.StatusDisabled, "team-b", at(time.Hour)
	wantEqual(t, "UpdateAgent result", updated, want)
	got, _ = s.GetAgent(ctx, a.ID)
	wantEqual(t, "GetAgent after update", got, want)

	// An error from the update function aborts the change and comes back as is.
	errStop := errors.New("refused by caller")
	_, err = s.UpdateAgent(ctx, a.ID, func(x *agent.Agent) error { x.Name = "lost"; return errStop })
	wantErr(t, "UpdateAgent with failing update", err, errStop)
	got, _ = s.GetAgent(ctx, a.ID)
	wantEqual(t, "GetAgent after aborted update", got, want)

	// The id is the row's key: an update cannot move it.
	updated, err = s.UpdateAgent(ctx, a.ID, func(x *agent.Agent) error { x.ID = "ag_other"; return nil })
	mustOK(t, "UpdateAgent changing the id", err)
	wantEqual(t, "id after an update that changed it", updated.ID, a.ID)

	_, err = s.UpdateAgent(ctx, "ag_missing", func(*agent.Agent) error { return nil })
	wantErr(t, "UpdateAgent missing", err, store.ErrNotFound)
	_, err = s.GetAgent(ctx, "ag_missing")
	wantErr(t, "GetAgent missing", err, store.ErrNotFound)
	_, err = s.GetAgentByAudience(ctx, "agent:missing")
	wantErr(t, "GetAgentByAudience missing", err, store.ErrNotFound)

	mustOK(t, "DeleteAgent", s.DeleteAgent(ctx, a.ID))
	_, err = s.GetAgent(ctx, a.ID)
	wantErr(t, "GetAgent after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteAgent twice", s.DeleteAgent(ctx, a.ID), store.ErrNotFound)
}

func testAgentConflicts(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	b := createAgent(t, s, "ag_2")
	dupID := newAgent("ag_1")
	dupID.Audience = "agent:other"
	wantErr(t, "CreateAgent duplicate id", s.CreateAgent(ctx, dupID), store.ErrConflict)
	dupAud := newAgent("ag_3")
	dupAud.Audience = a.Audience
	wantErr(t, "CreateAgent duplicate audience", s.CreateAgent(ctx, dupAud), store.ErrConflict)
	_, err := s.UpdateAgent(ctx, b.ID, func(x *agent.Agent) error { x.Audience = a.Audience; return nil })
	wantErr(t, "UpdateAgent to a taken audience", err, store.ErrConflict)
	got, _ := s.GetAgent(ctx, b.ID)
	wantEqual(t, "agent after refused update", got, b)
}

func testCreateAgentAtomic(t *testing.T, s *sqlstore.Store) {
	rs := createRS(t, s, "rs_1")
	missing := newRS("rs_missing")
	tests := []struct {
		name   string
		grants []grant.Grant
		want   error
	}{
		{"grant on a missing resource server", []grant.Grant{newGrant("gr_1", "ag_x", rs, "read"), newGrant("gr_2", "ag_x", missing, "read")}, store.ErrNotFound},
		{"two grants on one resource server", []grant.Grant{newGrant("gr_1", "ag_x", rs, "read"), newGrant("gr_2", "ag_x", rs, "write")}, store.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateAgent(ctx, newAgent("ag_x"), tt.grants...)
			wantErr(t, "CreateAgent", err, tt.want)
			_, err = s.GetAgent(ctx, "ag_x")
			wantErr(t, "GetAgent after failed create (the agent must roll back)", err, store.ErrNotFound)
			gs, err := s.ListGrants(ctx, "ag_x")
			mustOK(t, "ListGrants", err)
			wantEqual(t, "grants after failed create", len(gs), 0)
		})
	}
	g1 := newGrant("gr_1", "ag_x", rs, "write", "read")
	mustOK(t, "CreateAgent with a grant", s.CreateAgent(ctx, newAgent("ag_x"), g1))
	gs, err := s.ListGrants(ctx, "ag_x")
	mustOK(t, "ListGrants", err)
	wantEqual(t, "grants of the new agent", gs, []grant.Grant{g1})
}

func testListAgents(t *testing.T, s *sqlstore.Store) {
	type row struct{ id, owner, status, typ, name string }
	rows := []row{
		{"ag_01", "alice", agent.StatusActive, agent.TypeAutonomous, "Billing bot"},
		{"ag_02", "bob", agent.StatusDisabled, agent.TypeInteractive, "Support helper"},
		{"ag_03", "alice", agent.StatusDisabled, agent.TypeAutonomous, "BILLING reconciler"},
		{"ag_04", "carol", agent.StatusActive, agent.TypeInteractive, "Search"},
		{"ag_05", "alice", agent.StatusActive, agent.TypeInteractive, "Scheduler"},
		{"ag_06", "bob", agent.StatusActive, agent.TypeAutonomous, "Indexer"},
		{"ag_07", "alice", agent.StatusActive, agent.TypeAutonomous, "Mailer"},
	}
	for _, r := range rows {
		a := newAgent(r.id)
		a.Owner, a.Status, a.Type, a.Name = r.owner, r.status, r.typ, r.name
		mustOK(t, "CreateAgent", s.CreateAgent(ctx, a))
	}
	ids := func(as []agent.Agent) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	// Walk every page: each row once, in id order, and the last page has no cursor.
	var all []string
	cursor, pages := "", 0
	for {
		got, next, err := s.ListAgents(ctx, agent.Filter{}, 3, cursor)
		mustOK(t, "ListAgents page", err)
		pages++
		if len(got) > 3 {
			t.Fatalf("page %d has %d rows, limit 3", pages, len(got))
		}
		all = append(all, ids(got)...)
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	wantEqual(t, "all pages", all, []string{"ag_01", "ag_02", "ag_03", "ag_04", "ag_05", "ag_06", "ag_07"})
	wantEqual(t, "pages of 3 for 7 rows", pages, 3)

	// An exact page: no extra empty page is promised.
	got, next, err := s.ListAgents(ctx, agent.Filter{}, 7, "")
	mustOK(t, "ListAgents limit 7", err)
	if len(got) != 7 || next != "" {
		t.Fatalf("limit = row count: %d rows, cursor %q; want 7 rows and no cursor", len(got), next)
	}
	// Limit 0 means the default page size.
	got, _, err = s.ListAgents(ctx, agent.Filter{}, 0, "")
	mustOK(t, "ListAgents limit 0", err)
	wantEqual(t, "limit 0 uses the default", len(got), 7)

	tests := []struct {
		name string
		f    agent.Filter
		want []string
	}{
		{"owner", agent.Filter{Owner: "alice"}, []string{"ag_01", "ag_03", "ag_05", "ag_07"}},
		{"status", agent.Filter{Status: agent.StatusDisabled}, []string{"ag_02", "ag_03"}},
		{"type", agent.Filter{Type: agent.TypeInteractive}, []string{"ag_02", "ag_04", "ag_05"}},
		{"query is case-insensitive on name", agent.Filter{Query: "billing"}, []string{"ag_01", "ag_03"}},
		{"query matches description", agent.Filter{Query: "does ag_04"}, []string{"ag_04"}},
		{"query matches id", agent.Filter{Query: "ag_06"}, []string{"ag_06"}},
		{"filters combine", agent.Filter{Owner: "alice", Status: agent.StatusActive, Type: agent.TypeAutonomous}, []string{"ag_01", "ag_07"}},
		{"no match", agent.Filter{Owner: "nobody"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := s.ListAgents(ctx, tt.f, 50, "")
			mustOK(t, "ListAgents", err)
			wantEqual(t, "ids", ids(got), tt.want)
			wantEqual(t, "cursor", next, "")
		})
	}
	// A filtered walk with a cursor continues within the filter.
	first, next, err := s.ListAgents(ctx, agent.Filter{Owner: "alice"}, 2, "")
	mustOK(t, "filtered page 1", err)
	second, last, err := s.ListAgents(ctx, agent.Filter{Owner: "alice"}, 2, next)
	mustOK(t, "filtered page 2", err)
	wantEqual(t, "filtered pages", append(ids(first), ids(second)...), []string{"ag_01", "ag_03", "ag_05", "ag_07"})
	wantEqual(t, "filtered last cursor", last, "")
}

// A search for "100%" or "a_b" must find those names, not everything LIKE would.
func testListAgentsLike(t *testing.T, s *sqlstore.Store) {
	for id, name := range map[string]string{
		"ag_1": "100% done", "ag_2": "100 x done", "ag_3": "a_b", "ag_4": "axb", `ag_5`: `back\slash`, "ag_6": "backxslash",
	} {
		a := newAgent(id)
		a.Name, a.Description = name, ""
		mustOK(t, "CreateAgent", s.CreateAgent(ctx, a))
	}
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"%", []string{"ag_1"}},
		{"100%", []string{"ag_1"}},
		{"a_b", []string{"ag_3"}},
		{"_", []string{"ag_1", "ag_2", "ag_3", "ag_4", "ag_5", "ag_6"}}, // every id has a literal "_"
		{`\`, []string{"ag_5"}},
		{`k\s`, []string{"ag_5"}},
		{"%%", []string{}},
	} {
		got, _, err := s.ListAgents(ctx, agent.Filter{Query: tt.q}, 50, "")
		mustOK(t, "ListAgents q="+tt.q, err)
		ids := []string{}
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		wantEqual(t, "q="+tt.q, ids, tt.want)
	}
	// Names (not ids) with "_": only a_b.
	got, _, err := s.ListAgents(ctx, agent.Filter{Query: "a_"}, 50, "")
	mustOK(t, "ListAgents q=a_", err)
	var names []string
	for _, a := range got {
		names = append(names, a.Name)
	}
	if slices.Contains(names, "axb") {
		t.Fatalf("q=a_ matched axb: _ was treated as a wildcard (%v)", names)
	}
}

func testTimeRoundTrip(t *testing.T, s *sqlstore.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	created := time.Date(2031, 3, 4, 10, 36, 7, 123456789, zone) // nanoseconds and a zone
	a := newAgent("ag_t")
	a.CreatedAt, a.UpdatedAt = created, created.Add(time.Microsecond)
	mustOK(t, "CreateAgent", s.CreateAgent(ctx, a))
	got, err := s.GetAgent(ctx, a.ID)
	mustOK(t, "GetAgent", err)
	want := created.Truncate(time.Microsecond).UTC()
	if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("created_at = %v (%v), want %v in UTC (microsecond precision)", got.CreatedAt, got.CreatedAt.Location(), want)
	}
	if !got.UpdatedAt.Equal(want.Add(time.Microsecond)) {
		t.Fatalf("updated_at = %v, want one microsecond after created_at", got.UpdatedAt)
	}
	// Zero stays zero (expires_at "never").
	mustOK(t, "CreateSecret", s.CreateSecret(ctx, agent.Secret{ID: "sec_1", AgentID: a.ID, Hash: "h", CreatedAt: t0}))
	secs, err := s.ListSecrets(ctx, a.ID)
	mustOK(t, "ListSecrets", err)
	if len(secs) != 1 || !secs[0].ExpiresAt.IsZero() {
		t.Fatalf("zero expires_at came back as %v", secs)
	}
}

func testSecrets(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	createAgent(t, s, "ag_2")
	s1 := agent.Secret{ID: "sec_1", AgentID: a.ID, Hash: "hash-1", CreatedAt: t0, ExpiresAt: at(24 * time.Hour)}
	s2 := agent.Secret{ID: "sec_2", AgentID: a.ID, Hash: "hash-2", CreatedAt: at(time.Minute)}
	mustOK(t, "CreateSecret 1", s.CreateSecret(ctx, s1))
	mustOK(t, "CreateSecret 2", s.CreateSecret(ctx, s2))
	wantErr(t, "CreateSecret duplicate id", s.CreateSecret(ctx, s1), store.ErrConflict)
	wantErr(t, "CreateSecret for a missing agent", s.CreateSecret(ctx, agent.Secret{ID: "sec_3", AgentID: "ag_missing", Hash: "h", CreatedAt: t0}), store.ErrNotFound)
	got, err := s.ListSecrets(ctx, a.ID)
	mustOK(t, "ListSecrets", err)
	wantEqual(t, "ListSecrets", got, []agent.Secret{s1, s2})
	if !got[0].Expired(at(24*time.Hour)) || got[0].Expired(at(time.Hour)) || got[1].Expired(at(1000*time.Hour)) {
		t.Fatal("secret expiry does not follow expires_at")
	}
	other, err := s.ListSecrets(ctx, "ag_2")
	mustOK(t, "ListSecrets other agent", err)
	wantEqual(t, "other agent's secrets", len(other), 0)
	wantErr(t, "DeleteSecret through another agent", s.DeleteSecret(ctx, "ag_2", s1.ID), store.ErrNotFound)
	mustOK(t, "DeleteSecret", s.DeleteSecret(ctx, a.ID, s1.ID))
	wantErr(t, "DeleteSecret twice", s.DeleteSecret(ctx, a.ID, s1.ID), store.ErrNotFound)
	got, _ = s.ListSecrets(ctx, a.ID)
	wantEqual(t, "secrets after delete", got, []agent.Secret{s2})
}

func testKeys(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	b := createAgent(t, s, "ag_2")
	k1 := agent.Key{KID: "k1", AgentID: a.ID, Alg: "ES256", JWK: []byte(`{"kty":"EC","crv":"P-256","x":"x","y":"y"}`), CreatedAt: t0}
	k2 := agent.Key{KID: "k2", AgentID: a.ID, Alg: "RS256", JWK: []byte(`{"kty":"RSA"}`), CreatedAt: at(time.Second)}
	mustOK(t, "CreateKey 1", s.CreateKey(ctx, k1))
	mustOK(t, "CreateKey 2", s.CreateKey(ctx, k2))
	wantErr(t, "CreateKey duplicate kid on one agent", s.CreateKey(ctx, k1), store.ErrConflict)
	kb := k1
	kb.AgentID = b.ID
	mustOK(t, "CreateKey same kid on another agent", s.CreateKey(ctx, kb))
	wantErr(t, "CreateKey for a missing agent", s.CreateKey(ctx, agent.Key{KID: "k", AgentID: "ag_missing", Alg: "ES256", JWK: []byte("{}"), CreatedAt: t0}), store.ErrNotFound)
	got, err := s.ListKeys(ctx, a.ID)
	mustOK(t, "ListKeys", err)
	wantEqual(t, "ListKeys", got, []agent.Key{k1, k2})
	wantErr(t, "DeleteKey through another agent", s.DeleteKey(ctx, "ag_missing", "k1"), store.ErrNotFound)
	mustOK(t, "DeleteKey", s.DeleteKey(ctx, a.ID, "k1"))
	wantErr(t, "DeleteKey twice", s.DeleteKey(ctx, a.ID, "k1"), store.ErrNotFound)
	got, _ = s.ListKeys(ctx, b.ID)
	wantEqual(t, "the other agent's key with the same kid stays", got, []agent.Key{kb})
}

func testFederations(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	createAgent(t, s, "ag_2")
	f1 := agent.Federation{ID: "fed_1", AgentID: a.ID, Issuer: "https://k8s.example", Subject: "system:serviceaccount:ns:bot", JWKSURI: "https://k8s.example/jwks", Audience: "agentguard", CreatedAt: t0}
	f2 := agent.Federation{ID: "fed_2", AgentID: a.ID, Issuer: "https://k8s.example", Subject: "system:serviceaccount:ns:other", CreatedAt: t0}
	mustOK(t, "CreateFederation 1", s.CreateFederation(ctx, f1))
	mustOK(t, "CreateFederation 2 (same issuer, other subject)", s.CreateFederation(ctx, f2))
	dup := f1
	dup.ID, dup.AgentID = "fed_3", "ag_2"
	wantErr(t, "CreateFederation duplicate issuer+subject on another agent", s.CreateFederation(ctx, dup), store.ErrConflict)
	wantErr(t, "CreateFederation for a missing agent", s.CreateFederation(ctx, agent.Federation{ID: "fed_4", AgentID: "ag_missing", Issuer: "i", Subject: "s", CreatedAt: t0}), store.ErrNotFound)
	got, err := s.ListFederations(ctx, a.ID)
	mustOK(t, "ListFederations", err)
	wantEqual(t, "ListFederations", got, []agent.Federation{f1, f2})
	found, err := s.FindFederation(ctx, f1.Issuer, f1.Subject)
	mustOK(t, "FindFederation", err)
	wantEqual(t, "FindFederation", found, f1)
	_, err = s.FindFederation(ctx, f1.Issuer, "system:serviceaccount:ns:nobody")
	wantErr(t, "FindFederation unknown subject", err, store.ErrNotFound)
	_, err = s.FindFederation(ctx, "https://other.example", f1.Subject)
	wantErr(t, "FindFederation subject under another issuer", err, store.ErrNotFound)
	wantErr(t, "DeleteFederation through another agent", s.DeleteFederation(ctx, "ag_2", f1.ID), store.ErrNotFound)
	mustOK(t, "DeleteFederation", s.DeleteFederation(ctx, a.ID, f1.ID))
	wantErr(t, "DeleteFederation twice", s.DeleteFederation(ctx, a.ID, f1.ID), store.ErrNotFound)
	_, err = s.FindFederation(ctx, f1.Issuer, f1.Subject)
	wantErr(t, "FindFederation after delete", err, store.ErrNotFound)
	mustOK(t, "CreateFederation reusing a deleted issuer+subject", s.CreateFederation(ctx, dup))
}

func testDeleteAgentCascades(t *testing.T, s *sqlstore.Store) {
	rs := createRS(t, s, "rs_1")
	a := newAgent("ag_1")
	mustOK(t, "CreateAgent", s.CreateAgent(ctx, a, newGrant("gr_1", a.ID, rs, "read")))
	keep := createAgent(t, s, "ag_2")
	mustOK(t, "CreateGrant for the other agent", s.CreateGrant(ctx, newGrant("gr_2", keep.ID, rs, "read")))
	mustOK(t, "CreateSecret", s.CreateSecret(ctx, agent.Secret{ID: "sec_1", AgentID: a.ID, Hash: "h", CreatedAt: t0}))
	mustOK(t, "CreateKey", s.CreateKey(ctx, agent.Key{KID: "k1", AgentID: a.ID, Alg: "ES256", JWK: []byte("{}"), CreatedAt: t0}))
	fed := agent.Federation{ID: "fed_1", AgentID: a.ID, Issuer: "https://ci.example", Subject: "repo:x", CreatedAt: t0}
	mustOK(t, "CreateFederation", s.CreateFederation(ctx, fed))

	mustOK(t, "DeleteAgent", s.DeleteAgent(ctx, a.ID))
	secs, err := s.ListSecrets(ctx, a.ID)
	mustOK(t, "ListSecrets", err)
	keys, err := s.ListKeys(ctx, a.ID)
	mustOK(t, "ListKeys", err)
	feds, err := s.ListFederations(ctx, a.ID)
	mustOK(t, "ListFederations", err)
	grants, err := s.ListGrants(ctx, a.ID)
	mustOK(t, "ListGrants", err)
	if len(secs)+len(keys)+len(feds)+len(grants) != 0 {
		t.Fatalf("after DeleteAgent: %d secrets, %d keys, %d federations, %d grants remain", len(secs), len(keys), len(feds), len(grants))
	}
	_, err = s.FindFederation(ctx, fed.Issuer, fed.Subject)
	wantErr(t, "FindFederation of a deleted agent", err, store.ErrNotFound)
	_, err = s.GrantFor(ctx, a.ID, rs.Audience)
	wantErr(t, "GrantFor a deleted agent", err, store.ErrNotFound)
	// The resource server and other agents' grants are untouched.
	_, err = s.GetResourceServer(ctx, rs.ID)
	mustOK(t, "GetResourceServer after deleting an agent", err)
	_, err = s.GrantFor(ctx, keep.ID, rs.Audience)
	mustOK(t, "other agent's grant after deleting an agent", err)
}

func testResourceServers(t *testing.T, s *sqlstore.Store) {
	rs := createRS(t, s, "rs_1")
	got, err := s.GetResourceServer(ctx, rs.ID)
	mustOK(t, "GetResourceServer", err)
	wantEqual(t, "GetResourceServer", got, rs)
	got, err = s.GetResourceServerByAudience(ctx, rs.Audience)
	mustOK(t, "GetResourceServerByAudience", err)
	wantEqual(t, "GetResourceServerByAudience", got, rs)

	noScopes := newRS("rs_2")
	noScopes.Scopes = nil
	mustOK(t, "CreateResourceServer without scopes", s.CreateResourceServer(ctx, noScopes))
	got, _ = s.GetResourceServer(ctx, noScopes.ID)
	if len(got.Scopes) != 0 {
		t.Fatalf("scopes of a server created without any: %v", got.Scopes)
	}

	dupID := newRS("rs_1")
	dupID.Audience = "https://unique.example"
	wantErr(t, "CreateResourceServer duplicate id", s.CreateResourceServer(ctx, dupID), store.ErrConflict)
	dupAud := newRS("rs_3")
	dupAud.Audience = rs.Audience
	wantErr(t, "CreateResourceServer duplicate audience", s.CreateResourceServer(ctx, dupAud), store.ErrConflict)

	updated, err := s.UpdateResourceServer(ctx, rs.ID, func(x *resource.Server) error {
		x.Name, x.Scopes, x.TokenLifetime, x.UpdatedAt = "renamed", []resource.Scope{{Name: "admin"}}, time.Hour, at(time.Hour)
		return nil
	})
	mustOK(t, "UpdateResourceServer", err)
	want := rs
	want.Name, want.Scopes, want.TokenLifetime, want.UpdatedAt = "renamed", []resource.Scope{{Name: "admin"}}, time.Hour, at(time.Hour)
	wantEqual(t, "UpdateResourceServer result", updated, want)
	got, _ = s.GetResourceServer(ctx, rs.ID)
	wantEqual(t, "GetResourceServer after update", got, want)

	_, err = s.UpdateResourceServer(ctx, noScopes.ID, func(x *resource.Server) error { x.Audience = rs.Audience; return nil })
	wantErr(t, "UpdateResourceServer to a taken audience", err, store.ErrConflict)
	moved, err := s.UpdateResourceServer(ctx, rs.ID, func(x *resource.Server) error { x.ID = "rs_other"; return nil })
	mustOK(t, "UpdateResourceServer changing the id", err)
	wantEqual(t, "id after an update that changed it", moved.ID, rs.ID)
	_, err = s.UpdateResourceServer(ctx, "rs_missing", func(*resource.Server) error { return nil })
	wantErr(t, "UpdateResourceServer missing", err, store.ErrNotFound)
	_, err = s.GetResourceServer(ctx, "rs_missing")
	wantErr(t, "GetResourceServer missing", err, store.ErrNotFound)
	_, err = s.GetResourceServerByAudience(ctx, "https://missing.example")
	wantErr(t, "GetResourceServerByAudience missing", err, store.ErrNotFound)

	mustOK(t, "DeleteResourceServer", s.DeleteResourceServer(ctx, rs.ID))
	_, err = s.GetResourceServer(ctx, rs.ID)
	wantErr(t, "GetResourceServer after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteResourceServer twice", s.DeleteResourceServer(ctx, rs.ID), store.ErrNotFound)
}

func testListResourceServers(t *testing.T, s *sqlstore.Store) {
	want := []string{"rs_a", "rs_b", "rs_c", "rs_d", "rs_e"}
	for i := len(want) - 1; i >= 0; i-- { // inserted out of order; listed by id
		createRS(t, s, want[i])
	}
	var got []string
	cursor := ""
	for range 10 {
		page, next, err := s.ListResourceServers(ctx, 2, cursor)
		mustOK(t, "ListResourceServers", err)
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		for _, rs := range page {
			got = append(got, rs.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	wantEqual(t, "all pages", got, want)
	all, next, err := s.ListResourceServers(ctx, 0, "")
	mustOK(t, "ListResourceServers limit 0", err)
	if len(all) != len(want) || next != "" {
		t.Fatalf("default limit: %d rows, cursor %q", len(all), next)
	}
}

func testEnsureResourceServer(t *testing.T, s *sqlstore.Store) {
	rs := newRS(resource.BuiltinID)
	mustOK(t, "EnsureResourceServer creates", s.EnsureResourceServer(ctx, rs))
	got, err := s.GetResourceServer(ctx, rs.ID)
	mustOK(t, "GetResourceServer", err)
	wantEqual(t, "created by Ensure", got, rs)

	// A restart with another issuer resets audience and scopes but keeps created_at.
	again := rs
	again.Audience, again.Scopes, again.CreatedAt, again.UpdatedAt = "https://new-issuer.example", []resource.Scope{{Name: "agentguard:admin"}}, at(time.Hour), at(time.Hour)
	mustOK(t, "EnsureResourceServer again", s.EnsureResourceServer(ctx, again))
	got, _ = s.GetResourceServer(ctx, rs.ID)
	want := again
	want.CreatedAt = rs.CreatedAt
	wantEqual(t, "after the second Ensure", got, want)

	other := createRS(t, s, "rs_other")
	clash := again
	clash.Audience = other.Audience
	wantErr(t, "EnsureResourceServer onto a taken audience", s.EnsureResourceServer(ctx, clash), store.ErrConflict)
}

func testGrants(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	createAgent(t, s, "ag_2")
	rs1, rs2 := createRS(t, s, "rs_1"), createRS(t, s, "rs_2")
	g1 := newGrant("gr_1", a.ID, rs1, "write", "read") // order kept
	g2 := newGrant("gr_2", a.ID, rs2)
	g2.Scopes = []string{}
	mustOK(t, "CreateGrant 1", s.CreateGrant(ctx, g1))
	mustOK(t, "CreateGrant 2 (no scopes)", s.CreateGrant(ctx, g2))
	wantErr(t, "CreateGrant second grant for agent+resource server", s.CreateGrant(ctx, newGrant("gr_3", a.ID, rs1, "read")), store.ErrConflict)
	wantErr(t, "CreateGrant duplicate id", s.CreateGrant(ctx, newGrant("gr_1", "ag_2", rs1, "read")), store.ErrConflict)
	wantErr(t, "CreateGrant for a missing agent", s.CreateGrant(ctx, newGrant("gr_4", "ag_missing", rs1, "read")), store.ErrNotFound)
	wantErr(t, "CreateGrant on a missing resource server", s.CreateGrant(ctx, newGrant("gr_5", a.ID, newRS("rs_missing"), "read")), store.ErrNotFound)

	got, err := s.ListGrants(ctx, a.ID)
	mustOK(t, "ListGrants", err)
	wantEqual(t, "ListGrants", got, []grant.Grant{g1, g2})
	found, err := s.GrantFor(ctx, a.ID, rs1.Audience)
	mustOK(t, "GrantFor", err)
	wantEqual(t, "GrantFor", found, g1)
	_, err = s.GrantFor(ctx, "ag_2", rs1.Audience)
	wantErr(t, "GrantFor an agent without a grant", err, store.ErrNotFound)
	_, err = s.GrantFor(ctx, a.ID, "https://unknown.example")
	wantErr(t, "GrantFor an unknown audience", err, store.ErrNotFound)

	// A grant follows its resource server's audience when that changes.
	_, err = s.UpdateResourceServer(ctx, rs1.ID, func(x *resource.Server) error { x.Audience = "https://moved.example"; return nil })
	mustOK(t, "UpdateResourceServer audience", err)
	found, err = s.GrantFor(ctx, a.ID, "https://moved.example")
	mustOK(t, "GrantFor the new audience", err)
	wantEqual(t, "grant audience", found.Audience, "https://moved.example")
	_, err = s.GrantFor(ctx, a.ID, rs1.Audience)
	wantErr(t, "GrantFor the old audience", err, store.ErrNotFound)

	updated, err := s.UpdateGrantScopes(ctx, a.ID, g2.ID, []string{"read", "write"})
	mustOK(t, "UpdateGrantScopes", err)
	g2.Scopes = []string{"read", "write"}
	wantEqual(t, "UpdateGrantScopes result", updated, g2)
	_, err = s.UpdateGrantScopes(ctx, "ag_2", g2.ID, []string{"read"})
	wantErr(t, "UpdateGrantScopes through another agent", err, store.ErrNotFound)

	wantErr(t, "DeleteGrant through another agent", s.DeleteGrant(ctx, "ag_2", g1.ID), store.ErrNotFound)
	mustOK(t, "DeleteGrant", s.DeleteGrant(ctx, a.ID, g1.ID))
	wantErr(t, "DeleteGrant twice", s.DeleteGrant(ctx, a.ID, g1.ID), store.ErrNotFound)
	got, _ = s.ListGrants(ctx, a.ID)
	wantEqual(t, "grants after delete", got, []grant.Grant{g2})
}

func testDeleteResourceServerCascades(t *testing.T, s *sqlstore.Store) {
	rs, keep := createRS(t, s, "rs_1"), createRS(t, s, "rs_2")
	a := newAgent("ag_1")
	mustOK(t, "CreateAgent", s.CreateAgent(ctx, a, newGrant("gr_1", a.ID, rs, "read"), newGrant("gr_2", a.ID, keep, "read")))
	mustOK(t, "DeleteResourceServer", s.DeleteResourceServer(ctx, rs.ID))
	got, err := s.ListGrants(ctx, a.ID)
	mustOK(t, "ListGrants", err)
	if len(got) != 1 || got[0].ID != "gr_2" {
		t.Fatalf("grants after deleting rs_1: %+v, want only gr_2", got)
	}
	_, err = s.GetAgent(ctx, a.ID)
	mustOK(t, "the agent survives its resource server", err)
}

func testSigningKeys(t *testing.T, s *sqlstore.Store) {
	k1 := token.SigningKey{KID: "sig_1", Alg: "ES256", PublicJWK: []byte(`{"kid":"sig_1"}`), PrivateSealed: []byte{1, 0, 2, 0xff}, CreatedAt: t0}
	k2 := token.SigningKey{KID: "sig_2", Alg: "ES256", PublicJWK: []byte(`{"kid":"sig_2"}`), PrivateSealed: []byte{3, 4}, CreatedAt: at(time.Hour)}
	mustOK(t, "CreateSigningKey 1", s.CreateSigningKey(ctx, k1))
	mustOK(t, "CreateSigningKey 2", s.CreateSigningKey(ctx, k2))
	wantErr(t, "CreateSigningKey duplicate kid", s.CreateSigningKey(ctx, k1), store.ErrConflict)
	got, err := s.ListSigningKeys(ctx)
	mustOK(t, "ListSigningKeys", err)
	wantEqual(t, "ListSigningKeys newest first", got, []token.SigningKey{k2, k1})

	// Rotation: k2 is kept current, k1 retires with the given times.
	retired, drop := at(2*time.Hour), at(26*time.Hour)
	mustOK(t, "RetireSigningKeys", s.RetireSigningKeys(ctx, k2.KID, retired, drop))
	got, _ = s.ListSigningKeys(ctx)
	k1r := k1
	k1r.RetiredAt, k1r.DropAfter = retired, drop
	wantEqual(t, "after RetireSigningKeys", got, []token.SigningKey{k2, k1r})
	// Retiring again does not move an already retired key's times.
	mustOK(t, "RetireSigningKeys again", s.RetireSigningKeys(ctx, k2.KID, at(3*time.Hour), at(30*time.Hour)))
	got, _ = s.ListSigningKeys(ctx)
	wantEqual(t, "after a second RetireSigningKeys", got, []token.SigningKey{k2, k1r})

	// KMS rotation replaces only the sealed bytes.
	mustOK(t, "UpdateSigningKeySealed", s.UpdateSigningKeySealed(ctx, k2.KID, []byte{9, 9, 9}))
	wantErr(t, "UpdateSigningKeySealed missing", s.UpdateSigningKeySealed(ctx, "sig_missing", []byte{1}), store.ErrNotFound)
	got, _ = s.ListSigningKeys(ctx)
	k2s := k2
	k2s.PrivateSealed = []byte{9, 9, 9}
	wantEqual(t, "after UpdateSigningKeySealed", got, []token.SigningKey{k2s, k1r})

	n, err := s.DeleteDroppedSigningKeys(ctx, drop.Add(-time.Microsecond))
	mustOK(t, "DeleteDroppedSigningKeys before drop_after", err)
	wantEqual(t, "keys dropped before drop_after", n, 0)
	n, err = s.DeleteDroppedSigningKeys(ctx, drop.Add(time.Second))
	mustOK(t, "DeleteDroppedSigningKeys after drop_after", err)
	wantEqual(t, "keys dropped after drop_after", n, 1)
	got, _ = s.ListSigningKeys(ctx)
	wantEqual(t, "the current key is never dropped", got, []token.SigningKey{k2s})
}

func testRevocationAndReplay(t *testing.T, s *sqlstore.Store) {
	mustOK(t, "RevokeToken", s.RevokeToken(ctx, "jti-1", at(time.Hour)))
	mustOK(t, "RevokeToken again (idempotent)", s.RevokeToken(ctx, "jti-1", at(2*time.Hour)))
	for _, tt := range []struct {
		jti  string
		want bool
	}{{"jti-1", true}, {"jti-2", false}, {"", false}} {
		got, err := s.IsRevoked(ctx, tt.jti)
		mustOK(t, "IsRevoked "+tt.jti, err)
		wantEqual(t, "IsRevoked "+tt.jti, got, tt.want)
	}
	mustOK(t, "UseOnce first use", s.UseOnce(ctx, "client|jti-a", at(time.Minute)))
	wantErr(t, "UseOnce replay", s.UseOnce(ctx, "client|jti-a", at(time.Minute)), store.ErrConflict)
	mustOK(t, "UseOnce another key", s.UseOnce(ctx, "client|jti-b", at(time.Minute)))
}

func testGarbageCollect(t *testing.T, s *sqlstore.Store) {
	now := at(time.Hour)
	mustOK(t, "revoke expired", s.RevokeToken(ctx, "old", now.Add(-time.Second)))
	mustOK(t, "revoke live", s.RevokeToken(ctx, "live", now.Add(time.Second)))
	mustOK(t, "use expired", s.UseOnce(ctx, "old", now.Add(-time.Microsecond)))
	mustOK(t, "use live", s.UseOnce(ctx, "live", now.Add(time.Minute)))
	// Signing keys are not GarbageCollect's business (DeleteDroppedSigningKeys is).
	mustOK(t, "CreateSigningKey", s.CreateSigningKey(ctx, token.SigningKey{KID: "sig_1", Alg: "ES256", PublicJWK: []byte("{}"), PrivateSealed: []byte{1}, CreatedAt: t0, RetiredAt: t0, DropAfter: t0}))

	n, err := s.GarbageCollect(ctx, now)
	mustOK(t, "GarbageCollect", err)
	wantEqual(t, "rows deleted", n, int64(2))
	if r, _ := s.IsRevoked(ctx, "old"); r {
		t.Fatal("expired revocation survived GarbageCollect")
	}
	if r, _ := s.IsRevoked(ctx, "live"); !r {
		t.Fatal("GarbageCollect deleted a revocation that has not expired")
	}
	mustOK(t, "UseOnce of a collected key", s.UseOnce(ctx, "old", now.Add(time.Minute)))
	wantErr(t, "UseOnce of a live key after GarbageCollect", s.UseOnce(ctx, "live", now.Add(time.Minute)), store.ErrConflict)
	keys, _ := s.ListSigningKeys(ctx)
	wantEqual(t, "signing keys after GarbageCollect", len(keys), 1)

	n, err = s.GarbageCollect(ctx, now)
	mustOK(t, "GarbageCollect again", err)
	wantEqual(t, "second GarbageCollect deletes nothing", n, int64(0))
}

func testAdminTokens(t *testing.T, s *sqlstore.Store) {
	n, err := s.CountAdminTokens(ctx)
	mustOK(t, "CountAdminTokens", err)
	wantEqual(t, "admin tokens in a fresh store", n, 0)
	tok := admin.Token{ID: "adm_1", Hash: "hash-1", CreatedAt: t0}
	mustOK(t, "CreateAdminToken", s.CreateAdminToken(ctx, tok))
	wantErr(t, "CreateAdminToken duplicate hash", s.CreateAdminToken(ctx, admin.Token{ID: "adm_2", Hash: "hash-1", CreatedAt: t0}), store.ErrConflict)
	wantErr(t, "CreateAdminToken duplicate id", s.CreateAdminToken(ctx, admin.Token{ID: "adm_1", Hash: "hash-2", CreatedAt: t0}), store.ErrConflict)
	n, _ = s.CountAdminTokens(ctx)
	wantEqual(t, "admin tokens", n, 1)
	got, err := s.AdminTokenByHash(ctx, "hash-1")
	mustOK(t, "AdminTokenByHash", err)
	wantEqual(t, "AdminTokenByHash", got, tok)
	_, err = s.AdminTokenByHash(ctx, "hash-unknown")
	wantErr(t, "AdminTokenByHash unknown", err, store.ErrNotFound)
}
