package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"golang.org/x/sync/singleflight"

	"github.com/agentguard/agentguard/internal/user"
)

// Engine is the Decider: it evaluates an agent's inbound rules. Each agent's rules
// are compiled once and kept in memory with the rule version they were read at; every
// decision reads the current version (one indexed row) and recompiles when it moved,
// so a rule created or deleted on any replica applies to the next decision here.
type Engine struct {
	Store Store

	mu    sync.RWMutex
	cache map[string]*compiled // agent id -> rules
	load  singleflight.Group
}

var _ Decider = (*Engine)(nil)

// maxCachedAgents bounds the cache; past it the cache starts over.
const maxCachedAgents = 100000

// compiled is one agent's rules at one version, grouped by client.
type compiled struct {
	version int64
	clients map[string]*clientRules
}

// clientRules are the rules for one (agent, client), indexed so a decision looks
// at the rules that can admit the user rather than at all of them.
type clientRules struct {
	rules   []compiledRule
	byUser  map[string]int // user id -> first rule listing it
	byGroup map[string]int // group key -> first rule naming it
	// Cedar rules: always evaluated, or only for users who meet a permit
	// statement's guard.
	cedarAlways  []int
	cedarByUser  map[string][]int
	cedarByGroup map[string][]int
	cedarByAttr  map[attrValue][]int
	broken       []int // rules whose saved policy no longer compiles
}

type attrValue struct{ name, value string }

type compiledRule struct {
	Rule
	policy *compiledPolicy // nil: no policy, or one that no longer compiles
	broken string          // why the saved policy no longer compiles
}

// compile groups rules by client and indexes them.
func compile(version int64, rules []Rule) *compiled {
	c := &compiled{version: version, clients: map[string]*clientRules{}}
	for _, r := range rules {
		cr := c.clients[r.ClientID]
		if cr == nil {
			cr = &clientRules{byUser: map[string]int{}, byGroup: map[string]int{},
				cedarByUser: map[string][]int{}, cedarByGroup: map[string][]int{}, cedarByAttr: map[attrValue][]int{}}
			c.clients[r.ClientID] = cr
		}
		i := len(cr.rules)
		rule := compiledRule{Rule: r}
		for _, id := range r.Users {
			if _, ok := cr.byUser[id]; !ok {
				cr.byUser[id] = i
			}
		}
		for _, g := range r.Groups {
			if _, ok := cr.byGroup[user.Key(g)]; !ok {
				cr.byGroup[user.Key(g)] = i
			}
		}
		if r.Policy != "" {
			p, err := CompilePolicy(r.Policy, r.AgentID)
			if err != nil {
				// Saved policies were checked on save; one that no longer
				// compiles (say, after a cedar-go upgrade) admits nobody by its
				// policy, and decisions say so.
				rule.broken = err.Error()
				cr.broken = append(cr.broken, i)
				cr.rules = append(cr.rules, rule)
				continue
			}
			rule.policy = p
			always := false
			for _, g := range p.guards {
				switch g.kind {
				case guardNone:
					always = true
				case guardUser:
					cr.cedarByUser[g.name] = appendOnce(cr.cedarByUser[g.name], i)
				case guardGroup:
					cr.cedarByGroup[g.name] = appendOnce(cr.cedarByGroup[g.name], i)
				case guardAttr:
					k := attrValue{g.name, g.value}
					cr.cedarByAttr[k] = appendOnce(cr.cedarByAttr[k], i)
				}
			}
			if always {
				cr.cedarAlways = append(cr.cedarAlways, i)
			}
		}
		cr.rules = append(cr.rules, rule)
	}
	return c
}

func appendOnce(s []int, i int) []int {
	if len(s) > 0 && s[len(s)-1] == i {
		return s
	}
	return append(s, i)
}

