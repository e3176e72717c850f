package registration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Limits on what one registration may say.
const (
	MaxBody         = 16 << 10 // bytes of JSON
	MaxRedirectURIs = 10
	maxText         = 200  // client_name, software_id, software_version
	maxURL          = 2048 // client_uri, logo_uri, tos_uri, policy_uri
	maxContacts     = 5
	maxScope        = 1024
)

// Defaults of the abuse limits.
const (
	// DefaultPerIP registrations per source address per DefaultWindow (the burst
	// too): a real client registers once per installation.
	DefaultPerIP  = 10
	DefaultWindow = time.Hour
	// DefaultMaxPending registrations may wait for approval at once; beyond, new
	// ones are refused until an administrator decides or they expire.
	DefaultMaxPending = 1000
)

// Registrar serves POST /oauth2/register.
type Registrar struct {
	Mode    string // ModeOpen, else ModeApproval
	Store   Store
	Clients client.Store
	Audit   audit.Recorder
	Now     func() time.Time
	// PerIP registrations per source address per Window; MaxPending waiting at
	// once. Zero: the defaults.
	PerIP      int
	Window     time.Duration
	MaxPending int

	once    sync.Once
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	results *prometheus.CounterVec
}

// Init sets defaults and registers the metrics on reg (may be nil).
func (h *Registrar) Init(reg prometheus.Registerer) {
	h.once.Do(func() {
		if h.Now == nil {
			h.Now = time.Now
		}
		if h.Mode != ModeOpen {
			h.Mode = ModeApproval // the safe default for anything else
		}
		if h.PerIP <= 0 {
			h.PerIP = DefaultPerIP
		}
		if h.Window <= 0 {
			h.Window = DefaultWindow
		}
		if h.MaxPending <= 0 {
			h.MaxPending = DefaultMaxPending
		}
		h.buckets = map[string]*rate.Limiter{}
		h.results = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentguard_client_registrations_total",
			Help: "Dynamic client registrations (RFC 7591) by result: pending, approved (open mode), refused, rate_limited.",
		}, []string{"result"})
		if reg != nil {
			reg.MustRegister(h.results)
		}
	})
}

// Register adds POST (and the CORS preflight OPTIONS) /oauth2/register.
func (h *Registrar) Register(mux *http.ServeMux) {
	h.Init(nil)
	mux.HandleFunc("POST /oauth2/register", h.handle)
	mux.HandleFunc("OPTIONS /oauth2/register", preflight)
}

// preflight lets browser-based clients (an MCP inspector in a web page) register:
// the endpoint is public and answers no credentials, so any origin may call it.
func preflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// request is the RFC 7591 §2 client metadata agentguard reads; other members are
// ignored, as §2 asks.
type request struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod *string  `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ApplicationType         string   `json:"application_type"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	TOSURI                  string   `json:"tos_uri"`
	PolicyURI               string   `json:"policy_uri"`
	Scope                   string   `json:"scope"`
	Contacts                []string `json:"contacts"`
	SoftwareID              string   `json:"software_id"`
	SoftwareVersion         string   `json:"software_version"`
	SoftwareStatement       string   `json:"software_statement"`
}

// response is RFC 7591 §3.2.1, plus agentguard's registration_status.
type response struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ApplicationType         string   `json:"application_type"`
	Scope                   string   `json:"scope,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	TOSURI                  string   `json:"tos_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
	// RegistrationStatus is "pending" (an administrator must approve the client
	// before it can be used) or "approved".
	RegistrationStatus string `json:"registration_status"`
}

// regError is an RFC 7591 §3.2.2 error.
type regError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description"`
}

func invalidMetadata(format string, args ...any) *regError {
	return &regError{status: http.StatusBadRequest, Code: "invalid_client_metadata", Desc: fmt.Sprintf(format, args...)}
}

