// Package api is the toolkit every management and agent endpoint uses: RFC 9457
// problem responses, strict JSON decoding with a size limit, field validation and
// list paging. Handlers live in their domain packages.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/agentguard/agentguard/internal/store"
)

// FieldError names one invalid field and what would be right.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error is an RFC 9457 problem. Handlers return it; WriteError renders it.
type Error struct {
	Status int          `json:"status"`
	Title  string       `json:"title"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
	Type   string       `json:"type"`
	// Header is set on the response (WWW-Authenticate, Retry-After).
	Header http.Header `json:"-"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Detail) }

// Problem makes an Error with the standard title for status.
func Problem(status int, format string, args ...any) *Error {
	return &Error{Status: status, Title: http.StatusText(status), Detail: fmt.Sprintf(format, args...), Type: "about:blank"}
}

// Invalid is a 400 naming the fields that were wrong.
func Invalid(errs ...FieldError) *Error {
	e := Problem(http.StatusBadRequest, "the request has invalid fields; see errors")
	e.Type = "https://agentguard.dev/problems/validation"
	e.Errors = errs
	if len(errs) == 1 {
		e.Detail = errs[0].Field + ": " + errs[0].Detail
	}
	return e
}

// Unauthorized is a 401 with the RFC 6750 challenge.
func Unauthorized(detail string) *Error {
	e := Problem(http.StatusUnauthorized, "%s", detail)
	e.Header = http.Header{}
	e.Header.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+challengeText(detail)+`"`)
	return e
}

// challengeText makes s fit an RFC 6750 §3 error_description: printable ASCII
// without '"' or backslash (those become an apostrophe, other bytes '?'), at most 256 bytes.
func challengeText(s string) string {
	b := make([]byte, 0, min(len(s), 256))
	for _, r := range s {
		if len(b) >= 256 {
			break
		}
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\'')
		case r >= 0x20 && r <= 0x7e:
			b = append(b, byte(r))
		default:
			b = append(b, '?')
		}
	}
	return string(b)
}

// Forbidden is a 403.
func Forbidden(format string, args ...any) *Error {
	return Problem(http.StatusForbidden, format, args...)
}

// NotFound is a 404 naming what was looked for.
func NotFound(format string, args ...any) *Error {
	return Problem(http.StatusNotFound, format, args...)
}

// Conflict is a 409.
func Conflict(format string, args ...any) *Error {
	return Problem(http.StatusConflict, format, args...)
}

// WriteError renders err as a problem. Store sentinels map to 404/409; anything
// else is a 500 whose detail is logged, not sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var pe *Error
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, store.ErrNotFound):
		pe = NotFound("no such resource: %s", r.URL.Path)
	case errors.Is(err, store.ErrConflict):
		pe = Conflict("a resource with that identifier already exists")
	default:
		slog.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		pe = Problem(http.StatusInternalServerError, "internal error; the server log has the details")
	}
	for k, v := range pe.Header {
		w.Header()[k] = v
	}
	if pe.Type == "" {
		pe.Type = "about:blank"
	}
	if pe.Title == "" {
		pe.Title = http.StatusText(pe.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(pe.Status)
	json.NewEncoder(w).Encode(pe)
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
