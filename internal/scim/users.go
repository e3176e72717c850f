package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// userReadOnly are the user attributes a PATCH cannot change.
var userReadOnly = []string{"id", "meta", "groups"}

// groupRefs resolves the group names of users to SCIM group references, once per
// name per request. Only SCIM groups are shown (other groups are not SCIM's).
type groupRefs struct {
	h     *Handler
	cache map[string]*groupRef
}

func (g *groupRefs) of(ctx context.Context, u user.User) ([]groupRef, error) {
	var out []groupRef
	for _, name := range u.Groups {
		ref, ok := g.cache[user.Key(name)]
		if !ok {
			gs, _, err := g.h.Dir.Store.ListGroups(ctx, user.GroupFilter{Name: name, Source: user.SourceSCIM}, 1, "")
			if err != nil {
				return nil, err
			}
			if len(gs) == 1 {
				ref = &groupRef{ID: gs[0].ID, Name: gs[0].Name}
			}
			if g.cache == nil {
				g.cache = map[string]*groupRef{}
			}
			g.cache[user.Key(name)] = ref
		}
		if ref != nil {
			out = append(out, *ref)
		}
	}
	return out, nil
}

func (h *Handler) resource(ctx context.Context, refs *groupRefs, u user.User) (map[string]any, error) {
	gs, err := refs.of(ctx, u)
	if err != nil {
		return nil, err
	}
	return userResource(u, h.BaseURL, gs), nil
}

// scimUser loads the path's user if SCIM provisioned it (404 otherwise, the same as
// for an id that does not exist).
func (h *Handler) scimUser(r *http.Request) (user.User, error) {
	id := r.PathValue("id")
	u, err := h.Dir.GetUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Source != user.SourceSCIM) {
		return u, &Error{Status: 404, Detail: fmt.Sprintf("no SCIM user has the id %q", id)}
	}
	return u, err
}

// validate applies the directory's field rules, as a SCIM invalidValue.
func validate(u user.User) error {
	var v api.Validator
	user.Validate(&v, u)
	err := v.Err()
	var ae *api.Error
	if errors.As(err, &ae) {
		parts := make([]string, 0, len(ae.Errors))
		for _, fe := range ae.Errors {
			parts = append(parts, scimName(fe.Field)+": "+fe.Detail)
		}
		return &Error{Status: 400, ScimType: "invalidValue", Detail: strings.Join(parts, "; ")}
	}
	return err
}

// scimName maps a directory field to the SCIM attribute it came from.
func scimName(field string) string {
	switch field {
	case "username":
		return "userName"
	case "email":
		return "emails"
	case "display_name":
		return "displayName"
	case "external_id":
		return "externalId"
	}
	return field
}

