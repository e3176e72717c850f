package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/agentguard/agentguard/internal/user"
)

// The Cedar schema of inbound policies: the principal is User::"<user id>" with
// the attributes username, email, display_name (strings), groups (a set of group
// names) and each of the user's attributes (strings); its parents are
// Group::"<name>" for each group. The action is Action::"invoke", the resource
// Agent::"<agent id>", and the context {client_id: "<client id>"}.
const (
	EntityUser   = "User"
	EntityGroup  = "Group"
	EntityAgent  = "Agent"
	EntityAction = "Action"
	ActionInvoke = "invoke"
)

// MaxStatements bounds the statements in one rule's policy.
const MaxStatements = 100

// PolicyError is a policy that does not parse or cannot apply, with the position
// of the problem (Line 0 when the problem is the policy as a whole).
type PolicyError struct {
	Line, Column int
	Message      string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
	}
	return e.Message
}

// cedarPos finds cedar-go's "at <file>:<line>:<column>" in a parse error.
var cedarPos = regexp.MustCompile(`at [^:\s]*:(\d+):(\d+) ?`)

// parseError turns a cedar-go parse error into a PolicyError with its position.
func parseError(err error) *PolicyError {
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	m := cedarPos.FindStringSubmatchIndex(msg)
	if m == nil {
		return &PolicyError{Message: "the policy does not parse: " + msg}
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	col, _ := strconv.Atoi(msg[m[4]:m[5]])
	rest := msg[m[1]:] // `"<token>": <what cedar-go expected>`
	if g := gotWant.FindStringSubmatch(rest); g != nil {
		found := g[1]
		if found == "" {
			found = "the end of the policy"
		} else {
			found = strconv.Quote(found)
		}
		rest = fmt.Sprintf("expected %q but found %s", g[2], found)
	} else if tok, detail, ok := strings.Cut(rest, ": "); ok {
		rest = detail + " (at " + tok + ")"
	}
	return &PolicyError{Line: line, Column: col, Message: "the policy does not parse: " + rest}
}

// gotWant matches cedar-go's "exact got X want Y" and "got X want ,".
var gotWant = regexp.MustCompile(`^"(?:[^"\\]|\\.)*": (?:exact )?got (.*) want (.*)$`)

// guard is a condition a permit statement cannot be satisfied without: the
// engine evaluates a statement only for users who meet its guard.
type guard struct {
	kind  guardKind
	name  string // attribute name (attr), group name (group), user id (user)
	value string // attribute value (attr)
}

type guardKind uint8

const (
	guardNone guardKind = iota
	guardAttr
	guardGroup
	guardUser
)

// compiledPolicy is one rule's Cedar policy, ready to evaluate.
type compiledPolicy struct {
	set *cedar.PolicySet
	// guards has one entry per permit statement (guardNone: always evaluated).
	guards []guard
}

// CompilePolicy parses a rule's Cedar text and checks it can apply to agentID:
// at least one permit statement, the principal a User or Group, the action
// Action::"invoke", the resource this agent.
func CompilePolicy(text, agentID string) (*compiledPolicy, error) {
	if len(text) > MaxPolicyBytes {
		return nil, &PolicyError{Message: fmt.Sprintf("the policy is over the %d-byte limit", MaxPolicyBytes)}
	}
	list, err := cedar.NewPolicyListFromBytes("policy", []byte(text))
	if err != nil {
		return nil, parseError(err)
	}
	if len(list) == 0 {
		return nil, &PolicyError{Message: `the policy has no statements; write for example permit(principal, action, resource) when { principal.department == "HR" };`}
	}
	if len(list) > MaxStatements {
		return nil, &PolicyError{Message: fmt.Sprintf("the policy has %d statements; at most %d", len(list), MaxStatements)}
	}
	cp := &compiledPolicy{set: cedar.NewPolicySet()}
	for i, p := range list {
		a := (*ast.Policy)(p.AST())
		if err := checkScopes(a, agentID); err != nil {
			return nil, err
		}
		cp.set.Add(cedar.PolicyID("policy"+strconv.Itoa(i)), p)
		if a.Effect == ast.EffectPermit {
			cp.guards = append(cp.guards, guardOf(a))
		}
	}
	if len(cp.guards) == 0 {
		return nil, &PolicyError{Line: list[0].AST().Position.Line, Column: list[0].AST().Position.Column,
			Message: "the policy has only forbid statements, so it can never admit anyone; add a permit statement"}
	}
	return cp, nil
}

func posErr(a *ast.Policy, format string, args ...any) *PolicyError {
	return &PolicyError{Line: a.Position.Line, Column: a.Position.Column, Message: fmt.Sprintf(format, args...)}
}

// checkScopes refuses scopes that can never match an inbound request.
func checkScopes(a *ast.Policy, agentID string) error {
	switch s := a.Principal.(type) {
	case ast.ScopeTypeEq:
		if s.Entity.Type != EntityUser {
			return posErr(a, `principal == %s never matches: the principal is always a User; write principal == User::"usr_…" or principal in Group::"name"`, s.Entity)
		}
	case ast.ScopeTypeIn:
		if s.Entity.Type != EntityGroup && s.Entity.Type != EntityUser {
			return posErr(a, `principal in %s never matches: write principal in Group::"name"`, s.Entity)
		}
	case ast.ScopeTypeIs:
		if s.Type != EntityUser {
			return posErr(a, "principal is %s never matches: the principal is always a User", s.Type)
		}
	case ast.ScopeTypeIsIn:
		if s.Type != EntityUser || s.Entity.Type != EntityGroup {
			return posErr(a, `principal is %s in %s never matches: write principal is User in Group::"name"`, s.Type, s.Entity)
		}
	}
	invoke := types.NewEntityUID(EntityAction, ActionInvoke)
	switch s := a.Action.(type) {
	case ast.ScopeTypeEq:
		if s.Entity != invoke {
			return posErr(a, `action == %s never matches: the only action is Action::"invoke"`, s.Entity)
		}
	case ast.ScopeTypeIn:
		if s.Entity != invoke {
			return posErr(a, `action in %s never matches: the only action is Action::"invoke"`, s.Entity)
		}
	case ast.ScopeTypeInSet:
		found := false
		for _, e := range s.Entities {
			found = found || e == invoke
		}
		if !found {
			return posErr(a, `the action set never matches: the only action is Action::"invoke"`)
		}
	}
	agent := types.NewEntityUID(EntityAgent, types.String(agentID))
	switch s := a.Resource.(type) {
	case ast.ScopeTypeEq:
		if s.Entity != agent {
			return posErr(a, `resource == %s never matches: this rule belongs to Agent::%q (or leave the resource open)`, s.Entity, agentID)
		}
	case ast.ScopeTypeIn:
		if s.Entity != agent {
			return posErr(a, `resource in %s never matches: this rule belongs to Agent::%q`, s.Entity, agentID)
		}
	case ast.ScopeTypeIs:
		if s.Type != EntityAgent {
			return posErr(a, "resource is %s never matches: the resource is always an Agent", s.Type)
		}
	case ast.ScopeTypeIsIn:
		if s.Type != EntityAgent || s.Entity != agent {
			return posErr(a, `resource is %s in %s never matches: this rule belongs to Agent::%q`, s.Type, s.Entity, agentID)
		}
	}
	return nil
}

// guardOf finds a condition the permit statement a needs: its principal scope
// (one user, or a group), else the first conjunct of a when clause of the form
// principal.<attr> == "<value>", principal in Group::"<name>",
// principal == User::"<id>" or principal.groups.contains("<name>").
func guardOf(a *ast.Policy) guard {
	switch s := a.Principal.(type) {
	case ast.ScopeTypeEq:
		return guard{kind: guardUser, name: string(s.Entity.ID)}
	case ast.ScopeTypeIn:
		if s.Entity.Type == EntityGroup {
			return guard{kind: guardGroup, name: string(s.Entity.ID)}
		}
		return guard{kind: guardUser, name: string(s.Entity.ID)}
	case ast.ScopeTypeIsIn:
		return guard{kind: guardGroup, name: string(s.Entity.ID)}
	}
	for _, c := range a.Conditions {
		if c.Condition != ast.ConditionWhen {
			continue
		}
		for _, n := range conjuncts(c.Body, nil) {
			if g := guardNode(n); g.kind != guardNone {
				return g
			}
		}
	}
	return guard{}
}

func conjuncts(n ast.IsNode, out []ast.IsNode) []ast.IsNode {
	if and, ok := n.(ast.NodeTypeAnd); ok {
		return conjuncts(and.Right, conjuncts(and.Left, out))
	}
	return append(out, n)
}

func isPrincipal(n ast.IsNode) bool {
	v, ok := n.(ast.NodeTypeVariable)
	return ok && v.Name == "principal"
}

// principalAttr reports the attribute name of principal.<name>.
func principalAttr(n ast.IsNode) (string, bool) {
	acc, ok := n.(ast.NodeTypeAccess)
	if !ok || !isPrincipal(acc.Arg) {
		return "", false
	}
	return string(acc.Value), true
}

func literal(n ast.IsNode) (types.Value, bool) {
	v, ok := n.(ast.NodeValue)
	return v.Value, ok
}

func guardNode(n ast.IsNode) guard {
	switch x := n.(type) {
	case ast.NodeTypeEquals:
		for _, pair := range [][2]ast.IsNode{{x.Left, x.Right}, {x.Right, x.Left}} {
			if name, ok := principalAttr(pair[0]); ok && name != "groups" {
				if v, ok := literal(pair[1]); ok {
					if s, ok := v.(types.String); ok {
						return guard{kind: guardAttr, name: name, value: string(s)}
					}
				}
			}
			if isPrincipal(pair[0]) {
				if v, ok := literal(pair[1]); ok {
					if uid, ok := v.(types.EntityUID); ok && uid.Type == EntityUser {
						return guard{kind: guardUser, name: string(uid.ID)}
					}
				}
			}
		}
	case ast.NodeTypeIn:
		if isPrincipal(x.Left) {
			if v, ok := literal(x.Right); ok {
				if uid, ok := v.(types.EntityUID); ok && uid.Type == EntityGroup {
					return guard{kind: guardGroup, name: string(uid.ID)}
				}
			}
		}
	case ast.NodeTypeContains:
		if name, ok := principalAttr(x.Left); ok && name == "groups" {
			if v, ok := literal(x.Right); ok {
				if s, ok := v.(types.String); ok {
					return guard{kind: guardGroup, name: string(s)}
				}
			}
		}
	}
	return guard{}
}

// principal is the Cedar view of a user: the entity map and its UID.
func principal(u user.User) (types.EntityUID, types.EntityMap) {
	uid := types.NewEntityUID(EntityUser, types.String(u.ID))
	attrs := make(types.RecordMap, len(u.Attributes)+4)
	for k, v := range u.Attributes {
		attrs[types.String(k)] = types.String(v)
	}
	groups := make([]types.Value, len(u.Groups))
	parents := make([]types.EntityUID, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = types.String(g)
		parents[i] = types.NewEntityUID(EntityGroup, types.String(g))
	}
	attrs["username"] = types.String(u.Username)
	attrs["email"] = types.String(u.Email)
	attrs["display_name"] = types.String(u.DisplayName)
	attrs["groups"] = types.NewSet(groups...)
	return uid, types.EntityMap{uid: {UID: uid, Parents: types.NewEntityUIDSet(parents...), Attributes: types.NewRecord(attrs)}}
}
