package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

func jwkJSON(t *testing.T, key any) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Bad input is a 400 problem naming the field and what would be right, so a
// caller can fix the request without reading the source.
func TestManagementAPIRejectsInvalidFieldsNamingThem(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, _ := s.Agent(t, "validation")
	var rs struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "files", "audience": "https://files.example.com", "scopes": []map[string]string{{"name": "read"}}}, &rs); code != http.StatusCreated {
		t.Fatalf("create resource server: HTTP %d", code)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)

	long := strings.Repeat("n", 201)
	tests := []struct {
		name, method, path, body string
		field                    string
	}{
		{"agent name missing", "POST", "/api/v1/agents", `{"owner":"x"}`, "name"},
		{"agent name blank", "POST", "/api/v1/agents", `{"name":"   "}`, "name"},
		{"agent name too long", "POST", "/api/v1/agents", `{"name":"` + long + `"}`, "name"},
		{"agent type not in enum", "POST", "/api/v1/agents", `{"name":"a","type":"robot"}`, "type"},
		{"agent access_identity not in enum", "POST", "/api/v1/agents", `{"name":"a","access_identity":"alien"}`, "access_identity"},
		{"agent audience not absolute", "POST", "/api/v1/agents", `{"name":"a","audience":"agents/a"}`, "audience"},
		{"agent audience with a space", "POST", "/api/v1/agents", `{"name":"a","audience":"https://a.example.com/x y"}`, "audience"},
		{"agent name of the wrong JSON type", "POST", "/api/v1/agents", `{"name":5}`, "name"},
		{"agent unknown field", "POST", "/api/v1/agents", `{"name":"a","nmae":"b"}`, "nmae"},
		{"agent patch status not in enum", "PATCH", "/api/v1/agents/{agent}", `{"status":"paused"}`, "status"},
		{"agent patch name empty", "PATCH", "/api/v1/agents/{agent}", `{"name":""}`, "name"},
		{"agent patch type not in enum", "PATCH", "/api/v1/agents/{agent}", `{"type":"x"}`, "type"},
		{"agent patch audience not absolute", "PATCH", "/api/v1/agents/{agent}", `{"audience":"nope"}`, "audience"},
		{"agent patch unknown field", "PATCH", "/api/v1/agents/{agent}", `{"id":"agt_x"}`, "id"},

		{"resource server name missing", "POST", "/api/v1/resource-servers", `{"audience":"https://x.example.com"}`, "name"},
		{"resource server audience missing", "POST", "/api/v1/resource-servers", `{"name":"x"}`, "audience"},
		{"resource server audience without scheme", "POST", "/api/v1/resource-servers", `{"name":"x","audience":"x.example.com"}`, "audience"},
		{"resource server audience with |", "POST", "/api/v1/resource-servers", `{"name":"x","audience":"https://x.example.com|read"}`, "audience"},
		{"scope name with a space", "POST", "/api/v1/resource-servers", `{"name":"x","audience":"https://x.example.com","scopes":[{"name":"read file"}]}`, "scopes[0].name"},
		{"scope name with |", "POST", "/api/v1/resource-servers", `{"name":"x","audience":"https://x.example.com","scopes":[{"name":"ok"},{"name":"a|b"}]}`, "scopes[1].name"},
		{"scope name empty", "POST", "/api/v1/resource-servers", `{"name":"x","audience":"https://x.example.com","scopes":[{"name":""}]}`, "scopes[0].name"},
		{"token_lifetime too short", "POST", "/api/v1/resource-servers", `{"name":"x","audience":"https://x.example.com","token_lifetime":59}`, "token_lifetime"},
		{"token_lifetime too long", "POST", "/api/v1/resource-servers", `{"name":"x","audience":"https://x.example.com","token_lifetime":86401}`, "token_lifetime"},
		{"resource server patch token_lifetime zero", "PATCH", "/api/v1/resource-servers/{rs}", `{"token_lifetime":0}`, "token_lifetime"},
		{"resource server patch scope with space", "PATCH", "/api/v1/resource-servers/{rs}", `{"scopes":[{"name":"a b"}]}`, "scopes[0].name"},

		{"secret expires_in too short", "POST", "/api/v1/agents/{agent}/secrets", `{"expires_in":59}`, "expires_in"},
		{"secret expires_in too long", "POST", "/api/v1/agents/{agent}/secrets", `{"expires_in":315360001}`, "expires_in"},
		{"secret expires_in negative", "POST", "/api/v1/agents/{agent}/secrets", `{"expires_in":-1}`, "expires_in"},
		{"secret unknown field", "POST", "/api/v1/agents/{agent}/secrets", `{"expires":60}`, "expires"},

		{"key jwk with private material", "POST", "/api/v1/agents/{agent}/keys", `{"jwk":` + jwkJSON(t, ec) + `}`, "jwk"},
		{"key RSA under 2048 bits", "POST", "/api/v1/agents/{agent}/keys", `{"jwk":` + jwkJSON(t, &small.PublicKey) + `}`, "jwk"},
		{"key jwk not a JWK", "POST", "/api/v1/agents/{agent}/keys", `{"jwk":{"kty":"nope"}}`, "jwk"},
		{"key jwk null", "POST", "/api/v1/agents/{agent}/keys", `{"jwk":null}`, "jwk"},
		{"key pem garbage", "POST", "/api/v1/agents/{agent}/keys", `{"pem":"-----BEGIN NOTHING-----\nzzz\n-----END NOTHING-----\n"}`, "pem"},
		{"key pem not PEM", "POST", "/api/v1/agents/{agent}/keys", `{"pem":"hello"}`, "pem"},
		{"key neither jwk nor pem", "POST", "/api/v1/agents/{agent}/keys", `{}`, "jwk"},
		{"key alg that does not fit", "POST", "/api/v1/agents/{agent}/keys", `{"alg":"RS256","jwk":` + jwkJSON(t, &ec.PublicKey) + `}`, "alg"},

		{"federation issuer http non-loopback", "POST", "/api/v1/agents/{agent}/federation", `{"issuer":"http://issuer.example.com","subject":"s"}`, "issuer"},
		{"federation issuer not a URL", "POST", "/api/v1/agents/{agent}/federation", `{"issuer":"issuer","subject":"s"}`, "issuer"},
		{"federation subject missing", "POST", "/api/v1/agents/{agent}/federation", `{"issuer":"https://issuer.example.com"}`, "subject"},
		{"federation jwks_uri http non-loopback", "POST", "/api/v1/agents/{agent}/federation", `{"issuer":"https://issuer.example.com","subject":"s","jwks_uri":"http://issuer.example.com/jwks"}`, "jwks_uri"},

		{"grant audience not absolute", "POST", "/api/v1/agents/{agent}/grants", `{"audience":"files","scopes":["read"]}`, "audience"},
		{"grant audience of no resource server", "POST", "/api/v1/agents/{agent}/grants", `{"audience":"https://none.example.com","scopes":["read"]}`, "audience"},
		{"grant scopes missing", "POST", "/api/v1/agents/{agent}/grants", `{"audience":"https://files.example.com"}`, "scopes"},
		{"grant scope with space", "POST", "/api/v1/agents/{agent}/grants", `{"audience":"https://files.example.com","scopes":["read all"]}`, "scopes"},
		{"grant scope with |", "POST", "/api/v1/agents/{agent}/grants", `{"audience":"https://files.example.com","scopes":["https://files.example.com|read"]}`, "scopes"},
		{"grant scope the server does not define", "POST", "/api/v1/agents/{agent}/grants", `{"audience":"https://files.example.com","scopes":["write"]}`, "scopes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.NewReplacer("{agent}", agentID, "{rs}", rs.ID).Replace(tc.path)
			resp, b := send(t, s, tc.method, path, servertest.AdminToken, "application/json", strings.NewReader(tc.body))
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("HTTP %d %s, want 400", resp.StatusCode, b)
			}
			p := decodeProblem(t, resp, b)
			if !slices.Contains(p.fields(), tc.field) {
				t.Fatalf("errors name %v, want %q: %s", p.fields(), tc.field, b)
			}
			for _, e := range p.Errors {
				if e.Detail == "" {
					t.Fatalf("field %s has no detail saying what would be right", e.Field)
				}
			}
		})
	}
}