// rulesFor returns the agent's compiled rules at the current version.
func (e *Engine) rulesFor(ctx context.Context, agentID string) (*compiled, error) {
	version, err := e.Store.InboundVersion(ctx, agentID)
	if err != nil {
		return nil, err
	}
	e.mu.RLock()
	c := e.cache[agentID]
	e.mu.RUnlock()
	if c != nil && c.version == version {
		return c, nil
	}
	v, err, _ := e.load.Do(agentID+"\x00"+fmt.Sprint(version), func() (any, error) {
		// The version is read before the rules: a change between the two reads
		// makes the rules newer than the version, and the next decision reloads.
		rules, err := e.Store.ListInboundRules(context.WithoutCancel(ctx), agentID)
		if err != nil {
			return nil, err
		}
		c := compile(version, rules)
		e.mu.Lock()
		if e.cache == nil || len(e.cache) >= maxCachedAgents {
			e.cache = map[string]*compiled{}
		}
		if old := e.cache[agentID]; old == nil || old.version <= version {
			e.cache[agentID] = c
		}
		e.mu.Unlock()
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*compiled), nil
}

// Decide says whether req.User may call req.AgentID through req.ClientID: yes if
// one of the agent's rules for that client lists the user, names one of their
// groups, or has a Cedar policy that permits them. No rule means no.
func (e *Engine) Decide(ctx context.Context, req Request) (Decision, error) {
	u := req.User
	who := fmt.Sprintf("user %s (%s)", u.Username, u.ID)
	if !u.Active {
		return Decision{Reason: who + " is deactivated"}, nil
	}
	c, err := e.rulesFor(ctx, req.AgentID)
	if err != nil {
		return Decision{}, fmt.Errorf("inbound rules of agent %s: %w", req.AgentID, err)
	}
	cr := c.clients[req.ClientID]
	if cr == nil {
		return Decision{Reason: fmt.Sprintf("agent %s has no inbound rule for client %s, so no user may call it through that client", req.AgentID, req.ClientID)}, nil
	}
	return cr.decide(req, who), nil
}

func (cr *clientRules) decide(req Request, who string) Decision {
	u := req.User
	best, why := -1, ""
	if i, ok := cr.byUser[u.ID]; ok {
		best, why = i, "lists "+who
	}
	for _, g := range u.Groups {
		if i, ok := cr.byGroup[user.Key(g)]; ok && (best < 0 || i < best) {
			best, why = i, fmt.Sprintf("admits group %q, of which %s is a member", g, who)
		}
	}
	if best >= 0 {
		r := cr.rules[best]
		return Decision{Allow: true, RuleID: r.ID, Reason: fmt.Sprintf("rule %s %s", r.ID, why)}
	}

	candidates := cr.cedarCandidates(u)
	var errs []string
	if len(candidates) > 0 {
		uid, entities := principal(u)
		creq := cedar.Request{
			Principal: uid,
			Action:    types.NewEntityUID(EntityAction, ActionInvoke),
			Resource:  types.NewEntityUID(EntityAgent, types.String(req.AgentID)),
			Context:   types.NewRecord(types.RecordMap{"client_id": types.String(req.ClientID)}),
		}
		for _, i := range candidates {
			r := cr.rules[i]
			d, diag := cedar.Authorize(r.policy.set, entities, creq)
			if d == cedar.Allow {
				return Decision{Allow: true, RuleID: r.ID, Reason: fmt.Sprintf("rule %s admits %s by its Cedar policy (%s)", r.ID, who, positions(diag.Reasons))}
			}
			for _, de := range diag.Errors {
				if len(errs) < 3 {
					errs = append(errs, fmt.Sprintf("rule %s line %d: %s", r.ID, de.Position.Line, de.Message))
				}
			}
		}
	}
	for _, i := range cr.broken {
		if len(errs) < 3 {
			errs = append(errs, fmt.Sprintf("rule %s's policy no longer compiles: %s", cr.rules[i].ID, cr.rules[i].broken))
		}
	}
	reason := fmt.Sprintf("none of the %d inbound rules of agent %s for client %s admits %s", len(cr.rules), req.AgentID, req.ClientID, who)
	if len(errs) > 0 {
		reason += "; Cedar errors: " + strings.Join(errs, "; ")
	}
	return Decision{Reason: reason}
}

// cedarCandidates lists, in rule order, the Cedar rules that may admit u.
func (cr *clientRules) cedarCandidates(u user.User) []int {
	out := slices.Clone(cr.cedarAlways)
	if len(cr.cedarByUser) > 0 {
		out = append(out, cr.cedarByUser[u.ID]...)
	}
	if len(cr.cedarByGroup) > 0 {
		for _, g := range u.Groups {
			out = append(out, cr.cedarByGroup[g]...)
		}
	}
	if len(cr.cedarByAttr) > 0 {
		for k, v := range u.Attributes {
			out = append(out, cr.cedarByAttr[attrValue{k, v}]...)
		}
		for _, kv := range [...]attrValue{{"username", u.Username}, {"email", u.Email}, {"display_name", u.DisplayName}} {
			out = append(out, cr.cedarByAttr[kv]...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func positions(rs []cedar.DiagnosticReason) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("permit at line %d", r.Position.Line))
	}
	return strings.Join(parts, ", ")
}