func invalidRedirect(format string, args ...any) *regError {
	return &regError{status: http.StatusBadRequest, Code: "invalid_redirect_uri", Desc: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (h *Registrar) handle(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ip := audit.RequestFrom(ctx).SourceIP
	if !h.allow(ip) {
		h.results.WithLabelValues("rate_limited").Inc()
		w.Header().Set("Retry-After", fmt.Sprint(int(h.Window/time.Duration(h.PerIP)/time.Second)+1))
		writeJSON(w, http.StatusTooManyRequests, regError{Code: "temporarily_unavailable",
			Desc: fmt.Sprintf("too many registrations from this address (at most %d per %s); try again later", h.PerIP, h.Window)})
		return
	}
	req, e := decode(w, r)
	var g Registration
	if e == nil {
		g, e = h.validate(req)
	}
	if e != nil {
		h.results.WithLabelValues("refused").Inc()
		h.record(ctx, audit.Event{Action: "client.register", Decision: audit.Deny, Reason: e.Code + ": " + e.Desc, ClientID: ""})
		writeJSON(w, e.status, e)
		return
	}
	if h.Mode == ModeApproval {
		n, err := h.Store.CountRegistrations(ctx, StatusPending)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if n >= h.MaxPending {
			h.results.WithLabelValues("rate_limited").Inc()
			w.Header().Set("Retry-After", "3600")
			writeJSON(w, http.StatusTooManyRequests, regError{Code: "temporarily_unavailable",
				Desc: fmt.Sprintf("%d registrations are already waiting for an administrator's approval; try again later", n)})
			return
		}
	}

	now := h.Now().UTC()
	g.ID, g.SourceIP, g.CreatedAt, g.Status = secret.NewID(client.IDPrefix), ip, now, StatusPending
	var plain string
	if g.AuthMethod != "none" {
		plain = secret.New(client.SecretPrefix)
		g.SecretHash = secret.Hash(plain)
	}
	reason := "pending an administrator's approval"
	if h.Mode == ModeOpen {
		g.Status, g.DecidedAt, g.DecidedBy = StatusApproved, now, "open registration"
		reason = "open registration: the client is created"
	}
	if err := h.Store.CreateRegistration(ctx, g); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.Mode == ModeOpen {
		if err := CreateClient(ctx, h.Clients, g, now); err != nil {
			h.Store.DeleteRegistration(context.WithoutCancel(ctx), g.ID)
			h.fail(w, r, err)
			return
		}
	}
	if err := h.record(ctx, audit.Event{Action: "client.register", Decision: audit.Allow, Reason: reason, ClientID: g.ID}); err != nil {
		// Nothing is answered that the audit log does not hold.
		h.fail(w, r, err)
		return
	}
	h.results.WithLabelValues(g.Status).Inc()
	resp := toResponse(g, plain)
	writeJSON(w, http.StatusCreated, resp)
}

// decode reads the JSON body: application/json, at most MaxBody, one object.
func decode(w http.ResponseWriter, r *http.Request) (request, *regError) {
	var req request
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return req, &regError{status: http.StatusUnsupportedMediaType, Code: "invalid_client_metadata", Desc: "send the client metadata as application/json (RFC 7591 §3.1)"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, &regError{status: http.StatusRequestEntityTooLarge, Code: "invalid_client_metadata", Desc: fmt.Sprintf("the metadata is over %d bytes", MaxBody)}
		}
		return req, invalidMetadata("the body could not be read")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return req, invalidMetadata("the body is not a JSON object of client metadata: %v", jsonProblem(err))
	}
	if dec.More() {
		return req, invalidMetadata("the body has data after the JSON object")
	}
	return req, nil
}

// jsonProblem names the member whose type is wrong, without echoing values.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	return "malformed JSON"
}

