package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/agentguard/agentguard/internal/user"
)

const agentID = "agt_1"

// Policies that do not parse or cannot apply are refused with the position to fix.
func TestCompilePolicyRefusals(t *testing.T) {
	tests := []struct {
		name, text string
		line, col  int    // 0: no position
		contains   string // in the message
	}{
		{"unclosed when", "permit(principal, action, resource)\n when { principal.department == \"HR\" ", 2, 38, `expected "}" but found the end of the policy`},
		{"assignment instead of ==", `permit(principal, action, resource) when { principal.department = "HR" };`, 1, 67, `expected "}" but found "="`},
		{"unknown method", `permit(principal, action, resource) when { principal.x.foo(1) };`, 1, 63, "foo"},
		{"missing semicolon", "permit(principal, action, resource)\npermit(principal, action, resource);", 2, 7, `expected ";" but found "permit"`},
		{"empty", "", 0, 0, "no statements"},
		{"comment only", "// nothing here\n", 0, 0, "no statements"},
		{"only forbid", "\n\nforbid(principal, action, resource);", 3, 1, "only forbid"},
		{"principal is a group", `permit(principal == Group::"hr", action, resource);`, 1, 1, "principal == Group"},
		{"principal in an agent", `permit(principal in Agent::"a", action, resource);`, 1, 1, "never matches"},
		{"principal is Agent", `permit(principal is Agent, action, resource);`, 1, 1, "never matches"},
		{"another action", `permit(principal, action == Action::"read", resource);`, 1, 1, `Action::"invoke"`},
		{"action set without invoke", `permit(principal, action in [Action::"a", Action::"b"], resource);`, 1, 1, `Action::"invoke"`},
		{"another agent", "permit(principal, action,\n resource == Agent::\"agt_2\");", 1, 1, `Agent::"agt_1"`},
		{"resource of another type", `permit(principal, action, resource is User);`, 1, 1, "always an Agent"},
		{"too long", strings.Repeat(" ", MaxPolicyBytes+1), 0, 0, "limit"},
		{"too many statements", strings.Repeat("permit(principal, action, resource);\n", MaxStatements+1), 0, 0, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompilePolicy(tt.text, agentID)
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *PolicyError", err)
			}
			if pe.Line != tt.line || pe.Column != tt.col {
				t.Fatalf("position %d:%d (%v), want %d:%d", pe.Line, pe.Column, pe, tt.line, tt.col)
			}
			if !strings.Contains(pe.Error(), tt.contains) {
				t.Fatalf("message %q does not mention %q", pe.Error(), tt.contains)
			}
			if tt.line > 0 && !strings.HasPrefix(pe.Error(), "line ") {
				t.Fatalf("message %q does not start with its position", pe.Error())
			}
		})
	}
}