// The body rules of every JSON endpoint: JSON only, at most 1 MiB, one object.
func TestManagementAPIBodyRules(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, _ := s.Agent(t, "bodies")
	huge := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	tests := []struct {
		name, path, contentType, body string
		want                          int
	}{
		{"text/plain body", "/api/v1/agents", "text/plain", `{"name":"a"}`, http.StatusUnsupportedMediaType},
		{"form body", "/api/v1/resource-servers", "application/x-www-form-urlencoded", `name=a`, http.StatusUnsupportedMediaType},
		{"no Content-Type", "/api/v1/agents", "", `{"name":"a"}`, http.StatusUnsupportedMediaType},
		{"secret body not JSON", "/api/v1/agents/{agent}/secrets", "text/plain", `{}`, http.StatusUnsupportedMediaType},
		{"body over 1 MiB", "/api/v1/agents", "application/json", huge, http.StatusRequestEntityTooLarge},
		{"trailing JSON object", "/api/v1/agents", "application/json", `{"name":"a"} {"name":"b"}`, http.StatusBadRequest},
		{"trailing garbage", "/api/v1/agents", "application/json", `{"name":"a"}x`, http.StatusBadRequest},
		{"empty body", "/api/v1/agents", "application/json", ``, http.StatusBadRequest},
		{"not JSON", "/api/v1/agents", "application/json", `{name:a}`, http.StatusBadRequest},
		{"JSON array", "/api/v1/agents", "application/json", `[]`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.ReplaceAll(tc.path, "{agent}", agentID)
			resp, b := send(t, s, "POST", path, servertest.AdminToken, tc.contentType, strings.NewReader(tc.body))
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d %.300s, want %d", resp.StatusCode, b, tc.want)
			}
			decodeProblem(t, resp, b)
		})
	}
	// None of the refused bodies created an agent.
	var l struct{ Items []struct{ Name string } }
	s.Do(t, "GET", "/api/v1/agents?limit=500", nil, &l)
	if len(l.Items) != 1 {
		t.Fatalf("%d agents after refused creates, want only the one set up", len(l.Items))
	}
}

