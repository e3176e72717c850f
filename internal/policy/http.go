package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// Directory resolves the users and groups a rule names.
type Directory interface {
	// ResolveAll maps user ids or usernames to ids (a 400 naming field if one is unknown).
	ResolveAll(ctx context.Context, field string, refs []string) ([]string, error)
	// GroupNames maps group names to their stored spelling (a 400 if one is unknown).
	GroupNames(ctx context.Context, field string, names []string) ([]string, error)
	// Resolve finds one user by id or username.
	Resolve(ctx context.Context, ref string) (user.User, error)
}

// Handler serves /api/v1/agents/{id}/inbound.
type Handler struct {
	Store     Store
	Directory Directory
	Engine    Decider
	Audit     audit.Recorder
	Now       func() time.Time
	// Agent reports whether an agent exists (store.ErrNotFound if not).
	Agent func(ctx context.Context, id string) error
	// Client, if set, reports whether a client exists (store.ErrNotFound if not).
	// Unset, any well-formed client id is accepted.
	Client func(ctx context.Context, id string) error
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/agents/{id}/inbound", wrap(http.HandlerFunc(h.create)))
	mux.Handle("GET /api/v1/agents/{id}/inbound", wrap(http.HandlerFunc(h.list)))
	mux.Handle("DELETE /api/v1/agents/{id}/inbound/{rule_id}", wrap(http.HandlerFunc(h.delete)))
	mux.Handle("POST /api/v1/agents/{id}/inbound/evaluate", wrap(http.HandlerFunc(h.evaluate)))
}

// clientIDRe is a well-formed client id: printable ASCII without spaces or quotes.
var clientIDRe = regexp.MustCompile(`^[\x21\x23-\x26\x28-\x7E]{1,200}$`)

func (h *Handler) agent(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if err := h.Agent(r.Context(), id); errors.Is(err, store.ErrNotFound) {
		return id, api.NotFound("no agent has the id %q", id)
	} else if err != nil {
		return id, err
	}
	return id, nil
}

func (h *Handler) checkClient(ctx context.Context, v *api.Validator, id string) error {
	if !clientIDRe.MatchString(id) {
		if id == "" {
			v.Add("client_id", "is required: the id of the client (app) users come through")
		} else {
			v.Add("client_id", "%q is not a client id", id)
		}
		return nil
	}
	if h.Client == nil {
		return nil
	}
	err := h.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		v.Add("client_id", "no client has the id %q; create it first with POST /api/v1/clients", id)
		return nil
	}
	return err
}

type createRequest struct {
	ClientID    string   `json:"client_id"`
	Description string   `json:"description"`
	Users       []string `json:"users"`
	Groups      []string `json:"groups"`
	Policy      string   `json:"policy"`
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	agentID, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if err := h.checkClient(r.Context(), &v, req.ClientID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	v.MaxLen("description", req.Description, MaxDescriptionSize)
	if len(req.Users) == 0 && len(req.Groups) == 0 && strings.TrimSpace(req.Policy) == "" {
		v.Add("users", "name who may call the agent through this client: users, groups, or a Cedar policy (at least one)")
	}
	if len(req.Users) > MaxUsersPerRule {
		v.Add("users", "at most %d per rule (use a group)", MaxUsersPerRule)
	}
	if len(req.Groups) > MaxGroupsPerRule {
		v.Add("groups", "at most %d per rule", MaxGroupsPerRule)
	}
	var pe *PolicyError
	if strings.TrimSpace(req.Policy) != "" {
		if _, err := CompilePolicy(req.Policy, agentID); errors.As(err, &pe) {
			v.Add("policy", "%s", pe.Error())
		} else if err != nil {
			api.WriteError(w, r, err)
			return
		}
	} else {
		req.Policy = ""
	}
	if err := v.Err(); err != nil {
		writeInvalid(w, r, err, pe)
		return
	}
	users, err := h.Directory.ResolveAll(r.Context(), "users", req.Users)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	groups, err := h.Directory.GroupNames(r.Context(), "groups", req.Groups)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if n, err := h.Store.CountInboundRules(r.Context(), agentID); err != nil {
		api.WriteError(w, r, err)
		return
	} else if n >= MaxRulesPerAgent {
		api.WriteError(w, r, api.Conflict("agent %s already has %d inbound rules, the most it may have; use groups or a Cedar policy to cover more users per rule", agentID, n))
		return
	}
	rule := Rule{ID: secret.NewID(strings.TrimSuffix(RuleIDPrefix, "_")), AgentID: agentID, ClientID: req.ClientID,
		Description: req.Description, Users: users, Groups: groups, Policy: req.Policy, CreatedAt: h.Now().UTC()}
	if err := h.Store.CreateInboundRule(r.Context(), rule); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no agent has the id %q", agentID)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := h.record(r.Context(), "inbound.create", rule, summary(rule)); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/agents/"+agentID+"/inbound/"+rule.ID)
	api.WriteJSON(w, http.StatusCreated, rule)
}

