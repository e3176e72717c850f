package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// run executes the CLI with args as given (no flags added).
func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(context.Background(), args, &out, &errb)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// admin runs an admin command against s with the test admin token.
func admin(t *testing.T, s *servertest.Server, args ...string) result {
	t.Helper()
	return run(t, append(args, "--server", s.URL, "--token", servertest.AdminToken)...)
}

// ok runs an admin command that must succeed.
func ok(t *testing.T, s *servertest.Server, args ...string) result {
	t.Helper()
	r := admin(t, s, args...)
	if r.code != 0 {
		t.Fatalf("agentguard %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// okJSON runs an admin command with -o json and decodes its output.
func okJSON(t *testing.T, s *servertest.Server, out any, args ...string) {
	t.Helper()
	r := ok(t, s, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(r.stdout), out); err != nil {
		t.Fatalf("agentguard %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// fails runs an admin command that must exit 1 with wantErr in its error line.
func fails(t *testing.T, s *servertest.Server, wantErr string, args ...string) result {
	t.Helper()
	r := admin(t, s, args...)
	if r.code != 1 {
		t.Fatalf("agentguard %s: exit %d, want 1; stdout %q", strings.Join(args, " "), r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, wantErr) {
		t.Fatalf("agentguard %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, wantErr)
	}
	if strings.Contains(r.stderr, servertest.AdminToken) {
		t.Fatalf("the admin token leaked into stderr: %q", r.stderr)
	}
	return r
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

type idJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func TestAgentLifecycle(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})

	// Table output: a header and one aligned row with the key fields.
	r := ok(t, s, "agent", "create", "--name", "invoice-bot", "--owner", "finance", "--type", "interactive", "--access-identity", "human")
	ls := lines(r.stdout)
	if len(ls) != 2 || !strings.HasPrefix(ls[0], "ID ") || !strings.Contains(ls[1], "invoice-bot") || !strings.Contains(ls[1], "interactive") || !strings.Contains(ls[1], "human") {
		t.Fatalf("create table output:\n%s", r.stdout)
	}
	// The columns line up: every row's NAME starts where the header's does.
	if strings.Index(ls[0], "NAME") != strings.Index(ls[1], "invoice-bot") {
		t.Fatalf("columns are not aligned:\n%s", r.stdout)
	}

	// JSON output is the server's object.
	var a idJSON
	okJSON(t, s, &a, "agent", "create", "--name", "report-bot", "--owner", "ops", "--audience", "https://report-bot.example.com")
	if !strings.HasPrefix(a.ID, "agt_") || a.Status != "active" {
		t.Fatalf("created agent = %+v", a)
	}

	if r := ok(t, s, "agent", "get", a.ID); !strings.Contains(r.stdout, "https://report-bot.example.com") {
		t.Fatalf("get output:\n%s", r.stdout)
	}

	// Filters reach the server: only the ops agent is listed.
	var l struct{ Items []idJSON }
	okJSON(t, s, &l, "agent", "list", "--owner", "ops")
	if len(l.Items) != 1 || l.Items[0].ID != a.ID {
		t.Fatalf("list --owner ops = %+v", l.Items)
	}
	// Paging: the next cursor goes to stderr, so stdout is only rows.
	r = ok(t, s, "agent", "list", "--limit", "1")
	if len(lines(r.stdout)) != 2 || !strings.Contains(r.stderr, "--cursor ") {
		t.Fatalf("list --limit 1: stdout %q stderr %q", r.stdout, r.stderr)
	}

	okJSON(t, s, &a, "agent", "disable", a.ID)
	if a.Status != "disabled" {
		t.Fatalf("after disable status = %q", a.Status)
	}
	okJSON(t, s, &l, "agent", "list", "--status", "disabled")
	if len(l.Items) != 1 {
		t.Fatalf("list --status disabled = %+v", l.Items)
	}
	okJSON(t, s, &a, "agent", "enable", a.ID)
	if a.Status != "active" {
		t.Fatalf("after enable status = %q", a.Status)
	}

	if r := ok(t, s, "agent", "delete", a.ID); !strings.Contains(r.stdout, "Deleted agent "+a.ID) {
		t.Fatalf("delete output %q", r.stdout)
	}
	// The server answers a delete with no body, so json mode prints nothing.
	var other idJSON
	okJSON(t, s, &other, "agent", "create", "--name", "short-lived")
	if r := ok(t, s, "agent", "delete", other.ID, "-o", "json"); r.stdout != "" {
		t.Fatalf("json delete printed %q", r.stdout)
	}
	fails(t, s, `error: 404 Not Found: no agent has the id "`+a.ID+`"`, "agent", "get", a.ID)
}

// Validation errors name the field, so a person knows what to fix.
func TestErrorsNameTheField(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"agent without name", []string{"agent", "create"}, "error: 400 Bad Request: name: is required"},
		{"agent with bad type", []string{"agent", "create", "--name", "x", "--type", "robot"}, `type: must be one of autonomous, interactive (got "robot")`},
		{"two bad fields are both named", []string{"agent", "create", "--type", "robot"}, "name: is required; type: must be one of"},
		{"service with a bad audience", []string{"service", "create", "--name", "x", "--audience", "not a uri"}, `audience: "not a uri" is not an absolute URI`},
		{"service lifetime out of range", []string{"service", "create", "--name", "x", "--audience", "https://x.example.com", "--token-lifetime", "48h"}, "token_lifetime: must be seconds from 60 to 86400"},
		{"list with a bad status", []string{"agent", "list", "--status", "gone"}, "status: must be one of active, disabled"},
		{"grant on an unknown audience", []string{"grant", "add", "agt_missing", "--audience", "https://nowhere.example.com", "--scope", "read"}, "404 Not Found"},
		{"lifetime that is not whole seconds", []string{"service", "create", "--name", "x", "--audience", "https://x.example.com", "--token-lifetime", "1500ms"}, "--token-lifetime 1.5s must be a positive whole number of seconds"},
		{"bad output format", []string{"agent", "list", "-o", "yaml"}, `--output "yaml" must be table or json`},
		{"key without a file", []string{"agent", "key", "add", "agt_x"}, "give exactly one of --jwk-file or --pem-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fails(t, s, tt.wantErr, tt.args...)
		})
	}
}

func TestSecrets(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, _ := s.Agent(t, "secret-bot")

	r := ok(t, s, "agent", "secret", "create", id, "--expires-in", "720h")
	if !strings.Contains(r.stderr, "will not be shown again") {
		t.Fatalf("no warning that the secret is shown once: %q", r.stderr)
	}
	i := strings.Index(r.stdout, "client_secret: ")
	if i < 0 {
		t.Fatalf("no client_secret in output:\n%s", r.stdout)
	}
	plain := strings.TrimSpace(r.stdout[i+len("client_secret: "):])
	if !strings.HasPrefix(plain, "agcs_") {
		t.Fatalf("client secret %q", plain)
	}

	// The new secret works: the agent gets a token with it.
	if r := run(t, "token", "--server", s.URL, "--client-id", id, "--client-secret", plain, "--raw"); r.code != 0 {
		t.Fatalf("token with the new secret: %q", r.stderr)
	}

	var l struct {
		Items []struct {
			ID        string  `json:"id"`
			ExpiresAt *string `json:"expires_at"`
		}
	}
	okJSON(t, s, &l, "agent", "secret", "list", id)
	if len(l.Items) != 2 {
		t.Fatalf("secrets = %+v", l.Items)
	}
	r = ok(t, s, "agent", "secret", "list", id)
	if strings.Contains(r.stdout, plain) || strings.Contains(r.stdout, "agcs_") {
		t.Fatalf("secret list shows a secret value:\n%s", r.stdout)
	}
	var withExpiry string
	for _, it := range l.Items {
		if it.ExpiresAt != nil {
			withExpiry = it.ID
		}
	}
	if withExpiry == "" {
		t.Fatal("--expires-in did not set expires_at")
	}
	ok(t, s, "agent", "secret", "delete", id, withExpiry)
	if r := run(t, "token", "--server", s.URL, "--client-id", id, "--client-secret", plain); r.code != 1 || !strings.Contains(r.stderr, "invalid_client") {
		t.Fatalf("token with a deleted secret: exit %d stderr %q", r.code, r.stderr)
	}
	fails(t, s, "400 Bad Request: expires_in:", "agent", "secret", "create", id, "--expires-in", "1s")
}

func TestAgentKeys(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, _ := s.Agent(t, "key-bot")
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubPEM := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	privPEM := write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: "from-jwk", Algorithm: "ES256"})
	jwkFile := write("priv.jwk", privJWK)

	var k struct {
		KID string          `json:"kid"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}
	okJSON(t, s, &k, "agent", "key", "add", id, "--pem-file", pubPEM, "--kid", "k1")
	if k.KID != "k1" || k.Alg != "ES256" {
		t.Fatalf("added key = %+v", k)
	}
	// A private key file is reduced to its public part before it is sent.
	for _, tc := range []struct{ flag, file, kid string }{{"--pem-file", privPEM, "k2"}, {"--jwk-file", jwkFile, ""}} {
		r := ok(t, s, append([]string{"agent", "key", "add", id, tc.flag, tc.file, "-o", "json"}, kidFlag(tc.kid)...)...)
		if !strings.Contains(r.stderr, "only its public part is sent") {
			t.Fatalf("%s: no note about the private key: %q", tc.flag, r.stderr)
		}
		if strings.Contains(r.stdout, `"d"`) {
			t.Fatalf("%s: private key material reached the server:\n%s", tc.flag, r.stdout)
		}
	}
	r := ok(t, s, "agent", "key", "list", id)
	for _, kid := range []string{"k1", "k2", "from-jwk"} {
		if !strings.Contains(r.stdout, kid) {
			t.Fatalf("key list misses %s:\n%s", kid, r.stdout)
		}
	}
	ok(t, s, "agent", "key", "delete", id, "k1")
	fails(t, s, `404 Not Found: agent "`+id+`" has no key "k1"`, "agent", "key", "delete", id, "k1")
	fails(t, s, "no PEM block found", "agent", "key", "add", id, "--pem-file", jwkFile)
}

func kidFlag(kid string) []string {
	if kid == "" {
		return nil
	}
	return []string{"--kid", kid}
}

func TestFederation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, _ := s.Agent(t, "ci-bot")
	var f struct {
		ID      string `json:"id"`
		Issuer  string `json:"issuer"`
		Subject string `json:"subject"`
	}
	okJSON(t, s, &f, "agent", "federation", "add", id, "--issuer", "https://token.actions.githubusercontent.com",
		"--subject", "repo:acme/deploy:ref:refs/heads/main", "--audience", "https://agentguard.example.com")
	if f.Issuer != "https://token.actions.githubusercontent.com" || f.Subject != "repo:acme/deploy:ref:refs/heads/main" {
		t.Fatalf("federation = %+v", f)
	}
	if r := ok(t, s, "agent", "federation", "list", id); !strings.Contains(r.stdout, f.ID) || !strings.Contains(r.stdout, "repo:acme/deploy") {
		t.Fatalf("federation list:\n%s", r.stdout)
	}
	fails(t, s, "issuer:", "agent", "federation", "add", id, "--issuer", "http://insecure.example.com", "--subject", "x")
	ok(t, s, "agent", "federation", "delete", id, f.ID)
	var l struct{ Items []any }
	okJSON(t, s, &l, "agent", "federation", "list", id)
	if len(l.Items) != 0 {
		t.Fatalf("federations after delete = %v", l.Items)
	}
}

func TestServices(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var rs struct {
		ID            string      `json:"id"`
		Scopes        []scopeJSON `json:"scopes"`
		TokenLifetime int64       `json:"token_lifetime"`
	}
	okJSON(t, s, &rs, "service", "create", "--name", "files", "--audience", "https://files.example.com",
		"--scope", "read:file:Read files", "--scope", "write:file", "--token-lifetime", "10m")
	want := []scopeJSON{{Name: "read:file", Description: "Read files"}, {Name: "write:file"}}
	if !reflect.DeepEqual(rs.Scopes, want) || rs.TokenLifetime != 600 {
		t.Fatalf("created = %+v", rs)
	}
	r := ok(t, s, "service", "get", rs.ID)
	if !strings.Contains(r.stdout, "10m0s") || !strings.Contains(r.stdout, "Read files") {
		t.Fatalf("service get:\n%s", r.stdout)
	}
	// The built-in resource server (agentguard itself) is listed too.
	r = ok(t, s, "service", "list")
	if !strings.Contains(r.stdout, "rs_agentguard") || !strings.Contains(r.stdout, rs.ID) {
		t.Fatalf("service list:\n%s", r.stdout)
	}
	fails(t, s, "409 Conflict: a resource server with the audience", "service", "create", "--name", "again", "--audience", "https://files.example.com")
	fails(t, s, "409 Conflict: the built-in resource server cannot be deleted", "service", "delete", "rs_agentguard")
	ok(t, s, "service", "delete", rs.ID)
	fails(t, s, "404 Not Found", "service", "get", rs.ID)
}

func TestParseScopeFlag(t *testing.T) {
	tests := []struct {
		in   string
		want scopeJSON
	}{
		{"read", scopeJSON{Name: "read"}},
		{"read:file", scopeJSON{Name: "read:file"}},
		{"read:file:Read files", scopeJSON{Name: "read:file", Description: "Read files"}},
		{"read:file: Read: all files", scopeJSON{Name: "read:file", Description: "Read: all files"}},
		{"files:read all", scopeJSON{Name: "files", Description: "read all"}},
		{"approve groups=finance", scopeJSON{Name: "approve", Groups: []string{"finance"}}},
		{"approve:Approve payroll groups=finance, hr-leads", scopeJSON{Name: "approve", Description: "Approve payroll", Groups: []string{"finance", "hr-leads"}}},
		{"read:file:Read files groups=", scopeJSON{Name: "read:file", Description: "Read files"}},
	}
	for _, tt := range tests {
		if got := parseScopeFlag(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseScopeFlag(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestGrants(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, _ := s.Agent(t, "grant-bot")
	ok(t, s, "service", "create", "--name", "files", "--audience", "https://files.example.com", "--scope", "read:file", "--scope", "write:file")

	var g struct {
		ID     string   `json:"id"`
		Scopes []string `json:"scopes"`
	}
	okJSON(t, s, &g, "grant", "add", id, "--audience", "https://files.example.com", "--scope", "read:file")
	if !slices.Equal(g.Scopes, []string{"read:file"}) {
		t.Fatalf("grant = %+v", g)
	}
	r := ok(t, s, "grant", "list", id)
	// The functional grant on agentguard itself and the new one.
	if len(lines(r.stdout)) != 3 || !strings.Contains(r.stdout, "agentguard:credentials") || !strings.Contains(r.stdout, g.ID) {
		t.Fatalf("grant list:\n%s", r.stdout)
	}
	fails(t, s, "400 Bad Request: audience: no resource server has the audience https://other.example.com", "grant", "add", id, "--audience", "https://other.example.com", "--scope", "x")
	fails(t, s, `scopes: "delete:file" is not a scope`, "grant", "add", id, "--audience", "https://files.example.com", "--scope", "delete:file")
	okJSON(t, s, &g, "grant", "set", id, g.ID, "--scope", "write:file", "--scope", "read:file")
	if !slices.Equal(g.Scopes, []string{"read:file", "write:file"}) {
		t.Fatalf("grant after set = %+v", g)
	}
	fails(t, s, `scopes: "delete:file" is not a scope`, "grant", "set", id, g.ID, "--scope", "delete:file")
	ok(t, s, "grant", "remove", id, g.ID)
	fails(t, s, "404 Not Found", "grant", "remove", id, g.ID)
}

func TestToken(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	id, secret := s.Agent(t, "token-bot")
	ok(t, s, "service", "create", "--name", "files", "--audience", "https://files.example.com", "--scope", "read:file", "--scope", "write:file")
	ok(t, s, "grant", "add", id, "--audience", "https://files.example.com", "--scope", "read:file", "--scope", "write:file")

	tests := []struct {
		name      string
		args      []string
		wantAud   string
		wantScope string
	}{
		{"basic auth, no target: agentguard itself", nil, s.Config.Issuer, "agentguard:credentials"},
		{"basic auth with resource and scope", []string{"--resource", "https://files.example.com", "--scope", "read:file"}, "https://files.example.com", "read:file"},
		{"post auth with the audience|scope form", []string{"--auth-method", "client_secret_post", "--scope", "https://files.example.com|write:file"}, "https://files.example.com", "write:file"},
		{"resource alone: every granted scope", []string{"--resource", "https://files.example.com"}, "https://files.example.com", "read:file write:file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, append([]string{"token", "--server", s.URL, "--client-id", id, "--client-secret", secret}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var resp tokenOutput
			if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
				t.Fatalf("output is not a token response: %v\n%s", err, r.stdout)
			}
			if resp.TokenType != "Bearer" || resp.ExpiresIn <= 0 || resp.Scope != tt.wantScope {
				t.Fatalf("token response: type %q expires_in %d scope %q", resp.TokenType, resp.ExpiresIn, resp.Scope)
			}
			// The printed token verifies with the server's keys and says what was asked.
			c, err := s.Issuer.Verify(context.Background(), resp.AccessToken)
			if err != nil {
				t.Fatalf("the printed token does not verify: %v", err)
			}
			if c.ClientID != id || c.Subject != id || len(c.Audience) != 1 || c.Audience[0] != tt.wantAud || c.Scope != tt.wantScope {
				t.Fatalf("claims = %+v", c)
			}
		})
	}

	t.Run("raw prints only a verifiable token, secret from the env", func(t *testing.T) {
		t.Setenv("AGENTGUARD_CLIENT_SECRET", secret)
		r := run(t, "token", "--server", s.URL, "--client-id", id, "--raw")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if _, err := s.Issuer.Verify(context.Background(), strings.TrimSpace(r.stdout)); err != nil {
			t.Fatalf("raw output %q does not verify: %v", r.stdout, err)
		}
	})

	errs := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"wrong secret", []string{"--client-id", id, "--client-secret", "agcs_wrong-secret-value"}, "401 Unauthorized: invalid_client: client authentication failed"},
		{"scope not granted", []string{"--client-id", id, "--client-secret", secret, "--scope", "https://files.example.com|delete:file"}, "400 Bad Request: invalid_scope"},
		{"unknown audience", []string{"--client-id", id, "--client-secret", secret, "--resource", "https://nowhere.example.com"}, "400 Bad Request: invalid_target"},
		{"no client id", []string{"--client-secret", secret}, "--client-id is required"},
		{"bad auth method", []string{"--client-id", id, "--client-secret", secret, "--auth-method", "private_key_jwt"}, "--auth-method"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, append([]string{"token", "--server", s.URL}, tt.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tt.wantErr) {
				t.Fatalf("exit %d stderr %q, want 1 and %q", r.code, r.stderr, tt.wantErr)
			}
			if strings.Contains(r.stderr, secret) || strings.Contains(r.stderr, "agcs_wrong-secret-value") {
				t.Fatalf("a client secret leaked into the error: %q", r.stderr)
			}
		})
	}
}

func TestSigningKeys(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var before struct {
		Items []signingKeyJSON `json:"items"`
	}
	okJSON(t, s, &before, "keys", "list")
	if len(before.Items) != 1 || !before.Items[0].Current {
		t.Fatalf("keys before rotation = %+v", before.Items)
	}
	var rotated rotatedJSON
	okJSON(t, s, &rotated, "keys", "rotate")
	if rotated.KID == "" || rotated.KID == before.Items[0].KID {
		t.Fatalf("rotate returned kid %q", rotated.KID)
	}
	r := ok(t, s, "keys", "list")
	ls := lines(r.stdout)
	if len(ls) != 3 || !strings.Contains(r.stdout, rotated.KID) || !strings.Contains(r.stdout, before.Items[0].KID) {
		t.Fatalf("keys after rotation:\n%s", r.stdout)
	}
	for _, l := range ls[1:] {
		current := strings.Contains(l, rotated.KID)
		if strings.Contains(l, " true ") != current {
			t.Fatalf("only the new key should be current:\n%s", r.stdout)
		}
	}
}

// The quick start needs no flags: the token comes from <data-dir>/admin-token.
func TestAdminTokenSources(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(servertest.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGENTGUARD_ADMIN_TOKEN", "")
	t.Setenv("AGENTGUARD_SERVER", s.URL)
	t.Setenv("AGENTGUARD_DATA_DIR", "")

	if r := run(t, "agent", "list", "--data-dir", dir); r.code != 0 {
		t.Fatalf("token from the data dir file: exit %d %q", r.code, r.stderr)
	}
	t.Setenv("AGENTGUARD_DATA_DIR", dir)
	if r := run(t, "service", "list"); r.code != 0 {
		t.Fatalf("token from AGENTGUARD_DATA_DIR: exit %d %q", r.code, r.stderr)
	}
	t.Setenv("AGENTGUARD_DATA_DIR", "")
	t.Setenv("AGENTGUARD_ADMIN_TOKEN", servertest.AdminToken)
	if r := run(t, "agent", "list", "--data-dir", t.TempDir()); r.code != 0 {
		t.Fatalf("token from AGENTGUARD_ADMIN_TOKEN: exit %d %q", r.code, r.stderr)
	}
	t.Setenv("AGENTGUARD_ADMIN_TOKEN", "")

	empty := t.TempDir()
	r := run(t, "agent", "list", "--data-dir", empty)
	if r.code != 1 || !strings.Contains(r.stderr, "no admin token: pass --token") {
		t.Fatalf("no token anywhere: exit %d %q", r.code, r.stderr)
	}
	// A wrong token is a 401 whose message does not repeat it.
	const wrong = "wrong-admin-token-value-123"
	r = run(t, "agent", "list", "--token", wrong)
	if r.code != 1 || !strings.Contains(r.stderr, "401 Unauthorized") || strings.Contains(r.stderr, wrong) {
		t.Fatalf("wrong token: exit %d %q", r.code, r.stderr)
	}
}

// Whatever a server echoes, the admin token does not reach the error message.
func TestErrorsRedactTheToken(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"title": "Forbidden", "status": 403, "detail": "you sent " + r.Header.Get("Authorization")})
	}))
	defer echo.Close()
	const tok = "admin-token-that-must-not-leak"
	r := run(t, "agent", "list", "--server", echo.URL, "--token", tok)
	if r.code != 1 || !strings.Contains(r.stderr, "403 Forbidden: you sent Bearer [redacted]") || strings.Contains(r.stderr, tok) {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}

	// An unreachable server is an error naming the URL, not the token.
	echo.Close()
	r = run(t, "agent", "list", "--server", echo.URL, "--token", tok)
	if r.code != 1 || !strings.Contains(r.stderr, echo.URL) || strings.Contains(r.stderr, tok) {
		t.Fatalf("unreachable: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestResponseError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"problem with field errors", 400, `{"title":"Bad Request","status":400,"detail":"the request has invalid fields; see errors","errors":[{"field":"name","detail":"is required"},{"field":"type","detail":"must be one of autonomous, interactive"}]}`,
			"400 Bad Request: name: is required; type: must be one of autonomous, interactive"},
		{"problem with a detail", 409, `{"title":"Conflict","status":409,"detail":"already exists"}`, "409 Conflict: already exists"},
		{"oauth error", 401, `{"error":"invalid_client","error_description":"bad secret"}`, "401 Unauthorized: invalid_client: bad secret"},
		{"oauth error without description", 400, `{"error":"invalid_grant"}`, "400 Bad Request: invalid_grant"},
		{"plain text", 502, "upstream down\n", "502 Bad Gateway: upstream down"},
		{"empty body", 500, "", "500 Internal Server Error"},
		{"binary body", 500, "\x00\x01", "500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := responseError(tt.status, []byte(tt.body)).Error(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServerURL(t *testing.T) {
	tests := []struct {
		flag, env, want, wantErr string
	}{
		{"", "", defaultServer, ""},
		{"", "https://ag.example.com/", "https://ag.example.com", ""},
		{"http://127.0.0.1:9000", "https://ag.example.com", "http://127.0.0.1:9000", ""},
		{"ftp://x", "", "", "must be an http(s) base URL"},
		{"127.0.0.1:8080", "", "", "must be an http(s) base URL"},
	}
	for _, tt := range tests {
		g := &globals{server: tt.flag, getenv: func(k string) string {
			if k == "AGENTGUARD_SERVER" {
				return tt.env
			}
			return ""
		}}
		got, err := g.serverURL()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("serverURL(%q, %q) error = %v, want %q", tt.flag, tt.env, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("serverURL(%q, %q) = %q, %v; want %q", tt.flag, tt.env, got, err, tt.want)
		}
	}
}

// Scope groups through the CLI reach the API, and `service get` shows them.
func TestServiceScopeGroups(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var rs struct {
		ID     string      `json:"id"`
		Scopes []scopeJSON `json:"scopes"`
	}
	okJSON(t, s, &rs, "service", "create", "--name", "payroll", "--audience", "https://payroll.example.com",
		"--scope", "read:Read payslips", "--scope", "approve:Approve payroll groups=finance,hr-leads")
	want := []scopeJSON{{Name: "read", Description: "Read payslips"}, {Name: "approve", Description: "Approve payroll", Groups: []string{"finance", "hr-leads"}}}
	if !reflect.DeepEqual(rs.Scopes, want) {
		t.Fatalf("created %+v", rs.Scopes)
	}
	r := ok(t, s, "service", "get", rs.ID)
	if !strings.Contains(r.stdout, "finance,hr-leads") || !strings.Contains(r.stdout, "(everyone)") {
		t.Fatalf("service get:\n%s", r.stdout)
	}
}

// The client noun: create (a web client's secret printed once), list, get, update,
// secrets, delete; errors name the field.
func TestClients(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	r := ok(t, s, "client", "create", "--name", "intranet", "--type", "web", "--redirect-uri", "https://intranet.example.com/cb",
		"--post-logout-redirect-uri", "https://intranet.example.com/")
	if !strings.Contains(r.stdout, "client_secret: agcs_") || !strings.Contains(r.stderr, "will not be shown again") {
		t.Fatalf("create web client:\n%s\n%s", r.stdout, r.stderr)
	}
	var spa clientJSON
	okJSON(t, s, &spa, "client", "create", "--name", "portal", "--type", "spa", "--redirect-uri", "https://portal.example.com/cb")
	if !spa.Public || spa.ClientSecret != "" || !strings.HasPrefix(spa.ID, "cli_") {
		t.Fatalf("spa %+v", spa)
	}
	r = ok(t, s, "client", "list")
	if !strings.Contains(r.stdout, "intranet") || !strings.Contains(r.stdout, spa.ID) || strings.Contains(r.stdout, "agcs_") {
		t.Fatalf("client list:\n%s", r.stdout)
	}
	var updated clientJSON
	okJSON(t, s, &updated, "client", "update", spa.ID, "--name", "portal 2", "--redirect-uri", "https://portal.example.com/cb2")
	if updated.Name != "portal 2" || !slices.Equal(updated.RedirectURIs, []string{"https://portal.example.com/cb2"}) {
		t.Fatalf("updated %+v", updated)
	}
	fails(t, s, "redirect_uris[0]", "client", "create", "--name", "x", "--type", "spa", "--redirect-uri", "http://evil.example/cb")
	fails(t, s, "409 Conflict", "client", "secret", "create", spa.ID)
	fails(t, s, "nothing to change", "client", "update", spa.ID)
	ok(t, s, "client", "delete", spa.ID)
	fails(t, s, "404 Not Found", "client", "get", spa.ID)
}
