package user_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
	"github.com/agentguard/agentguard/internal/user"
)

var ctx = context.Background()

var cheap = user.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// recorder keeps events in memory.
type recorder struct{ events []audit.Event }

func (r *recorder) Record(_ context.Context, e audit.Event) error {
	r.events = append(r.events, e)
	return nil
}

func newDirectory(t *testing.T) (*user.Directory, *sqlstore.Store) {
	t.Helper()
	s := storetest.Open(t, sqlstore.SQLite)
	return &user.Directory{Store: s, Hasher: &user.Hasher{Params: cheap}, Audit: &recorder{}, Now: time.Now}, s
}

func mustCreate(t *testing.T, d *user.Directory, u user.User, password string) user.User {
	t.Helper()
	u, err := d.CreateUser(ctx, u, password)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Every way a sign-in can fail is the same error, and each costs exactly one
// argon2id computation, so neither the message nor the time tells an unknown user
// from a wrong password or a deactivated account.
func TestAuthenticate(t *testing.T) {
	d, _ := newDirectory(t)
	const pw = "correct horse battery staple"
	alice := mustCreate(t, d, user.User{Username: "Alice", Active: true, Source: user.SourceLocal}, pw)
	mustCreate(t, d, user.User{Username: "off", Active: false, Source: user.SourceLocal}, pw)
	mustCreate(t, d, user.User{Username: "scim-user", Active: true, Source: user.SourceSCIM}, "")
	mustCreate(t, d, user.User{Username: "nopass", Active: true, Source: user.SourceLocal}, "")

	tests := []struct {
		name, username, password string
		ok                       bool
		hashes                   int64
	}{
		{"right password", "Alice", pw, true, 1},
		{"username in another case", "alice", pw, true, 1},
		{"wrong password", "Alice", pw + "!", false, 1},
		{"unknown user", "mallory", pw, false, 1},
		{"inactive user", "off", pw, false, 1},
		{"provisioned user without a password", "scim-user", pw, false, 1},
		{"local user without a password", "nopass", pw, false, 1},
		{"empty password", "Alice", "", false, 0},
		{"oversized password", "Alice", strings.Repeat("p", user.MaxPasswordBytes+1), false, 0},
		{"empty username", "", pw, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.Hasher.Computations()
			u, err := d.Authenticate(ctx, tt.username, tt.password)
			if got := d.Hasher.Computations() - before; got != tt.hashes {
				t.Errorf("%d argon2id computations, want %d", got, tt.hashes)
			}
			if tt.ok {
				if err != nil || u.ID != alice.ID {
					t.Fatalf("Authenticate = %v, %v; want alice", u.ID, err)
				}
				return
			}
			if !errors.Is(err, user.ErrBadCredentials) || u.ID != "" {
				t.Fatalf("Authenticate = %q, %v; want ErrBadCredentials and no user", u.ID, err)
			}
			if err.Error() != user.ErrBadCredentials.Error() {
				t.Fatalf("message %q differs from the one for every failure", err)
			}
		})
	}
}

