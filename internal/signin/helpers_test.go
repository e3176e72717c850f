package signin_test

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/user"
)

// testDirectory and testPolicy stand in for the directory and the inbound policy
// engine, which another engineer is building at the same time; they are replaced by
// the real ones (users, groups and Cedar rules created through the API) once those
// are on main.
type testDirectory struct {
	mu        sync.Mutex
	users     map[string]user.User // by id
	passwords map[string]string    // by username
}

func (d *testDirectory) add(username, password string, groups ...string) user.User {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.users == nil {
		d.users, d.passwords = map[string]user.User{}, map[string]string{}
	}
	u := user.User{ID: secret.NewID("usr"), Username: username, Email: username + "@example.com", DisplayName: strings.ToUpper(username[:1]) + username[1:],
		Groups: groups, Attributes: map[string]string{}, Active: true, Source: user.SourceLocal}
	d.users[u.ID], d.passwords[username] = u, password
	return u
}

func (d *testDirectory) setActive(id string, active bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.users[id]
	u.Active = active
	d.users[id] = u
}

func (d *testDirectory) Authenticate(_ context.Context, username, password string) (user.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	want, ok := d.passwords[username]
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return user.User{}, user.ErrBadCredentials
	}
	for _, u := range d.users {
		if u.Username == username {
			if !u.Active {
				return user.User{}, user.ErrBadCredentials
			}
			return u, nil
		}
	}
	return user.User{}, user.ErrBadCredentials
}

func (d *testDirectory) GetUser(_ context.Context, id string) (user.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[id]
	if !ok {
		return u, store.ErrNotFound
	}
	return u, nil
}

// testPolicy admits members of the groups allowed for (agent, client).
type testPolicy struct {
	mu    sync.Mutex
	allow map[[2]string][]string
}

func (p *testPolicy) allowGroup(agentID, clientID, group string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.allow == nil {
		p.allow = map[[2]string][]string{}
	}
	k := [2]string{agentID, clientID}
	p.allow[k] = append(p.allow[k], group)
}

func (p *testPolicy) Decide(_ context.Context, req policy.Request) (policy.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.allow[[2]string{req.AgentID, req.ClientID}] {
		if req.User.InGroup(g) {
			return policy.Decision{Allow: true, Reason: "rule admits group " + g, RuleID: "inr_test"}, nil
		}
	}
	return policy.Decision{Reason: "no inbound rule admits the user"}, nil
}

// fixture is a running server with a directory and a policy.
type fixture struct {
	*servertest.Server
	dir    *testDirectory
	policy *testPolicy
}

func start(t *testing.T, d sqlstore.Dialect) *fixture {
	t.Helper()
	f := &fixture{dir: &testDirectory{}, policy: &testPolicy{}}
	f.Server = servertest.Start(t, servertest.Options{Dialect: d, Users: f.dir, Authenticator: f.dir, Policy: f.policy})
	return f
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