// writeInvalid renders a validation problem; for a policy error with a position it
// adds "line" and "column" (1-based) to the problem body, so a client can point at
// the spot without parsing the detail text.
func writeInvalid(w http.ResponseWriter, r *http.Request, err error, pe *PolicyError) {
	var e *api.Error
	if pe == nil || pe.Line == 0 || !errors.As(err, &e) {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(struct {
		*api.Error
		Line   int `json:"line"`
		Column int `json:"column"`
	}{e, pe.Line, pe.Column})
}

func summary(r Rule) string {
	var parts []string
	if len(r.Users) > 0 {
		parts = append(parts, fmt.Sprintf("users %s", strings.Join(r.Users, ", ")))
	}
	if len(r.Groups) > 0 {
		parts = append(parts, fmt.Sprintf("groups %q", r.Groups))
	}
	if r.Policy != "" {
		parts = append(parts, "a Cedar policy")
	}
	return "client " + r.ClientID + ": " + strings.Join(parts, "; ")
}

func (h *Handler) record(ctx context.Context, action string, r Rule, reason string) error {
	e := audit.Event{
		Category: audit.CategoryAdmin, Action: action, Decision: audit.Allow, Reason: reason,
		User: audit.RequestFrom(ctx).Actor, AgentID: r.AgentID, ClientID: r.ClientID,
		ResourceType: "inbound_rule", Resource: r.ID,
	}
	audit.Fill(ctx, &e)
	return h.Audit.Record(ctx, e)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	agentID, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	rules, err := h.Store.ListInboundRules(r.Context(), agentID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if c := r.URL.Query().Get("client_id"); c != "" {
		kept := rules[:0]
		for _, x := range rules {
			if x.ClientID == c {
				kept = append(kept, x)
			}
		}
		rules = kept
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(rules, ""))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	agentID, ruleID := r.PathValue("id"), r.PathValue("rule_id")
	var rule Rule
	rules, err := h.Store.ListInboundRules(r.Context(), agentID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	for _, x := range rules {
		if x.ID == ruleID {
			rule = x
		}
	}
	if rule.ID == "" {
		api.WriteError(w, r, api.NotFound("agent %q has no inbound rule %q", agentID, ruleID))
		return
	}
	if err := h.Store.DeleteInboundRule(r.Context(), agentID, ruleID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("agent %q has no inbound rule %q", agentID, ruleID)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := h.record(r.Context(), "inbound.delete", rule, summary(rule)); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// evaluate answers what the engine would decide for a user and client, without
// issuing anything: an admin's "why can (not) alice call this agent?".
func (h *Handler) evaluate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID string `json:"client_id"`
		User     string `json:"user"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	agentID, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if !clientIDRe.MatchString(req.ClientID) {
		v.Add("client_id", "is required: the id of the client users come through")
	}
	v.Required("user", req.User, user.MaxUsernameBytes)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	u, err := h.Directory.Resolve(r.Context(), req.User)
	if errors.Is(err, store.ErrNotFound) {
		err = api.Invalid(api.FieldError{Field: "user", Detail: fmt.Sprintf("no user has the id or username %q", req.User)})
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	d, err := h.Engine.Decide(r.Context(), Request{AgentID: agentID, ClientID: req.ClientID, User: u})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	decision := audit.Deny
	if d.Allow {
		decision = audit.Allow
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"allow": d.Allow, "decision": decision, "reason": d.Reason, "rule_id": d.RuleID, "user_id": u.ID})
}