// Conflicts and unknown ids.
func TestManagementAPIConflictsAndUnknownIDs(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	agentID, _ := s.Agent(t, "conflicts")
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsBody := map[string]any{"name": "files", "audience": "https://files.example.com", "scopes": []map[string]string{{"name": "read"}}}
	var rs struct{ ID string }
	if code := s.Do(t, "POST", "/api/v1/resource-servers", rsBody, &rs); code != http.StatusCreated {
		t.Fatalf("create resource server: HTTP %d", code)
	}
	var other struct{ ID string }
	s.Do(t, "POST", "/api/v1/resource-servers", map[string]any{"name": "other", "audience": "https://other.example.com"}, &other)
	grantBody := map[string]any{"audience": "https://files.example.com", "scopes": []string{"read"}}
	if code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/grants", grantBody, nil); code != http.StatusCreated {
		t.Fatalf("create grant: HTTP %d", code)
	}
	fedBody := map[string]any{"issuer": "https://issuer.example.com", "subject": "system:serviceaccount:ns:sa"}
	if code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/federation", fedBody, nil); code != http.StatusCreated {
		t.Fatalf("create federation: HTTP %d", code)
	}
	keyBody := map[string]any{"jwk": json.RawMessage(jwkJSON(t, &ec.PublicKey)), "kid": "k1"}
	if code := s.Do(t, "POST", "/api/v1/agents/"+agentID+"/keys", keyBody, nil); code != http.StatusCreated {
		t.Fatalf("create key: HTTP %d", code)
	}
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherAgent, _ := s.Agent(t, "second")
	var a struct{ Audience string }
	s.Do(t, "GET", "/api/v1/agents/"+agentID, nil, &a)

	tests := []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"duplicate resource server audience", "POST", "/api/v1/resource-servers", map[string]any{"name": "again", "audience": "https://files.example.com"}, http.StatusConflict},
		{"resource server patched onto a taken audience", "PATCH", "/api/v1/resource-servers/" + other.ID, map[string]any{"audience": "https://files.example.com"}, http.StatusConflict},
		{"duplicate agent audience", "POST", "/api/v1/agents", map[string]any{"name": "x", "audience": a.Audience}, http.StatusConflict},
		{"agent patched onto a taken audience", "PATCH", "/api/v1/agents/" + otherAgent, map[string]any{"audience": a.Audience}, http.StatusConflict},
		{"duplicate grant", "POST", "/api/v1/agents/" + agentID + "/grants", grantBody, http.StatusConflict},
		{"duplicate federation (same issuer and subject)", "POST", "/api/v1/agents/" + otherAgent + "/federation", fedBody, http.StatusConflict},
		{"duplicate key kid", "POST", "/api/v1/agents/" + agentID + "/keys", map[string]any{"jwk": json.RawMessage(jwkJSON(t, &ec2.PublicKey)), "kid": "k1"}, http.StatusConflict},

		{"get unknown agent", "GET", "/api/v1/agents/agt_none", nil, http.StatusNotFound},
		{"patch unknown agent", "PATCH", "/api/v1/agents/agt_none", map[string]any{"name": "x"}, http.StatusNotFound},
		{"delete unknown agent", "DELETE", "/api/v1/agents/agt_none", nil, http.StatusNotFound},
		{"secret for unknown agent", "POST", "/api/v1/agents/agt_none/secrets", nil, http.StatusNotFound},
		{"secrets of unknown agent", "GET", "/api/v1/agents/agt_none/secrets", nil, http.StatusNotFound},
		{"delete unknown secret", "DELETE", "/api/v1/agents/" + agentID + "/secrets/sec_none", nil, http.StatusNotFound},
		{"key for unknown agent", "POST", "/api/v1/agents/agt_none/keys", map[string]any{"jwk": json.RawMessage(jwkJSON(t, &ec2.PublicKey))}, http.StatusNotFound},
		{"keys of unknown agent", "GET", "/api/v1/agents/agt_none/keys", nil, http.StatusNotFound},
		{"delete unknown key", "DELETE", "/api/v1/agents/" + agentID + "/keys/none", nil, http.StatusNotFound},
		{"federation of unknown agent", "POST", "/api/v1/agents/agt_none/federation", map[string]any{"issuer": "https://i.example.com", "subject": "s"}, http.StatusNotFound},
		{"federations of unknown agent", "GET", "/api/v1/agents/agt_none/federation", nil, http.StatusNotFound},
		{"delete unknown federation", "DELETE", "/api/v1/agents/" + agentID + "/federation/fed_none", nil, http.StatusNotFound},
		{"grant for unknown agent", "POST", "/api/v1/agents/agt_none/grants", grantBody, http.StatusNotFound},
		{"grants of unknown agent", "GET", "/api/v1/agents/agt_none/grants", nil, http.StatusNotFound},
		{"delete unknown grant", "DELETE", "/api/v1/agents/" + agentID + "/grants/grt_none", nil, http.StatusNotFound},
		{"delete another agent's grant", "DELETE", "/api/v1/agents/" + otherAgent + "/grants/" + grants(t, s, agentID)[0].ID, nil, http.StatusNotFound},
		{"get unknown resource server", "GET", "/api/v1/resource-servers/rs_none", nil, http.StatusNotFound},
		{"patch unknown resource server", "PATCH", "/api/v1/resource-servers/rs_none", map[string]any{"name": "x"}, http.StatusNotFound},
		{"delete unknown resource server", "DELETE", "/api/v1/resource-servers/rs_none", nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body strings.Builder
			ct := ""
			if tc.body != nil {
				b, _ := json.Marshal(tc.body)
				body.Write(b)
				ct = "application/json"
			}
			resp, b := send(t, s, tc.method, tc.path, servertest.AdminToken, ct, strings.NewReader(body.String()))
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, b, tc.want)
			}
			if p := decodeProblem(t, resp, b); p.Detail == "" {
				t.Fatal("the problem has no detail")
			}
		})
	}
}

