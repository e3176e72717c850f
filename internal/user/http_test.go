package user_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/storetest"
	"github.com/agentguard/agentguard/internal/user"
)

type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
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

type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func events(t *testing.T, s *servertest.Server, query string) []audit.Event {
	t.Helper()
	var out list[audit.Event]
	if code := s.Do(t, "GET", "/api/v1/audit/events?"+query, nil, &out); code != 200 {
		t.Fatalf("audit search %s: HTTP %d", query, code)
	}
	return out.Items
}

func actions(es []audit.Event) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Action)
	}
	slices.Reverse(out) // oldest first
	return out
}

const alicePassword = "correct horse battery staple"

func TestUserLifecycle(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var hr user.Group
	if code := s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "hr", "display_name": "Human Resources"}, &hr); code != 201 {
		t.Fatalf("create group: HTTP %d", code)
	}

	var alice user.User
	code := s.Do(t, "POST", "/api/v1/users", map[string]any{
		"username": "alice", "password": alicePassword, "email": "alice@example.com", "display_name": "Alice",
		"groups": []string{"HR"}, "attributes": map[string]string{"department": "HR"},
	}, &alice)
	if code != 201 || !strings.HasPrefix(alice.ID, "usr_") || !alice.Active || !alice.HasPassword ||
		alice.Source != "local" || !slices.Equal(alice.Groups, []string{"HR"}) || alice.Attributes["department"] != "HR" {
		t.Fatalf("create: HTTP %d %+v", code, alice)
	}
	// The password signs in, and the directory's Getter reads the same user.
	if u, err := s.Directory.Authenticate(ctx, "alice", alicePassword); err != nil || u.ID != alice.ID {
		t.Fatalf("Authenticate after create: %v %v", u.ID, err)
	}

	var got user.User
	for _, ref := range []string{alice.ID, "alice", "ALICE"} {
		if code := s.Do(t, "GET", "/api/v1/users/"+url.PathEscape(ref), nil, &got); code != 200 || got.ID != alice.ID {
			t.Fatalf("get %s: HTTP %d %+v", ref, code, got)
		}
	}
	var p problem
	if code := s.Do(t, "GET", "/api/v1/users/usr_nonesuch", nil, &p); code != 404 || !strings.Contains(p.Detail, "usr_nonesuch") {
		t.Fatalf("get unknown: HTTP %d %+v", code, p)
	}

	// PATCH changes only the fields sent.
	var upd user.User
	code = s.Do(t, "PATCH", "/api/v1/users/"+alice.ID, map[string]any{"display_name": "Alice A.", "attributes": map[string]string{"department": "Sales"}}, &upd)
	if code != 200 || upd.DisplayName != "Alice A." || upd.Email != "alice@example.com" || upd.Attributes["department"] != "Sales" || !slices.Equal(upd.Groups, []string{"hr"}) {
		t.Fatalf("patch: HTTP %d %+v", code, upd)
	}
	if code := s.Do(t, "PUT", "/api/v1/users/"+alice.ID+"/password", map[string]any{"password": "a new long passphrase"}, nil); code != 204 {
		t.Fatalf("set password: HTTP %d", code)
	}
	if _, err := s.Directory.Authenticate(ctx, "alice", alicePassword); err == nil {
		t.Fatal("the old password still signs in")
	}
	if _, err := s.Directory.Authenticate(ctx, "alice", "a new long passphrase"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if code := s.Do(t, "PATCH", "/api/v1/users/"+alice.ID, map[string]any{"active": false}, &upd); code != 200 || upd.Active {
		t.Fatalf("deactivate: HTTP %d %+v", code, upd)
	}
	if _, err := s.Directory.Authenticate(ctx, "alice", "a new long passphrase"); err == nil {
		t.Fatal("a deactivated user signs in")
	}
	if code := s.Do(t, "DELETE", "/api/v1/users/"+alice.ID, nil, nil); code != 204 {
		t.Fatalf("delete: HTTP %d", code)
	}
	if code := s.Do(t, "DELETE", "/api/v1/users/"+alice.ID, nil, nil); code != 404 {
		t.Fatalf("delete twice: HTTP %d", code)
	}
	wantActions := []string{"user.create", "user.update", "user.password_set", "user.deactivate", "user.delete"}
	if got := actions(events(t, s, "resource_type=user&decision=allow")); !slices.Equal(got, wantActions) {
		t.Fatalf("audit actions %v, want %v", got, wantActions)
	}
}

