package policy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
	"github.com/agentguard/agentguard/internal/user"
)

var ctx = context.Background()

func newAgent(t testing.TB, s *sqlstore.Store) string {
	t.Helper()
	id := secret.NewID("agt")
	now := time.Now()
	if err := s.CreateAgent(ctx, agent.Agent{ID: id, Name: id, Type: agent.TypeInteractive, AccessIdentity: agent.IdentityHuman,
		Audience: "urn:test:" + id, Status: agent.StatusActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return id
}

func addRule(t testing.TB, s *sqlstore.Store, r policy.Rule) policy.Rule {
	t.Helper()
	if r.ID == "" {
		r.ID = secret.NewID("inr")
	}
	r.CreatedAt = time.Now()
	if err := s.CreateInboundRule(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	hrUser    = user.User{ID: "usr_hr", Username: "harriet", Email: "h@corp.example", Groups: []string{"HR-Team"}, Attributes: map[string]string{"department": "HR"}, Active: true}
	salesUser = user.User{ID: "usr_sales", Username: "sam", Groups: []string{"sales"}, Attributes: map[string]string{"department": "Sales"}, Active: true}
	noAttrs   = user.User{ID: "usr_plain", Username: "pat", Groups: []string{}, Attributes: map[string]string{}, Active: true}
)

// The HR-only agent: a Cedar policy over department admits an HR user and refuses a
// Sales user, and every answer says why.
func TestDecide(t *testing.T) {
	s := storetest.Open(t, sqlstore.SQLite)
	e := &policy.Engine{Store: s}
	hrOnly := newAgent(t, s)
	r := addRule(t, s, policy.Rule{AgentID: hrOnly, ClientID: "cli_web",
		Policy: `permit(principal, action, resource) when { principal.department == "HR" };`})
	listed := newAgent(t, s)
	byUser := addRule(t, s, policy.Rule{AgentID: listed, ClientID: "cli_web", Users: []string{"usr_sales"}})
	byGroup := addRule(t, s, policy.Rule{AgentID: listed, ClientID: "cli_web", Groups: []string{"hr-team"}})
	addRule(t, s, policy.Rule{AgentID: listed, ClientID: "cli_other", Policy: `permit(principal, action, resource);`})
	forbids := newAgent(t, s)
	addRule(t, s, policy.Rule{AgentID: forbids, ClientID: "cli_web", Policy: `
		permit(principal, action, resource);
		forbid(principal, action, resource) when { principal has department && principal.department == "Sales" };`})
	unguarded := newAgent(t, s)
	addRule(t, s, policy.Rule{AgentID: unguarded, ClientID: "cli_web", Policy: `permit(principal, action, resource) when { principal.department like "*R*" || principal.groups.isEmpty() };`})
	filtered := newAgent(t, s) // guards checked in Go before Cedar: like "*…*", has, !=
	addRule(t, s, policy.Rule{AgentID: filtered, ClientID: "cli_web", Policy: `permit(principal, action, resource) when { principal.department like "*al*" };`})
	addRule(t, s, policy.Rule{AgentID: filtered, ClientID: "cli_mobile", Policy: `permit(principal, action, resource) when { principal has department };`})
	addRule(t, s, policy.Rule{AgentID: filtered, ClientID: "cli_other", Policy: `permit(principal, action, resource) when { principal.username != "sam" };`})
	addRule(t, s, policy.Rule{AgentID: filtered, ClientID: "cli_match", Policy: `permit(principal, action, resource) when { principal.department like "*a*e*" };`})
	byContext := newAgent(t, s)
	addRule(t, s, policy.Rule{AgentID: byContext, ClientID: "cli_web", Policy: `permit(principal, action, resource == Agent::"` + byContext + `") when { context.client_id == "cli_web" && principal.groups.contains("sales") };`})
	inactive := hrUser
	inactive.Active = false

	tests := []struct {
		name    string
		agent   string
		client  string
		u       user.User
		allow   bool
		rule    string
		reasons []string // substrings of the reason
	}{
		{"HR user, HR-only agent", hrOnly, "cli_web", hrUser, true, r.ID, []string{r.ID, "Cedar policy", "harriet", "line 1"}},
		{"Sales user, HR-only agent", hrOnly, "cli_web", salesUser, false, "", []string{"none of the 1 inbound rules", "sam (usr_sales)", "cli_web"}},
		{"user without the attribute", hrOnly, "cli_web", noAttrs, false, "", []string{"none of the 1 inbound rules"}},
		{"a Cedar error is said", unguarded, "cli_web", noAttrs, false, "", []string{"Cedar errors", "line 1", "department"}},
		{"another client has no rule", hrOnly, "cli_mobile", hrUser, false, "", []string{"no inbound rule for client cli_mobile"}},
		{"inactive user", hrOnly, "cli_web", inactive, false, "", []string{"deactivated"}},
		{"listed user", listed, "cli_web", salesUser, true, byUser.ID, []string{"lists user sam (usr_sales)"}},
		{"group, other case", listed, "cli_web", hrUser, true, byGroup.ID, []string{`group "HR-Team"`}},
		{"neither listed nor in the group", listed, "cli_web", noAttrs, false, "", []string{"none of the 2 inbound rules"}},
		{"the other client's rule admits all", listed, "cli_other", noAttrs, true, "", nil},
		{"forbid in the rule wins over its permit", forbids, "cli_web", salesUser, false, "", nil},
		{"permit without the forbid", forbids, "cli_web", hrUser, true, "", nil},
		{"unguarded Cedar rule", unguarded, "cli_web", hrUser, true, "", nil},
		{"unguarded Cedar rule, no match", unguarded, "cli_web", salesUser, false, "", nil},
		{"like *al*: Sales", filtered, "cli_web", salesUser, true, "", nil},
		{"like *al*: HR", filtered, "cli_web", hrUser, false, "", nil},
		{"has: an attribute present", filtered, "cli_mobile", salesUser, true, "", nil},
		{"has: the attribute missing", filtered, "cli_mobile", noAttrs, false, "", nil},
		{"!=: another username", filtered, "cli_other", hrUser, true, "", nil},
		{"!=: the excluded username", filtered, "cli_other", salesUser, false, "", nil},
		{"like *a*e*: Sales", filtered, "cli_match", salesUser, true, "", nil},
		{"like *a*e*: HR", filtered, "cli_match", hrUser, false, "", nil},
		{"context and group set", byContext, "cli_web", salesUser, true, "", nil},
		{"context and group set, not a member", byContext, "cli_web", hrUser, false, "", nil},
		{"unknown agent", "agt_none", "cli_web", hrUser, false, "", []string{"no inbound rule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Decide(ctx, policy.Request{AgentID: tt.agent, ClientID: tt.client, User: tt.u})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow || (tt.rule != "" && d.RuleID != tt.rule) || (!d.Allow && d.RuleID != "") {
				t.Fatalf("decision %+v, want allow=%v rule %q", d, tt.allow, tt.rule)
			}
			for _, want := range tt.reasons {
				if !strings.Contains(d.Reason, want) {
					t.Fatalf("reason %q does not mention %q", d.Reason, want)
				}
			}
			if d.Reason == "" {
				t.Fatal("empty reason")
			}
		})
	}
}

// A rule deleted through another replica (another store on the same database)
// stops admitting at this replica's next decision; a new rule admits at once.
func TestDecideSeesOtherReplicasChanges(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			url, dir := storetest.DatabaseURL(t, d)
			a, err := sqlstore.Open(ctx, url, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := sqlstore.Open(ctx, url, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			replicaA := &policy.Engine{Store: a}
			agentID := newAgent(t, b)
			decide := func() bool {
				t.Helper()
				d, err := replicaA.Decide(ctx, policy.Request{AgentID: agentID, ClientID: "cli_web", User: hrUser})
				if err != nil {
					t.Fatal(err)
				}
				return d.Allow
			}
			if decide() {
				t.Fatal("admitted with no rule")
			}
			r := addRule(t, b, policy.Rule{AgentID: agentID, ClientID: "cli_web", Groups: []string{"HR-Team"}})
			if !decide() {
				t.Fatal("a rule created on replica b does not admit on replica a")
			}
			if !decide() { // cached
				t.Fatal("the cached rules do not admit")
			}
			if err := b.DeleteInboundRule(ctx, agentID, r.ID); err != nil {
				t.Fatal(err)
			}
			if decide() {
				t.Fatal("a rule deleted on replica b still admits on replica a")
			}
		})
	}
}

// Cedar decisions are cached per user, but a cached decision never outlives
// what it was made from: the user's attributes (read fresh for every decision)
// and the agent's rules (a new rule version compiles a new cache).
func TestCachedCedarDecisionsFollowTheUserAndTheRules(t *testing.T) {
	s := storetest.Open(t, sqlstore.SQLite)
	e := &policy.Engine{Store: s}
	agentID := newAgent(t, s)
	addRule(t, s, policy.Rule{AgentID: agentID, ClientID: "cli_web",
		Policy: `permit(principal, action, resource) when { principal.department like "H*" };`})
	decide := func(u user.User) policy.Decision {
		t.Helper()
		d, err := e.Decide(ctx, policy.Request{AgentID: agentID, ClientID: "cli_web", User: u})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	moved := hrUser
	moved.Attributes = map[string]string{"department": "Sales"}
	for i := range 2 {
		if !decide(hrUser).Allow {
			t.Fatalf("decision %d: the HR user is refused", i)
		}
		if d := decide(moved); d.Allow {
			t.Fatalf("decision %d: the same user, moved to Sales, is admitted by the cached decision: %s", i, d.Reason)
		}
	}
	sales := addRule(t, s, policy.Rule{AgentID: agentID, ClientID: "cli_web",
		Policy: `permit(principal, action, resource) when { principal.department == "Sales" };`})
	if d := decide(moved); !d.Allow || d.RuleID != sales.ID {
		t.Fatalf("a new rule admitting Sales does not apply over the cached refusal: %+v", d)
	}
}

// naive evaluates every rule in order without any index: the reference the
// engine's indexed evaluation must agree with. It returns the ID of the rule
// that admits, "" for none: the first rule listing the user or one of their
// groups, else the first rule whose Cedar policy permits.
func naive(rules []policy.Rule, req policy.Request) string {
	if !req.User.Active {
		return ""
	}
	for _, r := range rules {
		if r.ClientID != req.ClientID {
			continue
		}
		for _, id := range r.Users {
			if id == req.User.ID {
				return r.ID
			}
		}
		for _, g := range r.Groups {
			if req.User.InGroupFold(g) {
				return r.ID
			}
		}
	}
	for _, r := range rules {
		if r.ClientID != req.ClientID || r.Policy == "" {
			continue
		}
		ps, err := cedar.NewPolicySetFromBytes("p", []byte(r.Policy))
		if err != nil {
			panic(err)
		}
		uid, ents := cedarPrincipal(req.User)
		d, _ := cedar.Authorize(ps, ents, cedar.Request{Principal: uid, Action: types.NewEntityUID("Action", "invoke"),
			Resource: types.NewEntityUID("Agent", types.String(req.AgentID)), Context: types.NewRecord(types.RecordMap{"client_id": types.String(req.ClientID)})})
		if d == cedar.Allow {
			return r.ID
		}
	}
	return ""
}

// cedarPrincipal is written out again here (not shared with the engine) so the
// reference does not inherit a mistake in the engine's entity.
func cedarPrincipal(u user.User) (types.EntityUID, types.EntityMap) {
	uid := types.NewEntityUID("User", types.String(u.ID))
	rec := types.RecordMap{"username": types.String(u.Username), "email": types.String(u.Email), "display_name": types.String(u.DisplayName)}
	var gs []types.Value
	var parents []types.EntityUID
	for _, g := range u.Groups {
		gs = append(gs, types.String(g))
		parents = append(parents, types.NewEntityUID("Group", types.String(g)))
	}
	rec["groups"] = types.NewSet(gs...)
	for k, v := range u.Attributes {
		rec[types.String(k)] = types.String(v)
	}
	return uid, types.EntityMap{uid: {UID: uid, Parents: types.NewEntityUIDSet(parents...), Attributes: types.NewRecord(rec)}}
}

// The engine's indexes only skip rules that cannot admit: over random rule sets and
// users, it decides exactly as evaluating every rule would.
func TestIndexedDecisionsMatchNaiveEvaluation(t *testing.T) {
	s := storetest.Open(t, sqlstore.SQLite)
	e := &policy.Engine{Store: s}
	rng := rand.New(rand.NewPCG(1, 2))
	depts := []string{"HR", "Sales", "IT", "Ops"}
	groups := []string{"hr", "sales", "admins", "HR", "u1"}
	users := []string{"usr_1", "usr_2", "usr_3", "usr_4"}
	ranges := []string{"10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/24", "::1/128", "10.1.2.3", "0.0.0.0/0"}
	scores := []string{"1.5", "-2.0", "10.25", "1.5000", "1.49", "abc", "1e3"}
	decimalOps := []string{"lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"}
	ips := []string{"10.1.2.3", "10.2.0.1", "192.168.0.9", "::1", "10.1.2.3/32", "10.1.0.0/16", "not an address", ""}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	templates := []func() string{
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.department == %q };`, pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal in Group::%q, action, resource);`, pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal == User::%q, action, resource);`, pick(users))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.contains(%q) && principal has department };`, pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.department == %q || principal.username == "u2" };`, pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal has department && principal.department == %q }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(depts), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.username == "u%d" && context.client_id == "cli_a" };`, rng.IntN(4))
		},
		// Indexed by the start or the end of an attribute.
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal has department && principal.department like "%s*" };`, pick(depts)[:1])
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.username like "*%d" };`, rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.username like "u*" }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(groups))
		},
		// Unguarded (no condition known to be needed): merged; with a forbid,
		// the forbid is checked after a permit matched.
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.department like "*%s*" || context.client_id == "cli_a" };`, pick(depts)[1:2])
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { context.client_id == "cli_b" || principal.username like "u*" }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(groups))
		},
		// Filtered (guards checked in Go: like "*…*", has, !=).
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.department like "*%s*" };`, pick(depts)[1:2])
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal has department && principal.department like "*%s*" };`, pick(depts)[1:2])
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.username != "u%d" }; forbid(principal, action, resource) when { principal in Group::%q };`, rng.IntN(4), pick(groups))
		},
		// Sets of groups or users.
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.containsAny([%q, %q]) };`, pick(groups), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal in [Group::%q, User::%q] }; forbid(principal, action, resource) when { principal.department == %q };`, pick(groups), pick(users), pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal in User::%q };`, pick(users))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.containsAll([%q, %q]) };`, pick(groups), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { if principal has department then principal.department == %q else principal.username == "u%d" };`, pick(depts), rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { if principal.department == %q then principal.username == "u%d" else principal in Group::%q };`, pick(depts), rng.IntN(4), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { !(if principal in Group::%q then principal.department != %q else principal.username != "u%d") };`, pick(groups), pick(depts), rng.IntN(4))
		},
		// Addresses in ranges (users have an ip attribute, sometimes not one).
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { ip(principal.ip).isInRange(ip(%q)) };`, pick(ranges))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { ip(principal.ip).isInRange(ip(%q)) || ip(principal.ip).isInRange(ip(%q)) }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(ranges), pick(ranges), pick(groups))
		},
		// Negated presence, membership and identity.
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.department == %q || !(principal in Group::%q) };`, pick(depts), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) unless { principal has department || principal == User::%q };`, pick(users))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { !(principal == User::%q) && principal has department };`, pick(users))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) unless { principal.groups.contains(%q) }; forbid(principal, action, resource) when { !(principal in User::%q) };`, pick(groups), pick(users))
		},
		// Attributes read whatever their values.
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.department == principal.ip || principal.username like "u%d*" };`, rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.isEmpty() || principal.department == %q };`, pick(depts))
		},
		// A side nothing describes beside one something does: Cedar evaluates the
		// side once per decision (users are sometimes in a group named like them).
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.contains(principal.username) || principal.department == %q };`, pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) unless { principal.groups.contains(principal.username) && principal.department != %q }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(depts), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { (principal.groups.containsAny([principal.username, %q]) || principal.username == "u%d") && context.client_id == "cli_a" };`, pick(groups), rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.containsAny([principal.username, %q, principal.department]) };`, pick(groups))
		},
		// Two attributes compared (a team is sometimes the department).
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.department == principal.team || principal.department == %q };`, pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) unless { principal.team == principal.department }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { principal.team != principal.department && principal.username != "u%d" };`, rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { if principal.groups.isEmpty() then principal.score == %q else principal.username != "u%d" };`, pick(scores), rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { (principal.groups.isEmpty() || principal.department == %q) == true };`, pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { (if principal.groups.isEmpty() then "x" else principal.score) != %q };`, pick(scores))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { context.client_id != %q || principal.department == %q };`, pick([]string{"cli_a", "cli_b"}), pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) unless { context.client_id != %q && principal.username != "u%d" };`, pick([]string{"cli_a", "cli_b"}), rng.IntN(4))
		},
		// Decimal comparisons, either way round.
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { decimal(principal.score).%s(decimal(%q)) };`, pick(decimalOps), pick(scores[:4]))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { decimal(%q).%s(decimal(principal.score)) }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(scores[:4]), pick(decimalOps), pick(groups))
		},
		// Negations, pushed inwards to find what they need.
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { !(principal.department != %q) };`, pick(depts))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) unless { principal.department == %q }; forbid(principal, action, resource) when { principal in Group::%q };`, pick(depts), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { !(principal.department != %q || principal.username == "u%d") };`, pick(depts), rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { !(principal.department != %q && principal.username != "u%d") };`, pick(depts), rng.IntN(4))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) unless { principal.username like "*%d" || principal in Group::%q };`, rng.IntN(4), pick(groups))
		},
		func() string {
			return fmt.Sprintf(`permit(principal, action, resource) when { !(principal has department) || !!(principal.department == %q) };`, pick(depts))
		},
	}
	for round := range 200 {
		agentID := newAgent(t, s)
		var rules []policy.Rule
		for range 1 + rng.IntN(12) {
			r := policy.Rule{AgentID: agentID, ClientID: pick([]string{"cli_a", "cli_b"}), Users: []string{}, Groups: []string{}}
			switch rng.IntN(4) {
			case 0:
				r.Users = []string{pick(users)}
			case 1:
				r.Groups = []string{pick(groups)}
			default:
				r.Policy = templates[rng.IntN(len(templates))]()
			}
			rules = append(rules, addRule(t, s, r))
		}
		for i := range 30 {
			u := user.User{ID: pick(users), Username: fmt.Sprintf("u%d", rng.IntN(4)), Active: rng.IntN(10) > 0, Attributes: map[string]string{}}
			if rng.IntN(3) > 0 {
				u.Attributes["department"] = pick(depts)
			}
			if rng.IntN(4) > 0 {
				u.Attributes["ip"] = pick(ips)
			}
			if rng.IntN(4) > 0 {
				u.Attributes["score"] = pick(scores)
			}
			if rng.IntN(3) > 0 {
				u.Attributes["team"] = pick(depts)
			}
			for _, g := range groups {
				if rng.IntN(3) == 0 {
					u.Groups = append(u.Groups, g)
				}
			}
			req := policy.Request{AgentID: agentID, ClientID: pick([]string{"cli_a", "cli_b"}), User: u}
			want := naive(rules, req)
			for try := range 2 { // the second decision comes from the decision cache
				d, err := e.Decide(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allow != (want != "") || d.RuleID != want {
					t.Fatalf("round %d case %d try %d: engine says %v by %q (%s), evaluating every rule says rule %q\nuser %+v\nrules %+v", round, i, try, d.Allow, d.RuleID, d.Reason, want, u, rules)
				}
			}
		}
	}
}

