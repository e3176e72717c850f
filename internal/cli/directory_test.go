package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
)

// The directory commands against a real server: users and groups, passwords from a
// file (never argv), inbound rules with a Cedar file, SCIM tokens, providers.
func TestDirectoryCommands(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("correct horse battery staple\n"), 0o600)

	ok(t, s, "group", "create", "--name", "hr", "--display-name", "Human Resources")
	var u struct {
		ID          string   `json:"id"`
		Groups      []string `json:"groups"`
		HasPassword bool     `json:"has_password"`
	}
	okJSON(t, s, &u, "user", "create", "--username", "alice", "--email", "alice@example.com", "--group", "hr",
		"--attr", "department=HR", "--password-file", pwFile)
	if !u.HasPassword || len(u.Groups) != 1 {
		t.Fatalf("created %+v", u)
	}
	if _, err := s.Directory.Authenticate(context.Background(), "alice", "correct horse battery staple"); err != nil {
		t.Fatalf("the password from the file does not sign in: %v", err)
	}
	// Without a password source and no terminal, the user is created without one.
	ok(t, s, "user", "create", "--username", "bob")
	if r := ok(t, s, "user", "list", "--group", "hr"); !strings.Contains(r.stdout, "alice") || strings.Contains(r.stdout, "bob") {
		t.Fatalf("user list --group hr:\n%s", r.stdout)
	}
	ok(t, s, "group", "add", "hr", "bob")
	if r := ok(t, s, "group", "members", "hr"); !strings.Contains(r.stdout, "bob") {
		t.Fatalf("members:\n%s", r.stdout)
	}
	ok(t, s, "user", "update", "bob", "--deactivate", "--attr", "department=Sales")
	if r := ok(t, s, "user", "get", "bob"); !strings.Contains(r.stdout, "false") {
		t.Fatalf("bob after --deactivate:\n%s", r.stdout)
	}
	fails(t, s, "password: must be at least 12 characters", "user", "set-password", "alice", "--password-file", writeFile(t, dir, "short", "short"))
	fails(t, s, "no password given", "user", "set-password", "alice")
	fails(t, s, "nothing to change", "user", "update", "alice")
	fails(t, s, "groups: no group is named", "user", "create", "--username", "carol", "--group", "nope", "--no-password")

	// Inbound rules.
	var a struct{ ID string }
	okJSON(t, s, &a, "agent", "create", "--name", "hr-bot", "--type", "interactive", "--access-identity", "human")
	clientID, _ := signintest.Client(t, s, "web", []string{"https://app.example/cb"}, nil)
	policy := writeFile(t, dir, "hr.cedar", `permit(principal, action, resource) when { principal.department == "HR" };`)
	ok(t, s, "inbound", "add", a.ID, "--client", clientID, "--policy-file", policy, "--description", "only HR")
	if r := ok(t, s, "inbound", "check", a.ID, "alice", "--client", clientID); !strings.Contains(r.stdout, "allow") {
		t.Fatalf("check alice:\n%s", r.stdout)
	}
	if r := ok(t, s, "inbound", "check", a.ID, "bob", "--client", clientID); !strings.Contains(r.stdout, "deny") {
		t.Fatalf("check bob:\n%s", r.stdout)
	}
	bad := writeFile(t, dir, "bad.cedar", "permit(principal, action, resource)\nwhen { principal.department = \"HR\" };")
	fails(t, s, "policy: line 2, column 31", "inbound", "add", a.ID, "--client", clientID, "--policy-file", bad)
	fails(t, s, "say who may call", "inbound", "add", a.ID, "--client", clientID)
	var rules struct {
		Items []struct{ ID string } `json:"items"`
	}
	okJSON(t, s, &rules, "inbound", "list", a.ID)
	ok(t, s, "inbound", "remove", a.ID, rules.Items[0].ID)

	// SCIM tokens: shown once, listed without the value.
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	okJSON(t, s, &tok, "scim", "token", "create", "--name", "entra", "--expires", "720h")
	if !strings.HasPrefix(tok.Token, "agscim_") {
		t.Fatalf("token %+v", tok)
	}
	if r := ok(t, s, "scim", "token", "list"); strings.Contains(r.stdout, tok.Token) || !strings.Contains(r.stdout, "entra") {
		t.Fatalf("token list:\n%s", r.stdout)
	}
	ok(t, s, "scim", "token", "delete", tok.ID)

	// Identity providers; the secret comes from a file and is never printed.
	secret := writeFile(t, dir, "bind", "the-bind-password-123")
	var p struct {
		ID        string `json:"id"`
		SecretSet bool   `json:"secret_set"`
	}
	okJSON(t, s, &p, "idp", "add", "ldap", "--name", "Corp LDAP", "--url", "ldaps://ldap.example.com", "--bind-dn", "cn=svc,dc=example,dc=com",
		"--secret-file", secret, "--user-base-dn", "ou=people,dc=example,dc=com", "--attr", "department=departmentNumber")
	if !p.SecretSet {
		t.Fatalf("provider %+v", p)
	}
	r := ok(t, s, "idp", "disable", p.ID)
	if strings.Contains(r.stdout, "the-bind-password-123") || !strings.Contains(r.stdout, "false") {
		t.Fatalf("idp disable:\n%s", r.stdout)
	}
	fails(t, s, "ldap.url", "idp", "add", "ldap", "--name", "x", "--url", "ldap://ldap.example.com", "--user-base-dn", "dc=x")
	ok(t, s, "idp", "delete", p.ID)
	// Deleting a user orphans the agents they own; the list says so.
	ok(t, s, "agent", "create", "--name", "bobs-bot", "--owner", "bob")
	ok(t, s, "user", "delete", "bob")
	if r := ok(t, s, "agent", "list", "--status", "orphaned"); !strings.Contains(r.stdout, "bobs-bot") ||
		!strings.Contains(r.stdout, "active, orphaned") || strings.Contains(r.stdout, "hr-bot") {
		t.Fatalf("agent list --status orphaned:\n%s", r.stdout)
	}
	ok(t, s, "group", "delete", "hr")
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
