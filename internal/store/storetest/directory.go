package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/idp"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/scim"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/user"
)

var (
	_ user.Store      = (*sqlstore.Store)(nil)
	_ policy.Store    = (*sqlstore.Store)(nil)
	_ scim.TokenStore = (*sqlstore.Store)(nil)
	_ idp.Store       = (*sqlstore.Store)(nil)
)

// directoryTests are the directory's conformance cases (issue 5): users, groups,
// memberships, upstream group sync and orphaned agents.
var directoryTests = []struct {
	name string
	run  func(t *testing.T, s *sqlstore.Store)
}{
	{"UserCRUD", testUserCRUD},
	{"UserUsernameIsUniqueIgnoringCase", testUserUsernameConflicts},
	{"UserGroupsMustExist", testUserGroupsMustExist},
	{"ListUsersPagingAndFilters", testListUsers},
	{"ListUsersAtOffsets", testListUsersAt},
	{"GroupCRUDAndMembers", testGroups},
	{"ListGroupsFilters", testListGroups},
	{"DeletesCascadeToMemberships", testMembershipCascades},
	{"SyncUserGroupsTouchesOnlyItsSource", testSyncUserGroups},
	{"DeleteUserOrphansTheirAgents", testDeleteUserOrphans},
	{"DeactivationOrphansAndReactivationRestores", testDeactivateOrphans},
	{"SharedEmailDoesNotOrphan", testSharedEmailNoOrphan},
	{"ActiveOwner", testActiveOwner},
	{"InboundRules", testInboundRules},
	{"SCIMTokens", testSCIMTokens},
	{"IdentityProviders", testIdentityProviders},
}

func newUser(id, username string) user.User {
	return user.User{
		ID: id, Username: username, Email: username + "@example.com", DisplayName: "User " + username,
		Groups: []string{}, Attributes: map[string]string{"department": "HR"}, Active: true,
		Source: user.SourceLocal, CreatedAt: t0, UpdatedAt: t0,
	}
}

func createUser(t *testing.T, s *sqlstore.Store, u user.User, hash string) user.User {
	t.Helper()
	mustOK(t, "CreateUser "+u.ID, s.CreateUser(ctx, u, hash))
	u.HasPassword = hash != ""
	return u
}

func newGroup(id, name string) user.Group {
	return user.Group{ID: id, Name: name, DisplayName: "Group " + name, Source: user.SourceLocal, CreatedAt: t0, UpdatedAt: t0}
}

func createGroup(t *testing.T, s *sqlstore.Store, g user.Group, members ...string) user.Group {
	t.Helper()
	mustOK(t, "CreateGroup "+g.ID, s.CreateGroup(ctx, g, members, user.SourceLocal))
	g.MemberCount = len(members)
	return g
}

