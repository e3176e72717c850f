package oauth

import (
	"net/http"
	"strings"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/token"
)

// userinfo is the OIDC Core §5.3 response: the claims the token's scopes release.
type userinfo struct {
	Subject           string   `json:"sub"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// handleUserinfo answers OIDC userinfo for a user's access token with the openid
// scope, sent as a Bearer token (RFC 6750 §2.1). Errors carry the RFC 6750 challenge.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	allowAnyOrigin(w)
	ev := audit.Event{Category: audit.CategoryToken, Action: "token.userinfo", Decision: audit.Deny, ResourceType: "user"}
	fail := func(status int, code, desc string) {
		ev.Reason = code + ": " + desc
		if s.record(ctx, ev) != nil {
			writeOAuthError(w, serverError())
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentguard", error="`+code+`", error_description="`+desc+`"`)
		writeJSON(w, status, &Error{Code: code, Description: desc})
	}
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		ev.Reason = "no bearer token"
		if s.record(ctx, ev) != nil {
			writeOAuthError(w, serverError())
			return
		}
		// RFC 6750 §3.1: no error code when the request had no token at all.
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentguard"`)
		writeJSON(w, http.StatusUnauthorized, &Error{Code: "invalid_request", Description: "send the access token as Authorization: Bearer <token>"})
		return
	}
	c, err := s.Issuer.Verify(ctx, raw)
	if err != nil {
		fail(http.StatusUnauthorized, "invalid_token", "the access token is not valid: "+err.Error())
		return
	}
	ev.User, ev.Resource = c.Subject, c.Subject
	setCaller(&ev, c.ClientID)
	if !isUserSubject(c.Subject) {
		fail(http.StatusUnauthorized, "invalid_token", "the access token is not a user's token")
		return
	}
	scopes := grant.SplitScopes(c.Scope)
	if !contains(scopes, ScopeOpenID) {
		fail(http.StatusForbidden, "insufficient_scope", "the access token lacks the openid scope")
		return
	}
	u, err := s.Users.GetUser(ctx, c.Subject)
	if err != nil || !u.Active {
		fail(http.StatusUnauthorized, "invalid_token", "the token's user no longer exists or is deactivated")
		return
	}
	var id token.IDClaims
	fillProfile(&id, u, scopes)
	ev.Decision, ev.Reason = audit.Allow, "scope="+c.Scope
	if s.record(ctx, ev) != nil {
		writeOAuthError(w, serverError())
		return
	}
	writeJSON(w, http.StatusOK, userinfo{Subject: u.ID, Name: id.Name, PreferredUsername: id.PreferredUsername, Email: id.Email, Groups: id.Groups})
}
