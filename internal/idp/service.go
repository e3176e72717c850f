package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// Completer finishes a sign-in once an upstream provider has vouched for the user:
// the sign-in handler issues the session and continues the authorization request
// the login page (login request loginID) belongs to.
type Completer interface {
	CompleteLogin(w http.ResponseWriter, r *http.Request, loginID string, u user.User)
}

// ReplayStore marks an upstream state as used, on every replica.
type ReplayStore interface {
	// UseOnce returns store.ErrConflict if key was already used.
	UseOnce(ctx context.Context, key string, expiresAt time.Time) error
}

// LoginOption is an upstream provider offered on the login page.
type LoginOption struct {
	ID   string
	Name string
	// URL starts the sign-in: /login/upstream/{id}; the login page adds
	// ?login_id=<login request id> (see For).
	URL string
}

// For is the option's URL for the login request loginID.
func (o LoginOption) For(loginID string) string {
	return o.URL + "?login_id=" + loginID
}

// Service is the upstream identity providers at work: the options on the login
// page, the OIDC redirect and callback, the LDAP password check, and just-in-time
// provisioning.
type Service struct {
	Store    Store
	Envelope *kms.Envelope
	Dir      *user.Directory
	Audit    audit.Recorder
	Now      func() time.Time
	// Issuer is agentguard's public base URL; the OIDC redirect URI is
	// Issuer + "/login/upstream/callback".
	Issuer    string
	Completer Completer
	Replay    ReplayStore
	// HTTP calls OIDC providers (discovery, token, userinfo, keys). Default: a
	// client with a 10 s timeout.
	HTTP *http.Client

	mu   sync.Mutex
	oidc map[string]*oidcEntry // provider id -> discovered provider
}

var _ user.PasswordProviders = (*Service)(nil)

func (s *Service) httpClient() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// LoginOptions lists the enabled OIDC providers for the login page.
func (s *Service) LoginOptions(ctx context.Context) ([]LoginOption, error) {
	ps, err := s.Store.ListIdentityProviders(ctx)
	if err != nil {
		return nil, err
	}
	var out []LoginOption
	for _, p := range ps {
		if p.Enabled && p.Type == TypeOIDC {
			out = append(out, LoginOption{ID: p.ID, Name: p.Name, URL: "/login/upstream/" + p.ID})
		}
	}
	return out, nil
}

// PasswordProviders lists the enabled LDAP providers, in creation order.
func (s *Service) PasswordProviders(ctx context.Context) ([]user.PasswordProvider, error) {
	ps, err := s.Store.ListIdentityProviders(ctx)
	if err != nil {
		return nil, err
	}
	var out []user.PasswordProvider
	for _, p := range ps {
		if p.Enabled && p.Type == TypeLDAP {
			out = append(out, &ldapProvider{svc: s, p: p})
		}
	}
	return out, nil
}

// secret opens a provider's sealed secret.
func (s *Service) secret(ctx context.Context, id string, sealed []byte) (string, error) {
	b, err := s.Envelope.Open(ctx, sealed, SecretAAD(id))
	if err != nil {
		return "", fmt.Errorf("identity provider %s: open its secret: %w", id, err)
	}
	return string(b), nil
}

// Profile is what an upstream provider says about a user, already mapped.
type Profile struct {
	Subject     string // stable id at the provider (OIDC sub, LDAP DN)
	Username    string
	Email       string
	DisplayName string
	Attributes  map[string]string // the mapped attributes (absent ones are removed)
	Groups      []string
	SyncGroups  bool
}

// ErrAccountConflict: the username belongs to another account (local, SCIM or
// another provider); it is never linked automatically.
var ErrAccountConflict = errors.New("idp: the username belongs to another account")