func TestCompilePolicyAccepts(t *testing.T) {
	for _, text := range []string{
		`permit(principal, action, resource) when { principal.department == "HR" };`,
		`permit(principal in Group::"hr", action == Action::"invoke", resource == Agent::"agt_1");`,
		`permit(principal is User in Group::"hr", action in [Action::"invoke"], resource is Agent);`,
		`permit(principal == User::"usr_1", action, resource in Agent::"agt_1");`,
		"// HR, except contractors\npermit(principal, action, resource) when { principal has department && principal.department == \"HR\" };\nforbid(principal, action, resource) when { principal has contractor };",
		`@id("office hours") permit(principal, action, resource) when { context.client_id == "cli_1" };`,
	} {
		if _, err := CompilePolicy(text, agentID); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
}

// guardOf finds a condition each permit statement needs, and only conditions that
// are really needed (a wrong guard would skip a statement that could admit).
func TestGuards(t *testing.T) {
	type g struct { // a guard without its compiled pattern
		kind        guardKind
		name, value string
	}
	tests := []struct {
		text string
		want []g
	}{
		{`permit(principal, action, resource);`, nil},
		{`permit(principal, action, resource) when { principal.department == "HR" };`, []g{{guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { "HR" == principal.department };`, []g{{guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { principal has department && principal.department == "HR" };`, []g{{guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { principal.level > 3 && principal.username == "bob" };`, []g{{guardAttr, "username", "bob"}}},
		{`permit(principal in Group::"hr", action, resource) when { principal.department == "HR" };`, []g{{guardGroup, "hr", ""}}},
		{`permit(principal is User in Group::"hr", action, resource);`, []g{{guardGroup, "hr", ""}}},
		{`permit(principal == User::"usr_9", action, resource);`, []g{{guardUser, "usr_9", ""}}},
		{`permit(principal, action, resource) when { principal in Group::"ops" };`, []g{{guardGroup, "ops", ""}}},
		{`permit(principal, action, resource) when { principal == User::"usr_9" };`, []g{{guardUser, "usr_9", ""}}},
		{`permit(principal, action, resource) when { principal.groups.contains("ops") };`, []g{{guardGroup, "ops", ""}}},
		// Either side of an || will do; like: equality without a wildcard, else the
		// literal start or end.
		{`permit(principal, action, resource) when { principal.department == "HR" || principal.department == "IT" };`,
			[]g{{guardAttr, "department", "HR"}, {guardAttr, "department", "IT"}}},
		{`permit(principal, action, resource) when { (principal.department == "HR" && principal.level > 2) || principal in Group::"ops" };`,
			[]g{{guardAttr, "department", "HR"}, {guardGroup, "ops", ""}}},
		{`permit(principal, action, resource) when { principal.department like "HR" };`, []g{{guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { principal.department like "H*R" };`, []g{{guardPrefix, "department", "H"}}},
		{`permit(principal, action, resource) when { principal.department like "H\*R*" };`, []g{{guardPrefix, "department", "H*R"}}},
		{`permit(principal, action, resource) when { principal.email like "*@corp.example" };`, []g{{guardSuffix, "email", "@corp.example"}}},
		// Not necessary conditions: no guard.
		{`permit(principal, action, resource) when { principal.department == "HR" || principal.level > 2 };`, []g{{guardAttr, "department", "HR"}, {guardHas, "level", ""}}},
		// Not indexable, checked in Go before Cedar is asked.
		{`permit(principal, action, resource) when { principal.email like "*corp*" };`, []g{{guardContains, "email", "corp"}}},
		{`permit(principal, action, resource) when { principal.email like "*co*rp*" };`, []g{{guardMatch, "email", `"*co*rp*"`}}},
		{`permit(principal, action, resource) when { principal.email like "*" };`, []g{{guardHas, "email", ""}}},
		{`permit(principal, action, resource) when { principal has clearance };`, []g{{guardHas, "clearance", ""}}},
		{`permit(principal, action, resource) when { principal.department != "HR" };`, []g{{guardNotEqual, "department", "HR"}}},
		// Sets: one of the groups, or one of the users.
		{`permit(principal, action, resource) when { principal.groups.containsAny(["a", "b"]) };`, []g{{guardGroup, "a", ""}, {guardGroup, "b", ""}}},
		{`permit(principal, action, resource) when { principal in [Group::"a", User::"usr_1"] };`, []g{{guardGroup, "a", ""}, {guardUser, "usr_1", ""}}},
		{`permit(principal, action, resource) when { principal in User::"usr_1" };`, []g{{guardUser, "usr_1", ""}}},
		{`permit(principal, action, resource) when { principal.groups.containsAny(["a", principal.department]) };`,
			[]g{{guardGroup, "a", ""}, {guardExpr, "", "principal.groups.contains(principal.department)"}}},
		{`permit(principal, action, resource) when { principal.groups.containsAny([1, principal.department]) };`,
			[]g{{guardExpr, "", "principal.groups.contains(1)"}, {guardExpr, "", "principal.groups.contains(principal.department)"}}},
		{`permit(principal, action, resource) when { principal in [Group::"a", Agent::"x"] };`, nil},
		{`permit(principal, action, resource) when { principal.groups.containsAll(["a", "b"]) };`, []g{{guardGroup, "a", ""}}},
		{`permit(principal, action, resource) when { principal.groups.containsAll([]) };`, nil},
		// if-then-else: the then branch's guards with the condition's, or the else
		// branch's with the condition false.
		{`permit(principal, action, resource) when { if principal has department then principal.department == "HR" else principal.title == "cto" };`,
			[]g{{guardAttr, "department", "HR"}, {guardAttr, "title", "cto"}}},
		{`permit(principal, action, resource) when { if principal.department == "HR" then true else principal.title == "cto" };`,
			[]g{{guardAttr, "department", "HR"}, {guardAttr, "title", "cto"}}},
		{`permit(principal, action, resource) when { if principal has department then true else principal.title == "cto" };`,
			[]g{{guardHas, "department", ""}, {guardAttr, "title", "cto"}}},
		{`permit(principal, action, resource) when { if principal.department == "HR" then true else !(principal in Group::"x") };`,
			[]g{{guardAttr, "department", "HR"}, {guardNotEqual, "department", "HR"}}},
		{`permit(principal, action, resource) when { if principal in Group::"x" then true else !(principal in Group::"y") };`,
			[]g{{guardGroup, "x", ""}, {guardNotGroup, "x", ""}}},
		// An address in a range: parsed and checked in Go before Cedar.
		{`permit(principal, action, resource) when { ip(principal.office_ip).isInRange(ip("10.1.0.0/16")) };`, []g{{guardIPRange, "office_ip", "10.1.0.0/16"}}},
		{`permit(principal, action, resource) when { ip(principal.office_ip).isInRange(ip(principal.range)) };`, []g{{guardHas, "office_ip", ""}}},
		{`permit(principal, action, resource) when { ip("10.1.2.3").isInRange(ip("10.1.0.0/16")) };`, nil},
		{`permit(principal, action, resource) when { decimal(principal.score).greaterThan(decimal("1.5")) };`, []g{{guardDecimal, "score", "1.5"}}},
		{`permit(principal, action, resource) when { decimal("1.5").lessThanOrEqual(decimal(principal.score)) };`, []g{{guardDecimal, "score", "1.5"}}},
		{`permit(principal, action, resource) when { decimal(principal.score).greaterThan(decimal(principal.limit)) };`, []g{{guardHas, "score", ""}}},
		// What the engine cannot analyze: evaluated for every user.
		{`permit(principal, action, resource) when { principal.groups.isEmpty() };`, []g{{guardNoGroups, "", ""}}},
		{`permit(principal, action, resource) unless { principal.groups.isEmpty() };`, []g{{guardSomeGroup, "", ""}}},
		{`permit(principal, action, resource) when { principal.groups.contains(principal.username) };`, nil},
		// A side of an || that nothing describes, beside one that something
		// does: evaluated by Cedar, once per decision.
		{`permit(principal, action, resource) when { principal.groups.contains(principal.username) || principal.title == "cto" };`,
			[]g{{guardExpr, "", "principal.groups.contains(principal.username)"}, {guardAttr, "title", "cto"}}},
		{`permit(principal, action, resource) unless { principal.groups.contains(principal.username) && principal.title == "cto" };`,
			[]g{{guardExpr, "", "!principal.groups.contains(principal.username)"}, {guardNotEqual, "title", "cto"}}},
		{`permit(principal, action, resource) unless { principal.email like "*" };`, nil},
		// Attributes read whatever their values: the user must have them.
		{`permit(principal, action, resource) when { principal.groups.contains(principal.department) };`, []g{{guardHas, "department", ""}}},
		{`permit(principal, action, resource) when { principal.manager.department == "HR" };`, []g{{guardHas, "manager", ""}}},
		{`permit(principal, action, resource) when { principal.level == 3 };`, []g{{guardHas, "level", ""}}},
		{`permit(principal, action, resource) when { principal.groups == principal.username };`, nil},
		// Two attributes compared: checked in Go.
		{`permit(principal, action, resource) when { principal.email == principal.username };`, []g{{guardSameAttrs, "email", "username"}}},
		{`permit(principal, action, resource) when { principal.email == principal.username || principal.department == "HR" };`,
			[]g{{guardSameAttrs, "email", "username"}, {guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { principal.department != principal.team };`, []g{{guardOtherAttrs, "department", "team"}}},
		{`permit(principal, action, resource) unless { principal.department == principal.team };`, []g{{guardOtherAttrs, "department", "team"}}},
		{`permit(principal, action, resource) when { !(principal.department != principal.team) };`, []g{{guardSameAttrs, "department", "team"}}},
		{`permit(principal, action, resource) when { principal.groups.isEmpty() || principal.level == 3 };`, []g{{guardNoGroups, "", ""}, {guardHas, "level", ""}}},
		{`permit(principal, action, resource) when { if principal.email == principal.username then principal.x == 1 else true };`,
			[]g{{guardSameAttrs, "email", "username"}, {guardOtherAttrs, "email", "username"}}},
		{`permit(principal, action, resource) when { if principal.groups.contains(principal.username) then principal.x == 1 else true };`, nil},
		// Negations pushed inwards: a comparison is false only for a user who has
		// the attribute (else Cedar errs, and the statement does not apply).
		{`permit(principal, action, resource) unless { principal.department == "HR" };`, []g{{guardNotEqual, "department", "HR"}}},
		{`permit(principal, action, resource) when { !(principal.department == "HR") };`, []g{{guardNotEqual, "department", "HR"}}},
		{`permit(principal, action, resource) when { !(principal.department != "HR") };`, []g{{guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { !!(principal.department == "HR") };`, []g{{guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { !(principal.department != "HR" || principal.level > 2) };`, []g{{guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) when { !(principal.department != "HR" && principal.title != "cto") };`,
			[]g{{guardAttr, "department", "HR"}, {guardAttr, "title", "cto"}}},
		{`permit(principal, action, resource) when { !(principal.email like "*@corp*") };`, []g{{guardHas, "email", ""}}},
		{`permit(principal, action, resource) unless { principal.department != "HR" || principal in Group::"x" };`, []g{{guardAttr, "department", "HR"}}},
		// Negated presence, membership and identity: checked in Go.
		{`permit(principal, action, resource) when { !(principal has department) };`, []g{{guardLacks, "department", ""}}},
		{`permit(principal, action, resource) when { !(principal in Group::"hr") };`, []g{{guardNotGroup, "hr", ""}}},
		{`permit(principal, action, resource) unless { principal.groups.contains("hr") };`, []g{{guardNotGroup, "hr", ""}}},
		{`permit(principal, action, resource) when { !(principal == User::"usr_1") };`, []g{{guardNotUser, "usr_1", ""}}},
		{`permit(principal, action, resource) when { principal.department == "HR" || !(principal in Group::"staff") };`,
			[]g{{guardAttr, "department", "HR"}, {guardNotGroup, "staff", ""}}},
		{`permit(principal, action, resource) when { !(context.client_id == "x") };`, []g{{guardNotClient, "", "x"}}},
		{`permit(principal, action, resource) when { context.client_id != "x" || principal.department == "HR" };`, []g{{guardNotClient, "", "x"}, {guardAttr, "department", "HR"}}},
		{`permit(principal, action, resource) unless { context.client_id != "x" };`, []g{{guardClient, "", "x"}}},
		{`permit(principal, action, resource) when { !(principal.department != "HR" && principal.level > 2) };`, []g{{guardAttr, "department", "HR"}, {guardHas, "level", ""}}},
		{`permit(principal, action, resource) when { principal.groups == ["a"] };`, nil},
		// The client: decided when the rules are compiled (forClient).
		{`permit(principal, action, resource) when { context.client_id == "x" };`, []g{{guardClient, "", "x"}}},
		{`permit(principal, action, resource) when { principal.department like "*R*" || context.client_id == "x" };`, []g{{guardContains, "department", "R"}, {guardClient, "", "x"}}},
		{`permit(principal, action, resource) when { context.client_id == "x" && principal.username == "bob" };`, []g{{guardAttr, "username", "bob"}}},
	}
	for _, tt := range tests {
		p, err := CompilePolicy(tt.text, agentID)
		if err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		var got []g
		for _, x := range p.guards[0] {
			if x.kind == guardExpr { // the side as Cedar text
				x.value = strings.TrimSuffix(strings.TrimPrefix(x.expr.text, "permit ( principal, action, resource )\nwhen { "), " };")
			}
			got = append(got, g{x.kind, x.name, x.value})
		}
		if len(p.guards) != 1 || !slices.Equal(got, tt.want) {
			t.Errorf("%s: guards %+v, want [%+v]", tt.text, p.guards, tt.want)
		}
	}
}

// A client guard is decided for the rule's client: one that holds leaves
// nothing known of the user, one that cannot is dropped, and a statement left
// without guards can never hold.
func TestForClient(t *testing.T) {
	user := guard{kind: guardAttr, name: "department", value: "HR"}
	tests := []struct {
		guards []guard
		want   []guard
		ok     bool
	}{
		{nil, nil, true},
		{[]guard{user}, []guard{user}, true},
		{[]guard{user, {kind: guardClient, value: "cli_a"}}, nil, true},
		{[]guard{user, {kind: guardClient, value: "cli_b"}}, []guard{user}, true},
		{[]guard{{kind: guardClient, value: "cli_b"}}, nil, false},
		{[]guard{user, {kind: guardNotClient, value: "cli_b"}}, nil, true},
		{[]guard{user, {kind: guardNotClient, value: "cli_a"}}, []guard{user}, true},
		{[]guard{{kind: guardNotClient, value: "cli_a"}}, nil, false},
	}
	for _, tt := range tests {
		got, ok := forClient(tt.guards, "cli_a")
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("forClient(%v) = %v %v, want %v %v", tt.guards, got, ok, tt.want, tt.ok)
		}
	}
}

// Any text either compiles or is refused with a *PolicyError; positions are within
// the text; nothing panics.
func FuzzCompilePolicy(f *testing.F) {
	for _, s := range []string{
		`permit(principal, action, resource) when { principal.department == "HR" };`,
		`permit(principal in Group::"hr", action == Action::"invoke", resource);`,
		"forbid(principal,action,resource);",
		`permit(principal, action, resource) when { principal.x.foo(1) };`,
		`permit(principal, action, resource) when { "\u{1F600}" like "*" };`,
		`permit(principal, action, resource) when { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) };`,
		"@a(\"b\")\npermit(principal, action, resource)",
		"\"unterminated", "permit(", "/*", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := CompilePolicy(text, agentID)
		if err == nil {
			if p == nil || len(p.guards) == 0 {
				t.Fatal("compiled without a permit statement")
			}
			return
		}
		var pe *PolicyError
		if !errors.As(err, &pe) {
			t.Fatalf("error %T %v is not a *PolicyError", err, err)
		}
		if pe.Line < 0 || pe.Column < 0 || pe.Line > strings.Count(text, "\n")+2 {
			t.Fatalf("position %d:%d outside the text (%d lines)", pe.Line, pe.Column, strings.Count(text, "\n")+1)
		}
	})
}

// The guards only ever skip statements that cannot hold: for any policy that
// compiles and any user, the engine decides as cedar-go evaluating the whole
// policy does. (The property test in engine_test.go does the same over many
// rules; this lets the fuzzer write the policies.)
func FuzzGuardsAgreeWithCedar(f *testing.F) {
	for _, text := range []string{
		`permit(principal, action, resource) when { !(principal.department != "HR") };`,
		`permit(principal, action, resource) unless { principal in Group::"hr" || principal has ip };`,
		`permit(principal, action, resource) when { if principal.department like "H*" then principal.groups.containsAny(["hr", "x"]) else principal == User::"usr_1" };`,
		`permit(principal, action, resource) when { ip(principal.ip).isInRange(ip("10.0.0.0/8")) && decimal(principal.score).lessThan(decimal("2.5")) };`,
		`permit(principal, action, resource) when { decimal("1.0").greaterThanOrEqual(decimal(principal.score)) || principal.groups.containsAll(["staff", "hr"]) };`,
		`permit(principal, action, resource) when { (principal.groups.isEmpty() || principal.department == "HR") == true }; forbid(principal, action, resource) when { !(principal in User::"usr_2") };`,
		`permit(principal in [Group::"hr", User::"usr_2"], action, resource) when { principal.department == principal.ip || context.client_id != "cli_a" };`,
		`permit(principal, action, resource) when { !(principal == User::"usr_1") && principal has department };`,
		`permit(principal, action, resource) when { (principal.groups.isEmpty() || principal.department == "HR") == true };`,
		`permit(principal, action, resource) when { (if principal.groups.isEmpty() then "x" else principal.score) != "1.5" };`,
		`permit(principal, action, resource) when { principal.department == principal.score || principal.ip != principal.department };`,
		`permit(principal, action, resource) unless { principal.score == principal.ip && principal.username != principal.department };`,
		`permit(principal, action, resource) when { principal.groups.contains(principal.username) || principal.department == "HR" };`,
		`permit(principal, action, resource) when { principal.groups.containsAny([principal.username, "hr", principal.department]) };`,
		`permit(principal, action, resource) unless { principal.groups.containsAny([principal.department, "x"]) && principal.department != "HR" };`,
		`permit(principal, action, resource) when { (principal.groups.contains(principal.ip) || principal in Group::"hr") && principal.score like "1*" };`,
	} {
		f.Add(text, "HR", "10.1.2.3", "1.5", uint8(5), false)
		f.Add(text, "Sales", "::1", "x", uint8(0), true)
		f.Add(text, "", "", "", uint8(0), false)
	}
	f.Fuzz(func(t *testing.T, text, dept, ip, score string, groups uint8, second bool) {
		p, err := CompilePolicy(text, agentID)
		if err != nil {
			return
		}
		u := user.User{ID: "usr_1", Username: "u1", Active: true, Attributes: map[string]string{}}
		if second {
			u.ID, u.Username = "usr_2", "u2"
		}
		for i, v := range []string{dept, ip, score} {
			if v != "" {
				u.Attributes[[]string{"department", "ip", "score"}[i]] = v
			}
		}
		for i, g := range []string{"hr", "staff", "x"} {
			if groups&(1<<i) != 0 {
				u.Groups = append(u.Groups, g)
			}
		}
		uid, entity := principal(u)
		want, _ := cedar.Authorize(p.set, entity, cedar.Request{
			Principal: uid,
			Action:    types.NewEntityUID(EntityAction, ActionInvoke),
			Resource:  types.NewEntityUID(EntityAgent, agentID),
			Context:   types.NewRecord(types.RecordMap{"client_id": types.String("cli_a")}),
		})
		cr := compile(1, []Rule{{ID: "inr_1", AgentID: agentID, ClientID: "cli_a", Policy: text}}).clients["cli_a"]
		if got := cr.evaluate(Request{AgentID: agentID, ClientID: "cli_a", User: u}, "user"); got.Allow != (want == cedar.Allow) {
			t.Fatalf("engine says %v (%s), cedar-go says %v\npolicy %s\nuser %+v", got.Allow, got.Reason, want, text, u)
		}
	})
}
