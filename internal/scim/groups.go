package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// maxMembers bounds the members one group resource lists.
const maxMembers = 100000

func (h *Handler) groupResource(ctx context.Context, g user.Group, withMembers bool) (map[string]any, error) {
	loc := h.BaseURL + "/Groups/" + g.ID
	r := map[string]any{
		"schemas":     []any{SchemaGroup},
		"id":          g.ID,
		"displayName": g.Name,
		"meta":        meta("Group", loc, g.CreatedAt, g.UpdatedAt),
	}
	if g.ExternalID != "" {
		r["externalId"] = g.ExternalID
	}
	if !withMembers {
		return r, nil
	}
	members := []any{}
	cursor := ""
	for len(members) < maxMembers {
		ms, next, err := h.Dir.Store.ListMembers(ctx, g.ID, store.MaxLimit, cursor)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			members = append(members, map[string]any{"value": m.UserID, "display": m.Username, "$ref": h.BaseURL + "/Users/" + m.UserID, "type": "User"})
		}
		if next == "" {
			break
		}
		cursor = next
	}
	r["members"] = members
	return r, nil
}

func (h *Handler) scimGroup(r *http.Request) (user.Group, error) {
	id := r.PathValue("id")
	gs, _, err := h.Dir.Store.ListGroups(r.Context(), user.GroupFilter{ID: id, Source: user.SourceSCIM}, 1, "")
	if err != nil {
		return user.Group{}, err
	}
	if len(gs) == 0 {
		return user.Group{}, &Error{Status: 404, Detail: fmt.Sprintf("no SCIM group has the id %q", id)}
	}
	return gs[0], nil
}

