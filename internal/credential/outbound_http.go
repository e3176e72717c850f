package credential

import (
	"errors"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// GatewayPrefix is where the egress gateway serves a node: /gateway/<identifier>/<path>.
const GatewayPrefix = "/gateway/"

type nodeJSON struct {
	ID             string    `json:"id"`
	AgentID        string    `json:"agent_id"`
	NodeType       string    `json:"node_type"`
	CredentialType string    `json:"credential_type"`
	Credential     string    `json:"credential"`
	CredentialName string    `json:"credential_name"`
	UpstreamURL    string    `json:"upstream_url,omitempty"`
	Header         string    `json:"header,omitempty"`
	GatewayPath    string    `json:"gateway_path,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func nodeView(n Node) nodeJSON {
	out := nodeJSON{ID: n.ID, AgentID: n.AgentID, NodeType: n.NodeType, CredentialType: n.CredentialType,
		Credential: n.Identifier, CredentialName: n.CredentialName, UpstreamURL: n.UpstreamURL, Header: n.HeaderTemplate,
		CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt}
	if n.UpstreamURL != "" {
		out.GatewayPath = GatewayPrefix + n.Identifier + "/"
	}
	return out
}

// agentID reads the {id} of the path and checks the agent exists (404 otherwise).
func (h *Handler) agentID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := h.Agents.GetAgent(r.Context(), id); errors.Is(err, store.ErrNotFound) {
		return id, api.NotFound("no agent has the id %q", clip(id))
	} else if err != nil {
		return id, err
	}
	return id, nil
}

// checkGateway validates a node's upstream URL and header template (both
// optional; a template without an upstream URL is kept for when one is set).
func (h *Handler) checkGateway(v *api.Validator, n *Node) {
	if n.UpstreamURL != "" {
		if msg := CheckSecretURL(n.UpstreamURL, h.AllowInsecureUpstreams, false); msg != "" {
			v.Add("upstream_url", "%s", msg)
		}
		if n.HeaderTemplate == "" {
			n.HeaderTemplate = DefaultTemplate(n.CredentialType)
		}
	}
	if n.HeaderTemplate != "" {
		t, err := ParseHeaderTemplate(n.HeaderTemplate, n.CredentialType)
		if err != nil {
			v.Add("header", "%s", err.Error())
		} else {
			n.HeaderTemplate = t.String(n.CredentialType)
		}
	}
}

func (h *Handler) addNode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		NodeType       string `json:"node_type"`
		CredentialType string `json:"credential_type"`
		Credential     string `json:"credential"`
		UpstreamURL    string `json:"upstream_url"`
		Header         string `json:"header"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	v.OneOf("node_type", req.NodeType, NodeLLM, NodeExternalService)
	v.OneOf("credential_type", req.CredentialType, TypeAPIKey, TypeOAuthProvider)
	if !ValidIdentifier(req.Credential) {
		v.Add("credential", "must be a credential identifier: %s", identifierRule)
	}
	now := h.now()
	n := Node{ID: secret.NewID("obn"), NodeType: req.NodeType, CredentialType: req.CredentialType, Identifier: req.Credential,
		UpstreamURL: req.UpstreamURL, HeaderTemplate: req.Header, CreatedAt: now, UpdatedAt: now}
	h.checkGateway(&v, &n)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	agentID, err := h.agentID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	n.AgentID = agentID
	n, err = h.Store.AddOutboundNode(r.Context(), n)
	switch {
	case errors.Is(err, store.ErrConflict):
		err = api.Conflict("agent %s already has a node for %q (one node per credential)", agentID, req.Credential)
	case errors.Is(err, store.ErrNotFound):
		err = api.Invalid(api.FieldError{Field: "credential", Detail: "no " + req.CredentialType + " has the identifier " + req.Credential + "; create it first under /api/v1/credentials"})
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "outbound.add", n.CredentialType, n.Identifier, agentID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/agents/"+agentID+"/outbound/"+n.Identifier)
	api.WriteJSON(w, http.StatusCreated, nodeView(n))
}

func (h *Handler) listNodes(w http.ResponseWriter, r *http.Request) {
	agentID, err := h.agentID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ns, err := h.Store.ListOutboundNodes(r.Context(), agentID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := make([]nodeJSON, 0, len(ns))
	for _, n := range ns {
		out = append(out, nodeView(n))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(out, ""))
}

func notFoundNode(agentID, identifier string) error {
	return api.NotFound("agent %q has no outbound node for %q", clip(agentID), clip(identifier))
}

func (h *Handler) getNode(w http.ResponseWriter, r *http.Request) {
	agentID, err := h.agentID(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	id := r.PathValue("identifier")
	ns, err := h.Store.ListOutboundNodes(r.Context(), agentID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	for _, n := range ns {
		if n.Identifier == id {
			api.WriteJSON(w, http.StatusOK, nodeView(n))
			return
		}
	}
	api.WriteError(w, r, notFoundNode(agentID, id))
}

// updateNode changes a node's type, upstream URL or header template (an extension
// of the contract, which has no PATCH here: the credential of a node never
// changes; remove the node and add another for that).
func (h *Handler) updateNode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		NodeType    *string `json:"node_type"`
		UpstreamURL *string `json:"upstream_url"`
		Header      *string `json:"header"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	agentID, id := r.PathValue("id"), r.PathValue("identifier")
	n, err := h.Store.UpdateOutboundNode(r.Context(), agentID, id, func(n *Node) error {
		var v api.Validator
		set(&n.NodeType, req.NodeType)
		set(&n.UpstreamURL, req.UpstreamURL)
		set(&n.HeaderTemplate, req.Header)
		v.OneOf("node_type", n.NodeType, NodeLLM, NodeExternalService)
		h.checkGateway(&v, n)
		n.UpdatedAt = h.now()
		return v.Err()
	})
	if errors.Is(err, store.ErrNotFound) {
		err = notFoundNode(agentID, id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "outbound.update", n.CredentialType, n.Identifier, agentID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, nodeView(n))
}

// deleteNode takes the credential out of the agent's rule: the next Credential API
// or gateway request of the agent on any replica is refused. The credential stays.
func (h *Handler) deleteNode(w http.ResponseWriter, r *http.Request) {
	agentID, id := r.PathValue("id"), r.PathValue("identifier")
	if err := h.Store.DeleteOutboundNode(r.Context(), agentID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = notFoundNode(agentID, id)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "outbound.remove", "outbound_node", id, agentID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
