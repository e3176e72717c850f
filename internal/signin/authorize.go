package signin

import (
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/oauth"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// maxFormBytes bounds an authorization, login or logout form.
const maxFormBytes = 64 << 10

// handleAuthorize is the authorization endpoint (GET, or POST with a form as OIDC
// Core §3.1.2.1 allows). It validates the request, then either issues a code at once
// (the browser has a live session and nothing asks for a new sign-in) or shows the
// login page.
func (h *Handler) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, problem := requestParams(w, r)
	if problem != "" {
		h.refusePage(w, r, "", problem)
		return
	}
	clientID, redirectURI, problem := clientParams(q)
	if problem != "" {
		h.refusePage(w, r, "", problem)
		return
	}
	c, err := h.Clients.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		h.refusePage(w, r, clientID, "client_id "+clientID+" is not registered")
		return
	} else if err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	if !c.RedirectURIAllowed(redirectURI) {
		h.refusePage(w, r, clientID, "redirect_uri is not registered for this client (redirect URIs must match exactly)")
		return
	}
	req, e := parseRequest(q, c, redirectURI)
	if e != nil {
		h.redirectError(w, r, req, e, "")
		return
	}
	target, oe := h.OAuth.ParseUserTarget(ctx, req.Scope, req.Resources)
	if oe != nil {
		h.redirectError(w, r, req, &authError{Code: oe.Code, Description: oe.Description}, "")
		return
	}
	ss, u, err := h.currentSession(r)
	if err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	now := h.Now()
	fresh := ss != nil && (req.MaxAge < 0 || now.Sub(ss.AuthTime) <= time.Duration(req.MaxAge)*time.Second)
	switch {
	case req.Prompt == "none" && !fresh:
		h.redirectError(w, r, req, redirectErr("login_required", "the user is not signed in (or signed in longer ago than max_age) and prompt=none forbids asking"), "")
	case req.Prompt == "login" || !fresh:
		h.showLogin(w, r, c, req)
	default:
		h.finish(w, r, c, req, target, *ss, *u, http.StatusFound)
	}
}

// requestParams reads the query of a GET, or the form body of a POST.
func requestParams(w http.ResponseWriter, r *http.Request) (url.Values, string) {
	if r.Method == http.MethodGet {
		if len(r.URL.RawQuery) > maxFormBytes {
			return nil, "the request is over the size limit"
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, "the query string is not valid URL encoding"
		}
		return q, ""
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, "a POST must be an application/x-www-form-urlencoded form"
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, "the form is not valid or over the size limit"
	}
	return r.PostForm, ""
}

// showLogin keeps the request while the user signs in and renders the login page.
// The pending sign-in is bound to this browser (a cookie) and to the form's CSRF
// token.
func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request, c client.Client, req authRequest) {
	ctx := r.Context()
	browser := ""
	if ck, err := r.Cookie(h.cookieNames.browser); err == nil && secret.HasPrefix(ck.Value, browserPrefix) && len(ck.Value) <= 128 {
		browser = ck.Value
	} else {
		browser = secret.New(browserPrefix)
		h.setCookie(w, h.cookieNames.browser, browser, 0)
	}
	csrf := secret.New(csrfPrefix)
	body, err := json.Marshal(req)
	if err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	now := h.Now()
	lr := session.LoginRequest{
		ID: secret.NewID("lgn"), ClientID: c.ID, Request: body, CSRFHash: secret.Hash(csrf), BrowserHash: secret.Hash(browser),
		CreatedAt: now, ExpiresAt: now.Add(h.LoginRequestLifetime),
	}
	if err := h.Store.CreateLoginRequest(ctx, lr); err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	h.renderLogin(w, r, http.StatusOK, c, lr.ID, csrf, req.LoginHint, "", req.RedirectURI)
}

// renderLogin renders the login form.
func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, c client.Client, loginID, csrf, username, errMsg, redirectURI string) {
	d := pageData{Title: "Sign in", ClientName: c.Name, LoginID: loginID, CSRF: csrf, Username: username, Error: errMsg}
	if h.Upstreams != nil {
		opts, err := h.Upstreams.LoginOptions(r.Context())
		if err != nil {
			slog.WarnContext(r.Context(), "listing upstream identity providers failed; showing the password form only", "err", err)
		}
		for _, o := range opts {
			href := o.URL
			if href == "" {
				href = "/login/upstream/" + url.PathEscape(o.ID)
			}
			sep := "?"
			if u, err := url.Parse(href); err == nil && u.RawQuery != "" {
				sep = "&"
			}
			d.Upstreams = append(d.Upstreams, upstreamLink{Name: o.Name, Href: href + sep + "login_id=" + url.QueryEscape(loginID)})
		}
	}
	render(w, status, "login", d, redirectURI)
}