// provision creates or updates the user the provider vouched for.
func (s *Service) provision(ctx context.Context, p Provider, mapped []string, prof Profile) (user.User, error) {
	prof = cleanProfile(ctx, p, prof)
	if msg := user.CheckUsername(prof.Username); msg != "" {
		return user.User{}, fmt.Errorf("the username %q from %s %s", prof.Username, p.Name, msg)
	}
	apply := func(u *user.User) error {
		u.Username, u.Email, u.DisplayName = prof.Username, prof.Email, prof.DisplayName
		if u.Attributes == nil {
			u.Attributes = map[string]string{}
		}
		for _, k := range mapped {
			if v, ok := prof.Attributes[k]; ok {
				u.Attributes[k] = v
			} else {
				delete(u.Attributes, k)
			}
		}
		var v api.Validator
		user.Validate(&v, *u)
		return v.Err()
	}
	find := func() (user.User, bool, error) {
		us, _, err := s.Dir.Store.ListUsers(ctx, user.Filter{Source: p.Source(), ExternalID: prof.Subject}, 1, "")
		if err != nil || len(us) == 0 {
			return user.User{}, false, err
		}
		return us[0], true, nil
	}
	u, found, err := find()
	if err != nil {
		return user.User{}, err
	}
	why := "sign-in through " + p.Name
	if found {
		u, err = s.Dir.UpdateUser(ctx, u.ID, why, apply)
	} else {
		nu := user.User{Active: true, Source: p.Source(), ExternalID: prof.Subject}
		if err = apply(&nu); err == nil {
			u, err = s.Dir.CreateUser(ctx, nu, "")
		}
		if errors.Is(err, store.ErrConflict) {
			// Another replica provisioned the same user a moment ago, or the
			// username is someone else's.
			if u, found, err = find(); err == nil && !found {
				return user.User{}, ErrAccountConflict
			}
		}
	}
	if errors.Is(err, store.ErrConflict) {
		return user.User{}, ErrAccountConflict
	}
	if err != nil {
		return user.User{}, err
	}
	if prof.SyncGroups {
		if err := s.Dir.Store.SyncUserGroups(ctx, u.ID, p.Source(), prof.Groups, s.Now().UTC()); err != nil {
			return user.User{}, err
		}
		return s.Dir.GetUser(ctx, u.ID)
	}
	return u, nil
}

// cleanProfile drops values the directory would refuse but a sign-in should
// survive (an email that is not one, an over-long name, a group name with control
// characters), logging what it dropped.
func cleanProfile(ctx context.Context, p Provider, prof Profile) Profile {
	if prof.Email != "" {
		var v api.Validator
		user.Validate(&v, user.User{Username: "x", Email: prof.Email})
		if v.Err() != nil {
			slog.WarnContext(ctx, "upstream provider sent an email that is not one; ignoring it", "idp", p.ID)
			prof.Email = ""
		}
	}
	if len(prof.DisplayName) > user.MaxDisplayNameBytes {
		prof.DisplayName = prof.DisplayName[:user.MaxDisplayNameBytes]
	}
	attrs := map[string]string{}
	for k, v := range prof.Attributes {
		if len(v) <= user.MaxAttributeValue {
			attrs[k] = v
		}
	}
	prof.Attributes = attrs
	groups := prof.Groups[:0:0]
	for _, g := range prof.Groups {
		if user.CheckGroupName(g) == "" && !slices.ContainsFunc(groups, func(x string) bool { return user.Key(x) == user.Key(g) }) {
			groups = append(groups, g)
		}
	}
	prof.Groups = groups
	return prof
}

// record writes an inbound audit event about an upstream sign-in.
func (s *Service) record(ctx context.Context, action, decision string, p Provider, userID, reason string) {
	e := audit.Event{Category: audit.CategoryInbound, Action: action, Decision: decision, Reason: reason,
		User: userID, ResourceType: "identity_provider", Resource: p.ID}
	audit.Fill(ctx, &e)
	if err := s.Audit.Record(ctx, e); err != nil {
		slog.ErrorContext(ctx, "could not record an upstream sign-in event", "err", err)
	}
}

// truncate keeps reasons from upstream errors short.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