// validate checks the metadata and turns it into a registration (without id).
func (h *Registrar) validate(req request) (Registration, *regError) {
	var g Registration
	if req.SoftwareStatement != "" {
		return g, &regError{status: http.StatusBadRequest, Code: "invalid_software_statement", Desc: "software statements are not supported; send the metadata itself"}
	}
	method := "client_secret_basic" // RFC 7591 §2 default
	if req.TokenEndpointAuthMethod != nil {
		method = *req.TokenEndpointAuthMethod
	}
	appType := req.ApplicationType
	if appType == "" {
		appType = "web" // OpenID Connect Dynamic Registration default
	}
	switch appType {
	case "web", "native":
	default:
		return g, invalidMetadata("application_type must be web or native (got %q)", clip(appType))
	}
	switch method {
	case "none":
		g.ClientType = client.TypeSPA
		if appType == "native" {
			g.ClientType = client.TypeNative
		}
	case "client_secret_basic", "client_secret_post":
		g.ClientType = client.TypeWeb
	default:
		return g, invalidMetadata("token_endpoint_auth_method %q is not supported: use none (public clients, with PKCE), client_secret_basic or client_secret_post", clip(method))
	}
	g.AuthMethod = method

	grants := req.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code"}
	}
	for _, gt := range grants {
		if gt != "authorization_code" && gt != "refresh_token" {
			return g, invalidMetadata("grant_types may hold authorization_code and refresh_token only (got %q); agents are registered by an administrator, not dynamically", clip(gt))
		}
	}
	if !slices.Contains(grants, "authorization_code") {
		return g, invalidMetadata("grant_types must include authorization_code")
	}
	responses := req.ResponseTypes
	if len(responses) == 0 {
		responses = []string{"code"}
	}
	if len(responses) != 1 || responses[0] != "code" {
		return g, invalidMetadata(`response_types must be ["code"] (the authorization code flow with PKCE)`)
	}

	switch n := len(req.RedirectURIs); {
	case n == 0:
		return g, invalidRedirect("redirect_uris is required: at least one https URL, or http on a loopback address")
	case n > MaxRedirectURIs:
		return g, invalidRedirect("at most %d redirect_uris (got %d)", MaxRedirectURIs, n)
	}
	for i, u := range req.RedirectURIs {
		if msg := checkRedirect(g.ClientType, u); msg != "" {
			return g, invalidRedirect("redirect_uris[%d] %s", i, msg)
		}
		if slices.Contains(req.RedirectURIs[:i], u) {
			return g, invalidRedirect("redirect_uris[%d] is listed twice", i)
		}
	}

	name := strings.TrimSpace(req.ClientName)
	if name == "" {
		name = "Dynamically registered client"
	}
	if h.Mode == ModeOpen {
		// Nobody reviewed the name: say so wherever it is shown (the login page).
		name += " (unverified)"
	}
	if msg := checkText(name, maxText+len(" (unverified)")); msg != "" {
		return g, invalidMetadata("client_name %s", msg)
	}
	for field, v := range map[string]string{"software_id": req.SoftwareID, "software_version": req.SoftwareVersion} {
		if msg := checkText(v, maxText); v != "" && msg != "" {
			return g, invalidMetadata("%s %s", field, msg)
		}
	}
	for field, v := range map[string]string{"client_uri": req.ClientURI, "logo_uri": req.LogoURI, "tos_uri": req.TOSURI, "policy_uri": req.PolicyURI} {
		if v == "" {
			continue
		}
		if pu, err := url.Parse(v); err != nil || pu.Scheme != "https" || pu.Host == "" || len(v) > maxURL || pu.User != nil {
			return g, invalidMetadata("%s must be an https URL of at most %d bytes", field, maxURL)
		}
	}
	if len(req.Contacts) > maxContacts {
		return g, invalidMetadata("at most %d contacts", maxContacts)
	}
	for i, c := range req.Contacts {
		if a, err := mail.ParseAddress(c); err != nil || a.Name != "" || len(c) > 254 {
			return g, invalidMetadata("contacts[%d] is not an email address", i)
		}
	}
	if len(req.Scope) > maxScope {
		return g, invalidMetadata("scope is over %d bytes", maxScope)
	}
	var v api.Validator
	for _, s := range strings.Fields(req.Scope) {
		v.Scope("scope", s)
	}
	if v.Err() != nil {
		return g, invalidMetadata("scope holds a token that is not an RFC 6749 scope")
	}

	g.ClientName, g.RedirectURIs = name, req.RedirectURIs
	g.Metadata = Metadata{GrantTypes: grants, ResponseTypes: responses, ApplicationType: appType, Scope: strings.Join(strings.Fields(req.Scope), " "),
		ClientURI: req.ClientURI, LogoURI: req.LogoURI, TOSURI: req.TOSURI, PolicyURI: req.PolicyURI, Contacts: req.Contacts,
		SoftwareID: req.SoftwareID, SoftwareVersion: req.SoftwareVersion}
	return g, nil
}

