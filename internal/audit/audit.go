// Package audit records every decision agentguard makes: who asked for what, on
// whose behalf, and whether it was allowed.
package audit

import (
	"context"
	"time"
)

// Categories.
const (
	CategoryInbound    = "inbound"
	CategoryOutbound   = "outbound"
	CategoryCredential = "credential"
	CategoryToken      = "token"
	CategoryAdmin      = "admin"
)

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Event is one audit record (contract: Audit event). It never carries a secret.
type Event struct {
	ID           string    `json:"id"`
	Seq          int64     `json:"seq,omitempty"`
	Time         time.Time `json:"time"`
	Category     string    `json:"category"`
	Action       string    `json:"action"`
	Decision     string    `json:"decision"`
	Reason       string    `json:"reason,omitempty"`
	AgentID      string    `json:"agent_id,omitempty"`
	User         string    `json:"user,omitempty"`
	ClientID     string    `json:"client_id,omitempty"`
	ResourceType string    `json:"resource_type,omitempty"`
	Resource     string    `json:"resource,omitempty"`
	SourceIP     string    `json:"source_ip,omitempty"`
	RequestID    string    `json:"request_id,omitempty"`
	TraceID      string    `json:"trace_id,omitempty"`
	PrevHash     string    `json:"prev_hash,omitempty"`
	Hash         string    `json:"hash,omitempty"`
}

// Recorder records events. Record returns once the event is durable, so a caller
// that records before answering never answers for an event that a crash could lose.
type Recorder interface {
	Record(ctx context.Context, e Event) error
}

// Request is what the HTTP layer knows about the request an event belongs to.
type Request struct {
	SourceIP  string
	RequestID string
	TraceID   string
	// Actor is who made an admin change: "admin-token:<id>" or "agent:<id>".
	Actor string
}

type requestKey struct{}

// WithRequest attaches request metadata that Fill copies into events.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request metadata, or an empty one.
func RequestFrom(ctx context.Context) *Request {
	if r, ok := ctx.Value(requestKey{}).(*Request); ok {
		return r
	}
	return &Request{}
}

// Fill copies the request metadata into e where e leaves it empty.
func Fill(ctx context.Context, e *Event) {
	r := RequestFrom(ctx)
	if e.SourceIP == "" {
		e.SourceIP = r.SourceIP
	}
	if e.RequestID == "" {
		e.RequestID = r.RequestID
	}
	if e.TraceID == "" {
		e.TraceID = r.TraceID
	}
}

// Admin records an allowed management change made by the request's actor. Denied and
// failed changes are recorded by the admin middleware from the response status.
func Admin(ctx context.Context, rec Recorder, action, resourceType, resource, agentID string) error {
	e := Event{
		Category: CategoryAdmin, Action: action, Decision: Allow,
		User: RequestFrom(ctx).Actor, AgentID: agentID, ResourceType: resourceType, Resource: resource,
	}
	Fill(ctx, &e)
	return rec.Record(ctx, e)
}

// Discard drops events. Only for tools that run without an audit log.
type Discard struct{}

func (Discard) Record(context.Context, Event) error { return nil }
