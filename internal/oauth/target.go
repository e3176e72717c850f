package oauth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// target is what a token is for: one audience and the scopes on it.
type target struct {
	Audience string
	Scopes   []string
	Lifetime time.Duration
}

// requestedTarget reads the audience and scopes a request names: RFC 8707 resource
// (and RFC 8693 audience), plain scopes, and the compatible "audience|scope" form.
// One token is for one audience. No audience at all means the issuer itself.
func (s *Server) requestedTarget(req *tokenRequest) (aud string, scopes []string, e *Error) {
	auds := map[string]bool{}
	for _, r := range append(slices.Clone(req.Resources), req.Audiences...) {
		if !api.ValidAudience(r) {
			return "", nil, invalidTarget("resource %q is not an absolute URI without a fragment", r)
		}
		auds[r] = true
	}
	for _, tok := range strings.Fields(req.Scope) {
		a, sc, piped := strings.Cut(tok, "|")
		if !piped {
			scopes = append(scopes, tok)
			continue
		}
		if !api.ValidAudience(a) || sc == "" {
			return "", nil, invalidScope("scope %q is not of the form <audience>|<scope>", tok)
		}
		auds[a] = true
		scopes = append(scopes, sc)
	}
	switch len(auds) {
	case 0:
		aud = s.Issuer.URL
		if len(scopes) == 0 {
			scopes = []string{grant.ScopeCredentials}
		}
	case 1:
		for a := range auds {
			aud = a
		}
	default:
		list := make([]string, 0, len(auds))
		for a := range auds {
			list = append(list, a)
		}
		slices.Sort(list)
		return "", nil, invalidTarget("a token is for one audience; this request names %s: ask for one token per audience", strings.Join(list, ", "))
	}
	slices.Sort(scopes)
	return aud, slices.Compact(scopes), nil
}

// authorize checks the agent's grant on the audience and the resource server's
// scopes. No scopes requested means every scope the grant holds.
func (s *Server) authorize(ctx context.Context, agentID, aud string, scopes []string) (target, *Error) {
	return s.authorizeFor(ctx, agentID, aud, scopes, nil)
}

// authorizeFor is authorize for a token on behalf of user u (nil: the agent itself):
// the scopes are then what the agent's grant allows intersected with what the user
// may hold (scopes restricted to groups). A requested scope the user may not hold is
// invalid_scope; no scope requested means the whole intersection.
func (s *Server) authorizeFor(ctx context.Context, agentID, aud string, scopes []string, u *user.User) (target, *Error) {
	rs, g, err := s.resourceAndGrant(ctx, aud, agentID)
	if errors.Is(err, store.ErrNotFound) {
		return target{}, invalidTarget("no resource server has the audience %q; register it with POST /api/v1/resource-servers", aud)
	} else if err != nil {
		return target{}, serverError()
	}
	var undefined []string
	for _, sc := range scopes {
		if !rs.HasScope(sc) {
			undefined = append(undefined, sc)
		}
	}
	if len(undefined) > 0 {
		hint := ""
		if aud == s.Issuer.URL {
			hint = "; to ask for another resource server's scopes, add resource=<its audience> or write the scope as <audience>|<scope>"
		}
		return target{}, invalidScope("the resource server %q does not define the scope(s) %s%s", aud, strings.Join(undefined, ", "), hint)
	}
	if g == nil {
		return target{}, invalidTarget("agent %s has no grant on the audience %q", agentID, aud)
	}
	requested := len(scopes) > 0
	if !requested {
		scopes = g.Scopes
	}
	var denied []string
	for _, sc := range scopes {
		if !slices.Contains(g.Scopes, sc) {
			denied = append(denied, sc)
		}
	}
	if len(denied) > 0 {
		return target{}, invalidScope("agent %s is not granted %s on %q", agentID, strings.Join(denied, ", "), aud)
	}
	if u != nil {
		var allowed, refused []string
		for _, name := range scopes {
			sc, _ := rs.Scope(name)
			switch {
			case aud == s.Issuer.URL && name == grant.ScopeAdmin:
				refused = append(refused, name) // the management API is never delegated
			case sc.AllowsUser(u.Groups):
				allowed = append(allowed, name)
			default:
				refused = append(refused, name)
			}
		}
		if requested && len(refused) > 0 {
			return target{}, invalidScope("user %s may not hold %s on %q (restricted to other groups, or not delegable)", u.ID, strings.Join(refused, ", "), aud)
		}
		if len(allowed) == 0 {
			return target{}, invalidScope("user %s may hold none of the scopes agent %s is granted on %q", u.ID, agentID, aud)
		}
		scopes = allowed
	}
	if len(scopes) == 0 {
		return target{}, invalidScope("agent %s holds no scopes on %q", agentID, aud)
	}
	lifetime := rs.TokenLifetime
	if lifetime <= 0 {
		lifetime = resource.DefaultTokenLifetime
	}
	return target{Audience: aud, Scopes: scopes, Lifetime: lifetime}, nil
}

// resourceAndGrant reads the resource server with the audience and the agent's grant
// on it (nil if none): one read with Targets, else two.
func (s *Server) resourceAndGrant(ctx context.Context, aud, agentID string) (resource.Server, *grant.Grant, error) {
	if s.Targets != nil {
		return s.Targets.ResourceServerAndGrant(ctx, aud, agentID)
	}
	rs, err := s.Resources.GetResourceServerByAudience(ctx, aud)
	if err != nil {
		return rs, nil, err
	}
	g, err := s.Grants.GrantFor(ctx, agentID, aud)
	if errors.Is(err, store.ErrNotFound) {
		return rs, nil, nil
	}
	return rs, &g, err
}
