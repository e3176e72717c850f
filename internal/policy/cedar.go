package policy

import (
	"encoding/json"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	publicast "github.com/cedar-policy/cedar-go/ast"
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

// guard is a condition on the user; a permit statement's guards are conditions
// one of which it cannot be satisfied without, so the engine evaluates the
// statement only for users who meet one (none known: for every user).
type guard struct {
	kind  guardKind
	name  string         // attribute name (attr, prefix, suffix, match, has, not-equal, ip-range, decimal, same-attrs, other-attrs), group name (group), user id (user)
	value string         // attribute value (attr, not-equal), its start (prefix) or end (suffix), the pattern's Cedar text (match), the other attribute's name (same-attrs, other-attrs)
	pat   *types.Pattern // match
	// ip-range: ip(principal.<name>).isInRange(ipRange)
	ipRange types.IPAddr
	// decimal: decimal(principal.<name>) compared with dec holds when
	// cmp[Compare(attribute, dec)+1]
	dec types.Decimal
	cmp [3]bool
	// expr: the condition, evaluated by Cedar at most once per decision
	expr *exprGuard
}

// exprGuard is a condition the engine cannot analyze, from one side of an ||
// whose other side it can (principal.groups.contains(principal.username) ||
// principal.department == "HR"): the statement needs this side or the other,
// and when many statements share the side, as rules written from one template
// do, Cedar evaluates it once per decision instead of once per statement.
type exprGuard struct {
	text string     // the one-statement policy's Cedar text: identical sides share a slot
	set  policyList // permit(principal, action, resource) when { <side> };
	slot int        // its result's place in a decision's userView (set by compile)
}

func newExprGuard(n ast.IsNode) []guard {
	p := cedar.NewPolicyFromAST((*publicast.Policy)(ast.Permit().When(ast.NewNode(n))))
	return []guard{{kind: guardExpr, expr: &exprGuard{text: string(p.MarshalCedar()), set: policyList{{id: "side", p: p}}}}}
}

type guardKind uint8

const (
	guardNone guardKind = iota
	guardAttr
	guardGroup
	guardUser
	guardPrefix
	guardSuffix
	// Not indexable, but cheap to check in Go before asking Cedar: the
	// attribute matches a pattern, exists, or exists and differs from a value.
	guardMatch
	guardContains // like "*…*"
	guardHas
	guardNotEqual
	guardIPRange
	guardDecimal
	// The negations of membership, identity and presence: not in the group
	// (name), not the user (name), without the attribute (name).
	guardNotGroup
	guardNotUser
	guardLacks
	// principal.groups.isEmpty(), and its negation.
	guardNoGroups
	guardSomeGroup
	// context.client_id == value, and != value: decided when the rules are
	// compiled (they are grouped by client), never at a decision.
	guardClient
	guardNotClient
	// principal.<name> == principal.<value>, and !=: the user has both
	// attributes, and they are equal (differ).
	guardSameAttrs
	guardOtherAttrs
	// A side of an || that nothing else describes, evaluated by Cedar (expr).
	guardExpr
)

func (g guard) onClient() bool { return g.kind == guardClient || g.kind == guardNotClient }

// indexable reports whether the engine can look g up in a map.
func (g guard) indexable() bool { return g.kind <= guardSuffix }

func onlyClient(gs []guard) bool {
	return !slices.ContainsFunc(gs, func(g guard) bool { return !g.onClient() })
}

// forClient decides a statement's client guards for the client its rule is
// for: one that holds means the statement needs nothing known of the user
// (nil, true); the others are dropped, and with no guard left the statement
// can never hold for this client (false).
func forClient(gs []guard, clientID string) ([]guard, bool) {
	if gs == nil {
		return nil, true
	}
	var out []guard
	for _, g := range gs {
		switch {
		case !g.onClient():
			out = append(out, g)
		case (g.value == clientID) == (g.kind == guardClient):
			return nil, true
		}
	}
	return out, len(out) > 0
}

func allIndexable(gs []guard) bool {
	return !slices.ContainsFunc(gs, func(g guard) bool { return !g.indexable() })
}

// holds reports whether the user meets g (what Cedar would see of them:
// principal).
func (g guard) holds(u *userView) bool {
	switch g.kind {
	case guardUser:
		return u.ID == g.name
	case guardGroup:
		return slices.Contains(u.Groups, g.name)
	case guardNoGroups:
		return len(u.Groups) == 0
	case guardSomeGroup:
		return len(u.Groups) > 0
	case guardNotUser:
		return u.ID != g.name
	case guardNotGroup:
		return !slices.Contains(u.Groups, g.name)
	case guardLacks:
		_, ok := u.attr(g.name)
		return !ok
	case guardIPRange:
		ip, ok := u.ips.get(u, g.name, types.ParseIPAddr)
		return ok && g.ipRange.Contains(ip)
	case guardDecimal:
		d, ok := u.decimals.get(u, g.name, types.ParseDecimal)
		return ok && g.cmp[d.Compare(g.dec)+1]
	case guardExpr:
		return u.exprHolds(g.expr)
	}
	v, ok := u.attr(g.name)
	if !ok {
		return false
	}
	switch g.kind {
	case guardAttr:
		return v == g.value
	case guardPrefix:
		return strings.HasPrefix(v, g.value)
	case guardSuffix:
		return strings.HasSuffix(v, g.value)
	case guardMatch:
		return g.pat.Match(types.String(v))
	case guardContains:
		return strings.Contains(v, g.value)
	case guardHas:
		return true
	case guardNotEqual:
		return v != g.value
	case guardSameAttrs, guardOtherAttrs:
		w, ok := principalAttrValue(u.User, g.value)
		return ok && (v == w) == (g.kind == guardSameAttrs)
	}
	return true // unknown: never skip a statement
}

// userView is a user as the guards of one decision read it: filtered rules
// mostly test the same attribute or two, so it remembers the last attribute
// read, and the last one parsed as an address and as a decimal.
type userView struct {
	user.User
	name, val string
	ok, read  bool
	ips       lastParsed[types.IPAddr]
	decimals  lastParsed[types.Decimal]

	// For expression guards: the decision's request, and each expression's
	// result (0 not yet evaluated, 1 true, 2 not true).
	req    Request
	entity *principalEntity
	creq   cedar.Request
	exprs  []uint8
}

// exprHolds evaluates an expression guard for this decision, once.
func (u *userView) exprHolds(e *exprGuard) bool {
	if e.slot >= len(u.exprs) {
		u.exprs = append(u.exprs, make([]uint8, e.slot+1-len(u.exprs))...)
	}
	if u.exprs[e.slot] == 0 {
		if u.entity == nil {
			u.creq, u.entity = cedarRequest(u.req)
		}
		u.exprs[e.slot] = 2
		if d, _ := cedar.Authorize(e.set, u.entity, u.creq); d == cedar.Allow {
			u.exprs[e.slot] = 1
		}
	}
	return u.exprs[e.slot] == 1
}

func (u *userView) attr(name string) (string, bool) {
	if !u.read || name != u.name {
		u.name, u.read = name, true
		u.val, u.ok = principalAttrValue(u.User, name)
	}
	return u.val, u.ok
}

// lastParsed remembers the last attribute parsed with one of cedar-go's parsers
// (ip(principal.<name>), decimal(principal.<name>) as Cedar evaluates them).
type lastParsed[T any] struct {
	name      string
	val       T
	ok, valid bool
}

func (m *lastParsed[T]) get(u *userView, name string, parse func(string) (T, error)) (T, bool) {
	if !m.valid || name != m.name {
		var zero T
		m.name, m.valid, m.val, m.ok = name, true, zero, false
		if v, ok := u.attr(name); ok {
			x, err := parse(v)
			m.val, m.ok = x, err == nil
		}
	}
	return m.val, m.ok
}

// principalAttrValue is the string attribute name of principal(u), if it has one.
func principalAttrValue(u user.User, name string) (string, bool) {
	switch name {
	case "username":
		return u.Username, true
	case "email":
		return u.Email, true
	case "display_name":
		return u.DisplayName, true
	case "groups":
		return "", false // a set, not a string
	}
	v, ok := u.Attributes[name]
	return v, ok
}

// compiledPolicy is one rule's Cedar policy, ready to evaluate.
type compiledPolicy struct {
	set policyList
	// guards has one entry per permit statement: the guards one of which it
	// needs (nil: always evaluated).
	guards  [][]guard
	forbids bool // has a forbid statement (which applies to this rule's permits only)
}

// policyList is a cedar.PolicyIterator over a slice: Authorize walks it in order
// without a map iteration, and one list can hold the statements of many rules.
type policyList []listedPolicy

type listedPolicy struct {
	id   cedar.PolicyID
	rule int // index of the rule in its clientRules (merged lists)
	p    *cedar.Policy
}

func (l policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, lp := range l {
			if !yield(lp.id, lp.p) {
				return
			}
		}
	}
}

