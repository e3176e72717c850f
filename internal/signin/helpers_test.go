package signin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/user"
)

// fixture is a running server; users, groups and inbound rules are created through
// the management API, so the real directory (argon2id passwords) and the real
// policy engine (inbound rules, Cedar) decide.
type fixture struct {
	*servertest.Server
}

func start(t *testing.T, d sqlstore.Dialect) *fixture {
	t.Helper()
	return &fixture{servertest.Start(t, servertest.Options{Dialect: d})}
}

func startWith(t *testing.T, opts servertest.Options) *fixture {
	t.Helper()
	return &fixture{servertest.Start(t, opts)}
}

// addUser creates a local user with a password (and the groups, if missing).
func (f *fixture) addUser(t *testing.T, username, password string, groups ...string) user.User {
	t.Helper()
	for _, g := range groups {
		if code := f.Do(t, "POST", "/api/v1/groups", map[string]any{"name": g}, nil); code != 201 && code != 409 {
			t.Fatalf("create group %s: HTTP %d", g, code)
		}
	}
	if groups == nil {
		groups = []string{}
	}
	var u user.User
	body := map[string]any{"username": username, "password": password, "email": username + "@example.com",
		"display_name": strings.ToUpper(username[:1]) + username[1:], "groups": groups}
	if code := f.Do(t, "POST", "/api/v1/users", body, &u); code != 201 {
		t.Fatalf("create user %s: HTTP %d", username, code)
	}
	return u
}

// setAttributes replaces a user's attributes (what Cedar policies read).
func (f *fixture) setAttributes(t *testing.T, id string, attrs map[string]string) {
	t.Helper()
	if code := f.Do(t, "PATCH", "/api/v1/users/"+id, map[string]any{"attributes": attrs}, nil); code != 200 {
		t.Fatalf("set attributes: HTTP %d", code)
	}
}

// setActive activates or deactivates a user.
func (f *fixture) setActive(t *testing.T, id string, active bool) {
	t.Helper()
	if code := f.Do(t, "PATCH", "/api/v1/users/"+id, map[string]any{"active": active}, nil); code != 200 {
		t.Fatalf("set active=%v: HTTP %d", active, code)
	}
}

// allow adds an inbound rule to the agent: through clientID, the groups and/or the
// Cedar policy. It returns the rule id.
func (f *fixture) allow(t *testing.T, agentID, clientID string, groups []string, cedar string) string {
	t.Helper()
	body := map[string]any{"client_id": clientID}
	if groups != nil {
		body["groups"] = groups
	}
	if cedar != "" {
		body["policy"] = cedar
	}
	var rule struct{ ID string }
	if code := f.Do(t, "POST", "/api/v1/agents/"+agentID+"/inbound", body, &rule); code != 201 {
		t.Fatalf("inbound rule for %s via %s: HTTP %d", agentID, clientID, code)
	}
	return rule.ID
}

// allowGroup lets members of group use agentID through clientID.
func (f *fixture) allowGroup(t *testing.T, agentID, clientID, group string) string {
	t.Helper()
	return f.allow(t, agentID, clientID, []string{group}, "")
}

// removeRule deletes an inbound rule.
func (f *fixture) removeRule(t *testing.T, agentID, ruleID string) {
	t.Helper()
	if code := f.Do(t, "DELETE", "/api/v1/agents/"+agentID+"/inbound/"+ruleID, nil, nil); code != 204 {
		t.Fatalf("delete rule: HTTP %d", code)
	}
}

// agent registers an agent acting for users (access_identity human) with a secret.
func (f *fixture) agent(t *testing.T, name, identity string) (id, audience, sec string) {
	t.Helper()
	var a struct{ ID, Audience string }
	if code := f.Do(t, "POST", "/api/v1/agents", map[string]any{"name": name, "owner": "tests", "type": "interactive", "access_identity": identity}, &a); code != 201 {
		t.Fatalf("create agent: HTTP %d", code)
	}
	var s struct {
		ClientSecret string `json:"client_secret"`
	}
	if code := f.Do(t, "POST", "/api/v1/agents/"+a.ID+"/secrets", nil, &s); code != 201 {
		t.Fatalf("create secret: HTTP %d", code)
	}
	return a.ID, a.Audience, s.ClientSecret
}

// events returns the audit events matching the query (e.g. "category=inbound").
func (f *fixture) events(t *testing.T, query string) []audit.Event {
	t.Helper()
	var out struct{ Items []audit.Event }
	if code := f.Do(t, "GET", "/api/v1/audit/events?limit=500&"+query, nil, &out); code != 200 {
		t.Fatalf("audit search %s: HTTP %d", query, code)
	}
	return out.Items
}

// authorizeURL is an authorization request URL.
func (f *fixture) authorizeURL(params url.Values) string {
	return f.URL + "/oauth2/authorize?" + params.Encode()
}

// signIn drives the login page of an authorization request as a browser: it loads
// the URL, expects the login form, submits it, and returns where the browser was
// sent (the client's redirect URI with code or error).
func signIn(t *testing.T, b *signintest.Browser, authURL, username, password string) *url.URL {
	t.Helper()
	p := b.Get(t, authURL)
	if p.Status != http.StatusOK || len(p.Forms(t)) == 0 {
		t.Fatalf("authorize: HTTP %d, want the login page:\n%s", p.Status, p.Body)
	}
	res := b.Submit(t, p, map[string]string{"username": username, "password": password})
	if res.Location == nil {
		t.Fatalf("login: HTTP %d, want a redirect to the client:\n%s", res.Status, res.Body)
	}
	return res.Location
}

// tokenForm posts a form to the token endpoint and decodes the JSON answer.
func tokenForm(t *testing.T, base string, form url.Values, basicID, basicSecret string) (int, map[string]any) {
	t.Helper()
	return postForm(t, base+"/oauth2/token", form, basicID, basicSecret)
}

// postForm posts a form (with HTTP Basic when basicID is set) and decodes the JSON answer.
func postForm(t *testing.T, u string, form url.Values, basicID, basicSecret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func hasEvent(events []audit.Event, match func(audit.Event) bool) bool {
	return slices.ContainsFunc(events, match)
}
