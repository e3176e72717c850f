// Package policy decides who may call an agent: each agent's inbound rules name a
// client and the users, groups or Cedar policy that may use that client to reach the
// agent. No rule admitting the user means deny.
package policy

import (
	"context"

	"github.com/agentguard/agentguard/internal/user"
)

// Request asks whether User, signed in through the client ClientID, may call AgentID.
type Request struct {
	AgentID  string
	ClientID string
	User     user.User
}

// Decision is the answer with the reason recorded in the audit event.
type Decision struct {
	Allow  bool
	Reason string // e.g. `rule inr_… admits group "hr"`, or why nothing admitted the user
	RuleID string // the rule that admitted the user; empty on deny
}

// Decider evaluates inbound rules. It is called when a user's token for an agent is
// issued (authorization code, refresh) and again at token exchange; callers record
// the audit event.
type Decider interface {
	Decide(ctx context.Context, req Request) (Decision, error)
}
