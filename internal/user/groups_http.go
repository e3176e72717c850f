package user

import (
	"errors"
	"net/http"
	"strings"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// GroupIDPrefix starts every group id.
const GroupIDPrefix = "grp_"

// MaxMembersPerRequest bounds one membership change.
const MaxMembersPerRequest = 1000

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        string   `json:"name"`
		DisplayName string   `json:"display_name"`
		Members     []string `json:"members"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if msg := CheckGroupName(req.Name); msg != "" {
		v.Add("name", "%s", msg)
	}
	v.MaxLen("display_name", req.DisplayName, MaxDisplayNameBytes)
	if len(req.Members) > MaxMembersPerRequest {
		v.Add("members", "at most %d per request; add more with POST /api/v1/groups/{id}/members", MaxMembersPerRequest)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	ids, err := h.Dir.ResolveAll(r.Context(), "members", req.Members)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.Dir.now()
	g := Group{ID: secret.NewID(strings.TrimSuffix(GroupIDPrefix, "_")), Name: req.Name, DisplayName: req.DisplayName,
		Source: SourceLocal, MemberCount: len(ids), CreatedAt: now, UpdatedAt: now}
	if err := h.Dir.Store.CreateGroup(r.Context(), g, ids, SourceLocal); err != nil {
		api.WriteError(w, r, storeError(err, "a group named %q already exists", req.Name))
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "group.create", "group", g.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/groups/"+g.ID)
	api.WriteJSON(w, http.StatusCreated, g)
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := GroupFilter{Query: q.Get("q"), Source: q.Get("source"), Name: q.Get("name")}
	var v api.Validator
	v.MaxLen("q", f.Query, 200)
	v.MaxLen("source", f.Source, 200)
	v.MaxLen("name", f.Name, MaxGroupNameBytes)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, next, err := h.Dir.Store.ListGroups(r.Context(), f, limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(items, next))
}

// group loads the {id} of the path: a group id (grp_…) or, failing that, a name.
func (h *Handler) group(r *http.Request) (Group, error) {
	ref := r.PathValue("id")
	if len(ref) <= MaxGroupNameBytes && ref != "" {
		if strings.HasPrefix(ref, GroupIDPrefix) {
			g, err := h.Dir.Store.GetGroup(r.Context(), ref)
			if !errors.Is(err, store.ErrNotFound) {
				return g, err
			}
		}
		gs, _, err := h.Dir.Store.ListGroups(r.Context(), GroupFilter{Name: ref}, 1, "")
		if err != nil {
			return Group{}, err
		}
		if len(gs) == 1 {
			return gs[0], nil
		}
	}
	return Group{}, api.NotFound("no group has the id or name %q", ref)
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.group(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, g)
}

func (h *Handler) updateGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        *string `json:"name"`
		DisplayName *string `json:"display_name"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if req.Name != nil {
		if msg := CheckGroupName(*req.Name); msg != "" {
			v.Add("name", "%s", msg)
		}
	}
	if req.DisplayName != nil {
		v.MaxLen("display_name", *req.DisplayName, MaxDisplayNameBytes)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	cur, err := h.group(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	g, err := h.Dir.Store.UpdateGroup(r.Context(), cur.ID, func(g *Group) error {
		set(&g.Name, req.Name)
		set(&g.DisplayName, req.DisplayName)
		g.UpdatedAt = h.Dir.now()
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no group has the id %q", cur.ID)
		}
		name := cur.Name
		if req.Name != nil {
			name = *req.Name
		}
		api.WriteError(w, r, storeError(err, "a group named %q already exists", name))
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "group.update", "group", g.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, g)
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	cur, err := h.group(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := h.Dir.Store.DeleteGroup(r.Context(), cur.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no group has the id %q", cur.ID)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "group.delete", "group", cur.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) listMembers(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	g, err := h.group(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, next, err := h.Dir.Store.ListMembers(r.Context(), g.ID, limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(items, next))
}

func (h *Handler) addMembers(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Users []string `json:"users"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if len(req.Users) == 0 {
		v.Add("users", "name at least one user id or username")
	}
	if len(req.Users) > MaxMembersPerRequest {
		v.Add("users", "at most %d per request", MaxMembersPerRequest)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	g, err := h.group(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ids, err := h.Dir.ResolveAll(r.Context(), "users", req.Users)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := h.Dir.Store.AddMembers(r.Context(), g.ID, ids, SourceLocal, h.Dir.now()); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := adminEvent(r.Context(), h.Audit, "group.members_add", "group", g.ID, "added "+strings.Join(ids, ", ")); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if g, err = h.Dir.Store.GetGroup(r.Context(), g.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, g)
}

func (h *Handler) removeMember(w http.ResponseWriter, r *http.Request) {
	g, err := h.group(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ref := r.PathValue("user")
	u, err := h.Dir.Resolve(r.Context(), ref)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.InGroupFold(g.Name)) {
		api.WriteError(w, r, api.NotFound("group %s has no member %q", g.ID, ref))
		return
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := h.Dir.Store.RemoveMembers(r.Context(), g.ID, []string{u.ID}, h.Dir.now()); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := adminEvent(r.Context(), h.Audit, "group.members_remove", "group", g.ID, "removed "+u.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
