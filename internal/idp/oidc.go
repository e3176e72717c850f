package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store"
)

// upstreamLoginLifetime bounds the time from the redirect to the callback.
const upstreamLoginLifetime = 10 * time.Minute

// stateCookiePrefix names the cookie that carries one upstream sign-in's state,
// nonce and PKCE verifier, sealed by the KMS envelope (so any replica opens it).
const stateCookiePrefix = "ag_upstream_"

// CallbackPath is the redirect URI path registered at every OIDC provider.
const CallbackPath = "/login/upstream/callback"

// oidcEntry is a discovered provider, kept for an hour and until the provider
// record changes.
type oidcEntry struct {
	updated  time.Time
	loaded   time.Time
	provider *oidc.Provider
}

func (s *Service) discover(ctx context.Context, p Provider) (*oidc.Provider, error) {
	s.mu.Lock()
	e := s.oidc[p.ID]
	s.mu.Unlock()
	if e != nil && e.updated.Equal(p.UpdatedAt) && s.Now().Sub(e.loaded) < time.Hour {
		return e.provider, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, s.httpClient()), p.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery at %s: %w", p.OIDC.Issuer, err)
	}
	s.mu.Lock()
	if s.oidc == nil {
		s.oidc = map[string]*oidcEntry{}
	}
	s.oidc[p.ID] = &oidcEntry{updated: p.UpdatedAt, loaded: s.Now(), provider: op}
	s.mu.Unlock()
	return op, nil
}

func (s *Service) oauthConfig(p Provider, op *oidc.Provider, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.OIDC.ClientID, ClientSecret: secret, Endpoint: op.Endpoint(),
		RedirectURL: s.Issuer + CallbackPath, Scopes: p.OIDC.Scopes,
	}
}

// Register adds GET /login/upstream/{idp_id} and the callback.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+CallbackPath, s.callback)
	mux.HandleFunc("GET /login/upstream/{idp_id}", s.start)
}

