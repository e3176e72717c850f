package signin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/token"
)

// logoutCSRF is the confirmation form's token: an HMAC of a fixed label keyed by the
// session cookie, so only a page that could read the cookie's value could make it.
func logoutCSRF(sessionCookie string) string {
	m := hmac.New(sha256.New, []byte(sessionCookie))
	m.Write([]byte("agentguard logout confirmation"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// handleLogout is OpenID Connect RP-Initiated Logout 1.0. The session ends (with the
// refresh tokens bound to it) at once when the request proves it comes from the
// client the user signed in to (an id_token_hint of this session), or after the user
// confirms on a page (a forged link cannot end a session silently). The browser is
// then sent to post_logout_redirect_uri, only if it is registered for the client.
func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, problem := requestParams(w, r)
	if problem == "" {
		for k, v := range q {
			if len(v) > 1 {
				problem = k + " is repeated; send it once"
			}
		}
	}
	if problem != "" {
		h.logoutRefused(w, r, "", problem)
		return
	}
	hintRaw, clientID, redirect, state := q.Get("id_token_hint"), q.Get("client_id"), q.Get("post_logout_redirect_uri"), q.Get("state")
	var hint *token.IDClaims
	if hintRaw != "" {
		c, err := h.OAuth.Issuer.VerifyIDToken(ctx, hintRaw)
		if err != nil {
			h.logoutRefused(w, r, clientID, "id_token_hint is not an ID token issued by this server")
			return
		}
		if clientID != "" && !slices.Contains(c.Audience, clientID) {
			h.logoutRefused(w, r, clientID, "id_token_hint was issued to another client than client_id")
			return
		}
		if clientID == "" {
			clientID = c.Audience[0]
		}
		hint = &c
	}
	if len(state) > maxStateBytes {
		h.logoutRefused(w, r, clientID, "state is over 2048 bytes")
		return
	}
	var c *client.Client
	if clientID != "" {
		cl, err := h.Clients.GetClient(ctx, clientID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && len(clientID) > maxClientIDBytes) {
			h.logoutRefused(w, r, clientID, "client_id is not registered")
			return
		} else if err != nil {
			h.serverErrorPage(w, r, err)
			return
		}
		c = &cl
	}
	if redirect != "" {
		switch {
		case c == nil:
			h.logoutRefused(w, r, "", "post_logout_redirect_uri needs client_id or id_token_hint to say whose URI it is")
			return
		case !c.PostLogoutRedirectURIAllowed(redirect):
			h.logoutRefused(w, r, c.ID, "post_logout_redirect_uri is not registered for this client (they must match exactly)")
			return
		}
	}

	ss, cookie, err := h.browserSession(r)
	if err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	confirmed := r.Method == http.MethodPost && ss != nil && secret.Equal(q.Get("csrf_token"), logoutCSRF(cookie))
	hintMatches := hint != nil && (ss == nil || hint.SID == ss.SID)
	if ss != nil && !confirmed && !hintMatches {
		params := map[string]string{}
		for _, k := range []string{"client_id", "post_logout_redirect_uri", "state"} {
			if v := q.Get(k); v != "" {
				params[k] = v
			}
		}
		if clientID != "" {
			params["client_id"] = clientID
		}
		d := pageData{Title: "Sign out", CSRF: logoutCSRF(cookie), Params: params}
		if c != nil {
			d.ClientName = c.Name
		}
		render(w, http.StatusOK, "logout", d, redirect)
		return
	}

	ended := []string{}
	if ss != nil {
		ended = append(ended, ss.SID)
	}
	if hint != nil && hint.SID != "" && !slices.Contains(ended, hint.SID) {
		// The client names the session its ID token came from: end that one too.
		if hs, err := h.Store.GetSessionBySID(ctx, hint.SID); err == nil && hs.UserID == hint.Subject {
			ended = append(ended, hs.SID)
		}
	}
	userID := ""
	if ss != nil {
		userID = ss.UserID
	} else if hint != nil {
		userID = hint.Subject
	}
	for _, sid := range ended {
		if err := h.endSession(r, sid); err != nil {
			h.serverErrorPage(w, r, err)
			return
		}
	}
	h.setCookie(w, h.cookieNames.session, "", -1)
	ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.logout", Decision: audit.Allow,
		Reason: "ended sessions: " + joinOr(ended, "none"), User: userID, ResourceType: "client"}
	if c != nil {
		ev.ClientID, ev.Resource = c.ID, c.ID
	}
	if err := h.record(ctx, ev); err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	if redirect != "" {
		params := url.Values{}
		if state != "" {
			params.Set("state", state)
		}
		status := http.StatusFound
		if r.Method == http.MethodPost {
			status = http.StatusSeeOther
		}
		noStore(w)
		http.Redirect(w, r, redirectURL(redirect, params), status)
		return
	}
	messagePage(w, http.StatusOK, "Signed out", "You are signed out.", "You can close this window.")
}

// browserSession is the session this browser's cookie names, with the cookie value,
// whether or not it is still alive (a timed-out session is still ended).
func (h *Handler) browserSession(r *http.Request) (*session.Session, string, error) {
	ck, err := r.Cookie(h.cookieNames.session)
	if err != nil || !secret.HasPrefix(ck.Value, sessionPrefix) || len(ck.Value) > 128 {
		return nil, "", nil
	}
	ss, err := h.Store.GetSession(r.Context(), secret.Hash(ck.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	return &ss, ck.Value, nil
}

// endSession deletes a session and revokes the refresh tokens bound to it.
func (h *Handler) endSession(r *http.Request, sid string) error {
	if err := h.Store.DeleteSession(r.Context(), sid); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	_, err := h.OAuth.Refresh.RevokeSessionRefreshFamilies(r.Context(), sid, "the session ended (logout)", h.Now())
	return err
}

func (h *Handler) logoutRefused(w http.ResponseWriter, r *http.Request, clientID, problem string) {
	ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.logout", Decision: audit.Deny,
		Reason: problem, ClientID: truncate(clientID, 128), ResourceType: "client", Resource: truncate(clientID, 128)}
	if err := h.record(r.Context(), ev); err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	messagePage(w, http.StatusBadRequest, "Sign-out request refused", "The application sent a sign-out request that cannot be trusted: "+problem+".",
		"You were not redirected. Your sign-in session, if any, is unchanged.")
}

func joinOr(list []string, empty string) string {
	if len(list) == 0 {
		return empty
	}
	out := list[0]
	for _, s := range list[1:] {
		out += ", " + s
	}
	return out
}
