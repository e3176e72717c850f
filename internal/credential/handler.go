package credential

import (
	"context"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/kms"
)

// AgentGetter reads an agent.
type AgentGetter interface {
	GetAgent(ctx context.Context, id string) (agent.Agent, error)
}

// Handler serves the credential management API (API keys, OAuth providers, each
// agent's outbound rule) and the Credential API agents call.
type Handler struct {
	Store    Store
	Agents   AgentGetter
	Envelope *kms.Envelope
	Tokens   *Tokens
	Auth     *Authorizer
	Audit    audit.Recorder
	Metrics  *Metrics // nil: not counted
	Now      func() time.Time
	// AllowInsecureTokenEndpoints and AllowInsecureUpstreams let plain-http URLs
	// of hosts other than localhost through (server flags of the same names).
	AllowInsecureTokenEndpoints bool
	AllowInsecureUpstreams      bool
}

// Register adds the routes; admin wraps the management routes in the admin check.
// The Credential API routes authenticate agents themselves.
func (h *Handler) Register(mux *http.ServeMux, admin func(http.Handler) http.Handler) {
	route := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, admin(f)) }
	route("POST /api/v1/credentials/api-keys", h.createAPIKey)
	route("GET /api/v1/credentials/api-keys", h.listAPIKeys)
	route("GET /api/v1/credentials/api-keys/{identifier}", h.getAPIKey)
	route("PATCH /api/v1/credentials/api-keys/{identifier}", h.updateAPIKey)
	route("DELETE /api/v1/credentials/api-keys/{identifier}", h.deleteAPIKey)
	route("PUT /api/v1/credentials/api-keys/{identifier}/value", h.rotateAPIKey)
	route("POST /api/v1/credentials/api-keys/{identifier}/rollback", h.rollbackAPIKey)

	route("POST /api/v1/credentials/oauth-providers", h.createProvider)
	route("GET /api/v1/credentials/oauth-providers", h.listProviders)
	route("GET /api/v1/credentials/oauth-providers/{identifier}", h.getProvider)
	route("PATCH /api/v1/credentials/oauth-providers/{identifier}", h.updateProvider)
	route("DELETE /api/v1/credentials/oauth-providers/{identifier}", h.deleteProvider)
	route("GET /api/v1/credentials/oauth-presets", h.listPresets)

	route("POST /api/v1/agents/{id}/outbound", h.addNode)
	route("GET /api/v1/agents/{id}/outbound", h.listNodes)
	route("GET /api/v1/agents/{id}/outbound/{identifier}", h.getNode)
	route("PATCH /api/v1/agents/{id}/outbound/{identifier}", h.updateNode)
	route("DELETE /api/v1/agents/{id}/outbound/{identifier}", h.deleteNode)

	mux.HandleFunc("GET /api/v1/agent/api-keys/{identifier}", h.retrieveAPIKey)
	mux.HandleFunc("POST /api/v1/agent/oauth-tokens/{identifier}", h.retrieveToken)
}

// now is the time of a change, at the microsecond precision storage keeps, so a
// create answers the times a later read returns.
func (h *Handler) now() time.Time { return h.Now().UTC().Truncate(time.Microsecond) }
