package audit

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/api"
)

// Handler serves /api/v1/audit/events and /api/v1/audit/verify.
type Handler struct {
	Store    Store
	Verifier *Verifier
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/audit/events", wrap(http.HandlerFunc(h.search)))
	mux.Handle("GET /api/v1/audit/verify", wrap(http.HandlerFunc(h.verify)))
}

// filterParams are the query parameters that filter by equality, and where each goes.
func filterParams(f *Filter) map[string]*string {
	return map[string]*string{
		"agent_id": &f.AgentID, "user": &f.User, "client_id": &f.ClientID, "category": &f.Category,
		"action": &f.Action, "resource_type": &f.ResourceType, "resource": &f.Resource, "decision": &f.Decision,
	}
}

// ParseFilter reads the search query: equality filters, from/to (RFC 3339),
// limit (1..500, default 50) and cursor. Every wrong field is named in one 400.
func ParseFilter(r *http.Request) (Filter, error) {
	var f Filter
	var v api.Validator
	q := r.URL.Query()
	params := filterParams(&f)
	for name := range q {
		if _, ok := params[name]; !ok && name != "from" && name != "to" && name != "limit" && name != "cursor" {
			v.Add(name, "is not a filter; use agent_id, user, client_id, category, action, resource_type, resource, decision, from, to, limit or cursor")
		}
	}
	for name, dst := range params {
		*dst = q.Get(name)
		v.MaxLen(name, *dst, maxField)
	}
	if f.Category != "" {
		v.OneOf("category", f.Category, CategoryInbound, CategoryOutbound, CategoryCredential, CategoryToken, CategoryAdmin)
	}
	if f.Decision != "" {
		v.OneOf("decision", f.Decision, Allow, Deny)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				v.Add(p.name, "must be an RFC 3339 time such as 2025-06-01T12:00:00Z (got %q)", s)
			}
			*p.dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		v.Add("to", "must be after from")
	}
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		return f, err
	}
	f.Limit = limit
	if cursor != "" {
		seq, ok := decodeCursor(cursor)
		if !ok {
			v.Add("cursor", "is not a cursor this server returned; pass next_cursor from the previous page")
		}
		f.BeforeSeq = seq
	}
	return f, v.Err()
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "s") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	return n, err == nil && n > 0
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	events, err := h.Store.SearchAuditEvents(r.Context(), f)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = encodeCursor(events[limit-1].Seq)
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(events, next))
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	rep, err := h.Verifier.Verify(r.Context())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, rep)
}
