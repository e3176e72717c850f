// Package admin authenticates callers of the management API: the bootstrap admin
// token, stored admin tokens, or an access token with the agentguard:admin scope.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/token"
)

// TokenFile is where a generated bootstrap token is written inside the data dir.
const TokenFile = "admin-token"

// Bootstrap makes sure an admin can log in. If envToken is set, it is valid (its
// hash is returned and kept in memory only). Otherwise, if the store has no admin
// token, one is generated, its hash stored, and the token written to
// <dataDir>/admin-token with mode 0600. The token itself is never logged.
func Bootstrap(ctx context.Context, st Store, dataDir, envToken string, now time.Time) (envHash string, err error) {
	if envToken != "" {
		if len(envToken) < 16 {
			return "", errors.New("AGENTGUARD_ADMIN_TOKEN must be at least 16 characters")
		}
		return secret.Hash(envToken), nil
	}
	n, err := st.CountAdminTokens(ctx)
	if err != nil {
		return "", fmt.Errorf("read admin tokens: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	tok := secret.New("aga")
	path := filepath.Join(dataDir, TokenFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	if err := writeTokenFile(path, tok); err != nil {
		return "", fmt.Errorf("write bootstrap admin token: %w", err)
	}
	if err := st.CreateAdminToken(ctx, Token{ID: secret.NewID("adm"), Hash: secret.Hash(tok), CreatedAt: now}); err != nil {
		return "", err
	}
	slog.Info("generated the bootstrap admin token; read it from the file", "path", path)
	return "", nil
}

// writeTokenFile writes tok to a new 0600 file at path. A stale file left from an
// earlier store is removed first rather than written through, so neither its old
// mode nor a symlink planted in its place decides where the token goes.
func writeTokenFile(path, tok string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// AgentGetter reads an agent (to check the status of an admin agent's token).
type AgentGetter interface {
	GetAgent(ctx context.Context, id string) (agent.Agent, error)
}

// Authenticator guards the management API.
type Authenticator struct {
	Store   Store
	Issuer  *token.Issuer
	Agents  AgentGetter
	Audit   audit.Recorder
	EnvHash string // hash of AGENTGUARD_ADMIN_TOKEN, or empty
}

// Require lets only admins through. It records every refused or failed change as
// an admin audit event; handlers record the successful ones.
func (a *Authenticator) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.authenticate(r)
		if err != nil {
			a.deny(r, actor, err)
			api.WriteError(w, r, err)
			return
		}
		audit.RequestFrom(r.Context()).Actor = actor
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status >= 400 {
			a.deny(r, actor, fmt.Errorf("HTTP %d", sw.status))
		}
	})
}

func (a *Authenticator) deny(r *http.Request, actor string, err error) {
	e := audit.Event{
		Category: audit.CategoryAdmin, Action: r.Method + " " + r.URL.Path, Decision: audit.Deny,
		Reason: err.Error(), User: actor, ResourceType: "api",
	}
	audit.Fill(r.Context(), &e)
	_ = a.Audit.Record(r.Context(), e)
}

func (a *Authenticator) authenticate(r *http.Request) (actor string, err error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		return "", api.Unauthorized("send an admin token as Authorization: Bearer <token>")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 16<<10 {
		return "", api.Unauthorized("the Authorization header must be Bearer <token>")
	}
	// The env token may look like anything (even a JWT), so it is checked first.
	hash := secret.Hash(tok)
	if a.EnvHash != "" && secret.Equal(hash, a.EnvHash) {
		return "admin-token:env", nil
	}
	if secret.HasPrefix(tok, "aga") || strings.Count(tok, ".") != 2 {
		t, err := a.Store.AdminTokenByHash(r.Context(), hash)
		if errors.Is(err, store.ErrNotFound) {
			return "", api.Unauthorized("the admin token is not valid")
		} else if err != nil {
			return "", err
		}
		return "admin-token:" + t.ID, nil
	}
	c, err := a.Issuer.Verify(r.Context(), tok)
	if err != nil {
		return "", api.Unauthorized("the access token is not valid: " + err.Error())
	}
	actor = "agent:" + c.ClientID
	if !slices.Contains(c.Audience, a.Issuer.URL) {
		return actor, api.Unauthorized("the access token's audience is not this server (" + a.Issuer.URL + ")")
	}
	if c.Act != nil {
		return actor, api.Forbidden("delegated tokens cannot use the management API")
	}
	ag, err := a.Agents.GetAgent(r.Context(), c.ClientID)
	if err != nil || !ag.Active() {
		return actor, api.Unauthorized("the access token's agent is disabled or gone")
	}
	if !slices.Contains(grant.SplitScopes(c.Scope), grant.ScopeAdmin) {
		return actor, api.Forbidden("the access token lacks the %s scope", grant.ScopeAdmin)
	}
	return actor, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
