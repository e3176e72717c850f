package user

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// ErrUnknownUser is what a PasswordProvider answers for a username it does not
// hold, so the directory tries the next provider. It never reaches a caller of
// Authenticate (they see ErrBadCredentials).
var ErrUnknownUser = errors.New("user: no such user in this provider")

// PasswordProvider is an upstream directory that checks passwords (LDAP). It
// provisions the user it authenticates (source "ldap:<ID()>") and returns them.
type PasswordProvider interface {
	ID() string
	AuthenticatePassword(ctx context.Context, username, password string) (User, error)
}

// PasswordProviders lists the enabled password providers, in the order to try.
type PasswordProviders interface {
	PasswordProviders(ctx context.Context) ([]PasswordProvider, error)
}

// Directory is the user directory agentguard's sign-in and token exchange use: it
// implements Authenticator and Getter, and every change that can orphan agents goes
// through it so the orphaning is audited the same way from the API, SCIM and CLI.
type Directory struct {
	Store  Store
	Hasher *Hasher
	Audit  audit.Recorder
	Now    func() time.Time
	// SuspendOrphans disables (status "disabled") the agents a deleted or
	// deactivated owner leaves behind, besides flagging them orphaned.
	SuspendOrphans bool
	// Upstream lists the LDAP providers tried after the local users; may be nil.
	Upstream PasswordProviders
}

var (
	_ Authenticator = (*Directory)(nil)
	_ Getter        = (*Directory)(nil)
)

func (d *Directory) now() time.Time { return d.Now().UTC() }

// defaultHasher serves directories built without their own Hasher.
var defaultHasher Hasher

func (d *Directory) hasher() *Hasher {
	if d.Hasher != nil {
		return d.Hasher
	}
	return &defaultHasher
}

// GetUser reads a user by id (store.ErrNotFound if none).
func (d *Directory) GetUser(ctx context.Context, id string) (User, error) {
	if !strings.HasPrefix(id, IDPrefix) || len(id) > 64 {
		return User{}, store.ErrNotFound
	}
	return d.Store.GetUser(ctx, id)
}

// Authenticate checks a username and password: local users first, then each
// enabled LDAP provider (a user an LDAP provider provisioned is checked against that
// provider only). A wrong password, an unknown user and an inactive user are all
// ErrBadCredentials, and an unknown user costs one argon2id hash like a known one.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (User, error) {
	if username == "" || password == "" || len(username) > MaxUsernameBytes || len(password) > MaxPasswordBytes {
		return User{}, ErrBadCredentials
	}
	u, hash, err := d.Store.UserCredentials(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		if _, _, err := d.hasher().Verify(ctx, password, ""); err != nil {
			return User{}, err
		}
		return d.upstream(ctx, username, password, "")
	}
	if err != nil {
		return User{}, err
	}
	if idp, ok := strings.CutPrefix(u.Source, "ldap:"); ok {
		if _, _, err := d.hasher().Verify(ctx, password, ""); err != nil {
			return User{}, err
		}
		return d.upstream(ctx, username, password, idp)
	}
	ok, rehash, err := d.hasher().Verify(ctx, password, hash)
	if errors.Is(err, ErrMalformedHash) {
		slog.ErrorContext(ctx, "a stored password hash does not parse; the user cannot sign in until an admin sets a new password", "user_id", u.ID)
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	if !ok || !u.Active {
		return User{}, ErrBadCredentials
	}
	if rehash {
		if h, err := d.hasher().Hash(ctx, password); err == nil {
			if err := d.Store.SetPasswordHash(ctx, u.ID, h, u.UpdatedAt); err != nil {
				slog.WarnContext(ctx, "could not store a re-hashed password", "user_id", u.ID, "err", err)
			}
		}
	}
	return u, nil
}