// limit is 1..500; anything else is a 400 naming limit, on every paged list.
func TestListLimitValidation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	for _, path := range []string{"/api/v1/agents", "/api/v1/resource-servers"} {
		for _, limit := range []string{"0", "501", "abc", "-1", "1.5"} {
			t.Run(path+"?limit="+limit, func(t *testing.T) {
				resp, b := send(t, s, "GET", path+"?limit="+url.QueryEscape(limit), servertest.AdminToken, "", nil)
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("HTTP %d %s, want 400", resp.StatusCode, b)
				}
				if p := decodeProblem(t, resp, b); !slices.Contains(p.fields(), "limit") {
					t.Fatalf("errors name %v, want limit", p.fields())
				}
			})
		}
		for _, limit := range []string{"1", "500"} {
			if resp, b := send(t, s, "GET", path+"?limit="+limit, servertest.AdminToken, "", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s?limit=%s: HTTP %d %s, want 200", path, limit, resp.StatusCode, b)
			}
		}
	}
}

type agentView struct {
	ID, Name, Description, Owner, Type, Status, Audience string
	AccessIdentity                                       string `json:"access_identity"`
	CreatedAt                                            string `json:"created_at"`
}

// Paging returns every agent exactly once, and the filters narrow by owner,
// status, type and free text; on both backends, since paging is SQL.
func TestAgentListPagingAndFilters(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			const n = 120
			created := map[string]bool{}
			for i := range n {
				body := map[string]any{"name": fmt.Sprintf("bot-%03d", i), "owner": []string{"team-a", "team-b", "team-c"}[i%3]}
				if i%4 == 0 {
					body["type"] = "interactive"
				}
				if i == 7 {
					body["description"] = "Summarises 100% of INVOICES"
				}
				var a agentView
				if code := s.Do(t, "POST", "/api/v1/agents", body, &a); code != http.StatusCreated {
					t.Fatalf("create agent %d: HTTP %d", i, code)
				}
				created[a.ID] = true
			}
			var disabled agentView
			list := func(query string) []agentView {
				t.Helper()
				var all []agentView
				seen := map[string]bool{}
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > n {
						t.Fatal("paging does not end")
					}
					q := query + "&cursor=" + url.QueryEscape(cursor)
					var page struct {
						Items      []agentView
						NextCursor string `json:"next_cursor"`
					}
					if code := s.Do(t, "GET", "/api/v1/agents?"+q, nil, &page); code != http.StatusOK {
						t.Fatalf("list %s: HTTP %d", q, code)
					}
					for _, a := range page.Items {
						if seen[a.ID] {
							t.Fatalf("agent %s returned twice", a.ID)
						}
						seen[a.ID] = true
					}
					all = append(all, page.Items...)
					if page.NextCursor == "" {
						return all
					}
					cursor = page.NextCursor
				}
			}
			all := list("limit=50")
			if len(all) != n {
				t.Fatalf("paging returned %d agents, want %d", len(all), n)
			}
			for _, a := range all {
				if !created[a.ID] {
					t.Fatalf("unknown agent %s listed", a.ID)
				}
			}
			// Disable one so the status filter has something to find.
			disabled = all[10]
			if code := s.Do(t, "PATCH", "/api/v1/agents/"+disabled.ID, map[string]any{"status": "disabled"}, nil); code != http.StatusOK {
				t.Fatalf("disable: HTTP %d", code)
			}
			tests := []struct {
				query string
				want  int
				check func(agentView) bool
			}{
				{"owner=team-a", 40, func(a agentView) bool { return a.Owner == "team-a" }},
				{"type=interactive", 30, func(a agentView) bool { return a.Type == "interactive" }},
				{"type=autonomous&owner=team-b", 30, func(a agentView) bool { return a.Type == "autonomous" && a.Owner == "team-b" }},
				{"status=disabled", 1, func(a agentView) bool { return a.ID == disabled.ID }},
				{"status=active", n - 1, func(a agentView) bool { return a.Status == "active" }},
				{"q=BOT-01", 10, func(a agentView) bool { return strings.HasPrefix(a.Name, "bot-01") }},
				{"q=invoices", 1, func(a agentView) bool { return a.Name == "bot-007" }},
				{"q=100%25", 1, func(a agentView) bool { return a.Name == "bot-007" }}, // % is literal, not a wildcard
				{"q=bot_01", 0, nil}, // _ is literal too: it would match bot-01x as a wildcard
				{"q=" + url.QueryEscape(all[3].ID), 1, func(a agentView) bool { return a.ID == all[3].ID }},
				{"owner=nobody", 0, nil},
			}
			for _, tc := range tests {
				got := list(tc.query + "&limit=7")
				if len(got) != tc.want {
					t.Errorf("%s: %d agents, want %d", tc.query, len(got), tc.want)
				}
				for _, a := range got {
					if tc.check == nil || !tc.check(a) {
						t.Errorf("%s: agent %+v does not match", tc.query, a)
					}
				}
			}
			for _, bad := range []string{"status=paused", "type=robot"} {
				resp, b := send(t, s, "GET", "/api/v1/agents?"+bad, servertest.AdminToken, "", nil)
				field, _, _ := strings.Cut(bad, "=")
				if p := decodeProblem(t, resp, b); resp.StatusCode != 400 || !slices.Contains(p.fields(), field) {
					t.Errorf("%s: HTTP %d %s, want 400 naming %s", bad, resp.StatusCode, b, field)
				}
			}
		})
	}
}