// loginState travels in the sealed cookie between the redirect and the callback.
type loginState struct {
	IDP      string `json:"i"`
	LoginID  string `json:"l"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

func random() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("idp: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var stateAAD = []byte("upstream_login_state")

func (s *Service) secureCookies() bool { return strings.HasPrefix(s.Issuer, "https://") }

// start redirects the browser to the provider with state, nonce and PKCE; the
// state is bound to this browser by a sealed cookie and to the login request.
func (s *Service) start(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("idp_id")
	loginID := r.URL.Query().Get("login_id")
	if loginID == "" || len(loginID) > 64 || strings.ContainsAny(loginID, "\"';<> ") {
		errorPage(w, http.StatusBadRequest, "This sign-in link is incomplete", "Go back to the application and start the sign-in again.")
		return
	}
	p, err := s.enabledOIDC(ctx, id)
	if err != nil {
		s.fail(w, r, Provider{ID: id}, err)
		return
	}
	_, sealed, err := s.Store.GetIdentityProvider(ctx, p.ID)
	var secret string
	if err == nil {
		secret, err = s.secret(ctx, p.ID, sealed)
	}
	var op *oidc.Provider
	if err == nil {
		op, err = s.discover(ctx, p)
	}
	if err != nil {
		s.upstreamDown(w, r, p, err)
		return
	}
	st := loginState{IDP: p.ID, LoginID: loginID, State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		Expires: s.Now().Add(upstreamLoginLifetime).Unix()}
	plain, _ := json.Marshal(st)
	box, err := s.Envelope.Seal(ctx, plain, stateAAD)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: stateCookiePrefix + st.State[:16], Value: base64.RawURLEncoding.EncodeToString(box),
		Path: CallbackPath, MaxAge: int(upstreamLoginLifetime / time.Second),
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
	u := s.oauthConfig(p, op, secret).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Service) enabledOIDC(ctx context.Context, id string) (Provider, error) {
	if !strings.HasPrefix(id, IDPrefix) || len(id) > 64 {
		return Provider{}, store.ErrNotFound
	}
	p, _, err := s.Store.GetIdentityProvider(ctx, id)
	if err != nil {
		return p, err
	}
	if !p.Enabled || p.Type != TypeOIDC {
		return p, store.ErrNotFound
	}
	return p, nil
}

// callback verifies the provider's answer, maps the claims, provisions the user
// and hands them to the sign-in handler. Any failure is a plain error page: the
// browser is never sent to a place that was not verified.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) < 16 || len(state) > 128 {
		errorPage(w, http.StatusBadRequest, "This sign-in answer is not valid", "Go back to the application and sign in again.")
		return
	}
	ck, err := r.Cookie(stateCookiePrefix + state[:16])
	var st loginState
	if err == nil && len(ck.Value) < 4096 {
		var box []byte
		if box, err = base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			var plain []byte
			if plain, err = s.Envelope.Open(ctx, box, stateAAD); err == nil {
				err = json.Unmarshal(plain, &st)
			}
		}
	} else if err == nil {
		err = errors.New("cookie too large")
	}
	// Clear the cookie whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: stateCookiePrefix + state[:16], Value: "", Path: CallbackPath, MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
	if err != nil || subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		s.record(ctx, "upstream.login", audit.Deny, Provider{ID: st.IDP}, "", "the callback's state matches no sign-in started in this browser")
		errorPage(w, http.StatusBadRequest, "This sign-in was not started in this browser",
			"The answer from the identity provider does not belong to a sign-in this browser started, or it has expired. Go back to the application and sign in again.")
		return
	}
	if s.Now().Unix() > st.Expires {
		errorPage(w, http.StatusBadRequest, "This sign-in has expired", "Go back to the application and sign in again.")
		return
	}
	sum := sha256.Sum256([]byte(state))
	if err := s.Replay.UseOnce(ctx, "upstream_state:"+base64.RawURLEncoding.EncodeToString(sum[:]), time.Unix(st.Expires, 0)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.record(ctx, "upstream.login", audit.Deny, Provider{ID: st.IDP}, "", "the callback was replayed")
			errorPage(w, http.StatusBadRequest, "This sign-in answer was already used", "Go back to the application and sign in again.")
			return
		}
		s.fail(w, r, Provider{ID: st.IDP}, err)
		return
	}
	p, err := s.enabledOIDC(ctx, st.IDP)
	if err != nil {
		s.fail(w, r, Provider{ID: st.IDP}, err)
		return
	}
	if e := q.Get("error"); e != "" {
		reason := "the provider answered " + truncate(e, 64)
		if d := q.Get("error_description"); d != "" {
			reason += ": " + truncate(d, 200)
		}
		s.record(ctx, "upstream.login", audit.Deny, p, "", reason)
		errorPage(w, http.StatusForbidden, "Sign-in with "+p.Name+" did not succeed", reason+". Go back to the application and try again.")
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		errorPage(w, http.StatusBadRequest, "This sign-in answer is not valid", "It has no authorization code. Go back to the application and sign in again.")
		return
	}
	claims, err := s.exchange(ctx, p, code, st)
	if err != nil {
		s.record(ctx, "upstream.login", audit.Deny, p, "", truncate(err.Error(), 300))
		slog.WarnContext(ctx, "upstream OIDC sign-in failed", "idp", p.ID, "err", err)
		errorPage(w, http.StatusBadGateway, "Sign-in with "+p.Name+" did not succeed",
			"agentguard could not verify the answer of "+p.Name+". Try again; if it keeps failing, your administrator will find the reason in the audit log.")
		return
	}
	prof, mapped, err := oidcProfile(p, claims)
	if err != nil {
		s.record(ctx, "upstream.login", audit.Deny, p, "", err.Error())
		errorPage(w, http.StatusForbidden, "Sign-in with "+p.Name+" did not succeed", err.Error()+". Ask your administrator to check the provider's claim mapping.")
		return
	}
	u, err := s.provision(ctx, p, mapped, prof)
	if errors.Is(err, ErrAccountConflict) {
		s.record(ctx, "upstream.login", audit.Deny, p, "", fmt.Sprintf("the username %q belongs to another account; it is not linked to %s", prof.Username, p.Name))
		errorPage(w, http.StatusConflict, "This account cannot sign in with "+p.Name,
			"An account named "+prof.Username+" already exists in agentguard and is not linked to "+p.Name+". Ask your administrator.")
		return
	}
	if err != nil {
		s.record(ctx, "upstream.login", audit.Deny, p, "", truncate(err.Error(), 300))
		s.fail(w, r, p, err)
		return
	}
	if !u.Active {
		s.record(ctx, "upstream.login", audit.Deny, p, u.ID, "the user is deactivated in agentguard")
		errorPage(w, http.StatusForbidden, "This account is deactivated", "Ask your administrator.")
		return
	}
	s.record(ctx, "upstream.login", audit.Allow, p, u.ID, fmt.Sprintf("%s vouched for %s (subject %s)", p.Name, u.Username, truncate(prof.Subject, 100)))
	s.Completer.CompleteLogin(w, r, st.LoginID, u)
}

// exchange redeems the code (with the PKCE verifier), verifies the ID token and
// its nonce, and returns the claims (plus userinfo's, if configured).
func (s *Service) exchange(ctx context.Context, p Provider, code string, st loginState) (map[string]any, error) {
	_, sealed, err := s.Store.GetIdentityProvider(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	secret, err := s.secret(ctx, p.ID, sealed)
	if err != nil {
		return nil, err
	}
	op, err := s.discover(ctx, p)
	if err != nil {
		return nil, err
	}
	cctx := oidc.ClientContext(ctx, s.httpClient())
	cfg := s.oauthConfig(p, op, secret)
	tok, err := cfg.Exchange(cctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("the token endpoint refused the code: %s %s", re.ErrorCode, truncate(re.ErrorDescription, 200))
		}
		return nil, fmt.Errorf("the token request failed: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, errors.New("the token response has no id_token (is the openid scope requested?)")
	}
	idt, err := op.VerifierContext(cctx, &oidc.Config{ClientID: p.OIDC.ClientID, Now: s.Now}).Verify(cctx, raw)
	if err != nil {
		return nil, fmt.Errorf("the ID token is not valid: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return nil, errors.New("the ID token's nonce is not the one sent")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("the ID token's claims: %w", err)
	}
	if p.OIDC.Userinfo && op.UserInfoEndpoint() != "" {
		ui, err := op.UserInfo(cctx, cfg.TokenSource(cctx, tok))
		if err != nil {
			return nil, fmt.Errorf("userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return nil, errors.New("userinfo is about another subject than the ID token")
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err != nil {
			return nil, fmt.Errorf("userinfo claims: %w", err)
		}
		for k, v := range extra {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return claims, nil
}

// oidcProfile maps claims to a profile; mapped lists the attribute names the
// provider manages.
func oidcProfile(p Provider, claims map[string]any) (Profile, []string, error) {
	cm := p.OIDC.Claims.withDefaults()
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return Profile{}, nil, errors.New("the ID token has no sub")
	}
	prof := Profile{Subject: sub, Attributes: map[string]string{}}
	get := func(path string) (string, bool) {
		cp, err := ParseClaimPath(path)
		if err != nil {
			return "", false
		}
		v, ok := cp.Lookup(claims)
		if !ok {
			return "", false
		}
		return stringClaim(v)
	}
	var ok bool
	if prof.Username, ok = get(cm.Username); !ok || prof.Username == "" {
		return Profile{}, nil, fmt.Errorf("%s did not send the claim %q that names the username", p.Name, cm.Username)
	}
	prof.Email, _ = get(cm.Email)
	prof.DisplayName, _ = get(cm.DisplayName)
	var mapped []string
	for name, path := range cm.Attributes {
		mapped = append(mapped, name)
		if v, ok := get(path); ok && v != "" {
			prof.Attributes[name] = v
		}
	}
	slices.Sort(mapped)
	if cm.Groups != "" {
		prof.SyncGroups = true
		if cp, err := ParseClaimPath(cm.Groups); err == nil {
			if v, ok := cp.Lookup(claims); ok {
				prof.Groups, _ = listClaim(v)
			}
		}
	}
	return prof, mapped, nil
}

func (m ClaimMapping) withDefaults() ClaimMapping {
	if m.Username == "" {
		m.Username = "preferred_username"
	}
	if m.Email == "" {
		m.Email = "email"
	}
	if m.DisplayName == "" {
		m.DisplayName = "name"
	}
	return m
}

// upstreamDown is the page for a provider that cannot be reached or opened.
func (s *Service) upstreamDown(w http.ResponseWriter, r *http.Request, p Provider, err error) {
	s.record(r.Context(), "upstream.login", audit.Deny, p, "", truncate(err.Error(), 300))
	slog.WarnContext(r.Context(), "upstream identity provider unavailable", "idp", p.ID, "err", err)
	errorPage(w, http.StatusBadGateway, "Sign-in with "+p.Name+" is not available",
		"agentguard could not reach the identity provider. Try again in a moment, or sign in another way.")
}

// fail answers an unknown provider with 404 and anything else with 500.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, p Provider, err error) {
	if errors.Is(err, store.ErrNotFound) {
		errorPage(w, http.StatusNotFound, "This sign-in option does not exist", "Go back to the application and choose another way to sign in.")
		return
	}
	slog.ErrorContext(r.Context(), "upstream sign-in failed", "idp", p.ID, "err", err)
	errorPage(w, http.StatusInternalServerError, "Sign-in failed", "Something went wrong on our side; the server log has the details. Try again.")
}

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}h1{font-size:1.4rem}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Message}}</p></main></body></html>
`))

// errorPage renders a plain page; it never redirects.
func errorPage(w http.ResponseWriter, status int, title, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	errorTmpl.Execute(w, struct{ Title, Message string }{title, message})
}
