package scim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the SCIM media type (RFC 7644 §3.1).
const ContentType = "application/scim+json"

// Error is an RFC 7644 §3.12 error.
type Error struct {
	Status   int
	ScimType string // invalidFilter, tooMany, uniqueness, mutability, invalidSyntax, invalidPath, noTarget, invalidValue, …
	Detail   string
}

func (e *Error) Error() string { return e.Detail }

// writeError renders e as application/scim+json; status is a string per the RFC.
func writeError(w http.ResponseWriter, e *Error) {
	body := map[string]any{"schemas": []string{SchemaError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentguard-scim"`)
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
