package signin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// Prefixes of the secrets in cookies and forms.
const (
	sessionPrefix = "agss" // session cookie
	browserPrefix = "agbr" // binds a pending sign-in to the browser that started it
	csrfPrefix    = "agcf" // the login form's CSRF token
)

// touchEvery throttles last-seen writes: activity within it is not written again.
const touchEvery = time.Minute

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	})
}

// alive reports whether ss has timed out neither idle nor absolute at now.
func (h *Handler) alive(ss session.Session, now time.Time) bool {
	return now.Before(ss.ExpiresAt) && now.Sub(ss.LastSeen) < h.SessionIdle
}

// currentSession returns the browser's live session and its active user, if any.
// A session whose user is gone or deactivated counts as none.
func (h *Handler) currentSession(r *http.Request) (*session.Session, *user.User, error) {
	ctx := r.Context()
	c, err := r.Cookie(h.cookieNames.session)
	if err != nil || !secret.HasPrefix(c.Value, sessionPrefix) || len(c.Value) > 128 {
		return nil, nil, nil
	}
	ss, err := h.Store.GetSession(ctx, secret.Hash(c.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	now := h.Now()
	if !h.alive(ss, now) {
		return nil, nil, nil
	}
	u, err := h.Users.GetUser(ctx, ss.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	if !u.Active {
		return nil, nil, nil
	}
	if now.Sub(ss.LastSeen) >= touchEvery {
		if err := h.Store.TouchSession(ctx, ss.SID, now); err != nil {
			return nil, nil, err
		}
	}
	return &ss, &u, nil
}

// startSession signs the browser in as u: always a new session id (a session
// fixed by an attacker before sign-in is never promoted), replacing the browser's
// previous session.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, u user.User) (session.Session, error) {
	now := h.Now()
	replaces := ""
	if c, err := r.Cookie(h.cookieNames.session); err == nil && secret.HasPrefix(c.Value, sessionPrefix) && len(c.Value) <= 128 {
		replaces = secret.Hash(c.Value)
	}
	value := secret.New(sessionPrefix)
	ss := session.Session{
		IDHash: secret.Hash(value), SID: secret.NewID("ses"), UserID: u.ID,
		AuthTime: now, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(h.SessionLifetime),
	}
	if err := h.Store.CreateSession(r.Context(), ss, replaces); err != nil {
		return ss, err
	}
	// A session cookie (no Max-Age): it ends with the browser, or earlier on the server.
	h.setCookie(w, h.cookieNames.session, value, 0)
	return ss, nil
}

// SessionAlive implements oauth.Sessions: codes and refresh tokens bound to a
// session stop working when it ends. A refresh counts as activity.
func (h *Handler) SessionAlive(ctx context.Context, sid string) (bool, error) {
	ss, err := h.Store.GetSessionBySID(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	now := h.Now()
	if !h.alive(ss, now) {
		return false, nil
	}
	if now.Sub(ss.LastSeen) >= touchEvery {
		if err := h.Store.TouchSession(ctx, sid, now); err != nil {
			return false, err
		}
	}
	return true, nil
}
