// Package scim is agentguard's SCIM 2.0 service provider (RFC 7643, RFC 7644): an
// enterprise IdP (Microsoft Entra ID, Okta, …) provisions and deprovisions users and
// groups at /scim/v2/Users and /scim/v2/Groups with a dedicated bearer token.
//
// SCIM manages only what it created (source "scim"): it cannot read, change or
// delete local users, users of other upstream providers, or local groups.
package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/user"
)

// Limits.
const (
	MaxBody      = 1 << 20
	DefaultCount = 100
	MaxCount     = 500
	// maxScan bounds the users or groups one filter without an indexable
	// equality reads.
	maxScan = 50000
)

// Handler serves /scim/v2.
type Handler struct {
	Dir    *user.Directory
	Tokens TokenStore
	Audit  audit.Recorder
	Now    func() time.Time
	// BaseURL is the public URL of /scim/v2 (the issuer + "/scim/v2"), used in
	// resource locations.
	BaseURL string
}

// Register adds the SCIM routes. They authenticate SCIM tokens themselves: admin
// and agent tokens are refused.
func (h *Handler) Register(mux *http.ServeMux) {
	route := func(pattern string, f func(http.ResponseWriter, *http.Request, Token)) {
		mux.Handle(pattern, h.guard(f))
	}
	route("GET /scim/v2/ServiceProviderConfig", h.serviceProviderConfig)
	route("GET /scim/v2/ResourceTypes", h.resourceTypes)
	route("GET /scim/v2/ResourceTypes/{name}", h.resourceType)
	route("GET /scim/v2/Schemas", h.schemas)
	route("GET /scim/v2/Schemas/{id}", h.schema)
	route("POST /scim/v2/Users", h.createUser)
	route("GET /scim/v2/Users", h.listUsers)
	route("GET /scim/v2/Users/{id}", h.getUser)
	route("PUT /scim/v2/Users/{id}", h.replaceUser)
	route("PATCH /scim/v2/Users/{id}", h.patchUser)
	route("DELETE /scim/v2/Users/{id}", h.deleteUser)
	route("POST /scim/v2/Groups", h.createGroup)
	route("GET /scim/v2/Groups", h.listGroups)
	route("GET /scim/v2/Groups/{id}", h.getGroup)
	route("PUT /scim/v2/Groups/{id}", h.replaceGroup)
	route("PATCH /scim/v2/Groups/{id}", h.patchGroup)
	route("DELETE /scim/v2/Groups/{id}", h.deleteGroup)
	route("POST /scim/v2/Users/.search", h.unsupported("POST .search (use GET with filter)"))
	route("POST /scim/v2/Bulk", h.unsupported("bulk operations"))
	route("GET /scim/v2/Me", h.unsupported("/Me"))
	mux.Handle("/scim/", h.guard(func(w http.ResponseWriter, r *http.Request, _ Token) {
		writeError(w, &Error{Status: 404, Detail: fmt.Sprintf("no SCIM endpoint %s %s; the resources are /scim/v2/Users and /scim/v2/Groups", r.Method, r.URL.Path)})
	}))
}

func (h *Handler) unsupported(what string) func(http.ResponseWriter, *http.Request, Token) {
	return func(w http.ResponseWriter, _ *http.Request, _ Token) {
		writeError(w, &Error{Status: 501, Detail: what + " is not supported; see /scim/v2/ServiceProviderConfig"})
	}
}

// guard authenticates the SCIM token and records refusals and failed changes as
// admin audit events (successful changes are recorded by the handlers).
func (h *Handler) guard(next func(http.ResponseWriter, *http.Request, Token)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, e := authenticate(r.Context(), h.Tokens, r, h.Now())
		if e != nil {
			h.deny(r, "", e.Detail)
			writeError(w, e)
			return
		}
		actor := "scim-token:" + tok.ID
		audit.RequestFrom(r.Context()).Actor = actor
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r, tok)
		if r.Method != http.MethodGet && sw.status >= 400 {
			h.deny(r, actor, fmt.Sprintf("HTTP %d", sw.status))
		}
	})
}