// Every field a caller can get wrong is named with what would be right.
func TestUserValidation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	if code := s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "taken", "password": alicePassword}, nil); code != 201 {
		t.Fatalf("create: HTTP %d", code)
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		fields []string
	}{
		{"no username", map[string]any{"password": alicePassword}, 400, []string{"username"}},
		{"short password", map[string]any{"username": "bob", "password": "short"}, 400, []string{"password"}},
		{"password equal to username", map[string]any{"username": "bob.example.org", "password": "BOB.example.org"}, 400, []string{"password"}},
		{"password over the limit", map[string]any{"username": "bob", "password": strings.Repeat("x", 1025)}, 400, []string{"password"}},
		{"bad email", map[string]any{"username": "bob", "email": "not an email"}, 400, []string{"email"}},
		{"username like an id", map[string]any{"username": "usr_123"}, 400, []string{"username"}},
		{"username with a newline", map[string]any{"username": "bob\nsmith"}, 400, []string{"username"}},
		{"username with spaces around", map[string]any{"username": " bob "}, 400, []string{"username"}},
		{"attribute name", map[string]any{"username": "bob", "attributes": map[string]string{"Department": "x"}}, 400, []string{"attributes"}},
		{"reserved attribute", map[string]any{"username": "bob", "attributes": map[string]string{"email": "x"}}, 400, []string{"attributes"}},
		{"attribute value too long", map[string]any{"username": "bob", "attributes": map[string]string{"bio": strings.Repeat("x", 1025)}}, 400, []string{"attributes.bio"}},
		{"unknown group", map[string]any{"username": "bob", "groups": []string{"nope"}}, 400, []string{"groups"}},
		{"unknown field", map[string]any{"username": "bob", "pasword": alicePassword}, 400, []string{"pasword"}},
		{"taken username in another case", map[string]any{"username": "TAKEN"}, 409, nil},
		{"several at once", map[string]any{"username": "", "email": "x", "password": "short"}, 400, []string{"username", "email", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problem
			code := s.Do(t, "POST", "/api/v1/users", tt.body, &p)
			if code != tt.status {
				t.Fatalf("HTTP %d %+v, want %d", code, p, tt.status)
			}
			if tt.fields != nil && !slices.Equal(p.fields(), tt.fields) {
				t.Fatalf("fields %v, want %v (%+v)", p.fields(), tt.fields, p)
			}
		})
	}
	// Query parameters too.
	var p problem
	if code := s.Do(t, "GET", "/api/v1/users?active=maybe", nil, &p); code != 400 || !slices.Equal(p.fields(), []string{"active"}) {
		t.Fatalf("active=maybe: HTTP %d %+v", code, p)
	}
}

func TestListUsersFilters(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "hr"}, nil)
	for _, u := range []map[string]any{
		{"username": "alice", "groups": []string{"hr"}},
		{"username": "bob", "email": "bob@corp.example"},
		{"username": "carol", "groups": []string{"hr"}, "active": false},
	} {
		if code := s.Do(t, "POST", "/api/v1/users", u, nil); code != 201 {
			t.Fatalf("create %v: HTTP %d", u, code)
		}
	}
	names := func(query string) []string {
		var l list[user.User]
		if code := s.Do(t, "GET", "/api/v1/users?"+query, nil, &l); code != 200 {
			t.Fatalf("list %s: HTTP %d", query, code)
		}
		out := []string{}
		for _, u := range l.Items {
			out = append(out, u.Username)
		}
		slices.Sort(out) // ids made in one millisecond sort by their random part
		return out
	}
	for query, want := range map[string][]string{
		"":                        {"alice", "bob", "carol"},
		"group=hr":                {"alice", "carol"},
		"group=hr&active=true":    {"alice"},
		"q=CORP":                  {"bob"},
		"username=Carol":          {"carol"},
		"source=scim":             {},
		"email=bob@corp.example":  {"bob"},
		"active=false&q=nobody":   {},
		"group=hr&q=car&limit=10": {"carol"},
	} {
		if got := names(query); !slices.Equal(got, want) {
			t.Errorf("list ?%s = %v, want %v", query, got, want)
		}
	}
	var l list[user.User]
	s.Do(t, "GET", "/api/v1/users?limit=2", nil, &l)
	if len(l.Items) != 2 || l.NextCursor == "" {
		t.Fatalf("page 1: %d items, cursor %q", len(l.Items), l.NextCursor)
	}
	var rest list[user.User]
	s.Do(t, "GET", "/api/v1/users?limit=2&cursor="+url.QueryEscape(l.NextCursor), nil, &rest)
	if len(rest.Items) != 1 || rest.NextCursor != "" {
		t.Fatalf("page 2: %+v", rest)
	}
	seen := []string{l.Items[0].Username, l.Items[1].Username, rest.Items[0].Username}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"alice", "bob", "carol"}) {
		t.Fatalf("pages hold %v, want each user once", seen)
	}
}

