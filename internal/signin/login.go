package signin

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// Field limits of the login form.
const (
	maxUsernameBytes = 256
	maxPasswordBytes = 1024
)

// badCredentials is the one message for a wrong password, an unknown username and
// a deactivated user: the page never says which.
var badCredentials = "The username or password is not correct."

// pending is a pending sign-in, loaded and checked.
type pending struct {
	lr     session.LoginRequest
	client client.Client
	req    authRequest
}

// loadPending finds a pending sign-in that has not expired and belongs to this
// browser. It renders the page explaining what is wrong and returns false otherwise.
func (h *Handler) loadPending(w http.ResponseWriter, r *http.Request, loginID string) (pending, bool) {
	ctx := r.Context()
	var p pending
	expired := func() (pending, bool) {
		h.logins.WithLabelValues("any", "expired").Inc()
		messagePage(w, http.StatusBadRequest, "This sign-in has expired",
			"This sign-in page is no longer valid: it has expired or was already used.",
			"Go back to the application and sign in again.")
		return p, false
	}
	if loginID == "" || len(loginID) > 64 {
		return expired()
	}
	lr, err := h.Store.GetLoginRequest(ctx, loginID)
	if errors.Is(err, store.ErrNotFound) {
		return expired()
	} else if err != nil {
		h.serverErrorPage(w, r, err)
		return p, false
	}
	if !h.Now().Before(lr.ExpiresAt) {
		return expired()
	}
	ck, err := r.Cookie(h.cookieNames.browser)
	if err != nil || len(ck.Value) > 128 || !secret.Matches(ck.Value, lr.BrowserHash) {
		h.forgedPage(w, r, lr.ClientID, "the sign-in was started in another browser, or this browser's cookies were cleared")
		return p, false
	}
	c, err := h.Clients.GetClient(ctx, lr.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return expired()
	} else if err != nil {
		h.serverErrorPage(w, r, err)
		return p, false
	}
	if err := json.Unmarshal(lr.Request, &p.req); err != nil {
		h.serverErrorPage(w, r, err)
		return p, false
	}
	p.lr, p.client = lr, c
	return p, true
}

// forgedPage refuses a form that is not verifiably this browser's (CSRF).
func (h *Handler) forgedPage(w http.ResponseWriter, r *http.Request, clientID, why string) {
	h.logins.WithLabelValues("any", "csrf").Inc()
	ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.login", Decision: audit.Deny,
		Reason: "CSRF check failed: " + why, ClientID: clientID, ResourceType: "client", Resource: clientID}
	if err := h.record(r.Context(), ev); err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	messagePage(w, http.StatusForbidden, "Sign-in not verified",
		"This sign-in form could not be verified as yours, so nothing was done.",
		"Go back to the application and sign in again from there.")
}

