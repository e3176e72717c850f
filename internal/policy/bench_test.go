package policy

import (
	"fmt"
	"testing"

	"github.com/agentguard/agentguard/internal/user"
)

// benchRules are 1,000 rules of one agent and client, of one kind.
func benchRules(kind string) []Rule {
	rules := make([]Rule, 0, 1000)
	for i := range 1000 {
		r := Rule{ID: fmt.Sprintf("inr_%04d", i), AgentID: agentID, ClientID: "cli_web"}
		switch kind {
		case "users":
			r.Users = []string{fmt.Sprintf("usr_%d", i)}
		case "groups":
			r.Groups = []string{fmt.Sprintf("group-%d", i)}
		case "cedar":
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal has department && principal.department == "dept-%d" };`, i)
		case "cedar-groups":
			r.Policy = fmt.Sprintf(`permit(principal in Group::"group-%d", action, resource) when { principal.level == "senior" };`, i)
		case "mixed":
			switch i % 3 {
			case 0:
				r.Users = []string{fmt.Sprintf("usr_%d", i)}
			case 1:
				r.Groups = []string{fmt.Sprintf("group-%d", i)}
			default:
				r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.department == "dept-%d" };`, i)
			}
		case "cedar-or":
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.department == "dept-%d" || principal.title == "title-%d" };`, i, i)
		case "cedar-like":
			// Indexed by the pattern's literal start.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.department like "dept-%d*" };`, i)
		case "cedar-like-anywhere":
			// Not indexable; the pattern is checked in Go before Cedar.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.department like "*ept-%d*" };`, i)
		case "cedar-negation":
			// Negations pushed inwards: indexed as department == "dept-<i>".
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { !(principal.department != "dept-%d") };`, i)
		case "cedar-unless":
			// unless { department != … } needs department == …: indexed.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) unless { principal.department != "dept-%d" };`, i)
		case "cedar-groups-any":
			// A member of one of two groups: indexed under both.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.containsAny(["group-%d", "team-%d"]) };`, i, i)
		case "cedar-ip-range":
			// Not indexable; the address is parsed once and checked in Go.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { ip(principal.ip).isInRange(ip("10.%d.%d.0/24")) };`, i/256, i%256)
		case "cedar-decimal":
			// Not indexable; the attribute is parsed once and compared in Go.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { decimal(principal.score).lessThan(decimal("%d.5")) };`, i)
		case "cedar-not-in-group":
			// Either side of the || checked in Go: the attribute, or not a
			// member of the group.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.department == "dept-%d" || !(principal in Group::"staff") };`, i)
		case "cedar-no-groups":
			// Either side of the || checked in Go: no groups, or the attribute.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.isEmpty() || principal.department == "dept-%d" };`, i)
		case "cedar-attr-pair":
			// Two attributes compared, checked in Go first.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.email == principal.username || principal.department == "dept-%d" };`, i)
		case "cedar-shared-side":
			// An || whose one side nothing describes, the same in every rule:
			// Cedar evaluates that side once per decision, the other is checked
			// in Go.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.contains(principal.username) || principal.department == "dept-%d" };`, i)
		case "cedar-unguarded":
			// No condition the engine can analyze, different in every rule:
			// every rule is evaluated, all in one merged list.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.contains("group-%d") == true };`, i)
		case "cedar-unguarded-forbid":
			// The same with a forbid in each rule: checked for the rules whose
			// permit matched.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.groups.contains("group-%d") == true };
forbid(principal, action, resource) when { principal has contractor };`, i)
		case "cedar-client":
			// An || with a side about the client: decided when the rules are
			// compiled, which leaves the pattern, checked in Go first.
			r.Policy = fmt.Sprintf(`permit(principal, action, resource) when { principal.department like "*ept-%d*" || context.client_id == "cli_none" };`, i)
		}
		rules = append(rules, r)
	}
	return rules
}

// benchUser matches the last rule (the most work before an allow) or none.
func benchUser(match bool) user.User {
	u := user.User{ID: "usr_x", Username: "alice", Email: "alice@example.com", Active: true,
		Groups: []string{"staff", "group-x"}, Attributes: map[string]string{"department": "dept-x", "level": "senior", "title": "engineer", "ip": "192.168.1.7", "score": "1000.0"}}
	if match {
		u.ID, u.Groups[1], u.Attributes["department"], u.Attributes["ip"], u.Attributes["score"] = "usr_999", "group-999", "dept-999", "10.3.231.7", "998.9"
	}
	return u
}

// BenchmarkEvaluate1000Rules: the policy evaluation of one decision against 1,000
// compiled rules of one (agent, client), the target (< 50 µs).
// "uncached" is every decision evaluated (a user's first decision at this rule
// version); "cached" the same user deciding again (the decision cache).
func BenchmarkEvaluate1000Rules(b *testing.B) {
	for _, kind := range []string{"users", "groups", "cedar", "cedar-groups", "mixed", "cedar-or", "cedar-like", "cedar-like-anywhere", "cedar-client", "cedar-negation", "cedar-unless", "cedar-groups-any", "cedar-ip-range", "cedar-decimal", "cedar-not-in-group", "cedar-no-groups", "cedar-attr-pair", "cedar-shared-side", "cedar-unguarded", "cedar-unguarded-forbid"} {
		cr := compile(1, benchRules(kind)).clients["cli_web"]
		for _, match := range []bool{true, false} {
			req := Request{AgentID: agentID, ClientID: "cli_web", User: benchUser(match)}
			for _, cached := range []bool{false, true} {
				decide, name := cr.evaluate, "uncached"
				if cached {
					decide, name = cr.decide, "cached"
				}
				b.Run(fmt.Sprintf("%s/match=%v/%s", kind, match, name), func(b *testing.B) {
					for b.Loop() {
						if d := decide(req, "user"); d.Allow != match {
							b.Fatalf("decision %+v", d)
						}
					}
				})
			}
		}
	}
}