// BenchmarkDecide1000Rules: Engine.Decide end to end with 1,000 rules of one agent
// and client (a third each users, groups and Cedar department policies) and the
// compiled rules cached: the evaluation plus the one-row version read that keeps
// replicas consistent, on each database.
func BenchmarkDecide1000Rules(b *testing.B) {
	for _, d := range storetest.Backends() {
		b.Run(string(d), func(b *testing.B) {
			url, dir := storetest.DatabaseURL(b, d)
			s, err := sqlstore.Open(ctx, url, dir)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			agentID := newAgent(b, s)
			for i := range 1000 {
				r := policy.Rule{AgentID: agentID, ClientID: "cli_web"}
				switch i % 3 {
				case 0:
					r.Users = []string{fmt.Sprintf("usr_%d", i)}
				case 1:
					r.Groups = []string{fmt.Sprintf("group-%d", i)}
				default:
					r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.department == "dept-%d" };`, i)
				}
				addRule(b, s, r)
			}
			e := &policy.Engine{Store: s}
			req := policy.Request{AgentID: agentID, ClientID: "cli_web", User: user.User{ID: "usr_x", Username: "alice", Active: true,
				Groups: []string{"staff"}, Attributes: map[string]string{"department": "dept-998"}}}
			for b.Loop() {
				if d, err := e.Decide(ctx, req); err != nil || !d.Allow {
					b.Fatalf("decision %+v %v", d, err)
				}
			}
		})
	}
}