func (h *Handler) deny(r *http.Request, actor, reason string) {
	e := audit.Event{Category: audit.CategoryAdmin, Action: "scim " + r.Method + " " + r.URL.Path, Decision: audit.Deny,
		Reason: reason, User: actor, ResourceType: "scim"}
	audit.Fill(r.Context(), &e)
	if err := h.Audit.Record(r.Context(), e); err != nil {
		slog.ErrorContext(r.Context(), "could not record a SCIM refusal", "err", err)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// record writes the audit event of a successful SCIM change.
func (h *Handler) record(ctx context.Context, action, resourceType, resource, reason string) error {
	e := audit.Event{Category: audit.CategoryAdmin, Action: action, Decision: audit.Allow, Reason: reason,
		User: audit.RequestFrom(ctx).Actor, ResourceType: resourceType, Resource: resource}
	audit.Fill(ctx, &e)
	return h.Audit.Record(ctx, e)
}

// fail writes err: a SCIM *Error as is, anything else as a logged 500.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) {
		writeError(w, e)
		return
	}
	slog.ErrorContext(r.Context(), "SCIM request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, &Error{Status: 500, Detail: "internal error; the server log has the details"})
}

// readBody decodes a JSON object of at most MaxBody bytes. Unknown attributes are
// allowed: IdPs send many that agentguard does not keep.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, &Error{Status: 415, Detail: fmt.Sprintf("send the body as %s (got Content-Type %q)", ContentType, ct)}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Status: 413, Detail: fmt.Sprintf("the body is over the %d-byte limit", MaxBody)}
		}
		return nil, &Error{Status: 400, ScimType: "invalidSyntax", Detail: "the body is not a JSON object"}
	}
	if m == nil {
		return nil, &Error{Status: 400, ScimType: "invalidSyntax", Detail: "the body is not a JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{Status: 400, ScimType: "invalidSyntax", Detail: "the body has data after the JSON object"}
	}
	return m, nil
}

// paging reads startIndex (1-based) and count (RFC 7644 §3.4.2.4).
func paging(r *http.Request) (start, count int, err error) {
	q := r.URL.Query()
	start, count = 1, DefaultCount
	if s := q.Get("startIndex"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil {
			return 0, 0, &Error{Status: 400, ScimType: "invalidValue", Detail: "startIndex must be a whole number (1 is the first result)"}
		}
		start = max(n, 1)
	}
	if s := q.Get("count"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil {
			return 0, 0, &Error{Status: 400, ScimType: "invalidValue", Detail: "count must be a whole number"}
		}
		count = min(max(n, 0), MaxCount)
	}
	return start, count, nil
}

func listResponse(resources []any, total, start int) map[string]any {
	if resources == nil {
		resources = []any{}
	}
	return map[string]any{"schemas": []string{SchemaList}, "totalResults": total, "startIndex": start,
		"itemsPerPage": len(resources), "Resources": resources}
}

// parseFilterParam reads the filter query parameter.
func parseFilterParam(r *http.Request) (Filter, error) {
	s := r.URL.Query().Get("filter")
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	f, err := ParseFilter(s)
	if err != nil {
		return nil, &Error{Status: 400, ScimType: "invalidFilter", Detail: err.Error()}
	}
	return f, nil
}

// excluded reports whether the excludedAttributes parameter names attr.
func excluded(r *http.Request, attr string) bool {
	for _, a := range strings.Split(r.URL.Query().Get("excludedAttributes"), ",") {
		if strings.EqualFold(strings.TrimSpace(a), attr) {
			return true
		}
	}
	return false
}

// summary names the paths of a PATCH for the audit event (never the values).
func summary(ops []Operation) string {
	parts := make([]string, 0, len(ops))
	for _, o := range ops {
		p := o.Path
		if p == "" {
			if m, ok := o.Value.(map[string]any); ok {
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				p = "{" + strings.Join(keys, ",") + "}"
			}
		}
		if len(p) > 100 {
			p = p[:100] + "…"
		}
		parts = append(parts, o.Op+" "+p)
		if len(parts) == 20 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ops)-20))
			break
		}
	}
	return strings.Join(parts, "; ")
}
