package registration

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/store"
)

// Handler serves the administrators' side: /api/v1/client-registrations, to list
// registrations and approve or reject the pending ones.
type Handler struct {
	Store   Store
	Clients client.Store
	Audit   audit.Recorder
	Now     func() time.Time
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	route := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, wrap(f)) }
	route("GET /api/v1/client-registrations", h.list)
	route("GET /api/v1/client-registrations/{id}", h.get)
	route("POST /api/v1/client-registrations/{id}/approve", h.approve)
	route("POST /api/v1/client-registrations/{id}/reject", h.reject)
}

// View is a registration as the API shows it (never the secret's hash).
type View struct {
	ID                      string     `json:"id"`
	Status                  string     `json:"status"`
	ClientName              string     `json:"client_name"`
	ClientType              string     `json:"client_type"`
	TokenEndpointAuthMethod string     `json:"token_endpoint_auth_method"`
	RedirectURIs            []string   `json:"redirect_uris"`
	GrantTypes              []string   `json:"grant_types"`
	ApplicationType         string     `json:"application_type"`
	Scope                   string     `json:"scope,omitempty"`
	ClientURI               string     `json:"client_uri,omitempty"`
	LogoURI                 string     `json:"logo_uri,omitempty"`
	TOSURI                  string     `json:"tos_uri,omitempty"`
	PolicyURI               string     `json:"policy_uri,omitempty"`
	Contacts                []string   `json:"contacts,omitempty"`
	SoftwareID              string     `json:"software_id,omitempty"`
	SoftwareVersion         string     `json:"software_version,omitempty"`
	SourceIP                string     `json:"source_ip"`
	CreatedAt               time.Time  `json:"created_at"`
	DecidedAt               *time.Time `json:"decided_at,omitempty"`
	DecidedBy               string     `json:"decided_by,omitempty"`
	Reason                  string     `json:"reason,omitempty"`
}

func toView(g Registration) View {
	v := View{ID: g.ID, Status: g.Status, ClientName: g.ClientName, ClientType: g.ClientType, TokenEndpointAuthMethod: g.AuthMethod,
		RedirectURIs: g.RedirectURIs, GrantTypes: g.Metadata.GrantTypes, ApplicationType: g.Metadata.ApplicationType, Scope: g.Metadata.Scope,
		ClientURI: g.Metadata.ClientURI, LogoURI: g.Metadata.LogoURI, TOSURI: g.Metadata.TOSURI, PolicyURI: g.Metadata.PolicyURI,
		Contacts: g.Metadata.Contacts, SoftwareID: g.Metadata.SoftwareID, SoftwareVersion: g.Metadata.SoftwareVersion,
		SourceIP: g.SourceIP, CreatedAt: g.CreatedAt, DecidedBy: g.DecidedBy, Reason: g.Reason}
	if !g.DecidedAt.IsZero() {
		t := g.DecidedAt
		v.DecidedAt = &t
	}
	if v.RedirectURIs == nil {
		v.RedirectURIs = []string{}
	}
	return v
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	status := r.URL.Query().Get("status")
	if err == nil && status != "" && status != StatusPending && status != StatusApproved && status != StatusRejected {
		err = api.Invalid(api.FieldError{Field: "status", Detail: fmt.Sprintf("must be pending, approved or rejected (got %q)", status)})
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, next, err := h.Store.ListRegistrations(r.Context(), status, limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	views := make([]View, 0, len(items))
	for _, g := range items {
		views = append(views, toView(g))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(views, next))
}

func (h *Handler) load(r *http.Request) (Registration, error) {
	id := r.PathValue("id")
	g, err := h.Store.GetRegistration(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return g, api.NotFound("no client registration %q", id)
	}
	return g, err
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	g, err := h.load(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, toView(g))
}

// approve creates the client (with the id and secret handed out at registration)
// and marks the registration approved. The client is created first: an approval
// retried after a failure finds it and completes.
func (h *Handler) approve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	g, err := h.load(r)
	if err == nil && g.Status != StatusPending {
		err = api.Conflict("client registration %s is %s, not pending", g.ID, g.Status)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.Now().UTC()
	if err := CreateClient(ctx, h.Clients, g, now); err != nil {
		api.WriteError(w, r, fmt.Errorf("create client %s: %w", g.ID, err))
		return
	}
	actor := audit.RequestFrom(ctx).Actor
	g, err = h.Store.UpdateRegistration(ctx, g.ID, func(x *Registration) error {
		if x.Status != StatusPending {
			return api.Conflict("client registration %s is %s, not pending", x.ID, x.Status)
		}
		x.Status, x.DecidedAt, x.DecidedBy = StatusApproved, now, actor
		return nil
	})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(ctx, h.Audit, "client_registration.approve", "client_registration", g.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, toView(g))
}

// reject marks a pending registration rejected and forgets its secret's hash; its
// client id is never issued.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := api.Decode(w, r, &body); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	var v api.Validator
	v.MaxLen("reason", body.Reason, 500)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if _, err := h.load(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	now, actor := h.Now().UTC(), audit.RequestFrom(ctx).Actor
	g, err := h.Store.UpdateRegistration(ctx, r.PathValue("id"), func(x *Registration) error {
		if x.Status != StatusPending {
			return api.Conflict("client registration %s is %s, not pending", x.ID, x.Status)
		}
		x.Status, x.DecidedAt, x.DecidedBy, x.Reason, x.SecretHash = StatusRejected, now, actor, body.Reason, ""
		return nil
	})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(ctx, h.Audit, "client_registration.reject", "client_registration", g.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, toView(g))
}
