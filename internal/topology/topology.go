// Package topology builds an agent's graph for the console and the CLI: the
// clients users reach it through, the agent, and what it reaches (LLM and external
// service nodes of its outbound rule, enterprise services it is granted scopes
// on), with the state of each edge.
package topology

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/store"
)

// Node types.
const (
	TypeClient            = "client"
	TypeAgent             = "agent"
	TypeLLM               = credential.NodeLLM
	TypeExternalService   = credential.NodeExternalService
	TypeEnterpriseService = "enterprise_service"
)

// Edge kinds and statuses.
const (
	KindInbound   = "inbound"  // client → agent: users reach the agent through it
	KindAPIKey    = "api_key"  // agent → node: an API key credential
	KindOAuth     = "oauth"    // agent → node: tokens of an OAuth provider
	KindGrant     = "grant"    // agent → enterprise service: scopes on its audience
	StatusOK      = "ok"       // usable
	StatusFail    = "failing"  // the OAuth provider's last token request failed
	StatusOff     = "disabled" // the agent is disabled: nothing works
	StatusMissing = "missing"  // an inbound rule names a client that no longer exists
)

// Node is one vertex. Fields beyond id, type and label depend on the type.
type Node struct {
	ID             string   `json:"id"`
	Type           string   `json:"type"`
	Label          string   `json:"label"`
	Status         string   `json:"status,omitempty"`
	Credential     string   `json:"credential,omitempty"`
	CredentialType string   `json:"credential_type,omitempty"`
	UpstreamURL    string   `json:"upstream_url,omitempty"`
	Audience       string   `json:"audience,omitempty"`
	Scopes         []string `json:"scopes,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// Edge connects two nodes by id.
type Edge struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
}

// Graph is the answer of GET /api/v1/agents/{id}/topology.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// ClientNode is a client through which users reach the agent (from its inbound
// rules). Status "" means ok.
type ClientNode struct {
	ID, Label, Status string
}

// ClientSource lists the clients of an agent's inbound rules. The inbound rules
// live in another package; nil means none are shown.
type ClientSource func(ctx context.Context, agentID string) ([]ClientNode, error)

// RuleLister lists an agent's inbound rules.
type RuleLister interface {
	ListInboundRules(ctx context.Context, agentID string) ([]policy.Rule, error)
}

// Namer names the id an inbound rule admits users through: a client's name, or an
// agent's for chained delegation. found is false when neither exists any more.
type Namer func(ctx context.Context, id string) (label string, found bool, err error)

// InboundClients is a ClientSource: the distinct clients the agent's inbound rules
// name, labelled by name (nil: by id); a client that no longer exists is "missing".
func InboundClients(rules RuleLister, name Namer) ClientSource {
	return func(ctx context.Context, agentID string) ([]ClientNode, error) {
		rs, err := rules.ListInboundRules(ctx, agentID)
		if err != nil {
			return nil, err
		}
		var out []ClientNode
		seen := map[string]bool{}
		for _, r := range rs {
			if seen[r.ClientID] {
				continue
			}
			seen[r.ClientID] = true
			n := ClientNode{ID: r.ClientID, Label: r.ClientID}
			if name != nil {
				label, found, err := name(ctx, r.ClientID)
				if err != nil {
					return nil, err
				}
				if !found {
					n.Status = StatusMissing
				} else if label != "" {
					n.Label = label
				}
			}
			out = append(out, n)
		}
		return out, nil
	}
}

// Store is what the graph is read from.
type Store interface {
	GetAgent(ctx context.Context, id string) (agent.Agent, error)
	ListGrants(ctx context.Context, agentID string) ([]grant.Grant, error)
	GetResourceServer(ctx context.Context, id string) (resource.Server, error)
	ListOutboundNodes(ctx context.Context, agentID string) ([]credential.Node, error)
	GetOAuthProvider(ctx context.Context, identifier string) (credential.OAuthProvider, error)
}

// Handler serves GET /api/v1/agents/{id}/topology.
type Handler struct {
	Store   Store
	Clients ClientSource
}

// Register adds the route; admin wraps it in the admin check.
func (h *Handler) Register(mux *http.ServeMux, admin func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/agents/{id}/topology", admin(http.HandlerFunc(h.get)))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g, err := h.Build(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		err = api.NotFound("no agent has the id %q", id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, g)
}

// Build reads the agent's graph.
func (h *Handler) Build(ctx context.Context, agentID string) (Graph, error) {
	g := Graph{Nodes: []Node{}, Edges: []Edge{}}
	a, err := h.Store.GetAgent(ctx, agentID)
	if err != nil {
		return g, err
	}
	self := "agent:" + a.ID
	g.Nodes = append(g.Nodes, Node{ID: self, Type: TypeAgent, Label: a.Name, Status: a.Status})
	status := func(s string) string {
		if !a.Active() {
			return StatusOff
		}
		return s
	}

	if h.Clients != nil {
		clients, err := h.Clients(ctx, a.ID)
		if err != nil {
			return g, err
		}
		for _, c := range clients {
			id := "client:" + c.ID
			st := c.Status
			if st == "" {
				st = StatusOK
			}
			g.Nodes = append(g.Nodes, Node{ID: id, Type: TypeClient, Label: c.Label, Status: st})
			g.Edges = append(g.Edges, Edge{From: id, To: self, Kind: KindInbound, Status: status(st)})
		}
	}

	nodes, err := h.Store.ListOutboundNodes(ctx, a.ID)
	if err != nil {
		return g, err
	}
	for _, n := range nodes {
		id := "credential:" + n.Identifier
		gn := Node{ID: id, Type: n.NodeType, Label: n.CredentialName, Status: StatusOK, Credential: n.Identifier,
			CredentialType: n.CredentialType, UpstreamURL: n.UpstreamURL}
		kind := KindAPIKey
		if n.CredentialType == credential.TypeOAuthProvider {
			kind = KindOAuth
			p, err := h.Store.GetOAuthProvider(ctx, n.Identifier)
			switch {
			case errors.Is(err, store.ErrNotFound):
				continue // deleted since the list was read
			case err != nil:
				return g, err
			}
			gn.Status, gn.Error = credential.ProviderStatus(p), p.LastError
		}
		g.Nodes = append(g.Nodes, gn)
		g.Edges = append(g.Edges, Edge{From: self, To: id, Kind: kind, Status: status(gn.Status)})
	}

	grants, err := h.Store.ListGrants(ctx, a.ID)
	if err != nil {
		return g, err
	}
	for _, gr := range grants {
		if gr.ResourceServerID == resource.BuiltinID {
			continue // agentguard itself (the functional authorization) is not a node
		}
		rs, err := h.Store.GetResourceServer(ctx, gr.ResourceServerID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return g, err
		}
		id := "resource_server:" + rs.ID
		g.Nodes = append(g.Nodes, Node{ID: id, Type: TypeEnterpriseService, Label: rs.Name, Status: StatusOK,
			Audience: rs.Audience, Scopes: slices.Clone(gr.Scopes)})
		g.Edges = append(g.Edges, Edge{From: self, To: id, Kind: KindGrant, Status: status(StatusOK)})
	}
	return g, nil
}