// finish issues a code for the signed-in user and redirects to the client, after
// asking the agent's inbound rules if the request is for an agent.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, c client.Client, req authRequest, target oauth.UserTarget, ss session.Session, u user.User, status int) {
	ctx := r.Context()
	if target.AgentID != "" {
		d, err := h.OAuth.AdmitUser(ctx, target.AgentID, c.ID, u, oauth.StageAuthorize)
		if err != nil {
			h.redirectError(w, r, req, redirectErr("server_error", "the inbound policy could not be evaluated"), u.ID)
			return
		}
		if !d.Allow {
			h.redirectError(w, r, req, redirectErr("access_denied", "user %s is not allowed to use agent %s through this client", u.ID, target.AgentID), u.ID)
			return
		}
	}
	code, err := h.OAuth.IssueCode(ctx, oauth.CodeGrant{
		ClientID: c.ID, UserID: u.ID, SID: ss.SID, RedirectURI: req.RedirectURI, CodeChallenge: req.CodeChallenge,
		Nonce: req.Nonce, Target: target, AuthTime: ss.AuthTime,
	})
	if err != nil {
		slog.ErrorContext(ctx, "store authorization code", "err", err)
		h.redirectError(w, r, req, redirectErr("server_error", "the server could not issue a code"), u.ID)
		return
	}
	ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.authorize", Decision: audit.Allow,
		Reason: "code issued; scope=" + target.Scope(), User: u.ID, ClientID: c.ID, AgentID: target.AgentID,
		ResourceType: "client", Resource: c.ID}
	if err := h.record(ctx, ev); err != nil {
		h.redirectError(w, r, req, redirectErr("server_error", "the server could not record the sign-in"), u.ID)
		return
	}
	params := url.Values{"code": {code}, "iss": {h.issuer}}
	if req.State != "" {
		params.Set("state", req.State)
	}
	noStore(w)
	http.Redirect(w, r, redirectURL(req.RedirectURI, params), status)
}

// redirectError sends an error to the client's (verified) redirect URI with state
// and iss (RFC 9207), and records it.
func (h *Handler) redirectError(w http.ResponseWriter, r *http.Request, req authRequest, e *authError, userID string) {
	ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.authorize", Decision: audit.Deny,
		Reason: e.Code + ": " + e.Description, User: userID, ClientID: req.ClientID, ResourceType: "client", Resource: req.ClientID}
	if err := h.record(r.Context(), ev); err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	params := url.Values{"error": {e.Code}, "error_description": {e.Description}, "iss": {h.issuer}}
	if req.State != "" {
		params.Set("state", req.State)
	}
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	noStore(w)
	http.Redirect(w, r, redirectURL(req.RedirectURI, params), status)
}

// refusePage answers a request whose client or redirect URI cannot be trusted with
// an error page: never a redirect.
func (h *Handler) refusePage(w http.ResponseWriter, r *http.Request, clientID, problem string) {
	ev := audit.Event{Category: audit.CategoryInbound, Action: "signin.authorize", Decision: audit.Deny,
		Reason: "invalid_request: " + problem, ClientID: truncate(clientID, 128), ResourceType: "client", Resource: truncate(clientID, 128)}
	if err := h.record(r.Context(), ev); err != nil {
		h.serverErrorPage(w, r, err)
		return
	}
	messagePage(w, http.StatusBadRequest, "Sign-in request refused",
		"The application sent a sign-in request that cannot be trusted: "+problem+".",
		"Nothing was sent back to the application. If you followed a link, it may be wrong or forged; if you run the application, check its client_id and registered redirect URIs.")
}

func (h *Handler) serverErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "sign-in failed", "path", r.URL.Path, "err", err)
	messagePage(w, http.StatusInternalServerError, "Something went wrong", "The server could not complete the sign-in. Try again in a moment.", "The server log has the details.")
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Referrer-Policy", "no-referrer")
}