// checkRedirect says what is wrong with a dynamically registered redirect URI: only
// https, or http on a loopback address (no private-use schemes: nobody checks who
// owns them), and the client registry's own rules (no fragment, no user info, no
// wildcard).
func checkRedirect(typ, u string) string {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") {
		return "must be an https URL, or http on a loopback address (127.0.0.1, [::1], localhost)"
	}
	if pu.Scheme == "http" && !api.IsLoopback(pu.Hostname()) {
		return "uses http on a host that is not loopback; use https"
	}
	return client.CheckRedirectURI(typ, u)
}

// checkText refuses control characters, invalid UTF-8 and overlong text.
func checkText(s string, max int) string {
	switch {
	case len(s) > max:
		return fmt.Sprintf("is over %d bytes", max)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "holds control characters"
	}
	return ""
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func toResponse(g Registration, plain string) response {
	resp := response{
		ClientID: g.ID, ClientSecret: plain, ClientIDIssuedAt: g.CreatedAt.Unix(), ClientName: g.ClientName,
		RedirectURIs: g.RedirectURIs, TokenEndpointAuthMethod: g.AuthMethod, GrantTypes: g.Metadata.GrantTypes,
		ResponseTypes: g.Metadata.ResponseTypes, ApplicationType: g.Metadata.ApplicationType, Scope: g.Metadata.Scope,
		ClientURI: g.Metadata.ClientURI, LogoURI: g.Metadata.LogoURI, TOSURI: g.Metadata.TOSURI, PolicyURI: g.Metadata.PolicyURI,
		Contacts: g.Metadata.Contacts, SoftwareID: g.Metadata.SoftwareID, SoftwareVersion: g.Metadata.SoftwareVersion,
		RegistrationStatus: g.Status,
	}
	if plain != "" {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	return resp
}

// CreateClient creates the registration's client in the client registry, with the
// secret handed out at registration. A client that already exists under that id
// (an approval retried after a failure) counts as created.
func CreateClient(ctx context.Context, clients client.Store, g Registration, now time.Time) error {
	c := client.Client{ID: g.ID, Name: g.ClientName, Type: g.ClientType, RedirectURIs: g.RedirectURIs, CreatedAt: now, UpdatedAt: now}
	var secrets []client.Secret
	if g.SecretHash != "" {
		secrets = append(secrets, client.Secret{ID: secret.NewID("csec"), ClientID: g.ID, Hash: g.SecretHash, CreatedAt: now})
	}
	err := clients.CreateClient(ctx, c, secrets...)
	if errors.Is(err, store.ErrConflict) {
		if _, gerr := clients.GetClient(ctx, g.ID); gerr == nil {
			return nil
		}
	}
	return err
}

// allow takes a token from the source address's bucket.
func (h *Registrar) allow(ip string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.buckets[ip]
	if !ok {
		if len(h.buckets) >= 100_000 {
			clear(h.buckets) // bounded memory; a flood from many addresses resets the buckets
		}
		b = rate.NewLimiter(rate.Every(h.Window/time.Duration(h.PerIP)), h.PerIP)
		h.buckets[ip] = b
	}
	return b.AllowN(h.Now(), 1)
}

// record writes a registration event (category admin: it changes configuration).
func (h *Registrar) record(ctx context.Context, e audit.Event) error {
	e.Category, e.ResourceType = audit.CategoryAdmin, "client_registration"
	e.Resource = e.ClientID
	audit.Fill(ctx, &e)
	if e.Time.IsZero() {
		e.Time = h.Now()
	}
	if err := h.Audit.Record(ctx, e); err != nil {
		slog.ErrorContext(ctx, "audit write failed", "action", e.Action, "err", err)
		return err
	}
	return nil
}

func (h *Registrar) fail(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "client registration failed", "err", err)
	writeJSON(w, http.StatusInternalServerError, regError{Code: "server_error", Desc: "the registration could not be stored; the server log has the details"})
}
