package oauth

import (
	"context"
	"net/http"
	"strings"

	"github.com/agentguard/agentguard/internal/client"
)

// Browsers. A single-page app (a public `spa` client) calls the token, revocation and
// userinfo endpoints from its own origin, so those answer CORS (Fetch standard):
//
//   - discovery and the JWKS are public documents: any origin;
//   - userinfo takes a bearer token, never a cookie, so no origin gains anything it
//     does not already hold: any origin;
//   - the token and revocation endpoints let a page read the answer only if its
//     origin is the origin of one of the calling client's redirect URIs
//     (client.OriginAllowed); a preflight is answered for any origin, since it
//     reveals nothing and the answer to the real request is what is guarded.
//
// No endpoint allows credentials (cookies): none of them reads one.

// allowAnyOrigin marks a public or bearer-only answer readable by any page.
func allowAnyOrigin(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

// allowClientOrigin lets the page of r read the answer if its origin belongs to the
// client: app when it authenticated, else the client the request names (so a page
// can read its error too). Agents (agt_…) are never browser clients.
func (s *Server) allowClientOrigin(ctx context.Context, w http.ResponseWriter, r *http.Request, app *client.Client, claimed string) {
	origin := r.Header.Get("Origin")
	if origin == "" || len(origin) > 512 {
		return
	}
	w.Header().Add("Vary", "Origin")
	if app == nil && s.Clients != nil && strings.HasPrefix(claimed, "cli_") {
		if c, err := s.Clients.GetClient(ctx, claimed); err == nil {
			app = &c
		}
	}
	if app != nil && app.OriginAllowed(origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
}

// preflight answers a CORS preflight (OPTIONS) for an endpoint of the methods.
func preflight(methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if o := r.Header.Get("Origin"); o != "" && len(o) <= 512 {
			h.Set("Access-Control-Allow-Origin", o)
			h.Add("Vary", "Origin")
		}
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	}
}