// Membership can be managed from both sides: the user's groups, and the group's
// members.
func TestGroupsAndMembers(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var alice, bob user.User
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "alice"}, &alice)
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "bob"}, &bob)

	var g user.Group
	code := s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "hr", "members": []string{"alice", bob.ID}}, &g)
	if code != 201 || !strings.HasPrefix(g.ID, "grp_") || g.MemberCount != 2 || g.Source != "local" {
		t.Fatalf("create group: HTTP %d %+v", code, g)
	}
	var p problem
	if code := s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "HR"}, &p); code != 409 {
		t.Fatalf("duplicate name: HTTP %d", code)
	}
	if code := s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "x", "members": []string{"ghost"}}, &p); code != 400 || !slices.Equal(p.fields(), []string{"members"}) || !strings.Contains(p.Errors[0].Detail, "ghost") {
		t.Fatalf("unknown member: HTTP %d %+v", code, p)
	}
	var byName user.Group
	if code := s.Do(t, "GET", "/api/v1/groups/hr", nil, &byName); code != 200 || byName.ID != g.ID {
		t.Fatalf("get by name: HTTP %d %+v", code, byName)
	}
	var members list[user.Member]
	s.Do(t, "GET", "/api/v1/groups/"+g.ID+"/members", nil, &members)
	if len(members.Items) != 2 {
		t.Fatalf("members: %+v", members)
	}
	// Remove bob through the group, then add him back through the user.
	if code := s.Do(t, "DELETE", "/api/v1/groups/"+g.ID+"/members/bob", nil, nil); code != 204 {
		t.Fatalf("remove member: HTTP %d", code)
	}
	if code := s.Do(t, "DELETE", "/api/v1/groups/"+g.ID+"/members/bob", nil, &p); code != 404 {
		t.Fatalf("remove a non-member: HTTP %d", code)
	}
	var u user.User
	s.Do(t, "GET", "/api/v1/users/bob", nil, &u)
	if len(u.Groups) != 0 {
		t.Fatalf("bob's groups after removal: %v", u.Groups)
	}
	s.Do(t, "PATCH", "/api/v1/users/bob", map[string]any{"groups": []string{"hr"}}, &u)
	s.Do(t, "GET", "/api/v1/groups/hr", nil, &byName)
	if byName.MemberCount != 2 {
		t.Fatalf("member_count after adding through the user: %d", byName.MemberCount)
	}
	if code := s.Do(t, "POST", "/api/v1/groups/hr/members", map[string]any{"users": []string{}}, &p); code != 400 {
		t.Fatalf("add nobody: HTTP %d", code)
	}
	var renamed user.Group
	if code := s.Do(t, "PATCH", "/api/v1/groups/"+g.ID, map[string]any{"name": "people"}, &renamed); code != 200 || renamed.Name != "people" {
		t.Fatalf("rename: HTTP %d %+v", code, renamed)
	}
	s.Do(t, "GET", "/api/v1/users/alice", nil, &u)
	if !slices.Equal(u.Groups, []string{"people"}) {
		t.Fatalf("alice's groups after the rename: %v", u.Groups)
	}
	if code := s.Do(t, "DELETE", "/api/v1/groups/people", nil, nil); code != 204 {
		t.Fatalf("delete group: HTTP %d", code)
	}
	s.Do(t, "GET", "/api/v1/users/alice", nil, &u)
	if len(u.Groups) != 0 {
		t.Fatalf("alice's groups after the group was deleted: %v", u.Groups)
	}
	want := []string{"group.create", "group.members_remove", "group.update", "group.delete"}
	if got := actions(events(t, s, "resource_type=group&decision=allow")); !slices.Equal(got, want) {
		t.Fatalf("audit actions %v, want %v", got, want)
	}
}