// A hash made with older parameters is replaced at the next successful sign-in.
func TestAuthenticateRehashes(t *testing.T) {
	d, s := newDirectory(t)
	const pw = "correct horse battery staple"
	u := mustCreate(t, d, user.User{Username: "alice", Active: true, Source: user.SourceLocal}, pw)
	d.Hasher = &user.Hasher{Params: user.Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	if _, err := d.Authenticate(ctx, "alice", pw); err != nil {
		t.Fatal(err)
	}
	_, hash, err := s.UserCredentials(ctx, "alice")
	if err != nil || !strings.Contains(hash, "m=128,") {
		t.Fatalf("stored hash %q (%v), want it re-hashed with m=128", hash, err)
	}
	if got, err := d.Authenticate(ctx, "alice", pw); err != nil || got.ID != u.ID {
		t.Fatalf("sign-in after the re-hash: %v %v", got.ID, err)
	}
}

// A corrupt stored hash is a failed sign-in, not a 500 that would tell the user
// exists.
func TestAuthenticateMalformedHash(t *testing.T) {
	d, s := newDirectory(t)
	u := mustCreate(t, d, user.User{Username: "alice", Active: true, Source: user.SourceLocal}, "correct horse battery staple")
	if err := s.SetPasswordHash(ctx, u.ID, "$argon2id$garbage", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(ctx, "alice", "correct horse battery staple"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("err %v, want ErrBadCredentials", err)
	}
}

// provider is a PasswordProvider over a map, standing in for LDAP in the
// directory's own unit test (the real LDAP provider is tested against slapd).
type provider struct {
	id    string
	users map[string]string
	err   error
	calls int
	d     *user.Directory
}

func (p *provider) ID() string { return p.id }

func (p *provider) AuthenticatePassword(ctx context.Context, username, password string) (user.User, error) {
	p.calls++
	if p.err != nil {
		return user.User{}, p.err
	}
	want, ok := p.users[username]
	if !ok {
		return user.User{}, user.ErrUnknownUser
	}
	if want != password {
		return user.User{}, user.ErrBadCredentials
	}
	if u, err := p.d.Store.GetUserByUsername(ctx, username); err == nil {
		return u, nil
	}
	return p.d.CreateUser(ctx, user.User{Username: username, Active: true, Source: "ldap:" + p.id}, "")
}

type providers []user.PasswordProvider

func (ps providers) PasswordProviders(context.Context) ([]user.PasswordProvider, error) {
	return ps, nil
}

// Unknown local usernames go to the password providers in order; a user one of them
// provisioned goes only to that one; an unreachable provider is skipped.
func TestAuthenticateUpstream(t *testing.T) {
	d, _ := newDirectory(t)
	down := &provider{id: "idp_down", err: errors.New("dial tcp: connection refused"), d: d}
	first := &provider{id: "idp_1", users: map[string]string{"carol": "carol password 1"}, d: d}
	second := &provider{id: "idp_2", users: map[string]string{"carol": "other password", "dave": "dave password 22"}, d: d}
	d.Upstream = providers{down, first, second}
	mustCreate(t, d, user.User{Username: "alice", Active: true, Source: user.SourceLocal}, "alice password 1")

	u, err := d.Authenticate(ctx, "carol", "carol password 1")
	if err != nil || u.Source != "ldap:idp_1" {
		t.Fatalf("carol: %+v %v; want provisioned by idp_1", u, err)
	}
	// carol now belongs to idp_1: idp_2's password for her is not accepted.
	if _, err := d.Authenticate(ctx, "carol", "other password"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("carol with idp_2's password: %v", err)
	}
	if _, err := d.Authenticate(ctx, "dave", "dave password 22"); err != nil {
		t.Fatalf("dave through the second provider: %v", err)
	}
	// A wrong password at the provider that knows the user stops the search.
	second.calls = 0
	if _, err := d.Authenticate(ctx, "dave", "wrong"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatal(err)
	}
	// A local user never reaches the providers, right or wrong password.
	first.calls, second.calls = 0, 0
	if _, err := d.Authenticate(ctx, "alice", "wrong password!"); !errors.Is(err, user.ErrBadCredentials) || first.calls+second.calls != 0 {
		t.Fatalf("local user: err %v, provider calls %d", err, first.calls+second.calls)
	}
	// A user deactivated locally stays out even though the provider accepts them.
	if _, err := d.UpdateUser(ctx, u.ID, "test", func(x *user.User) error { x.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(ctx, "carol", "carol password 1"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("deactivated LDAP user: %v", err)
	}
}

func TestGetUser(t *testing.T) {
	d, _ := newDirectory(t)
	u := mustCreate(t, d, user.User{Username: "alice", Active: true, Source: user.SourceLocal}, "")
	if got, err := d.GetUser(ctx, u.ID); err != nil || got.Username != "alice" {
		t.Fatalf("GetUser: %+v %v", got, err)
	}
	for _, id := range []string{"alice", "usr_missing", "", strings.Repeat("usr_", 100)} {
		if _, err := d.GetUser(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetUser(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

// Deleting a user orphans the agents they own and records one event per agent,
// naming the owner and the path the deletion came through.
func TestDeleteUserRecordsOrphans(t *testing.T) {
	d, s := newDirectory(t)
	rec := d.Audit.(*recorder)
	u := mustCreate(t, d, user.User{Username: "alice", Active: true, Source: user.SourceLocal}, "")
	createAgent(t, s, "agt_1", "alice")
	d.SuspendOrphans = true
	if _, err := d.DeleteUser(ctx, u.ID, "SCIM"); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(rec.events), rec.events)
	}
	e := rec.events[0]
	if e.Action != "agent.suspend" || e.AgentID != "agt_1" || e.Category != audit.CategoryAdmin ||
		!strings.Contains(e.Reason, u.ID) || !strings.Contains(e.Reason, "deleted through SCIM") {
		t.Fatalf("event %+v", e)
	}
}

func createAgent(t *testing.T, s *sqlstore.Store, id, owner string) {
	t.Helper()
	now := time.Now()
	if err := s.CreateAgent(ctx, agent.Agent{ID: id, Name: id, Owner: owner, Type: agent.TypeAutonomous,
		AccessIdentity: agent.IdentityMachine, Audience: "urn:test:" + id, Status: agent.StatusActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}