func conflictError(err error, u user.User) error {
	if errors.Is(err, store.ErrConflict) {
		return &Error{Status: 409, ScimType: "uniqueness", Detail: fmt.Sprintf("userName %q (or externalId) is already taken", u.Username)}
	}
	return err
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, _ Token) {
	body, err := readBody(w, r)
	if err != nil {
		fail(w, r, err)
		return
	}
	u, err := fromUserResource(body, user.User{Active: true, Source: user.SourceSCIM})
	if err == nil {
		err = validate(u)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	u, err = h.Dir.CreateUser(r.Context(), u, "")
	if err != nil {
		fail(w, r, conflictError(err, u))
		return
	}
	if err := h.record(r.Context(), "scim.user.create", "user", u.ID, ""); err != nil {
		fail(w, r, err)
		return
	}
	res, err := h.resource(r.Context(), &groupRefs{h: h}, u)
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("Location", h.BaseURL+"/Users/"+u.ID)
	writeJSON(w, http.StatusCreated, res)
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request, _ Token) {
	u, err := h.scimUser(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	res, err := h.resource(r.Context(), &groupRefs{h: h}, u)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request, _ Token) {
	start, count, err := paging(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	f, err := parseFilterParam(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	ctx := r.Context()
	refs := &groupRefs{h: h}
	var page []user.User
	var total int
	if f == nil {
		page, total, err = h.Dir.Store.ListUsersAt(ctx, user.Filter{Source: user.SourceSCIM}, start-1, count)
	} else {
		page, total, err = h.filterUsers(ctx, refs, f, start, count)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]any, 0, len(page))
	for _, u := range page {
		res, err := h.resource(ctx, refs, u)
		if err != nil {
			fail(w, r, err)
			return
		}
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, listResponse(out, total, start))
}

// userLookups turns a filter into store queries whose union holds every user it
// can match: equality on userName, externalId, id or emails, and and/or of those.
// ok is false when the filter needs a scan.
func userLookups(f Filter) ([]user.Filter, bool) {
	switch x := f.(type) {
	case Compare:
		s, isStr := x.Value.(string)
		if x.Op != "eq" || !isStr || (x.Path.URN != "" && !strings.EqualFold(x.Path.URN, SchemaUser)) {
			return nil, false
		}
		name, sub := strings.ToLower(x.Path.Name), strings.ToLower(x.Path.Sub)
		switch {
		case name == "username" && sub == "":
			return []user.Filter{{Username: s}}, true
		case name == "externalid" && sub == "":
			return []user.Filter{{ExternalID: s}}, true
		case name == "id" && sub == "":
			return []user.Filter{{ID: s}}, true
		case name == "emails" && (sub == "" || sub == "value"):
			return []user.Filter{{Email: s}}, true
		}
	case ValuePath:
		if strings.EqualFold(x.Path.Name, "emails") {
			if c, ok := x.Filter.(Compare); ok && strings.EqualFold(c.Path.Name, "value") && c.Path.Sub == "" {
				return userLookups(Compare{Path: AttrPath{Name: "emails"}, Op: c.Op, Value: c.Value})
			}
		}
	case Logical:
		l, lok := userLookups(x.Left)
		r, rok := userLookups(x.Right)
		if x.Op == "and" {
			switch {
			case lok:
				return l, true
			case rok:
				return r, true
			}
			return nil, false
		}
		if lok && rok {
			return append(l, r...), true
		}
	}
	return nil, false
}

// filterUsers finds the SCIM users f matches, in id order, and one page of them.
func (h *Handler) filterUsers(ctx context.Context, refs *groupRefs, f Filter, start, count int) ([]user.User, int, error) {
	lookups, indexed := userLookups(f)
	if !indexed {
		lookups = []user.Filter{{}}
	}
	return scan[user.User, user.Filter]{
		list: func(ctx context.Context, lf user.Filter, cursor string) ([]user.User, string, error) {
			lf.Source = user.SourceSCIM
			return h.Dir.Store.ListUsers(ctx, lf, store.MaxLimit, cursor)
		},
		id: func(u user.User) string { return u.ID },
		render: func(ctx context.Context, u user.User) (map[string]any, error) {
			return h.resource(ctx, refs, u)
		},
		what: "users", narrow: "userName eq, externalId eq, id eq or emails eq",
	}.run(ctx, lookups, f, start, count)
}

func (h *Handler) replaceUser(w http.ResponseWriter, r *http.Request, _ Token) {
	body, err := readBody(w, r)
	if err != nil {
		fail(w, r, err)
		return
	}
	cur, err := h.scimUser(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	h.update(w, r, cur, "scim.user.replace", "", func(u *user.User) error {
		nu, err := fromUserResource(body, *u)
		if err != nil {
			return err
		}
		*u = nu
		return validate(*u)
	})
}

func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request, _ Token) {
	body, err := readBody(w, r)
	if err != nil {
		fail(w, r, err)
		return
	}
	ops, err := decodePatch(body)
	if err != nil {
		fail(w, r, err)
		return
	}
	cur, err := h.scimUser(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	h.update(w, r, cur, "scim.user.update", summary(ops), func(u *user.User) error {
		res := userResource(*u, h.BaseURL, nil)
		if err := applyPatch(res, ops, userReadOnly); err != nil {
			return err
		}
		nu, err := fromUserResource(res, *u)
		if err != nil {
			return err
		}
		*u = nu
		return validate(*u)
	})
}

// update changes a SCIM user through the directory (so deactivation orphans the
// user's agents, audited) and answers the new resource.
func (h *Handler) update(w http.ResponseWriter, r *http.Request, cur user.User, action, reason string, change func(*user.User) error) {
	u, err := h.Dir.UpdateUser(r.Context(), cur.ID, "SCIM", change)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = &Error{Status: 404, Detail: fmt.Sprintf("no SCIM user has the id %q", cur.ID)}
		}
		fail(w, r, conflictError(err, u))
		return
	}
	switch {
	case cur.Active && !u.Active:
		action = "scim.user.deactivate"
	case !cur.Active && u.Active:
		action = "scim.user.activate"
	}
	if err := h.record(r.Context(), action, "user", u.ID, reason); err != nil {
		fail(w, r, err)
		return
	}
	res, err := h.resource(r.Context(), &groupRefs{h: h}, u)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request, _ Token) {
	cur, err := h.scimUser(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	if _, err := h.Dir.DeleteUser(r.Context(), cur.ID, "SCIM"); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = &Error{Status: 404, Detail: fmt.Sprintf("no SCIM user has the id %q", cur.ID)}
		}
		fail(w, r, err)
		return
	}
	if err := h.record(r.Context(), "scim.user.delete", "user", cur.ID, ""); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