// Deleting or deactivating a user orphans the agents they own; --suspend-orphans
// also disables them; giving the agent a live owner clears the flag.
func TestOrphanedAgents(t *testing.T) {
	for _, suspend := range []bool{false, true} {
		t.Run(map[bool]string{false: "flag only", true: "suspend-orphans"}[suspend], func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.SuspendOrphans = suspend }})
			var alice, bob user.User
			s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "alice", "email": "alice@example.com"}, &alice)
			s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "bob"}, &bob)
			mk := func(owner string) string {
				var a struct{ ID string }
				if code := s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "bot", "owner": owner}, &a); code != 201 {
					t.Fatalf("create agent: HTTP %d", code)
				}
				return a.ID
			}
			byName, byEmail, other := mk("Alice"), mk("alice@example.com"), mk("bob")
			if code := s.Do(t, "DELETE", "/api/v1/users/alice", nil, nil); code != 204 {
				t.Fatalf("delete alice: HTTP %d", code)
			}
			var l list[struct {
				ID       string `json:"id"`
				Status   string `json:"status"`
				Orphaned bool   `json:"orphaned"`
			}]
			if code := s.Do(t, "GET", "/api/v1/agents?status=orphaned", nil, &l); code != 200 {
				t.Fatalf("list orphaned: HTTP %d", code)
			}
			var ids []string
			for _, a := range l.Items {
				ids = append(ids, a.ID)
				wantStatus := map[bool]string{false: "active", true: "disabled"}[suspend]
				if !a.Orphaned || a.Status != wantStatus {
					t.Fatalf("orphaned agent %+v, want orphaned and %s", a, wantStatus)
				}
			}
			want := []string{byName, byEmail}
			slices.Sort(want) // ids made in one millisecond sort by their random part
			if !slices.Equal(ids, want) {
				t.Fatalf("orphaned agents %v, want %v (not %s)", ids, []string{byName, byEmail}, other)
			}
			wantAction := map[bool]string{false: "agent.orphan", true: "agent.suspend"}[suspend]
			for _, id := range ids {
				es := events(t, s, "agent_id="+id+"&action="+wantAction)
				if len(es) != 1 || !strings.Contains(es[0].Reason, alice.ID) || es[0].User != "admin-token:env" {
					t.Fatalf("events for %s: %+v", id, es)
				}
			}
			// A free-text owner does not clear the flag; a live user does.
			var a struct{ Orphaned bool }
			s.Do(t, "PATCH", "/api/v1/agents/"+byName, map[string]any{"owner": "some team"}, &a)
			if !a.Orphaned {
				t.Fatal("orphaned flag cleared by an owner that names no user")
			}
			s.Do(t, "PATCH", "/api/v1/agents/"+byName, map[string]any{"owner": "BOB"}, &a)
			if a.Orphaned {
				t.Fatal("orphaned flag kept after the owner became a live user")
			}
			// Deactivation orphans too; reactivation clears the flag.
			s.Do(t, "PATCH", "/api/v1/users/bob", map[string]any{"active": false}, nil)
			s.Do(t, "GET", "/api/v1/agents/"+other, nil, &a)
			if !a.Orphaned {
				t.Fatal("deactivating the owner did not orphan the agent")
			}
			s.Do(t, "PATCH", "/api/v1/users/bob", map[string]any{"active": true}, nil)
			s.Do(t, "GET", "/api/v1/agents/"+other, nil, &a)
			if a.Orphaned {
				t.Fatal("reactivating the owner did not clear the flag")
			}
			var p problem
			if code := s.Do(t, "GET", "/api/v1/agents?status=lost", nil, &p); code != 400 || !strings.Contains(p.Detail, "orphaned") {
				t.Fatalf("status=lost: HTTP %d %+v", code, p)
			}
		})
	}
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// No password reaches a response, an audit event, a log line or the database file
// in a form that contains it.
func TestPasswordsStayOutOfEverything(t *testing.T) {
	logs := &logBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	dir := t.TempDir()
	s := servertest.Start(t, servertest.Options{DataDir: dir})
	const pw1, pw2, pw3 = "first-Secret-passphrase-0xA11CE", "second-Secret-passphrase-0xB0B", "third-Secret-passphrase-0xC0C"
	var raw json.RawMessage
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": pw1}, &raw)
	s.Do(t, "PUT", "/api/v1/users/alice/password", map[string]any{"password": pw2}, nil)
	var p json.RawMessage
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "bob", "password": pw3, "email": "bad"}, &p) // refused
	s.Directory.Authenticate(ctx, "alice", pw3)                                                              // wrong password
	everything := append(bytes.Clone(raw), p...)
	all, _ := json.Marshal(events(t, s, "limit=500"))
	everything = append(everything, all...)
	everything = append(everything, logs.Bytes()...)
	everything = append(everything, storetest.SQLiteBytes(t, dir)...)
	if len(all) < 100 || len(logs.Bytes()) == 0 {
		t.Fatalf("too little to search: %d bytes of events, %d of logs", len(all), len(logs.Bytes()))
	}
	for _, pw := range []string{pw1, pw2, pw3} {
		if bytes.Contains(everything, []byte(pw)) {
			t.Fatalf("the password %q appears in a response, event, log or the database", pw)
		}
	}
	if bytes.Contains(raw, []byte("argon2")) || bytes.Contains(all, []byte("argon2")) {
		t.Fatal("a password hash appears in a response or event")
	}
}
