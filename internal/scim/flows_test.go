package scim_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/user"
)

func q(filter string) string { return url.QueryEscape(filter) }

// Entra ID's provisioning cycle: look up by userName, create, read back by filter,
// update with its quirky PATCH forms, deactivate, delete. Each step is audited as
// the SCIM token's change.
func TestEntraUserProvisioning(t *testing.T) {
	s, c := start(t)
	// The "does this user exist?" probe before a create: an empty list.
	l := c.do("GET", "/scim/v2/Users?filter="+q(`userName eq "Test_User_ab6490ee@contoso.com"`), "").must(t, 200)
	if l.body["totalResults"] != 0.0 || len(l.resources()) != 0 {
		t.Fatalf("probe: %s", l.raw)
	}
	created := c.do("POST", "/scim/v2/Users", entraUser).must(t, 201)
	id := created.str("id")
	if !strings.HasPrefix(id, "usr_") || created.header.Get("Location") != s.URL+"/scim/v2/Users/"+id || created.str("userName") != "Test_User_ab6490ee@contoso.com" {
		t.Fatalf("create: %s %v", created.raw, created.header)
	}
	ext, _ := created.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
	if ext["department"] != "HR" || ext["employeeNumber"] != "1234" {
		t.Fatalf("enterprise extension %v", ext)
	}
	// The directory has the user with SCIM as its source and the attributes
	// inbound policies read.
	var u user.User
	s.Do(t, "GET", "/api/v1/users/"+id, nil, &u)
	if u.Source != "scim" || u.Attributes["department"] != "HR" || u.Attributes["title"] != "Engineer" || u.Email != "Test_User_fd0ea19b@contoso.com" ||
		u.DisplayName != "Test User" || u.ExternalID != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" || u.HasPassword {
		t.Fatalf("directory user %+v", u)
	}
	// Filters Entra sends.
	for _, f := range []string{
		`userName eq "test_user_AB6490EE@contoso.com"`,
		`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		`id eq "` + id + `"`,
		`emails[type eq "work"].value eq "x" or userName eq "Test_User_ab6490ee@contoso.com"`,
		`userName eq "Test_User_ab6490ee@contoso.com" and active eq true`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "HR"`,
		`displayName sw "test"`,
	} {
		l := c.do("GET", "/scim/v2/Users?filter="+q(f), "").must(t, 200)
		if rs := l.resources(); len(rs) != 1 || rs[0]["id"] != id || l.body["totalResults"] != 1.0 {
			t.Fatalf("filter %s: %s", f, l.raw)
		}
	}
	c.do("GET", "/scim/v2/Users?filter="+q(`externalId eq "0A21F0F2-8d2a-4f8e-bf98-7363c4aed4ef"`), "").must(t, 200) // case-exact: none
	// Entra's PATCH forms.
	c.do("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","path":"displayName","value":"Renamed User"},
		{"op":"Add","path":"emails[type eq \"work\"].value","value":"renamed@contoso.com"},
		{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"}]}`).must(t, 200)
	s.Do(t, "GET", "/api/v1/users/"+id, nil, &u)
	if u.DisplayName != "Renamed User" || u.Email != "renamed@contoso.com" || u.Attributes["department"] != "Sales" {
		t.Fatalf("after PATCH: %+v", u)
	}
	p := c.do("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`).must(t, 200)
	if p.body["active"] != false {
		t.Fatalf("deactivate: %s", p.raw)
	}
	// PUT replaces what SCIM manages.
	put := strings.Replace(entraUser, `"active": true`, `"active": true, "id": "`+id+`"`, 1)
	c.do("PUT", "/scim/v2/Users/"+id, put).must(t, 200)
	s.Do(t, "GET", "/api/v1/users/"+id, nil, &u)
	if !u.Active || u.DisplayName != "Test User" || u.Attributes["department"] != "HR" {
		t.Fatalf("after PUT: %+v", u)
	}
	c.do("DELETE", "/scim/v2/Users/"+id, "").must(t, 204)
	c.do("GET", "/scim/v2/Users/"+id, "").scimError(t, 404, "")
	c.do("DELETE", "/scim/v2/Users/"+id, "").scimError(t, 404, "")

	var es struct{ Items []audit.Event }
	s.Do(t, "GET", "/api/v1/audit/events?resource="+id, nil, &es)
	var acts []string
	for _, e := range es.Items {
		acts = append(acts, e.Action)
		if !strings.HasPrefix(e.User, "scim-token:scimtok_") {
			t.Fatalf("event %+v is not the SCIM token's", e)
		}
	}
	slices.Reverse(acts)
	want := []string{"scim.user.create", "scim.user.update", "scim.user.deactivate", "scim.user.activate", "scim.user.delete"}
	if !slices.Equal(acts, want) {
		t.Fatalf("audit actions %v, want %v", acts, want)
	}
}

// The "done when": SCIM deprovisioning orphans the owner's agents, whether
// the IdP deactivates (Okta: active false) or deletes (Entra: DELETE), and with
// --suspend-orphans disables them.
func TestSCIMDeprovisioningOrphansAgents(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.SuspendOrphans = true }})
	_, tok := scimToken(t, s, map[string]any{"name": "okta"})
	c := client{t: t, s: s, token: tok}
	mk := func(userName string) string {
		a := c.do("POST", "/scim/v2/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"emails":[{"value":%q,"primary":true}]}`, userName, userName)).must(t, 201)
		return a.str("id")
	}
	agent := func(owner string) string {
		var a struct{ ID string }
		if code := s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "bot", "owner": owner}, &a); code != 201 {
			t.Fatal(code)
		}
		return a.ID
	}
	type state struct {
		Status   string `json:"status"`
		Orphaned bool   `json:"orphaned"`
	}
	check := func(agentID string, orphaned bool, status string) {
		t.Helper()
		var st state
		s.Do(t, "GET", "/api/v1/agents/"+agentID, nil, &st)
		if st.Orphaned != orphaned || st.Status != status {
			t.Fatalf("agent %s: %+v, want orphaned %v status %s", agentID, st, orphaned, status)
		}
	}
	okta := mk("dana@corp.example")
	entra := mk("erik@corp.example")
	a1, a2, a3 := agent("dana@corp.example"), agent(entra), agent("someone-else")

	c.do("PATCH", "/scim/v2/Users/"+okta, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"`+okta+`","active":false}}]}`).must(t, 200)
	check(a1, true, "disabled")
	c.do("DELETE", "/scim/v2/Users/"+entra, "").must(t, 204)
	check(a2, true, "disabled")
	check(a3, false, "active")

	var l struct{ Items []struct{ ID string } }
	s.Do(t, "GET", "/api/v1/agents?status=orphaned", nil, &l)
	var ids []string
	for _, a := range l.Items {
		ids = append(ids, a.ID)
	}
	want := []string{a1, a2}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("orphaned agents %v, want %v", ids, want)
	}
	for _, id := range want {
		var es struct{ Items []audit.Event }
		s.Do(t, "GET", "/api/v1/audit/events?action=agent.suspend&agent_id="+id, nil, &es)
		if len(es.Items) != 1 || !strings.Contains(es.Items[0].Reason, "through SCIM") || !strings.HasPrefix(es.Items[0].User, "scim-token:") {
			t.Fatalf("suspension events of %s: %+v", id, es.Items)
		}
	}
}

// SCIM sees and changes only what it provisioned: a local user is invisible to it
// and its username cannot be taken over.
func TestSCIMManagesOnlyItsOwnUsers(t *testing.T) {
	s, c := start(t)
	var local user.User
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "admin.alice", "password": "correct horse battery staple"}, &local)
	var localGroup user.Group
	s.Do(t, "POST", "/api/v1/groups", map[string]any{"name": "admins"}, &localGroup)

	c.do("GET", "/scim/v2/Users/"+local.ID, "").scimError(t, 404, "")
	c.do("PUT", "/scim/v2/Users/"+local.ID, `{"userName":"admin.alice","active":false}`).scimError(t, 404, "")
	c.do("PATCH", "/scim/v2/Users/"+local.ID, `{"Operations":[{"op":"replace","path":"active","value":false}]}`).scimError(t, 404, "")
	c.do("DELETE", "/scim/v2/Users/"+local.ID, "").scimError(t, 404, "")
	c.do("GET", "/scim/v2/Groups/"+localGroup.ID, "").scimError(t, 404, "")
	l := c.do("GET", "/scim/v2/Users?filter="+q(`userName eq "admin.alice"`), "").must(t, 200)
	if len(l.resources()) != 0 {
		t.Fatalf("a local user is visible to SCIM: %s", l.raw)
	}
	c.do("POST", "/scim/v2/Users", `{"userName":"ADMIN.alice"}`).scimError(t, 409, "uniqueness")
	c.do("POST", "/scim/v2/Groups", `{"displayName":"Admins"}`).scimError(t, 409, "uniqueness")
	// The local user is untouched and still signs in.
	if _, err := s.Directory.Authenticate(ctx, "admin.alice", "correct horse battery staple"); err != nil {
		t.Fatalf("local user after SCIM's attempts: %v", err)
	}
}

func TestSCIMGroups(t *testing.T) {
	s, c := start(t)
	var ids []string
	for _, n := range []string{"u1@corp.example", "u2@corp.example", "u3@corp.example"} {
		ids = append(ids, c.do("POST", "/scim/v2/Users", `{"userName":"`+n+`"}`).must(t, 201).str("id"))
	}
	var local user.User
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "local"}, &local)

	g := c.do("POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Sales","externalId":"g-ext-1",
		"members":[{"value":"`+ids[0]+`"}]}`).must(t, 201)
	gid := g.str("id")
	if members, _ := g.body["members"].([]any); len(members) != 1 {
		t.Fatalf("create: %s", g.raw)
	}
	// Entra: look the group up by displayName without members.
	l := c.do("GET", "/scim/v2/Groups?excludedAttributes=members&filter="+q(`displayName eq "sales"`), "").must(t, 200)
	if rs := l.resources(); len(rs) != 1 || rs[0]["id"] != gid || rs[0]["members"] != nil {
		t.Fatalf("lookup: %s", l.raw)
	}
	members := func() []string {
		t.Helper()
		a := c.do("GET", "/scim/v2/Groups/"+gid, "").must(t, 200)
		var out []string
		ms, _ := a.body["members"].([]any)
		for _, m := range ms {
			out = append(out, m.(map[string]any)["value"].(string))
		}
		slices.Sort(out)
		return out
	}
	sorted := func(xs ...string) []string { slices.Sort(xs); return xs }
	patch := func(ops string) answer {
		return c.do("PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+ops+`}`)
	}
	patch(`[{"op":"Add","path":"members","value":[{"value":"`+ids[1]+`"},{"value":"`+ids[2]+`"}]}]`).must(t, 200)
	if got := members(); !slices.Equal(got, sorted(ids...)) {
		t.Fatalf("after add: %v", got)
	}
	patch(`[{"op":"Remove","path":"members","value":[{"value":"`+ids[0]+`"}]}]`).must(t, 200) // Entra
	patch(`[{"op":"remove","path":"members[value eq \"`+ids[1]+`\"]"}]`).must(t, 200)         // Okta, RFC
	if got := members(); !slices.Equal(got, []string{ids[2]}) {
		t.Fatalf("after removes: %v", got)
	}
	patch(`[{"op":"replace","value":{"id":"`+gid+`","displayName":"Sales EMEA"}}]`).must(t, 200) // Okta rename
	var dg user.Group
	s.Do(t, "GET", "/api/v1/groups/"+gid, nil, &dg)
	if dg.Name != "Sales EMEA" || dg.Source != "scim" || dg.MemberCount != 1 {
		t.Fatalf("directory group %+v", dg)
	}
	// The member's groups show the SCIM group.
	u := c.do("GET", "/scim/v2/Users/"+ids[2], "").must(t, 200)
	if gs, _ := u.body["groups"].([]any); len(gs) != 1 || gs[0].(map[string]any)["value"] != gid {
		t.Fatalf("user groups %s", u.raw)
	}
	// A local user cannot be made a member through SCIM.
	patch(`[{"op":"add","path":"members","value":[{"value":"`+local.ID+`"}]}]`).scimError(t, 400, "invalidValue")
	patch(`[{"op":"replace","path":"id","value":"x"}]`).scimError(t, 400, "mutability")
	patch(`[{"op":"add","path":"members[value eq \"x\"]","value":[]}]`).scimError(t, 400, "invalidPath")
	patch(`[{"op":"replace","path":"owner","value":"x"}]`).scimError(t, 400, "invalidPath")
	// PUT replaces name and members.
	c.do("PUT", "/scim/v2/Groups/"+gid, `{"displayName":"Sales","members":[{"value":"`+ids[0]+`"},{"value":"`+ids[1]+`"}]}`).must(t, 200)
	if got := members(); !slices.Equal(got, sorted(ids[0], ids[1])) {
		t.Fatalf("after PUT: %v", got)
	}
	c.do("DELETE", "/scim/v2/Groups/"+gid, "").must(t, 204)
	c.do("GET", "/scim/v2/Groups/"+gid, "").scimError(t, 404, "")
}