// handleLogin checks the login form: the pending sign-in and its CSRF token, the
// rate limits, then the username and password.
func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		messagePage(w, http.StatusUnsupportedMediaType, "Sign-in refused", "The sign-in form must be posted as a form.", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		messagePage(w, http.StatusBadRequest, "Sign-in refused", "The sign-in form is not valid or is too large.", "")
		return
	}
	f := r.PostForm
	for k, v := range f {
		if len(v) > 1 {
			messagePage(w, http.StatusBadRequest, "Sign-in refused", fmt.Sprintf("The form field %s is repeated.", truncate(k, 64)), "")
			return
		}
	}
	p, ok := h.loadPending(w, r, f.Get("login_id"))
	if !ok {
		return
	}
	if csrf := f.Get("csrf_token"); len(csrf) > 128 || !secret.Matches(csrf, p.lr.CSRFHash) {
		h.forgedPage(w, r, p.client.ID, "the form's CSRF token is missing or wrong")
		return
	}
	username, password := f.Get("username"), f.Get("password")
	// The form always gets back the same CSRF token: a failed attempt can be retried.
	retry := func(status int, msg string) {
		h.renderLogin(w, r, status, p.client, p.lr.ID, f.Get("csrf_token"), username, msg, p.req.RedirectURI)
	}
	deny := func(reason string) bool {
		ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.login", Decision: audit.Deny, Reason: reason,
			ClientID: p.client.ID, ResourceType: "client", Resource: p.client.ID}
		if err := h.record(ctx, ev); err != nil {
			h.serverErrorPage(w, r, err)
			return false
		}
		return true
	}
	if ok, wait := h.ipLimit.take(sourceIP(r)); !ok {
		h.logins.WithLabelValues("password", "rate_limited").Inc()
		if deny("rate limited: too many sign-in attempts from " + sourceIP(r)) {
			s := retryAfter(w, wait)
			retry(http.StatusTooManyRequests, fmt.Sprintf("Too many sign-in attempts from your network. Try again in %d seconds.", s))
		}
		return
	}
	if username == "" || password == "" {
		retry(http.StatusBadRequest, "Enter your username and password.")
		return
	}
	if len(username) > maxUsernameBytes || len(password) > maxPasswordBytes || !utf8.ValidString(username) {
		h.logins.WithLabelValues("password", "bad_credentials").Inc()
		if deny("bad credentials (username or password over the size limit)") {
			retry(http.StatusBadRequest, badCredentials)
		}
		return
	}
	userKey := strings.ToLower(username)
	if ok, wait := h.userLimit.check(userKey); !ok {
		h.logins.WithLabelValues("password", "rate_limited").Inc()
		if deny(fmt.Sprintf("rate limited: too many failed sign-ins for username %q", username)) {
			s := retryAfter(w, wait)
			retry(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-in attempts for this username. Try again in %d seconds.", s))
		}
		return
	}
	u, err := h.Auth.Authenticate(ctx, username, password)
	if err == nil && !u.Active {
		err = user.ErrBadCredentials
	}
	if errors.Is(err, user.ErrBadCredentials) {
		h.logins.WithLabelValues("password", "bad_credentials").Inc()
		h.userLimit.take(userKey)
		if deny(fmt.Sprintf("bad credentials for username %q", username)) {
			retry(http.StatusBadRequest, badCredentials)
		}
		return
	} else if err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	h.signIn(w, r, p, u, "password")
}

// CompleteLogin finishes a pending sign-in for a user an upstream identity provider
// has verified: it is what a successful password sign-in does (new session, the
// agent's inbound rules, the code, the redirect). The provider's callback calls it
// with the login_id it was started with; the pending sign-in must belong to this
// browser.
func (h *Handler) CompleteLogin(w http.ResponseWriter, r *http.Request, loginID string, u user.User) {
	p, ok := h.loadPending(w, r, loginID)
	if !ok {
		return
	}
	if !u.Active {
		h.logins.WithLabelValues("upstream", "bad_credentials").Inc()
		ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.login", Decision: audit.Deny,
			Reason: "upstream sign-in of a deactivated user", User: u.ID, ClientID: p.client.ID, ResourceType: "client", Resource: p.client.ID}
		if err := h.record(r.Context(), ev); err != nil {
			h.serverErrorPage(w, r, err)
			return
		}
		messagePage(w, http.StatusForbidden, "Sign-in refused", "This account is deactivated.", "Ask your administrator.")
		return
	}
	h.signIn(w, r, p, u, "upstream")
}

// signIn uses up the pending sign-in, starts a new session and continues the
// authorization request.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, p pending, u user.User, method string) {
	ctx := r.Context()
	if err := h.Store.DeleteLoginRequest(ctx, p.lr.ID); errors.Is(err, store.ErrNotFound) {
		// Used at the same moment by another request: only one of them signs in.
		messagePage(w, http.StatusBadRequest, "This sign-in has expired", "This sign-in page was already used.", "Go back to the application and sign in again.")
		return
	} else if err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	ss, err := h.startSession(w, r, u)
	if err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	h.logins.WithLabelValues(method, "success").Inc()
	ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.login", Decision: audit.Allow,
		Reason: "signed in (" + method + "); session " + ss.SID, User: u.ID, ClientID: p.client.ID, ResourceType: "client", Resource: p.client.ID}
	if err := h.record(ctx, ev); err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	// The agent may have changed while the user typed: resolve the target again.
	target, oe := h.OAuth.ParseUserTarget(ctx, p.req.Scope, p.req.Resources)
	if oe != nil {
		h.redirectError(w, r, p.req, &authError{Code: oe.Code, Description: oe.Description}, u.ID)
		return
	}
	h.finish(w, r, p.client, p.req, target, ss, u, http.StatusSeeOther)
}

// sourceIP is the request's source address as the audit middleware recorded it.
func sourceIP(r *http.Request) string {
	if ip := audit.RequestFrom(r.Context()).SourceIP; ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