// memberIDs reads a members value ([{"value": "<user id>"}]) and checks that each is
// a user SCIM provisioned.
func (h *Handler) memberIDs(ctx context.Context, v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v} // a single member object
	}
	ids := make([]string, 0, len(list))
	for _, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			return nil, invalid("members", `must be a list of {"value": "<user id>"}`)
		}
		raw, _ := getCI(m, "value")
		id, ok := raw.(string)
		if !ok || id == "" {
			return nil, invalid("members", `each member needs "value": the user's id`)
		}
		u, err := h.Dir.GetUser(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.Source != user.SourceSCIM) {
			return nil, invalid("members", "%q is not a user provisioned through SCIM", id)
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func groupName(body map[string]any) (string, error) {
	v, _ := getCI(body, "displayName")
	name, ok := v.(string)
	if !ok {
		return "", &Error{Status: 400, ScimType: "invalidValue", Detail: "displayName is required (a string)"}
	}
	if msg := user.CheckGroupName(name); msg != "" {
		return "", invalid("displayName", "%s", msg)
	}
	return name, nil
}

func externalID(body map[string]any) (string, error) {
	v, ok := getCI(body, "externalId")
	if !ok || v == nil {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr || len(s) > user.MaxExternalIDBytes {
		return "", invalid("externalId", "must be a string of at most %d bytes", user.MaxExternalIDBytes)
	}
	return s, nil
}

func groupConflict(err error, name string) error {
	if errors.Is(err, store.ErrConflict) {
		return &Error{Status: 409, ScimType: "uniqueness", Detail: fmt.Sprintf("a group named %q (or with that externalId) already exists", name)}
	}
	return err
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request, _ Token) {
	body, err := readBody(w, r)
	if err != nil {
		fail(w, r, err)
		return
	}
	name, err := groupName(body)
	if err != nil {
		fail(w, r, err)
		return
	}
	ext, err := externalID(body)
	if err != nil {
		fail(w, r, err)
		return
	}
	mv, _ := getCI(body, "members")
	ids, err := h.memberIDs(r.Context(), mv)
	if err != nil {
		fail(w, r, err)
		return
	}
	now := h.Now().UTC()
	g := user.Group{ID: secret.NewID(strings.TrimSuffix(user.GroupIDPrefix, "_")), Name: name, ExternalID: ext, Source: user.SourceSCIM, CreatedAt: now, UpdatedAt: now}
	if err := h.Dir.Store.CreateGroup(r.Context(), g, ids, user.SourceSCIM); err != nil {
		fail(w, r, groupConflict(err, name))
		return
	}
	if err := h.record(r.Context(), "scim.group.create", "group", g.ID, fmt.Sprintf("%d members", len(ids))); err != nil {
		fail(w, r, err)
		return
	}
	res, err := h.groupResource(r.Context(), g, true)
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("Location", h.BaseURL+"/Groups/"+g.ID)
	writeJSON(w, http.StatusCreated, res)
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request, _ Token) {
	g, err := h.scimGroup(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	res, err := h.groupResource(r.Context(), g, !excluded(r, "members"))
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// groupLookups is userLookups for groups: displayName, externalId and id equality.
func groupLookups(f Filter) ([]user.GroupFilter, bool) {
	switch x := f.(type) {
	case Compare:
		s, isStr := x.Value.(string)
		if x.Op != "eq" || !isStr || x.Path.Sub != "" || (x.Path.URN != "" && !strings.EqualFold(x.Path.URN, SchemaGroup)) {
			return nil, false
		}
		switch strings.ToLower(x.Path.Name) {
		case "displayname":
			return []user.GroupFilter{{Name: s}}, true
		case "externalid":
			return []user.GroupFilter{{ExternalID: s}}, true
		case "id":
			return []user.GroupFilter{{ID: s}}, true
		}
	case Logical:
		l, lok := groupLookups(x.Left)
		r, rok := groupLookups(x.Right)
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

// mentions reports whether the filter reads attribute name.
func mentions(f Filter, name string) bool {
	switch x := f.(type) {
	case Compare:
		return strings.EqualFold(x.Path.Name, name)
	case ValuePath:
		return strings.EqualFold(x.Path.Name, name)
	case Logical:
		return mentions(x.Left, name) || mentions(x.Right, name)
	case Not:
		return mentions(x.X, name)
	}
	return false
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request, _ Token) {
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
	var page []user.Group
	var total int
	if f == nil {
		page, total, err = h.Dir.Store.ListGroupsAt(ctx, user.GroupFilter{Source: user.SourceSCIM}, start-1, count)
	} else {
		page, total, err = h.filterGroups(ctx, f, start, count)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	withMembers := !excluded(r, "members")
	out := make([]any, 0, len(page))
	for _, g := range page {
		res, err := h.groupResource(ctx, g, withMembers)
		if err != nil {
			fail(w, r, err)
			return
		}
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, listResponse(out, total, start))
}

func (h *Handler) filterGroups(ctx context.Context, f Filter, start, count int) ([]user.Group, int, error) {
	lookups, indexed := groupLookups(f)
	if !indexed {
		lookups = []user.GroupFilter{{}}
	}
	needMembers := mentions(f, "members")
	return scan[user.Group, user.GroupFilter]{
		list: func(ctx context.Context, lf user.GroupFilter, cursor string) ([]user.Group, string, error) {
			lf.Source = user.SourceSCIM
			return h.Dir.Store.ListGroups(ctx, lf, store.MaxLimit, cursor)
		},
		id: func(g user.Group) string { return g.ID },
		render: func(ctx context.Context, g user.Group) (map[string]any, error) {
			return h.groupResource(ctx, g, needMembers)
		},
		what: "groups", narrow: "displayName eq, externalId eq or id eq",
	}.run(ctx, lookups, f, start, count)
}

func (h *Handler) replaceGroup(w http.ResponseWriter, r *http.Request, _ Token) {
	body, err := readBody(w, r)
	if err != nil {
		fail(w, r, err)
		return
	}
	g, err := h.scimGroup(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	name, err := groupName(body)
	if err != nil {
		fail(w, r, err)
		return
	}
	ext, err := externalID(body)
	if err != nil {
		fail(w, r, err)
		return
	}
	mv, _ := getCI(body, "members")
	ids, err := h.memberIDs(r.Context(), mv)
	if err != nil {
		fail(w, r, err)
		return
	}
	ctx := r.Context()
	if g, err = h.Dir.Store.UpdateGroup(ctx, g.ID, func(x *user.Group) error {
		x.Name, x.ExternalID, x.UpdatedAt = name, ext, h.Now().UTC()
		return nil
	}); err != nil {
		fail(w, r, groupConflict(err, name))
		return
	}
	if err := h.Dir.Store.SetMembers(ctx, g.ID, ids, user.SourceSCIM, h.Now().UTC()); err != nil {
		fail(w, r, err)
		return
	}
	h.groupDone(w, r, g.ID, "scim.group.replace", fmt.Sprintf("%d members", len(ids)))
}

// groupDone records the change and answers the group as it is now.
func (h *Handler) groupDone(w http.ResponseWriter, r *http.Request, id, action, reason string) {
	if err := h.record(r.Context(), action, "group", id, reason); err != nil {
		fail(w, r, err)
		return
	}
	g, err := h.Dir.Store.GetGroup(r.Context(), id)
	if err != nil {
		fail(w, r, err)
		return
	}
	res, err := h.groupResource(r.Context(), g, !excluded(r, "members"))
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// patchGroup applies member changes straight to the store, so a group of any size
// takes an add or remove without being read whole.
func (h *Handler) patchGroup(w http.ResponseWriter, r *http.Request, _ Token) {
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
	g, err := h.scimGroup(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	// Expand path-less operations into one per attribute.
	var flat []Operation
	for _, o := range ops {
		if o.Path != "" {
			flat = append(flat, o)
			continue
		}
		m, ok := o.Value.(map[string]any)
		if !ok || o.Op == "remove" {
			fail(w, r, &Error{Status: 400, ScimType: "invalidSyntax", Detail: "an operation without a path needs op add or replace and an object value"})
			return
		}
		for k, v := range m {
			if strings.EqualFold(k, "id") || strings.EqualFold(k, "schemas") || strings.EqualFold(k, "meta") {
				continue // Okta repeats the id in replace operations
			}
			flat = append(flat, Operation{Op: o.Op, Path: k, Value: v})
		}
	}
	ctx := r.Context()
	now := h.Now().UTC()
	for _, o := range flat {
		p, err := ParsePath(o.Path)
		if err != nil {
			fail(w, r, &Error{Status: 400, ScimType: "invalidPath", Detail: err.Error()})
			return
		}
		switch strings.ToLower(p.Attr.Name) {
		case "members":
			err = h.patchMembers(ctx, g.ID, o, p, now)
		case "displayname":
			name, ok := o.Value.(string)
			if o.Op == "remove" || !ok {
				err = invalid("displayName", "must be a string and cannot be removed")
				break
			}
			if msg := user.CheckGroupName(name); msg != "" {
				err = invalid("displayName", "%s", msg)
				break
			}
			_, err = h.Dir.Store.UpdateGroup(ctx, g.ID, func(x *user.Group) error { x.Name, x.UpdatedAt = name, now; return nil })
			err = groupConflict(err, name)
		case "externalid":
			ext := ""
			if o.Op != "remove" {
				if ext, err = externalID(map[string]any{"externalId": o.Value}); err != nil {
					break
				}
			}
			_, err = h.Dir.Store.UpdateGroup(ctx, g.ID, func(x *user.Group) error { x.ExternalID, x.UpdatedAt = ext, now; return nil })
			err = groupConflict(err, g.Name)
		case "id", "meta":
			err = &Error{Status: 400, ScimType: "mutability", Detail: p.Attr.Name + " cannot be changed"}
		default:
			err = &Error{Status: 400, ScimType: "invalidPath", Detail: fmt.Sprintf("%q is not a group attribute agentguard keeps (displayName, externalId, members)", o.Path)}
		}
		if err != nil {
			fail(w, r, err)
			return
		}
	}
	h.groupDone(w, r, g.ID, "scim.group.update", summary(ops))
}

func (h *Handler) patchMembers(ctx context.Context, groupID string, o Operation, p Path, at time.Time) error {
	if p.Filter != nil {
		// members[value eq "<id>"] (or several joined by or): remove those.
		if o.Op != "remove" {
			return &Error{Status: 400, ScimType: "invalidPath", Detail: "a members filter is only for remove; add members with path members and a value list"}
		}
		ids, ok := memberFilterIDs(p.Filter)
		if !ok {
			return &Error{Status: 400, ScimType: "invalidFilter", Detail: `a members filter must be value eq "<user id>" (or several joined by or)`}
		}
		return h.Dir.Store.RemoveMembers(ctx, groupID, ids, at)
	}
	switch o.Op {
	case "add":
		ids, err := h.memberIDs(ctx, o.Value)
		if err != nil {
			return err
		}
		return h.Dir.Store.AddMembers(ctx, groupID, ids, user.SourceSCIM, at)
	case "replace":
		ids, err := h.memberIDs(ctx, o.Value)
		if err != nil {
			return err
		}
		return h.Dir.Store.SetMembers(ctx, groupID, ids, user.SourceSCIM, at)
	default: // remove
		if o.Value == nil {
			return h.Dir.Store.SetMembers(ctx, groupID, nil, user.SourceSCIM, at)
		}
		list, ok := o.Value.([]any)
		if !ok {
			list = []any{o.Value}
		}
		var ids []string
		for _, el := range list {
			m, _ := el.(map[string]any)
			v, _ := getCI(m, "value")
			id, ok := v.(string)
			if !ok {
				return invalid("members", `each member to remove needs "value": the user's id`)
			}
			ids = append(ids, id)
		}
		return h.Dir.Store.RemoveMembers(ctx, groupID, ids, at)
	}
}

// memberFilterIDs reads `value eq "a" or value eq "b"`.
func memberFilterIDs(f Filter) ([]string, bool) {
	switch x := f.(type) {
	case Compare:
		s, ok := x.Value.(string)
		if x.Op == "eq" && ok && strings.EqualFold(x.Path.Name, "value") && x.Path.Sub == "" {
			return []string{s}, true
		}
	case Logical:
		if x.Op == "or" {
			l, lok := memberFilterIDs(x.Left)
			r, rok := memberFilterIDs(x.Right)
			return append(l, r...), lok && rok
		}
	}
	return nil, false
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request, _ Token) {
	g, err := h.scimGroup(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	if err := h.Dir.Store.DeleteGroup(r.Context(), g.ID); err != nil {
		fail(w, r, err)
		return
	}
	if err := h.record(r.Context(), "scim.group.delete", "group", g.ID, ""); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