// A SCIM user's department feeds the inbound policy: the HR-only agent admits the
// HR user Entra provisioned, and refuses them once Entra moves them to Sales.
func TestSCIMAttributesDriveInboundPolicy(t *testing.T) {
	s, c := start(t)
	id := c.do("POST", "/scim/v2/Users", entraUser).must(t, 201).str("id")
	var a struct{ ID string }
	s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "hr-bot", "type": "interactive", "access_identity": "human"}, &a)
	portal, _ := signintest.Client(t, s, "web", []string{"https://hr.example/cb"}, nil)
	if code := s.Do(t, "POST", "/api/v1/agents/"+a.ID+"/inbound", map[string]any{"client_id": portal,
		"policy": `permit(principal, action, resource) when { principal.department == "HR" };`}, nil); code != 201 {
		t.Fatal(code)
	}
	decide := func() bool {
		var ev struct{ Allow bool }
		s.Do(t, "POST", "/api/v1/agents/"+a.ID+"/inbound/evaluate", map[string]any{"client_id": portal, "user": id}, &ev)
		return ev.Allow
	}
	if !decide() {
		t.Fatal("the HR user is refused")
	}
	c.do("PATCH", "/scim/v2/Users/"+id, `{"Operations":[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"}]}`).must(t, 200)
	if decide() {
		t.Fatal("the user moved to Sales is still admitted")
	}
}

