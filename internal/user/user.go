// Package user is the directory: the people who sign in through clients and on
// whose behalf agents act. Local users have a password (argon2id); users provisioned
// by SCIM or signed in through an upstream OpenID Connect or LDAP provider have none.
package user

import (
	"context"
	"errors"
	"time"
)

// Sources of a user record.
const (
	SourceLocal = "local" // created through the management API or CLI
	SourceSCIM  = "scim"  // provisioned by an enterprise IdP over SCIM 2.0
	// Upstream identity providers use "oidc:<idp id>" and "ldap:<idp id>".
)

// User is one person in the directory. ID is the stable subject (`sub`) of every
// token issued for the user; Username is what they type on the login page.
type User struct {
	ID          string            `json:"id"`
	Username    string            `json:"username"`
	Email       string            `json:"email,omitempty"`
	DisplayName string            `json:"display_name,omitempty"`
	Groups      []string          `json:"groups"`     // group names
	Attributes  map[string]string `json:"attributes"` // e.g. department
	Active      bool              `json:"active"`
	Source      string            `json:"source"`
	ExternalID  string            `json:"external_id,omitempty"`
	HasPassword bool              `json:"has_password"` // a local password is set
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// InGroup reports whether the user is a member of the group name.
func (u User) InGroup(name string) bool {
	for _, g := range u.Groups {
		if g == name {
			return true
		}
	}
	return false
}

// Group is a named set of users.
type Group struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name,omitempty"`
	ExternalID  string    `json:"external_id,omitempty"`
	Source      string    `json:"source"`       // who manages it: local, scim, oidc:<idp id>, ldap:<idp id>
	MemberCount int       `json:"member_count"` // filled in by reads
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ErrBadCredentials is the one error for a wrong password, an unknown username and
// an inactive user alike, so the login page cannot be used to enumerate users.
var ErrBadCredentials = errors.New("the username or password is not correct")

// Authenticator checks a username and password against the directory (local
// passwords first, then any LDAP providers configured). Unknown users cost the same
// time as known ones.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (User, error)
}

// Getter reads a user by ID (store.ErrNotFound if none): sign-in, refresh, userinfo
// and token exchange reload the user so a deactivation takes effect at once.
type Getter interface {
	GetUser(ctx context.Context, id string) (User, error)
}
