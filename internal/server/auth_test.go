package server_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// adminRoutes are the management routes of the issue-2 contract: agents, secrets,
// keys, federation, resource servers, grants and signing keys. Every one must be
// admin-only.
var adminRoutes = []string{
	"POST /api/v1/agents",
	"GET /api/v1/agents",
	"GET /api/v1/agents/{id}",
	"PATCH /api/v1/agents/{id}",
	"DELETE /api/v1/agents/{id}",
	"POST /api/v1/agents/{id}/secrets",
	"GET /api/v1/agents/{id}/secrets",
	"DELETE /api/v1/agents/{id}/secrets/{secret_id}",
	"POST /api/v1/agents/{id}/keys",
	"GET /api/v1/agents/{id}/keys",
	"DELETE /api/v1/agents/{id}/keys/{kid}",
	"POST /api/v1/agents/{id}/federation",
	"GET /api/v1/agents/{id}/federation",
	"DELETE /api/v1/agents/{id}/federation/{fed_id}",
	"POST /api/v1/resource-servers",
	"GET /api/v1/resource-servers",
	"GET /api/v1/resource-servers/{id}",
	"PATCH /api/v1/resource-servers/{id}",
	"DELETE /api/v1/resource-servers/{id}",
	"POST /api/v1/agents/{id}/grants",
	"GET /api/v1/agents/{id}/grants",
	"DELETE /api/v1/agents/{id}/grants/{grant_id}",
	"GET /api/v1/keys",
	"POST /api/v1/keys/rotate",
}

// agentAPIPrefix is the credential API, which agents (not admins) call.
const agentAPIPrefix = "/api/v1/agent/"

var routeLiteral = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE) (/api/\S*)$`)

// registeredRoutes finds every "METHOD /api/..." pattern literal in the non-test Go
// files of the repository, so a route added anywhere is covered by the auth table
// below without anyone remembering to list it.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	var routes []string
	root := filepath.Join("..", "..", "internal")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && routeLiteral.MatchString(s) {
					routes = append(routes, s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(routes)
	return slices.Compact(routes)
}

// Every management route, listed or added later, refuses callers that are not
// admins and lets in both kinds of admin: the bootstrap token and an agent token
// carrying agentguard:admin. A route that forgets the admin wrapper fails here.
func TestEveryManagementRouteRequiresAnAdmin(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	registered := registeredRoutes(t)
	for _, r := range adminRoutes {
		if !slices.Contains(registered, r) {
			t.Errorf("contract route %q is not registered by any package (or the route scan is broken)", r)
		}
	}
	var routes []string
	for _, r := range registered {
		if !strings.Contains(r, agentAPIPrefix) {
			routes = append(routes, r)
		}
	}

	// A plain agent (functional scope only), an admin agent, and a revoked admin token.
	plainID, plainSec := s.Agent(t, "plain")
	plainTok := accessToken(t, s, plainID, plainSec, nil)
	adminID, adminSec, adminTok := adminAgent(t, s, "admin-agent")
	revokedTok := accessToken(t, s, adminID, adminSec, url.Values{"scope": {"agentguard:admin"}})
	if code, out := oauthPost(t, s, "/oauth2/revoke", adminID, adminSec, url.Values{"token": {revokedTok}}); code != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %v", code, out)
	}
	// The {id} of agent routes is a victim agent, so the admin agent survives DELETE.
	victimID, _ := s.Agent(t, "victim")

	callers := []struct {
		name   string
		bearer string
		want   int // 0: allowed (anything but 401/403)
	}{
		{"no Authorization", "", http.StatusUnauthorized},
		{"wrong opaque bearer", "not-a-real-token-0000000000000", http.StatusUnauthorized},
		{"wrong JWT-shaped bearer", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", http.StatusUnauthorized},
		{"agent token without agentguard:admin", plainTok, http.StatusForbidden},
		{"revoked agentguard:admin token", revokedTok, http.StatusUnauthorized},
		{"agent token with agentguard:admin", adminTok, 0},
		{"bootstrap AGENTGUARD_ADMIN_TOKEN", servertest.AdminToken, 0},
	}
	for _, route := range routes {
		method, pattern, _ := strings.Cut(route, " ")
		path := fillPattern(pattern, victimID)
		for _, c := range callers {
			t.Run(route+"/"+c.name, func(t *testing.T) {
				var body *strings.Reader
				ct := ""
				if method == "POST" || method == "PUT" || method == "PATCH" {
					body, ct = strings.NewReader("{}"), "application/json"
				} else {
					body = strings.NewReader("")
				}
				resp, b := send(t, s, method, path, c.bearer, ct, body)
				switch c.want {
				case 0:
					if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode >= 500 {
						t.Fatalf("%s %s as %s: HTTP %d %s, want it let through", method, path, c.name, resp.StatusCode, b)
					}
				default:
					if resp.StatusCode != c.want {
						t.Fatalf("%s %s as %s: HTTP %d %s, want %d", method, path, c.name, resp.StatusCode, b, c.want)
					}
					decodeProblem(t, resp, b)
					if c.want == http.StatusUnauthorized {
						if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, `Bearer error="invalid_token"`) {
							t.Fatalf("WWW-Authenticate %q, want Bearer error=\"invalid_token\"", h)
						}
					}
				}
			})
		}
	}
}

// fillPattern substitutes path wildcards: {id} of an agent route with agentID,
// every other wildcard with a value no resource has.
func fillPattern(pattern, agentID string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			if p == "{id}" && i == 4 && parts[3] == "agents" {
				parts[i] = agentID
			} else {
				parts[i] = "none_such"
			}
		}
	}
	return strings.Join(parts, "/")
}