func TestSCIMListingAndErrors(t *testing.T) {
	s, c := start(t)
	for i := range 5 {
		c.do("POST", "/scim/v2/Users", fmt.Sprintf(`{"userName":"user%d@corp.example","active":%v}`, i, i%2 == 0)).must(t, 201)
	}
	l := c.do("GET", "/scim/v2/Users?startIndex=2&count=2", "").must(t, 200)
	if l.body["totalResults"] != 5.0 || l.body["startIndex"] != 2.0 || l.body["itemsPerPage"] != 2.0 || len(l.resources()) != 2 {
		t.Fatalf("page: %s", l.raw)
	}
	l = c.do("GET", "/scim/v2/Users?count=0", "").must(t, 200)
	if l.body["totalResults"] != 5.0 || len(l.resources()) != 0 {
		t.Fatalf("count=0: %s", l.raw)
	}
	l = c.do("GET", "/scim/v2/Users?filter="+q(`active eq false`)+"&startIndex=2", "").must(t, 200) // a scan
	if l.body["totalResults"] != 2.0 || len(l.resources()) != 1 {
		t.Fatalf("filtered page: %s", l.raw)
	}
	c.do("GET", "/scim/v2/Users?filter="+q(`userName eq`), "").scimError(t, 400, "invalidFilter")
	c.do("GET", "/scim/v2/Users?startIndex=x", "").scimError(t, 400, "invalidValue")
	c.do("POST", "/scim/v2/Users", `{"displayName":"no userName"}`).scimError(t, 400, "invalidValue")
	c.do("POST", "/scim/v2/Users", `{"userName":"x","emails":[{"value":"not an email"}]}`).scimError(t, 400, "invalidValue")
	c.do("POST", "/scim/v2/Users", `{"userName":"usr_looks_like_an_id"}`).scimError(t, 400, "invalidValue")
	c.do("POST", "/scim/v2/Users", `not json`).scimError(t, 400, "invalidSyntax")
	c.do("POST", "/scim/v2/Users", `{"userName":"a"} {}`).scimError(t, 400, "invalidSyntax")
	c.do("POST", "/scim/v2/Users", `{"userName":"`+strings.Repeat("a", 1<<20)+`"}`).scimError(t, 413, "")
	c.do("POST", "/scim/v2/Bulk", `{}`).scimError(t, 501, "")
	c.do("GET", "/scim/v2/Nope", "").scimError(t, 404, "")
	// Discovery.
	sp := c.do("GET", "/scim/v2/ServiceProviderConfig", "").must(t, 200)
	if p, _ := sp.body["patch"].(map[string]any); p["supported"] != true {
		t.Fatalf("ServiceProviderConfig %s", sp.raw)
	}
	if rt := c.do("GET", "/scim/v2/ResourceTypes", "").must(t, 200); len(rt.resources()) != 2 {
		t.Fatalf("ResourceTypes %s", rt.raw)
	}
	c.do("GET", "/scim/v2/ResourceTypes/User", "").must(t, 200)
	if sc := c.do("GET", "/scim/v2/Schemas", "").must(t, 200); len(sc.resources()) != 3 {
		t.Fatalf("Schemas %s", sc.raw)
	}
	c.do("GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "").must(t, 200)
	// A wrong content type.
	a := func() answer {
		req := client{t: t, s: s, token: c.token}
		return req.doCT("POST", "/scim/v2/Users", "text/plain", `{"userName":"x"}`)
	}()
	a.scimError(t, 415, "")
}

func (c client) doCT(method, path, contentType, body string) answer {
	c.t.Helper()
	req, _ := newRequest(method, c.s.URL+path, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+c.token)
	return send(c.t, req)
}