func userIDs(us []user.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func testUserCRUD(t *testing.T, s *sqlstore.Store) {
	createGroup(t, s, newGroup("grp_1", "HR"))
	createGroup(t, s, newGroup("grp_2", "sales"))
	u := newUser("usr_1", "Alice")
	u.Groups = []string{"HR"}
	u.ExternalID = "ext-1"
	u = createUser(t, s, u, "$argon2id$hash")

	got, err := s.GetUser(ctx, u.ID)
	mustOK(t, "GetUser", err)
	wantEqual(t, "GetUser", got, u)
	got, err = s.GetUserByUsername(ctx, "aLiCe")
	mustOK(t, "GetUserByUsername in another case", err)
	wantEqual(t, "GetUserByUsername", got, u)
	cred, hash, err := s.UserCredentials(ctx, "ALICE")
	mustOK(t, "UserCredentials", err)
	wantEqual(t, "UserCredentials user", cred, u)
	wantEqual(t, "UserCredentials hash", hash, "$argon2id$hash")

	// The update sees the stored user and may change everything but the id,
	// source, creation time and password.
	updated, changes, err := s.UpdateUser(ctx, u.ID, user.Orphaning{At: at(time.Hour)}, func(x *user.User) error {
		x.Username, x.Email, x.DisplayName = "alice.smith", "ALICE@corp.example", "Alice Smith"
		x.Attributes = map[string]string{"department": "Sales", "title": "Lead"}
		x.Groups = []string{"sales"}
		x.ExternalID = "ext-2"
		x.ID, x.Source, x.CreatedAt, x.HasPassword = "usr_other", "scim", at(time.Hour), false
		x.UpdatedAt = at(time.Hour)
		return nil
	})
	mustOK(t, "UpdateUser", err)
	wantEqual(t, "orphan changes of an update that keeps the user active", len(changes), 0)
	want := u
	want.Username, want.Email, want.DisplayName = "alice.smith", "ALICE@corp.example", "Alice Smith"
	want.Attributes = map[string]string{"department": "Sales", "title": "Lead"}
	want.Groups, want.ExternalID, want.UpdatedAt = []string{"sales"}, "ext-2", at(time.Hour)
	wantEqual(t, "UpdateUser result", updated, want)
	got, _ = s.GetUser(ctx, u.ID)
	wantEqual(t, "GetUser after update", got, want)
	_, err = s.GetUserByUsername(ctx, "alice")
	wantErr(t, "old username after rename", err, store.ErrNotFound)

	errStop := errors.New("refused by caller")
	_, _, err = s.UpdateUser(ctx, u.ID, user.Orphaning{}, func(x *user.User) error { x.Username = "lost"; return errStop })
	wantErr(t, "UpdateUser with failing update", err, errStop)
	got, _ = s.GetUser(ctx, u.ID)
	wantEqual(t, "user after aborted update", got, want)

	mustOK(t, "SetPasswordHash", s.SetPasswordHash(ctx, u.ID, "$argon2id$new", at(2*time.Hour)))
	_, hash, _ = s.UserCredentials(ctx, "alice.smith")
	wantEqual(t, "hash after SetPasswordHash", hash, "$argon2id$new")
	wantErr(t, "SetPasswordHash missing", s.SetPasswordHash(ctx, "usr_missing", "h", t0), store.ErrNotFound)

	// A user without a password.
	v := createUser(t, s, newUser("usr_2", "bob"), "")
	got, _ = s.GetUser(ctx, v.ID)
	wantEqual(t, "HasPassword of a user without one", got.HasPassword, false)
	_, hash, _ = s.UserCredentials(ctx, "bob")
	wantEqual(t, "hash of a user without one", hash, "")

	_, _, err = s.UpdateUser(ctx, "usr_missing", user.Orphaning{}, func(*user.User) error { return nil })
	wantErr(t, "UpdateUser missing", err, store.ErrNotFound)
	_, err = s.GetUser(ctx, "usr_missing")
	wantErr(t, "GetUser missing", err, store.ErrNotFound)
	_, _, err = s.UserCredentials(ctx, "nobody")
	wantErr(t, "UserCredentials missing", err, store.ErrNotFound)

	deleted, _, err := s.DeleteUser(ctx, u.ID, user.Orphaning{At: at(3 * time.Hour)})
	mustOK(t, "DeleteUser", err)
	wantEqual(t, "DeleteUser returns the user", deleted.ID, u.ID)
	_, err = s.GetUser(ctx, u.ID)
	wantErr(t, "GetUser after delete", err, store.ErrNotFound)
	_, _, err = s.DeleteUser(ctx, u.ID, user.Orphaning{})
	wantErr(t, "DeleteUser twice", err, store.ErrNotFound)
}

func testUserUsernameConflicts(t *testing.T, s *sqlstore.Store) {
	a := createUser(t, s, newUser("usr_1", "alice"), "")
	createUser(t, s, newUser("usr_2", "bob"), "")
	wantErr(t, "CreateUser same username in another case", s.CreateUser(ctx, newUser("usr_3", "ALICE"), ""), store.ErrConflict)
	wantErr(t, "CreateUser same id", s.CreateUser(ctx, newUser("usr_1", "carol"), ""), store.ErrConflict)
	_, _, err := s.UpdateUser(ctx, "usr_2", user.Orphaning{}, func(x *user.User) error { x.Username = "Alice"; return nil })
	wantErr(t, "rename to a taken username", err, store.ErrConflict)
	// External ids are unique per source.
	x := newUser("usr_4", "dave")
	x.Source, x.ExternalID = user.SourceSCIM, "ext"
	createUser(t, s, x, "")
	y := newUser("usr_5", "erin")
	y.Source, y.ExternalID = user.SourceSCIM, "ext"
	wantErr(t, "same external id from one source", s.CreateUser(ctx, y, ""), store.ErrConflict)
	y.Source = "oidc:idp_1"
	createUser(t, s, y, "")
	got, _ := s.GetUser(ctx, a.ID)
	wantEqual(t, "first user after the refused changes", got, a)
}

func testUserGroupsMustExist(t *testing.T, s *sqlstore.Store) {
	createGroup(t, s, newGroup("grp_1", "hr"))
	u := newUser("usr_1", "alice")
	u.Groups = []string{"hr", "missing"}
	err := s.CreateUser(ctx, u, "")
	wantErr(t, "CreateUser with a missing group", err, store.ErrNotFound)
	_, err = s.GetUser(ctx, u.ID)
	wantErr(t, "the user rolled back", err, store.ErrNotFound)

	u.Groups = []string{"HR"} // any case names the group
	createUser(t, s, u, "")
	got, _ := s.GetUser(ctx, u.ID)
	wantEqual(t, "groups come back as the group's name", got.Groups, []string{"hr"})
	_, _, err = s.UpdateUser(ctx, u.ID, user.Orphaning{}, func(x *user.User) error { x.Groups = []string{"hr", "nope"}; return nil })
	wantErr(t, "UpdateUser adding a missing group", err, store.ErrNotFound)
	got, _ = s.GetUser(ctx, u.ID)
	wantEqual(t, "groups after the refused update", got.Groups, []string{"hr"})
}

func testListUsers(t *testing.T, s *sqlstore.Store) {
	createGroup(t, s, newGroup("grp_1", "hr"))
	type row struct {
		id, username, display, source, ext string
		active                             bool
		groups                             []string
	}
	rows := []row{
		{"usr_01", "alice", "Alice Adams", user.SourceLocal, "", true, []string{"hr"}},
		{"usr_02", "bob", "Bob 100%", user.SourceSCIM, "e-2", true, nil},
		{"usr_03", "carol", "Carol", user.SourceSCIM, "e-3", false, []string{"hr"}},
		{"usr_04", "dave_x", "Dave", user.SourceLocal, "", true, nil},
		{"usr_05", "erin", "Erin", "oidc:idp_1", "sub-5", true, nil},
	}
	for _, r := range rows {
		u := newUser(r.id, r.username)
		u.DisplayName, u.Source, u.ExternalID, u.Active, u.Groups = r.display, r.source, r.ext, r.active, r.groups
		createUser(t, s, u, "")
	}
	var all []string
	cursor, pages := "", 0
	for {
		got, next, err := s.ListUsers(ctx, user.Filter{}, 2, cursor)
		mustOK(t, "ListUsers page", err)
		pages++
		all = append(all, userIDs(got)...)
		if next == "" || pages > 10 {
			break
		}
		cursor = next
	}
	wantEqual(t, "all pages", all, []string{"usr_01", "usr_02", "usr_03", "usr_04", "usr_05"})
	wantEqual(t, "pages of 2 for 5 rows", pages, 3)

	yes, no := true, false
	tests := []struct {
		name string
		f    user.Filter
		want []string
	}{
		{"query in username", user.Filter{Query: "ALI"}, []string{"usr_01"}},
		{"query in display name", user.Filter{Query: "adams"}, []string{"usr_01"}},
		{"query in email", user.Filter{Query: "carol@"}, []string{"usr_03"}},
		{"query % is literal", user.Filter{Query: "100%"}, []string{"usr_02"}},
		{"query _ is literal", user.Filter{Query: "e_x"}, []string{"usr_04"}},
		{"group, any case", user.Filter{Group: "HR"}, []string{"usr_01", "usr_03"}},
		{"source", user.Filter{Source: user.SourceSCIM}, []string{"usr_02", "usr_03"}},
		{"active", user.Filter{Active: &yes}, []string{"usr_01", "usr_02", "usr_04", "usr_05"}},
		{"inactive", user.Filter{Active: &no}, []string{"usr_03"}},
		{"username, any case", user.Filter{Username: "BOB"}, []string{"usr_02"}},
		{"email", user.Filter{Email: "Erin@Example.com"}, []string{"usr_05"}},
		{"external id with source", user.Filter{Source: user.SourceSCIM, ExternalID: "e-3"}, []string{"usr_03"}},
		{"external id of another source", user.Filter{Source: user.SourceSCIM, ExternalID: "sub-5"}, []string{}},
		{"combined", user.Filter{Group: "hr", Active: &yes}, []string{"usr_01"}},
		{"id", user.Filter{ID: "usr_04"}, []string{"usr_04"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := s.ListUsers(ctx, tt.f, 50, "")
			mustOK(t, "ListUsers", err)
			wantEqual(t, "ids", userIDs(got), tt.want)
			wantEqual(t, "cursor", next, "")
		})
	}
	// Groups are loaded for every user of a page.
	got, _, _ := s.ListUsers(ctx, user.Filter{Group: "hr"}, 50, "")
	for _, u := range got {
		wantEqual(t, "groups of "+u.ID, u.Groups, []string{"hr"})
	}
	// A filtered walk continues within the filter.
	first, next, err := s.ListUsers(ctx, user.Filter{Active: &yes}, 3, "")
	mustOK(t, "filtered page 1", err)
	second, last, err := s.ListUsers(ctx, user.Filter{Active: &yes}, 3, next)
	mustOK(t, "filtered page 2", err)
	wantEqual(t, "filtered pages", append(userIDs(first), userIDs(second)...), []string{"usr_01", "usr_02", "usr_04", "usr_05"})
	wantEqual(t, "filtered last cursor", last, "")
}

func testListUsersAt(t *testing.T, s *sqlstore.Store) {
	for _, id := range []string{"usr_1", "usr_2", "usr_3", "usr_4", "usr_5"} {
		u := newUser(id, "name-"+id)
		u.Source = user.SourceSCIM
		createUser(t, s, u, "")
	}
	createUser(t, s, newUser("usr_9", "local"), "")
	tests := []struct {
		offset, limit int
		want          []string
	}{
		{0, 2, []string{"usr_1", "usr_2"}},
		{2, 2, []string{"usr_3", "usr_4"}},
		{4, 10, []string{"usr_5"}},
		{5, 10, []string{}},
		{0, 0, []string{}}, // count only
	}
	for _, tt := range tests {
		got, total, err := s.ListUsersAt(ctx, user.Filter{Source: user.SourceSCIM}, tt.offset, tt.limit)
		mustOK(t, "ListUsersAt", err)
		wantEqual(t, "total", total, 5)
		wantEqual(t, "ids", userIDs(got), tt.want)
	}
}

func testGroups(t *testing.T, s *sqlstore.Store) {
	for _, id := range []string{"usr_1", "usr_2", "usr_3"} {
		createUser(t, s, newUser(id, "name-"+id), "")
	}
	// A missing member rolls the whole group back.
	wantErr(t, "CreateGroup with a missing member", s.CreateGroup(ctx, newGroup("grp_1", "hr"), []string{"usr_1", "usr_missing"}, user.SourceLocal), store.ErrNotFound)
	_, err := s.GetGroup(ctx, "grp_1")
	wantErr(t, "the group rolled back", err, store.ErrNotFound)

	g := createGroup(t, s, newGroup("grp_1", "HR"), "usr_1", "usr_2")
	got, err := s.GetGroup(ctx, g.ID)
	mustOK(t, "GetGroup", err)
	wantEqual(t, "GetGroup", got, g)
	wantErr(t, "CreateGroup same name in another case", s.CreateGroup(ctx, newGroup("grp_2", "hr"), nil, user.SourceLocal), store.ErrConflict)

	u1, _ := s.GetUser(ctx, "usr_1")
	wantEqual(t, "user's groups", u1.Groups, []string{"HR"})

	ms, next, err := s.ListMembers(ctx, g.ID, 1, "")
	mustOK(t, "ListMembers page 1", err)
	if len(ms) != 1 || ms[0].UserID != "usr_1" || ms[0].Username != "name-usr_1" || ms[0].Source != user.SourceLocal || next == "" {
		t.Fatalf("ListMembers page 1 = %+v next %q", ms, next)
	}
	ms, next, err = s.ListMembers(ctx, g.ID, 1, next)
	mustOK(t, "ListMembers page 2", err)
	if len(ms) != 1 || ms[0].UserID != "usr_2" || next != "" {
		t.Fatalf("ListMembers page 2 = %+v next %q", ms, next)
	}
	_, _, err = s.ListMembers(ctx, "grp_missing", 10, "")
	wantErr(t, "ListMembers of a missing group", err, store.ErrNotFound)

	// Adding is idempotent and keeps the first source.
	mustOK(t, "AddMembers", s.AddMembers(ctx, g.ID, []string{"usr_2", "usr_3"}, user.SourceSCIM, at(time.Hour)))
	ms, _, _ = s.ListMembers(ctx, g.ID, 10, "")
	wantEqual(t, "member count", len(ms), 3)
	wantEqual(t, "source of an existing member", ms[1].Source, user.SourceLocal)
	wantEqual(t, "source of a new member", ms[2].Source, user.SourceSCIM)
	wantErr(t, "AddMembers missing user", s.AddMembers(ctx, g.ID, []string{"usr_missing"}, user.SourceLocal, t0), store.ErrNotFound)
	wantErr(t, "AddMembers missing group", s.AddMembers(ctx, "grp_missing", []string{"usr_1"}, user.SourceLocal, t0), store.ErrNotFound)
	got, _ = s.GetGroup(ctx, g.ID)
	wantEqual(t, "member_count", got.MemberCount, 3)
	wantEqual(t, "updated_at moves with membership", got.UpdatedAt, at(time.Hour))

	mustOK(t, "RemoveMembers", s.RemoveMembers(ctx, g.ID, []string{"usr_1", "usr_missing"}, at(2*time.Hour)))
	got, _ = s.GetGroup(ctx, g.ID)
	wantEqual(t, "member_count after remove", got.MemberCount, 2)
	wantErr(t, "RemoveMembers missing group", s.RemoveMembers(ctx, "grp_missing", nil, t0), store.ErrNotFound)

	mustOK(t, "SetMembers", s.SetMembers(ctx, g.ID, []string{"usr_1", "usr_3"}, user.SourceSCIM, at(3*time.Hour)))
	ms, _, _ = s.ListMembers(ctx, g.ID, 10, "")
	if len(ms) != 2 || ms[0].UserID != "usr_1" || ms[1].UserID != "usr_3" {
		t.Fatalf("members after SetMembers = %+v", ms)
	}
	mustOK(t, "SetMembers empty", s.SetMembers(ctx, g.ID, nil, user.SourceSCIM, at(3*time.Hour)))
	got, _ = s.GetGroup(ctx, g.ID)
	wantEqual(t, "member_count after SetMembers empty", got.MemberCount, 0)

	updated, err := s.UpdateGroup(ctx, g.ID, func(x *user.Group) error {
		x.Name, x.DisplayName, x.ExternalID, x.UpdatedAt = "people", "People", "ext-g", at(4*time.Hour)
		x.ID, x.Source = "grp_other", "scim"
		return nil
	})
	mustOK(t, "UpdateGroup", err)
	want := g
	want.Name, want.DisplayName, want.ExternalID, want.UpdatedAt, want.MemberCount = "people", "People", "ext-g", at(4*time.Hour), 0
	wantEqual(t, "UpdateGroup result", updated, want)
	createGroup(t, s, newGroup("grp_2", "other"))
	_, err = s.UpdateGroup(ctx, "grp_2", func(x *user.Group) error { x.Name = "PEOPLE"; return nil })
	wantErr(t, "rename to a taken name", err, store.ErrConflict)
	_, err = s.UpdateGroup(ctx, "grp_missing", func(*user.Group) error { return nil })
	wantErr(t, "UpdateGroup missing", err, store.ErrNotFound)

	mustOK(t, "DeleteGroup", s.DeleteGroup(ctx, g.ID))
	wantErr(t, "DeleteGroup twice", s.DeleteGroup(ctx, g.ID), store.ErrNotFound)
}

func testListGroups(t *testing.T, s *sqlstore.Store) {
	createGroup(t, s, newGroup("grp_1", "hr"))
	g := newGroup("grp_2", "Sales")
	g.Source, g.ExternalID = user.SourceSCIM, "ext-2"
	createGroup(t, s, g)
	createGroup(t, s, newGroup("grp_3", "sales-emea"))
	ids := func(gs []user.Group) []string {
		out := []string{}
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    user.GroupFilter
		want []string
	}{
		{"all", user.GroupFilter{}, []string{"grp_1", "grp_2", "grp_3"}},
		{"query", user.GroupFilter{Query: "SALES"}, []string{"grp_2", "grp_3"}},
		{"name exact any case", user.GroupFilter{Name: "sales"}, []string{"grp_2"}},
		{"source", user.GroupFilter{Source: user.SourceSCIM}, []string{"grp_2"}},
		{"external id", user.GroupFilter{Source: user.SourceSCIM, ExternalID: "ext-2"}, []string{"grp_2"}},
		{"id", user.GroupFilter{ID: "grp_3"}, []string{"grp_3"}},
		{"id of another source", user.GroupFilter{ID: "grp_3", Source: user.SourceSCIM}, []string{}},
	}
	for _, tt := range tests {
		got, _, err := s.ListGroups(ctx, tt.f, 50, "")
		mustOK(t, "ListGroups "+tt.name, err)
		wantEqual(t, tt.name, ids(got), tt.want)
	}
	got, next, err := s.ListGroups(ctx, user.GroupFilter{}, 2, "")
	mustOK(t, "ListGroups page", err)
	rest, last, err := s.ListGroups(ctx, user.GroupFilter{}, 2, next)
	mustOK(t, "ListGroups page 2", err)
	wantEqual(t, "group pages", append(ids(got), ids(rest)...), []string{"grp_1", "grp_2", "grp_3"})
	wantEqual(t, "last cursor", last, "")
	at1, total, err := s.ListGroupsAt(ctx, user.GroupFilter{Query: "sales"}, 1, 5)
	mustOK(t, "ListGroupsAt", err)
	wantEqual(t, "ListGroupsAt total", total, 2)
	wantEqual(t, "ListGroupsAt ids", ids(at1), []string{"grp_3"})
}

func testMembershipCascades(t *testing.T, s *sqlstore.Store) {
	createUser(t, s, newUser("usr_1", "alice"), "")
	createUser(t, s, newUser("usr_2", "bob"), "")
	createGroup(t, s, newGroup("grp_1", "hr"), "usr_1", "usr_2")
	createGroup(t, s, newGroup("grp_2", "ops"), "usr_1")
	_, _, err := s.DeleteUser(ctx, "usr_2", user.Orphaning{At: t0})
	mustOK(t, "DeleteUser", err)
	g, _ := s.GetGroup(ctx, "grp_1")
	wantEqual(t, "member_count after a member is deleted", g.MemberCount, 1)
	mustOK(t, "DeleteGroup", s.DeleteGroup(ctx, "grp_1"))
	u, _ := s.GetUser(ctx, "usr_1")
	wantEqual(t, "groups after a group is deleted", u.Groups, []string{"ops"})
}

func testSyncUserGroups(t *testing.T, s *sqlstore.Store) {
	createUser(t, s, newUser("usr_1", "alice"), "")
	createGroup(t, s, newGroup("grp_1", "admins"), "usr_1") // added by an admin
	createGroup(t, s, newGroup("grp_2", "Engineering"))
	src := "oidc:idp_1"
	mustOK(t, "SyncUserGroups", s.SyncUserGroups(ctx, "usr_1", src, []string{"engineering", "on-call", "on-call", ""}, at(time.Hour)))
	u, _ := s.GetUser(ctx, "usr_1")
	wantEqual(t, "groups after the first sync", u.Groups, []string{"admins", "Engineering", "on-call"})
	created, _, _ := s.ListGroups(ctx, user.GroupFilter{Name: "on-call"}, 1, "")
	if len(created) != 1 || created[0].Source != src {
		t.Fatalf("the sync's new group = %+v, want one with source %s", created, src)
	}
	// The upstream now says only on-call, and also names the admin's group: the
	// admin's membership keeps its source; engineering (from the upstream) goes.
	mustOK(t, "SyncUserGroups again", s.SyncUserGroups(ctx, "usr_1", src, []string{"on-call", "admins"}, at(2*time.Hour)))
	u, _ = s.GetUser(ctx, "usr_1")
	wantEqual(t, "groups after the second sync", u.Groups, []string{"admins", "on-call"})
	mustOK(t, "SyncUserGroups to nothing", s.SyncUserGroups(ctx, "usr_1", src, nil, at(3*time.Hour)))
	u, _ = s.GetUser(ctx, "usr_1")
	wantEqual(t, "groups after an empty sync keep the admin's", u.Groups, []string{"admins"})
}

func ownedAgent(t *testing.T, s *sqlstore.Store, id, owner, status string) {
	t.Helper()
	a := newAgent(id)
	a.Owner, a.Status = owner, status
	mustOK(t, "CreateAgent "+id, s.CreateAgent(ctx, a))
}

func agentState(t *testing.T, s *sqlstore.Store, id string) (bool, string) {
	t.Helper()
	a, err := s.GetAgent(ctx, id)
	mustOK(t, "GetAgent "+id, err)
	return a.Orphaned, a.Status
}

func testDeleteUserOrphans(t *testing.T, s *sqlstore.Store) {
	alice := newUser("usr_1", "Alice")
	alice.Email = "alice@corp.example"
	createUser(t, s, alice, "")
	ownedAgent(t, s, "ag_1", "alice", agent.StatusActive)                // username, other case
	ownedAgent(t, s, "ag_2", " ALICE@corp.example ", agent.StatusActive) // email
	ownedAgent(t, s, "ag_3", "usr_1", agent.StatusDisabled)              // id; already disabled
	ownedAgent(t, s, "ag_4", "alice-team", agent.StatusActive)           // someone else
	ownedAgent(t, s, "ag_5", "", agent.StatusActive)

	_, changes, err := s.DeleteUser(ctx, "usr_1", user.Orphaning{Suspend: true, At: at(time.Hour)})
	mustOK(t, "DeleteUser", err)
	wantEqual(t, "changes", changes, []user.OrphanChange{
		{AgentID: "ag_1", Orphaned: true, Suspended: true},
		{AgentID: "ag_2", Orphaned: true, Suspended: true},
		{AgentID: "ag_3", Orphaned: true}, // was disabled already: not suspended by this
	})
	for _, c := range []struct {
		id       string
		orphaned bool
		status   string
	}{
		{"ag_1", true, agent.StatusDisabled}, {"ag_2", true, agent.StatusDisabled}, {"ag_3", true, agent.StatusDisabled},
		{"ag_4", false, agent.StatusActive}, {"ag_5", false, agent.StatusActive},
	} {
		o, st := agentState(t, s, c.id)
		if o != c.orphaned || st != c.status {
			t.Fatalf("%s: orphaned %v status %s; want %v %s", c.id, o, st, c.orphaned, c.status)
		}
	}
	a, _ := s.GetAgent(ctx, "ag_1")
	wantEqual(t, "updated_at of an orphaned agent", a.UpdatedAt, at(time.Hour))

	got, _, err := s.ListAgents(ctx, agent.Filter{Orphaned: true}, 50, "")
	mustOK(t, "ListAgents orphaned", err)
	var ids []string
	for _, a := range got {
		ids = append(ids, a.ID)
	}
	wantEqual(t, "orphaned agents", ids, []string{"ag_1", "ag_2", "ag_3"})

	// The flag is the agent's to change (e.g. cleared when it gets a live owner).
	updated, err := s.UpdateAgent(ctx, "ag_1", func(x *agent.Agent) error { x.Owner, x.Orphaned = "bob", false; return nil })
	mustOK(t, "UpdateAgent clearing orphaned", err)
	if updated.Orphaned {
		t.Fatal("UpdateAgent did not clear orphaned")
	}
	// Without Suspend only the flag changes.
	bob := createUser(t, s, newUser("usr_2", "bob"), "")
	_, changes, err = s.DeleteUser(ctx, bob.ID, user.Orphaning{At: at(2 * time.Hour)})
	mustOK(t, "DeleteUser bob", err)
	wantEqual(t, "changes without suspend", changes, []user.OrphanChange{{AgentID: "ag_1", Orphaned: true}})
}

func testDeactivateOrphans(t *testing.T, s *sqlstore.Store) {
	createUser(t, s, newUser("usr_1", "alice"), "")
	ownedAgent(t, s, "ag_1", "alice", agent.StatusActive)
	deactivate := func(active bool) []user.OrphanChange {
		t.Helper()
		_, changes, err := s.UpdateUser(ctx, "usr_1", user.Orphaning{Suspend: true, At: at(time.Hour)}, func(x *user.User) error { x.Active = active; return nil })
		mustOK(t, "UpdateUser active", err)
		return changes
	}
	wantEqual(t, "deactivation", deactivate(false), []user.OrphanChange{{AgentID: "ag_1", Orphaned: true, Suspended: true}})
	wantEqual(t, "deactivating again changes nothing", len(deactivate(false)), 0)
	wantEqual(t, "reactivation", deactivate(true), []user.OrphanChange{{AgentID: "ag_1"}})
	o, st := agentState(t, s, "ag_1")
	if o || st != agent.StatusDisabled {
		t.Fatalf("after reactivation: orphaned %v status %s; want the flag cleared and the agent still disabled", o, st)
	}
}

// A deleted user's email still names another active user: agents owned by that
// email are not orphaned.
func testSharedEmailNoOrphan(t *testing.T, s *sqlstore.Store) {
	a := newUser("usr_1", "alice")
	a.Email = "team@corp.example"
	createUser(t, s, a, "")
	b := newUser("usr_2", "bob")
	b.Email = "TEAM@corp.example"
	createUser(t, s, b, "")
	ownedAgent(t, s, "ag_1", "team@corp.example", agent.StatusActive)
	ownedAgent(t, s, "ag_2", "alice", agent.StatusActive)
	_, changes, err := s.DeleteUser(ctx, "usr_1", user.Orphaning{At: t0})
	mustOK(t, "DeleteUser", err)
	wantEqual(t, "changes", changes, []user.OrphanChange{{AgentID: "ag_2", Orphaned: true}})
}

func testActiveOwner(t *testing.T, s *sqlstore.Store) {
	createUser(t, s, newUser("usr_1", "Alice"), "")
	off := newUser("usr_2", "bob")
	off.Active = false
	createUser(t, s, off, "")
	for owner, want := range map[string]bool{
		"alice": true, "ALICE@example.com": true, "usr_1": true, " alice ": true,
		"bob": false, "usr_2": false, "nobody": false, "": false, "%": false,
	} {
		got, err := s.ActiveOwner(ctx, owner)
		mustOK(t, "ActiveOwner "+owner, err)
		if got != want {
			t.Errorf("ActiveOwner(%q) = %v, want %v", owner, got, want)
		}
	}
}

func newRule(id, agentID, clientID string) policy.Rule {
	return policy.Rule{ID: id, AgentID: agentID, ClientID: clientID, Description: "rule " + id,
		Users: []string{"usr_1", "usr_2"}, Groups: []string{"hr"}, Policy: `permit(principal, action, resource);`, CreatedAt: t0}
}

// Inbound rules: every change moves the agent's version (replicas compare it on
// each decision), rules go with their agent, and a missing agent is ErrNotFound.
func testInboundRules(t *testing.T, s *sqlstore.Store) {
	createAgent(t, s, "ag_1")
	createAgent(t, s, "ag_2")
	version := func(agentID string) int64 {
		t.Helper()
		v, err := s.InboundVersion(ctx, agentID)
		mustOK(t, "InboundVersion", err)
		return v
	}
	wantEqual(t, "version with no rule ever", version("ag_1"), int64(0))
	r1 := newRule("inr_1", "ag_1", "cli_a")
	r2 := newRule("inr_2", "ag_1", "cli_b")
	r2.Users, r2.Groups, r2.Policy, r2.Description = []string{}, []string{}, "", ""
	mustOK(t, "CreateInboundRule 1", s.CreateInboundRule(ctx, r1))
	v1 := version("ag_1")
	mustOK(t, "CreateInboundRule 2", s.CreateInboundRule(ctx, r2))
	v2 := version("ag_1")
	if v1 <= 0 || v2 <= v1 {
		t.Fatalf("versions %d then %d: each create must move the version on", v1, v2)
	}
	wantErr(t, "CreateInboundRule duplicate id", s.CreateInboundRule(ctx, r1), store.ErrConflict)
	wantEqual(t, "version after a refused create", version("ag_1"), v2)
	wantErr(t, "CreateInboundRule for a missing agent", s.CreateInboundRule(ctx, newRule("inr_3", "ag_missing", "cli_a")), store.ErrNotFound)
	mustOK(t, "CreateInboundRule other agent", s.CreateInboundRule(ctx, newRule("inr_4", "ag_2", "cli_a")))
	wantEqual(t, "ag_1's version after ag_2's change", version("ag_1"), v2)

	got, err := s.ListInboundRules(ctx, "ag_1")
	mustOK(t, "ListInboundRules", err)
	wantEqual(t, "ListInboundRules", got, []policy.Rule{r1, r2})
	n, err := s.CountInboundRules(ctx, "ag_1")
	mustOK(t, "CountInboundRules", err)
	wantEqual(t, "CountInboundRules", n, 2)

	wantErr(t, "DeleteInboundRule through another agent", s.DeleteInboundRule(ctx, "ag_2", "inr_1"), store.ErrNotFound)
	wantEqual(t, "version after a refused delete", version("ag_1"), v2)
	mustOK(t, "DeleteInboundRule", s.DeleteInboundRule(ctx, "ag_1", "inr_1"))
	if v3 := version("ag_1"); v3 <= v2 {
		t.Fatalf("version %d after a delete, want more than %d", v3, v2)
	}
	wantErr(t, "DeleteInboundRule twice", s.DeleteInboundRule(ctx, "ag_1", "inr_1"), store.ErrNotFound)

	mustOK(t, "DeleteAgent", s.DeleteAgent(ctx, "ag_2"))
	got, err = s.ListInboundRules(ctx, "ag_2")
	mustOK(t, "ListInboundRules after the agent is deleted", err)
	wantEqual(t, "rules of a deleted agent", len(got), 0)
}

func testSCIMTokens(t *testing.T, s *sqlstore.Store) {
	exp := at(time.Hour)
	a := scim.Token{ID: "scimtok_1", Name: "entra", Hash: "hash-1", CreatedAt: t0}
	b := scim.Token{ID: "scimtok_2", Name: "okta", Hash: "hash-2", CreatedAt: t0, ExpiresAt: &exp}
	mustOK(t, "CreateSCIMToken a", s.CreateSCIMToken(ctx, a))
	mustOK(t, "CreateSCIMToken b", s.CreateSCIMToken(ctx, b))
	wantErr(t, "CreateSCIMToken duplicate hash", s.CreateSCIMToken(ctx, scim.Token{ID: "scimtok_3", Name: "x", Hash: "hash-1", CreatedAt: t0}), store.ErrConflict)
	got, err := s.SCIMTokenByHash(ctx, "hash-2")
	mustOK(t, "SCIMTokenByHash", err)
	wantEqual(t, "SCIMTokenByHash", got, b)
	if got.Expired(at(59*time.Minute)) || !got.Expired(at(time.Hour)) {
		t.Fatal("expiry does not follow expires_at")
	}
	_, err = s.SCIMTokenByHash(ctx, "nope")
	wantErr(t, "SCIMTokenByHash unknown", err, store.ErrNotFound)
	all, err := s.ListSCIMTokens(ctx)
	mustOK(t, "ListSCIMTokens", err)
	wantEqual(t, "ListSCIMTokens", all, []scim.Token{a, b})
	mustOK(t, "DeleteSCIMToken", s.DeleteSCIMToken(ctx, a.ID))
	wantErr(t, "DeleteSCIMToken twice", s.DeleteSCIMToken(ctx, a.ID), store.ErrNotFound)
	_, err = s.SCIMTokenByHash(ctx, "hash-1")
	wantErr(t, "a deleted token", err, store.ErrNotFound)
}

func testIdentityProviders(t *testing.T, s *sqlstore.Store) {
	o := idp.Provider{ID: "idp_1", Name: "Corp SSO", Type: idp.TypeOIDC, Enabled: true, SecretSet: true, CreatedAt: t0, UpdatedAt: t0,
		OIDC: &idp.OIDCConfig{Issuer: "https://sso.example", ClientID: "ag", Scopes: []string{"openid"}, Userinfo: true,
			Claims: idp.ClaimMapping{Username: "upn", Groups: "groups", Attributes: map[string]string{"department": "dept"}}}}
	l := idp.Provider{ID: "idp_2", Name: "Corp LDAP", Type: idp.TypeLDAP, CreatedAt: t0, UpdatedAt: t0,
		LDAP: &idp.LDAPConfig{URL: "ldaps://ldap.example", UserBaseDN: "ou=people,dc=example,dc=com", Timeout: 5,
			Attributes: idp.AttributeMapping{Username: "uid"}}}
	mustOK(t, "Create oidc", s.CreateIdentityProvider(ctx, o, []byte("sealed-1")))
	mustOK(t, "Create ldap", s.CreateIdentityProvider(ctx, l, []byte("sealed-2")))
	dup := l
	dup.ID = "idp_3"
	wantErr(t, "Create with a taken name", s.CreateIdentityProvider(ctx, dup, []byte("x")), store.ErrConflict)
	got, sealed, err := s.GetIdentityProvider(ctx, "idp_1")
	mustOK(t, "Get", err)
	wantEqual(t, "Get", got, o)
	wantEqual(t, "sealed", string(sealed), "sealed-1")
	all, err := s.ListIdentityProviders(ctx)
	mustOK(t, "List", err)
	wantEqual(t, "List", all, []idp.Provider{o, l})
	updated, err := s.UpdateIdentityProvider(ctx, "idp_2", func(p *idp.Provider, sec *[]byte) error {
		p.Enabled, p.Name, p.UpdatedAt = true, "LDAP", at(time.Hour)
		p.ID, p.Type = "idp_other", idp.TypeOIDC // not the update's to change
		*sec = []byte("sealed-3")
		return nil
	})
	mustOK(t, "Update", err)
	want := l
	want.Enabled, want.Name, want.UpdatedAt = true, "LDAP", at(time.Hour)
	wantEqual(t, "Update", updated, want)
	_, sealed, _ = s.GetIdentityProvider(ctx, "idp_2")
	wantEqual(t, "sealed after update", string(sealed), "sealed-3")
	_, err = s.UpdateIdentityProvider(ctx, "idp_2", func(p *idp.Provider, _ *[]byte) error { p.Name = "Corp SSO"; return nil })
	wantErr(t, "Update to a taken name", err, store.ErrConflict)
	_, err = s.UpdateIdentityProvider(ctx, "idp_missing", func(*idp.Provider, *[]byte) error { return nil })
	wantErr(t, "Update missing", err, store.ErrNotFound)
	mustOK(t, "Delete", s.DeleteIdentityProvider(ctx, "idp_1"))
	wantErr(t, "Delete twice", s.DeleteIdentityProvider(ctx, "idp_1"), store.ErrNotFound)
	_, _, err = s.GetIdentityProvider(ctx, "idp_1")
	wantErr(t, "Get deleted", err, store.ErrNotFound)
}