// principalEntity is the one entity a decision knows, the user: a cedar
// EntityGetter that answers without a map lookup (which was a third of the
// evaluation's time).
type principalEntity types.Entity

func (e *principalEntity) Get(uid types.EntityUID) (types.Entity, bool) {
	if uid == e.UID {
		return types.Entity(*e), true
	}
	return types.Entity{}, false
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
	cp := &compiledPolicy{}
	for i, p := range list {
		a := (*ast.Policy)(p.AST())
		if err := checkScopes(a, agentID); err != nil {
			return nil, err
		}
		cp.set = append(cp.set, listedPolicy{id: cedar.PolicyID("policy" + strconv.Itoa(i)), p: p})
		if a.Effect == ast.EffectPermit {
			cp.guards = append(cp.guards, guardOf(a))
		} else {
			cp.forbids = true
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

// guardOf finds conditions one of which the permit statement a needs: its
// principal scope (one user, or a group), else those of the first conjunct of
// a when clause that has some (see needs).
func guardOf(a *ast.Policy) []guard {
	switch s := a.Principal.(type) {
	case ast.ScopeTypeEq:
		return []guard{{kind: guardUser, name: string(s.Entity.ID)}}
	case ast.ScopeTypeIn:
		if s.Entity.Type == EntityGroup {
			return []guard{{kind: guardGroup, name: string(s.Entity.ID)}}
		}
		return []guard{{kind: guardUser, name: string(s.Entity.ID)}}
	case ast.ScopeTypeIsIn:
		return []guard{{kind: guardGroup, name: string(s.Entity.ID)}}
	}
	for _, c := range a.Conditions {
		need := needs
		if c.Condition == ast.ConditionUnless {
			need = needsFalse // unless { X } holds when X is false
		}
		if g := need(c.Body); g != nil {
			return g
		}
	}
	return nil
}

// needs returns guards one of which must hold for n to be true, or nil: of a
// conjunction those of a conjunct (indexable ones first), of a disjunction those
// of both sides (if both have some), of a negation what makes its operand false,
// of an if what one branch needs with its condition; of a set test one guard per
// element; else the guard of the condition itself (guardNode), else the
// attributes it reads whatever their values (strictGuard). docs/directory.md
// ("Speed and consistency") lists them for users.
func needs(n ast.IsNode) []guard {
	switch x := n.(type) {
	case ast.NodeTypeAnd:
		return better(needs(x.Left), needs(x.Right))
	case ast.NodeTypeOr:
		return eitherSide(x.BinaryNode, needs(x.Left), needs(x.Right), func(n ast.IsNode) ast.IsNode { return n })
	case ast.NodeTypeNot:
		return needsFalse(x.Arg)
	case ast.NodeTypeContainsAny:
		// principal.groups.containsAny(["a", "b"]): a member of one of them;
		// an element that is not a literal, evaluated by Cedar
		// (principal.groups.contains(<element>)).
		if name, ok := principalAttr(x.Left); ok && name == "groups" {
			if gs := setGuards(x.Right, groupNameGuard); gs != nil {
				return gs
			}
			if set, ok := x.Right.(ast.NodeTypeSet); ok && len(set.Elements) > 0 {
				var gs []guard
				for _, e := range set.Elements {
					if g, ok := literalGroupGuard(e); ok {
						gs = append(gs, g)
					} else {
						gs = append(gs, newExprGuard(ast.NodeTypeContains{BinaryNode: ast.BinaryNode{Left: x.Left, Right: e}})...)
					}
				}
				return gs
			}
		}
	case ast.NodeTypeContainsAll:
		// principal.groups.containsAll(["a", "b"]): a member of each; a is
		// enough to look for.
		if name, ok := principalAttr(x.Left); ok && name == "groups" {
			gs := setGuards(x.Right, groupNameGuard)
			if len(gs) > 0 {
				return gs[:1]
			}
		}
	case ast.NodeTypeIfThenElse:
		// The then branch with the condition true, or the else with it false.
		return either(better(needs(x.If), needs(x.Then)), better(needsFalse(x.If), needs(x.Else)))
	case ast.NodeTypeIn:
		// principal in [Group::"a", User::"usr_1"]: in one group, or one user.
		if isPrincipal(x.Left) {
			if gs := setGuards(x.Right, entityGuard); gs != nil {
				return gs
			}
		}
	}
	if g := guardNode(n); g.kind != guardNone {
		return []guard{g}
	}
	return strictGuard(n)
}

// needsFalse returns guards one of which must hold for n to be false (not true,
// and not an error, which Cedar treats as neither), or nil: negation pushed
// inwards (De Morgan), so that !(principal.department != "HR") is indexed as
// department == "HR" and unless { principal.department == "HR" } is checked as
// department != "HR".
func needsFalse(n ast.IsNode) []guard {
	switch x := n.(type) {
	case ast.NodeTypeNot:
		return needs(x.Arg)
	case ast.NodeTypeAnd: // false when either side is false
		return eitherSide(x.BinaryNode, needsFalse(x.Left), needsFalse(x.Right), func(n ast.IsNode) ast.IsNode { return ast.NodeTypeNot{UnaryNode: ast.UnaryNode{Arg: n}} })
	case ast.NodeTypeOr: // false when both sides are false
		return better(needsFalse(x.Left), needsFalse(x.Right))
	case ast.NodeTypeIfThenElse:
		return either(better(needs(x.If), needsFalse(x.Then)), better(needsFalse(x.If), needsFalse(x.Else)))
	}
	// A comparison of a principal attribute with a string is false only for a
	// user who has the attribute (without it Cedar's answer is an error).
	switch g := guardNode(n); g.kind {
	case guardAttr:
		return []guard{{kind: guardNotEqual, name: g.name, value: g.value}}
	case guardNotEqual:
		return []guard{{kind: guardAttr, name: g.name, value: g.value}}
	case guardPrefix, guardSuffix, guardMatch, guardContains:
		return []guard{{kind: guardHas, name: g.name}}
	case guardHas:
		if _, ok := n.(ast.NodeTypeHas); ok { // not like "*", which needs the attribute
			return []guard{{kind: guardLacks, name: g.name}}
		}
	case guardGroup: // principal in Group::"…", principal.groups.contains("…"): never an error
		return []guard{{kind: guardNotGroup, name: g.name}}
	case guardUser:
		return []guard{{kind: guardNotUser, name: g.name}}
	case guardNoGroups:
		return []guard{{kind: guardSomeGroup}}
	case guardClient:
		return []guard{{kind: guardNotClient, value: g.value}}
	case guardNotClient:
		return []guard{{kind: guardClient, value: g.value}}
	case guardSameAttrs:
		return []guard{{kind: guardOtherAttrs, name: g.name, value: g.value}}
	case guardOtherAttrs:
		return []guard{{kind: guardSameAttrs, name: g.name, value: g.value}}
	}
	return strictGuard(n)
}

// strictGuard is what any condition needs to be true or false: the principal
// attributes it always reads, without which Cedar's answer is an error.
func strictGuard(n ast.IsNode) []guard {
	if name, ok := strictAttr(n); ok {
		return []guard{{kind: guardHas, name: name}}
	}
	return nil
}

// strictAttr finds an attribute of the principal that evaluating n reads
// whatever its values (not in the right side of && or ||, the branches of an
// if, or a has).
func strictAttr(n ast.IsNode) (string, bool) {
	if name, ok := principalAttr(n); ok {
		switch name {
		case "groups", "username", "email", "display_name":
			return "", false // every user has these: nothing to check
		}
		return name, true
	}
	bin := func(b ast.BinaryNode) []ast.IsNode { return []ast.IsNode{b.Left, b.Right} }
	var operands []ast.IsNode
	switch x := n.(type) {
	case ast.NodeTypeAnd:
		operands = []ast.IsNode{x.Left}
	case ast.NodeTypeOr:
		operands = []ast.IsNode{x.Left}
	case ast.NodeTypeIfThenElse:
		operands = []ast.IsNode{x.If}
	case ast.NodeTypeNot:
		operands = []ast.IsNode{x.Arg}
	case ast.NodeTypeNegate:
		operands = []ast.IsNode{x.Arg}
	case ast.NodeTypeIsEmpty:
		operands = []ast.IsNode{x.Arg}
	case ast.NodeTypeAccess:
		operands = []ast.IsNode{x.Arg}
	case ast.NodeTypeHas:
		operands = []ast.IsNode{x.Arg}
	case ast.NodeTypeLike:
		operands = []ast.IsNode{x.Arg}
	case ast.NodeTypeIs:
		operands = []ast.IsNode{x.Left}
	case ast.NodeTypeIsIn:
		operands = []ast.IsNode{x.Left, x.Entity}
	case ast.NodeTypeEquals:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeNotEquals:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeLessThan:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeLessThanOrEqual:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeGreaterThan:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeGreaterThanOrEqual:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeAdd:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeSub:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeMult:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeIn:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeContains:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeContainsAll:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeContainsAny:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeGetTag:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeHasTag:
		operands = bin(x.BinaryNode)
	case ast.NodeTypeExtensionCall:
		operands = x.Args
	case ast.NodeTypeSet:
		operands = x.Elements
	case ast.NodeTypeRecord:
		for _, e := range x.Elements {
			operands = append(operands, e.Value)
		}
	}
	for _, o := range operands {
		if name, ok := strictAttr(o); ok {
			return name, true
		}
	}
	return "", false
}

// setGuards are the guards of the elements of a set literal, or nil if one has
// none.
func setGuards(n ast.IsNode, of func(types.Value) (guard, bool)) []guard {
	var elems []types.Value
	switch x := n.(type) {
	case ast.NodeTypeSet:
		for _, e := range x.Elements {
			v, ok := literal(e)
			if !ok {
				return nil
			}
			elems = append(elems, v)
		}
	case ast.NodeValue:
		set, ok := x.Value.(types.Set)
		if !ok {
			return nil
		}
		for v := range set.All() {
			elems = append(elems, v)
		}
	}
	var gs []guard
	for _, v := range elems {
		g, ok := of(v)
		if !ok {
			return nil
		}
		gs = append(gs, g)
	}
	return gs
}

// groupNameGuard is what an element of principal.groups.containsAny([...])
// names: membership of that group.
func groupNameGuard(v types.Value) (guard, bool) {
	s, ok := v.(types.String)
	return guard{kind: guardGroup, name: string(s)}, ok
}

// literalGroupGuard is groupNameGuard of a literal string.
func literalGroupGuard(n ast.IsNode) (guard, bool) {
	if v, ok := literal(n); ok {
		return groupNameGuard(v)
	}
	return guard{}, false
}

// entityGuard is what principal in <uid> needs: membership of a group, or
// being the user.
func entityGuard(v types.Value) (guard, bool) {
	uid, ok := v.(types.EntityUID)
	switch {
	case !ok:
		return guard{}, false
	case uid.Type == EntityGroup:
		return guard{kind: guardGroup, name: string(uid.ID)}, true
	case uid.Type == EntityUser:
		return guard{kind: guardUser, name: string(uid.ID)}, true
	}
	return guard{}, false
}

// better picks the guards of one of two conditions that must both hold: either
// will do; a condition on the user is worth more than one on the client, and an
// indexable one most.
func better(l, r []guard) []guard {
	if l == nil || (r != nil && (onlyClient(l) && !onlyClient(r) || !allIndexable(l) && allIndexable(r))) {
		return r
	}
	return l
}

// eitherSide is either for the two sides of b, whose guards are l and r: when
// only one side has guards, the other becomes an expression guard (of the side
// as it must hold: as is, or negated by wrap).
func eitherSide(b ast.BinaryNode, l, r []guard, wrap func(ast.IsNode) ast.IsNode) []guard {
	switch {
	case l == nil && r != nil:
		l = newExprGuard(wrap(b.Left))
	case r == nil && l != nil:
		r = newExprGuard(wrap(b.Right))
	}
	return either(l, r)
}

// either is what a condition needs that holds when one of two conditions does:
// one of the guards of each, if both have some.
func either(l, r []guard) []guard {
	if l == nil || r == nil {
		return nil
	}
	return append(l, r...)
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

// attrPair reports the names of principal.<a> compared with principal.<b>, both
// strings (groups, the one set, compares by other rules).
func attrPair(b ast.BinaryNode) (string, string, bool) {
	l, lok := principalAttr(b.Left)
	r, rok := principalAttr(b.Right)
	if !lok || !rok || l == "groups" || r == "groups" {
		return "", "", false
	}
	return l, r, true
}

func literal(n ast.IsNode) (types.Value, bool) {
	v, ok := n.(ast.NodeValue)
	return v.Value, ok
}

// clientIDLiteral reports the string of context.client_id compared with it.
func clientIDLiteral(pair [2]ast.IsNode) (string, bool) {
	acc, ok := pair[0].(ast.NodeTypeAccess)
	if !ok || acc.Value != "client_id" {
		return "", false
	}
	if v, ok := acc.Arg.(ast.NodeTypeVariable); !ok || v.Name != "context" {
		return "", false
	}
	lit, ok := literal(pair[1])
	if !ok {
		return "", false
	}
	s, ok := lit.(types.String)
	return string(s), ok
}

func guardNode(n ast.IsNode) guard {
	switch x := n.(type) {
	case ast.NodeTypeLike:
		if name, ok := principalAttr(x.Arg); ok && name != "groups" {
			return likeGuard(name, x.Value)
		}
	case ast.NodeTypeHas:
		if isPrincipal(x.Arg) && x.Value != "groups" {
			return guard{kind: guardHas, name: string(x.Value)}
		}
	case ast.NodeTypeNotEquals:
		if a, b, ok := attrPair(x.BinaryNode); ok {
			return guard{kind: guardOtherAttrs, name: a, value: b}
		}
		for _, pair := range [][2]ast.IsNode{{x.Left, x.Right}, {x.Right, x.Left}} {
			if id, ok := clientIDLiteral(pair); ok {
				return guard{kind: guardNotClient, value: id}
			}
			if name, ok := principalAttr(pair[0]); ok && name != "groups" {
				if v, ok := literal(pair[1]); ok {
					if s, ok := v.(types.String); ok {
						return guard{kind: guardNotEqual, name: name, value: string(s)}
					}
				}
			}
		}
	case ast.NodeTypeEquals:
		if a, b, ok := attrPair(x.BinaryNode); ok {
			return guard{kind: guardSameAttrs, name: a, value: b}
		}
		for _, pair := range [][2]ast.IsNode{{x.Left, x.Right}, {x.Right, x.Left}} {
			if id, ok := clientIDLiteral(pair); ok {
				return guard{kind: guardClient, value: id}
			}
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
				if g, ok := entityGuard(v); ok {
					return g
				}
			}
		}
	case ast.NodeTypeIsEmpty:
		if name, ok := principalAttr(x.Arg); ok && name == "groups" {
			return guard{kind: guardNoGroups}
		}
	case ast.NodeTypeExtensionCall:
		if g := ipRangeGuard(x); g.kind != guardNone {
			return g
		}
		return decimalGuard(x)
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

// decimalCmp is which results of Compare(a, b) each decimal comparison a.op(b)
// holds for.
var decimalCmp = map[types.Path][3]bool{
	"lessThan":           {true, false, false},
	"lessThanOrEqual":    {true, true, false},
	"greaterThan":        {false, false, true},
	"greaterThanOrEqual": {false, true, true},
}

// decimalGuard is what decimal(principal.<name>).<op>(decimal("<d>")) needs (or
// the same with the literal first): the attribute, parsed as Cedar parses it,
// compared so.
func decimalGuard(x ast.NodeTypeExtensionCall) guard {
	cmp, ok := decimalCmp[x.Name]
	if !ok || len(x.Args) != 2 {
		return guard{}
	}
	for i, pair := range [][2]ast.IsNode{{x.Args[0], x.Args[1]}, {x.Args[1], x.Args[0]}} {
		name, ok := principalAttr(extensionArg(pair[0], "decimal"))
		if !ok || name == "groups" {
			continue
		}
		lit, ok := literal(extensionArg(pair[1], "decimal"))
		if !ok {
			continue
		}
		s, ok := lit.(types.String)
		if !ok {
			continue
		}
		d, err := types.ParseDecimal(string(s))
		if err != nil {
			return guard{}
		}
		if i == 1 { // the literal first: d.op(attribute), so Compare(attribute, d) is reversed
			cmp[0], cmp[2] = cmp[2], cmp[0]
		}
		return guard{kind: guardDecimal, name: name, value: string(s), dec: d, cmp: cmp}
	}
	return guard{}
}

// extensionArg is the argument of fn(<arg>), or nil.
func extensionArg(n ast.IsNode, fn types.Path) ast.IsNode {
	c, ok := n.(ast.NodeTypeExtensionCall)
	if !ok || c.Name != fn || len(c.Args) != 1 {
		return nil
	}
	return c.Args[0]
}

// ipRangeGuard is what ip(principal.<name>).isInRange(ip("<range>")) needs: the
// attribute, parsed as Cedar parses it, in the range.
func ipRangeGuard(x ast.NodeTypeExtensionCall) guard {
	if x.Name != "isInRange" || len(x.Args) != 2 {
		return guard{}
	}
	addr, rng := extensionArg(x.Args[0], "ip"), extensionArg(x.Args[1], "ip")
	name, ok := principalAttr(addr)
	if !ok || name == "groups" {
		return guard{}
	}
	lit, ok := literal(rng)
	if !ok {
		return guard{}
	}
	s, ok := lit.(types.String)
	if !ok {
		return guard{}
	}
	r, err := types.ParseIPAddr(string(s))
	if err != nil {
		return guard{} // Cedar errs at every evaluation; nothing to look for
	}
	return guard{kind: guardIPRange, name: name, value: string(s), ipRange: r}
}

// likeGuard is what principal.<name> like p needs: equality for a pattern
// without a wildcard, else the literal it starts or ends with, else the literal
// it contains ("*…*"), else a match of the pattern itself.
func likeGuard(name string, p types.Pattern) guard {
	// The pattern's components are only visible in its JSON form: "Wildcard"
	// or {"Literal": "…"}, in order.
	b, err := p.MarshalJSON()
	if err != nil {
		return guard{}
	}
	var comps []json.RawMessage
	if err := json.Unmarshal(b, &comps); err != nil || len(comps) == 0 {
		return guard{}
	}
	lit := func(c json.RawMessage) (string, bool) {
		var l struct{ Literal *string }
		if json.Unmarshal(c, &l) != nil || l.Literal == nil || *l.Literal == "" {
			return "", false
		}
		return *l.Literal, true
	}
	if len(comps) == 1 {
		if v, ok := lit(comps[0]); ok {
			return guard{kind: guardAttr, name: name, value: v}
		}
		return guard{kind: guardHas, name: name} // "*": any value
	}
	if v, ok := lit(comps[0]); ok {
		return guard{kind: guardPrefix, name: name, value: v}
	}
	if v, ok := lit(comps[len(comps)-1]); ok {
		return guard{kind: guardSuffix, name: name, value: v}
	}
	if len(comps) == 3 && string(comps[0]) == `"Wildcard"` && string(comps[2]) == `"Wildcard"` {
		if v, ok := lit(comps[1]); ok {
			return guard{kind: guardContains, name: name, value: v}
		}
	}
	return guard{kind: guardMatch, name: name, value: string(p.MarshalCedar()), pat: &p}
}

// principal is the Cedar view of a user: its UID and entity.
func principal(u user.User) (types.EntityUID, *principalEntity) {
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
	return uid, &principalEntity{UID: uid, Parents: types.NewEntityUIDSet(parents...), Attributes: types.NewRecord(attrs)}
}