// upstream tries the LDAP providers (only the one named by pinned, if set).
func (d *Directory) upstream(ctx context.Context, username, password, pinned string) (User, error) {
	if d.Upstream == nil {
		return User{}, ErrBadCredentials
	}
	providers, err := d.Upstream.PasswordProviders(ctx)
	if err != nil {
		slog.ErrorContext(ctx, "could not list the LDAP providers; treating the sign-in as failed", "err", err)
		return User{}, ErrBadCredentials
	}
	for _, p := range providers {
		if pinned != "" && p.ID() != pinned {
			continue
		}
		u, err := p.AuthenticatePassword(ctx, username, password)
		switch {
		case err == nil && u.Active:
			return u, nil
		case err == nil, errors.Is(err, ErrBadCredentials):
			return User{}, ErrBadCredentials
		case errors.Is(err, ErrUnknownUser):
			continue
		case ctx.Err() != nil:
			return User{}, ctx.Err()
		default:
			// The provider recorded why (unreachable, misconfigured); try the next.
			continue
		}
	}
	return User{}, ErrBadCredentials
}

// CreateUser stores a new user with a fresh id; password may be empty (the user
// cannot sign in with a password until one is set).
func (d *Directory) CreateUser(ctx context.Context, u User, password string) (User, error) {
	now := d.now()
	u.ID = secret.NewID(strings.TrimSuffix(IDPrefix, "_"))
	u.CreatedAt, u.UpdatedAt = now, now
	Normalize(&u)
	var hash string
	if password != "" {
		var err error
		if hash, err = d.hasher().Hash(ctx, password); err != nil {
			return User{}, err
		}
		u.HasPassword = true
	}
	if err := d.Store.CreateUser(ctx, u, hash); err != nil {
		return User{}, err
	}
	return u, nil
}

// SetPassword replaces a user's password.
func (d *Directory) SetPassword(ctx context.Context, id, password string) error {
	hash, err := d.hasher().Hash(ctx, password)
	if err != nil {
		return err
	}
	return d.Store.SetPasswordHash(ctx, id, hash, d.now())
}

// UpdateUser changes a user; why says through what (e.g. "the management API",
// "SCIM") for the audit events of agents it orphans or restores.
func (d *Directory) UpdateUser(ctx context.Context, id, why string, update func(*User) error) (User, error) {
	now := d.now()
	var before User
	u, changes, err := d.Store.UpdateUser(ctx, id, d.orphaning(now), func(u *User) error {
		before = *u
		if err := update(u); err != nil {
			return err
		}
		Normalize(u)
		u.UpdatedAt = now
		return nil
	})
	if err != nil {
		return u, err
	}
	verb := "was deactivated"
	if !before.Active && u.Active {
		verb = "was reactivated"
	}
	return u, d.recordOrphans(ctx, before, verb+" through "+why, changes)
}

// DeleteUser removes a user and orphans the agents they owned.
func (d *Directory) DeleteUser(ctx context.Context, id, why string) (User, error) {
	u, changes, err := d.Store.DeleteUser(ctx, id, d.orphaning(d.now()))
	if err != nil {
		return u, err
	}
	return u, d.recordOrphans(ctx, u, "was deleted through "+why, changes)
}

func (d *Directory) orphaning(now time.Time) Orphaning {
	return Orphaning{Suspend: d.SuspendOrphans, At: now}
}

// recordOrphans writes one admin event per agent orphaned, suspended or restored.
func (d *Directory) recordOrphans(ctx context.Context, u User, what string, changes []OrphanChange) error {
	var errs []error
	for _, c := range changes {
		owner := fmt.Sprintf("owner %s (%s) %s", u.Username, u.ID, what)
		action, reason := "agent.orphan", owner+"; the agent is flagged orphaned"
		switch {
		case !c.Orphaned:
			action, reason = "agent.orphan_cleared", owner+"; the agent is no longer orphaned (its status is unchanged)"
		case c.Suspended:
			action, reason = "agent.suspend", owner+"; the agent is flagged orphaned and disabled (--suspend-orphans)"
		}
		e := audit.Event{
			Category: audit.CategoryAdmin, Action: action, Decision: audit.Allow, Reason: reason,
			User: audit.RequestFrom(ctx).Actor, AgentID: c.AgentID, ResourceType: "agent", Resource: c.AgentID,
		}
		audit.Fill(ctx, &e)
		errs = append(errs, d.Audit.Record(ctx, e))
		if c.Orphaned {
			slog.InfoContext(ctx, "agent orphaned", "agent_id", c.AgentID, "owner_id", u.ID, "suspended", c.Suspended)
		}
	}
	return errors.Join(errs...)
}
