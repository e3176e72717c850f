package verify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Caller is who sent a request, from its verified access token.
type Caller struct {
	// Subject is the token's sub: the agent acting as itself, or the user an agent
	// acts for (then Actors is not empty).
	Subject string
	// ClientID is the OAuth client the token was issued to: the agent, or for a
	// user's token the client app the user signed in through.
	ClientID string
	// Actors is the delegation chain from the act claim (RFC 8693), immediate
	// actor first: Actors[0] is the agent that presented the token on Subject's
	// behalf, Actors[1] the one that delegated to it, and so on.
	Actors []string
	// Scopes granted.
	Scopes   []string
	Audience []string
	Issuer   string
	TokenID  string
	IssuedAt time.Time
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// Token is the raw access token, for an agent that exchanges it (token
	// exchange) to act on the caller's behalf. Never log it; String leaves it out.
	Token string
}

// Delegated reports whether an agent acts on behalf of Subject.
func (c *Caller) Delegated() bool { return len(c.Actors) > 0 }

// Agent is the agent behind the call: the immediate actor if delegated, else the
// client the token was issued to.
func (c *Caller) Agent() string {
	if len(c.Actors) > 0 {
		return c.Actors[0]
	}
	return c.ClientID
}

// HasScopes reports whether every one of scopes was granted.
func (c *Caller) HasScopes(scopes ...string) bool {
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// String describes the caller without the token.
func (c *Caller) String() string {
	s := "Caller{sub=" + strconv.Quote(c.Subject) + " client=" + strconv.Quote(c.ClientID)
	if len(c.Actors) > 0 {
		s += " act=" + strings.Join(c.Actors, ">")
	}
	return s + " scope=" + strconv.Quote(strings.Join(c.Scopes, " ")) + "}"
}

// GoString is String (the token stays out of %#v too).
func (c *Caller) GoString() string { return c.String() }

// LogValue keeps the token out of slog output.
func (c *Caller) LogValue() slog.Value {
	return slog.GroupValue(slog.String("sub", c.Subject), slog.String("client_id", c.ClientID),
		slog.String("act", strings.Join(c.Actors, ">")), slog.String("scope", strings.Join(c.Scopes, " ")))
}

type callerKey struct{}

// CallerFrom returns the verified caller the middleware put in ctx.
func CallerFrom(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok
}

// WithCaller returns ctx carrying c (for handlers tested without the middleware).
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// Middleware admits requests with a valid token carrying Config.RequiredScopes.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return v.Require()(next)
}

// Require returns middleware that admits requests whose token is valid and
// carries Config.RequiredScopes plus scopes. Refusals follow RFC 6750 §3: no or
// an unusable Authorization header is 401 with a bare Bearer challenge; an invalid
// token is 401 error="invalid_token"; missing scopes are 403
// error="insufficient_scope" with the scopes needed; the challenge carries
// resource_metadata (RFC 9728) when configured.
func (v *Verifier) Require(scopes ...string) func(http.Handler) http.Handler {
	need := append(slices.Clone(v.cfg.RequiredScopes), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, problem := bearer(r)
			if problem != "" {
				code := ""
				if problem != "missing" {
					code = "invalid_request"
				}
				v.challenge(w, http.StatusUnauthorized, code, problem, need)
				return
			}
			caller, err := v.Verify(r.Context(), raw)
			if err != nil {
				var te *TokenError
				if errors.As(err, &te) {
					v.challenge(w, http.StatusUnauthorized, "invalid_token", te.Detail, need)
					return
				}
				w.Header().Set("Retry-After", "10")
				detail := "the issuer's signing keys cannot be fetched; try again shortly"
				if errors.Is(err, ErrIntrospectionUnavailable) {
					detail = "the token's status cannot be checked with the issuer; try again shortly"
				}
				writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", detail)
				return
			}
			if !caller.HasScopes(need...) {
				v.challenge(w, http.StatusForbidden, "insufficient_scope", "the token lacks a required scope (needs: "+strings.Join(need, " ")+")", need)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), caller)))
		})
	}
}

// bearer extracts the token of "Authorization: Bearer <token>". Tokens in the
// query or the body are not accepted (RFC 6750 §2.2 and §2.3 are optional, and
// tokens in URLs end up in logs).
func bearer(r *http.Request) (string, string) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", "missing"
	}
	if len(h) > 1 {
		return "", "more than one Authorization header"
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", "the Authorization header is not Bearer <token>"
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", "the Authorization header is not Bearer <token>"
	}
	return tok, ""
}

func (v *Verifier) challenge(w http.ResponseWriter, status int, code, desc string, scopes []string) {
	var params []string
	if code != "" {
		params = append(params, `error="`+code+`"`, `error_description="`+quoteSafe(desc)+`"`)
	}
	if len(scopes) > 0 {
		params = append(params, `scope="`+quoteSafe(strings.Join(scopes, " "))+`"`)
	}
	if v.cfg.ResourceMetadataURL != "" {
		params = append(params, `resource_metadata="`+quoteSafe(v.cfg.ResourceMetadataURL)+`"`)
	}
	ch := "Bearer"
	if len(params) > 0 {
		ch += " " + strings.Join(params, ", ")
	}
	w.Header().Set("WWW-Authenticate", ch)
	if code == "" {
		// RFC 6750 §3.1: no error code in the challenge when the request has no
		// token; the body still says what to do.
		code, desc = "unauthorized", "no access token: send Authorization: Bearer <token>"
	}
	writeError(w, status, code, desc)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// quoteSafe makes s safe inside a quoted-string of a challenge: RFC 6750 §3 allows
// %x20-21 / %x23-5B / %x5D-7E in error_description.
func quoteSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '\''
		}
	}
	return string(b)
}
