package user

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store"
)

// Handler serves /api/v1/users and /api/v1/groups.
type Handler struct {
	Dir   *Directory
	Audit audit.Recorder
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	route := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, wrap(f)) }
	route("POST /api/v1/users", h.createUser)
	route("GET /api/v1/users", h.listUsers)
	route("GET /api/v1/users/{id}", h.getUser)
	route("PATCH /api/v1/users/{id}", h.updateUser)
	route("DELETE /api/v1/users/{id}", h.deleteUser)
	route("PUT /api/v1/users/{id}/password", h.setPassword)
	route("POST /api/v1/groups", h.createGroup)
	route("GET /api/v1/groups", h.listGroups)
	route("GET /api/v1/groups/{id}", h.getGroup)
	route("PATCH /api/v1/groups/{id}", h.updateGroup)
	route("DELETE /api/v1/groups/{id}", h.deleteGroup)
	route("GET /api/v1/groups/{id}/members", h.listMembers)
	route("POST /api/v1/groups/{id}/members", h.addMembers)
	route("DELETE /api/v1/groups/{id}/members/{user}", h.removeMember)
}

type createUserRequest struct {
	Username    string            `json:"username"`
	Password    string            `json:"password"`
	Email       string            `json:"email"`
	DisplayName string            `json:"display_name"`
	Groups      []string          `json:"groups"`
	Attributes  map[string]string `json:"attributes"`
	Active      *bool             `json:"active"`
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	u := User{Username: req.Username, Email: req.Email, DisplayName: req.DisplayName, Groups: req.Groups,
		Attributes: req.Attributes, Active: req.Active == nil || *req.Active, Source: SourceLocal}
	var v api.Validator
	Validate(&v, u)
	if req.Password != "" {
		if msg := CheckPassword(req.Password, req.Username); msg != "" {
			v.Add("password", "%s", msg)
		}
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	u, err := h.Dir.CreateUser(r.Context(), u, req.Password)
	if err != nil {
		api.WriteError(w, r, storeError(err, "a user with the username %q already exists", req.Username))
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "user.create", "user", u.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	api.WriteJSON(w, http.StatusCreated, u)
}

// storeError turns a store conflict into a 409 with detail, and a missing group
// (named by the store's error) into a 400 on groups.
func storeError(err error, conflict string, args ...any) error {
	switch {
	case errors.Is(err, store.ErrConflict):
		return api.Conflict(conflict, args...)
	case errors.Is(err, store.ErrNotFound) && strings.Contains(err.Error(), "no group is named"):
		msg := err.Error()
		msg = msg[strings.Index(msg, "no group is named"):]
		return api.Invalid(api.FieldError{Field: "groups", Detail: msg + "; create it first with POST /api/v1/groups"})
	}
	return err
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := Filter{Query: q.Get("q"), Group: q.Get("group"), Source: q.Get("source"), Username: q.Get("username"), Email: q.Get("email")}
	var v api.Validator
	v.MaxLen("q", f.Query, 200)
	v.MaxLen("group", f.Group, MaxGroupNameBytes)
	v.MaxLen("source", f.Source, 200)
	v.MaxLen("username", f.Username, MaxUsernameBytes)
	v.MaxLen("email", f.Email, MaxEmailBytes)
	if s := q.Get("active"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			v.Add("active", "must be true or false (got %q)", s)
		}
		f.Active = &b
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, next, err := h.Dir.Store.ListUsers(r.Context(), f, limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(items, next))
}

// Resolve finds a user by id (usr_…) or username (usernames never start with usr_).
func (d *Directory) Resolve(ctx context.Context, ref string) (User, error) {
	if len(ref) > MaxUsernameBytes || ref == "" {
		return User{}, store.ErrNotFound
	}
	if strings.HasPrefix(Key(ref), IDPrefix) {
		return d.Store.GetUser(ctx, ref)
	}
	return d.Store.GetUserByUsername(ctx, ref)
}

// ResolveAll maps user ids or usernames to ids, naming the first that is unknown.
func (d *Directory) ResolveAll(ctx context.Context, field string, refs []string) ([]string, error) {
	ids := make([]string, 0, len(refs))
	seen := map[string]bool{}
	for _, ref := range refs {
		u, err := d.Resolve(ctx, ref)
		if errors.Is(err, store.ErrNotFound) {
			return nil, api.Invalid(api.FieldError{Field: field, Detail: fmt.Sprintf("no user has the id or username %q", ref)})
		}
		if err != nil {
			return nil, err
		}
		if !seen[u.ID] {
			seen[u.ID] = true
			ids = append(ids, u.ID)
		}
	}
	return ids, nil
}

func (h *Handler) user(r *http.Request) (User, error) {
	ref := r.PathValue("id")
	u, err := h.Dir.Resolve(r.Context(), ref)
	if errors.Is(err, store.ErrNotFound) {
		return u, api.NotFound("no user has the id or username %q", ref)
	}
	return u, err
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.user(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, u)
}

type updateUserRequest struct {
	Username    *string            `json:"username"`
	Email       *string            `json:"email"`
	DisplayName *string            `json:"display_name"`
	Groups      *[]string          `json:"groups"`
	Attributes  *map[string]string `json:"attributes"`
	Active      *bool              `json:"active"`
}

func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request) {
	var req updateUserRequest
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	cur, err := h.user(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var fieldErr error
	u, err := h.Dir.UpdateUser(r.Context(), cur.ID, "the management API", func(u *User) error {
		set(&u.Username, req.Username)
		set(&u.Email, req.Email)
		set(&u.DisplayName, req.DisplayName)
		set(&u.Groups, req.Groups)
		set(&u.Attributes, req.Attributes)
		set(&u.Active, req.Active)
		var v api.Validator
		Validate(&v, *u)
		fieldErr = v.Err()
		return fieldErr
	})
	if err != nil {
		name := cur.Username
		if req.Username != nil {
			name = *req.Username
		}
		if errors.Is(err, store.ErrNotFound) && !strings.Contains(err.Error(), "no group is named") {
			err = api.NotFound("no user has the id %q", cur.ID)
		}
		api.WriteError(w, r, storeError(err, "a user with the username %q already exists", name))
		return
	}
	action := "user.update"
	switch {
	case cur.Active && !u.Active:
		action = "user.deactivate"
	case !cur.Active && u.Active:
		action = "user.activate"
	}
	if err := audit.Admin(r.Context(), h.Audit, action, "user", u.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, u)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	cur, err := h.user(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if _, err := h.Dir.DeleteUser(r.Context(), cur.ID, "the management API"); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no user has the id %q", cur.ID)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "user.delete", "user", cur.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) setPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	cur, err := h.user(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if cur.Source != SourceLocal {
		api.WriteError(w, r, api.Conflict("user %s is managed by %s and signs in through that provider; only local users have a password here", cur.ID, cur.Source))
		return
	}
	if msg := CheckPassword(req.Password, cur.Username); msg != "" {
		api.WriteError(w, r, api.Invalid(api.FieldError{Field: "password", Detail: msg}))
		return
	}
	if err := h.Dir.SetPassword(r.Context(), cur.ID, req.Password); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "user.password_set", "user", cur.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// GroupNames maps group names (any case) to the names as stored, naming the first
// that no group has.
func (d *Directory) GroupNames(ctx context.Context, field string, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		if msg := CheckGroupName(n); msg != "" {
			return nil, api.Invalid(api.FieldError{Field: field, Detail: fmt.Sprintf("%q %s", n, msg)})
		}
		gs, _, err := d.Store.ListGroups(ctx, GroupFilter{Name: n}, 1, "")
		if err != nil {
			return nil, err
		}
		if len(gs) == 0 {
			return nil, api.Invalid(api.FieldError{Field: field, Detail: fmt.Sprintf("no group is named %q; create it first with POST /api/v1/groups", n)})
		}
		if !seen[Key(gs[0].Name)] {
			seen[Key(gs[0].Name)] = true
			out = append(out, gs[0].Name)
		}
	}
	return out, nil
}
