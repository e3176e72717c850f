package oauth

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is an RFC 6749 §5.2 error response.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	status      int
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), status: status}
}

func invalidRequest(format string, args ...any) *Error {
	return oauthErr(http.StatusBadRequest, "invalid_request", format, args...)
}
func invalidClient(format string, args ...any) *Error {
	return oauthErr(http.StatusUnauthorized, "invalid_client", format, args...)
}
func invalidGrant(format string, args ...any) *Error {
	return oauthErr(http.StatusBadRequest, "invalid_grant", format, args...)
}
func invalidScope(format string, args ...any) *Error {
	return oauthErr(http.StatusBadRequest, "invalid_scope", format, args...)
}
func invalidTarget(format string, args ...any) *Error {
	return oauthErr(http.StatusBadRequest, "invalid_target", format, args...)
}
func unauthorizedClient(format string, args ...any) *Error {
	return oauthErr(http.StatusBadRequest, "unauthorized_client", format, args...)
}
func serverError() *Error {
	return oauthErr(http.StatusInternalServerError, "server_error", "the server failed to process the request; its log has the details")
}

func writeOAuthError(w http.ResponseWriter, e *Error) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="agentguard", charset="UTF-8"`)
	}
	writeJSON(w, e.status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
