package user

import (
	"context"
	"time"
)

// Filter narrows a list of users. Empty fields do not filter.
type Filter struct {
	Query      string // case-insensitive, in username, email, display name or id
	Group      string // member of the group with this name
	Source     string // e.g. "scim"
	Active     *bool
	Username   string // exact, case-insensitive
	Email      string // exact, case-insensitive
	ExternalID string // exact (with Source)
	ID         string // exact
}

// GroupFilter narrows a list of groups.
type GroupFilter struct {
	Query      string // case-insensitive, in name or display name
	Source     string
	Name       string // exact, case-insensitive
	ExternalID string // exact (with Source)
	ID         string // exact
}

// Member is one user in a group, with who added the membership.
type Member struct {
	UserID   string    `json:"user_id"`
	Username string    `json:"username"`
	Source   string    `json:"source"`
	AddedAt  time.Time `json:"added_at"`
}

// Orphaning says what happens, in the same transaction, to the agents whose owner
// names a user who is deleted or deactivated: they are flagged orphaned, and with
// Suspend also disabled.
type Orphaning struct {
	Suspend bool
	At      time.Time
}

// OrphanChange is one agent a user change touched.
type OrphanChange struct {
	AgentID   string
	Orphaned  bool // true: newly orphaned; false: its flag was cleared (the owner is back)
	Suspended bool // it was active and is now disabled
}

// Store keeps users, groups and memberships. User.Groups are group names; on
// create and update they must name existing groups (ErrNotFound otherwise).
type Store interface {
	CreateUser(ctx context.Context, u User, passwordHash string) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// UserCredentials returns the user with that username and its password hash
	// ("" when it has none).
	UserCredentials(ctx context.Context, username string) (User, string, error)
	ListUsers(ctx context.Context, f Filter, limit int, cursor string) ([]User, string, error)
	// ListUsersAt pages by position (SCIM startIndex) and counts every match.
	ListUsersAt(ctx context.Context, f Filter, offset, limit int) ([]User, int, error)
	// UpdateUser runs update on the stored user in a transaction. A user who becomes
	// inactive orphans the agents they own; one who becomes active again clears the
	// flag (suspended agents stay disabled).
	UpdateUser(ctx context.Context, id string, o Orphaning, update func(*User) error) (User, []OrphanChange, error)
	SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error
	// DeleteUser removes the user and orphans the agents they own.
	DeleteUser(ctx context.Context, id string, o Orphaning) (User, []OrphanChange, error)
	// SyncUserGroups makes the memberships added by source exactly names, creating
	// missing groups with that source; other memberships are left alone.
	SyncUserGroups(ctx context.Context, userID, source string, names []string, at time.Time) error
	// ActiveOwner reports whether owner (a username, email or user id, any case)
	// names an active user.
	ActiveOwner(ctx context.Context, owner string) (bool, error)

	CreateGroup(ctx context.Context, g Group, memberIDs []string, memberSource string) error
	GetGroup(ctx context.Context, id string) (Group, error)
	ListGroups(ctx context.Context, f GroupFilter, limit int, cursor string) ([]Group, string, error)
	ListGroupsAt(ctx context.Context, f GroupFilter, offset, limit int) ([]Group, int, error)
	UpdateGroup(ctx context.Context, id string, update func(*Group) error) (Group, error)
	DeleteGroup(ctx context.Context, id string) error
	ListMembers(ctx context.Context, groupID string, limit int, cursor string) ([]Member, string, error)
	// AddMembers adds users (ErrNotFound if one does not exist); existing
	// memberships stay as they are.
	AddMembers(ctx context.Context, groupID string, userIDs []string, source string, at time.Time) error
	RemoveMembers(ctx context.Context, groupID string, userIDs []string, at time.Time) error
	// SetMembers replaces the members (SCIM PUT).
	SetMembers(ctx context.Context, groupID string, userIDs []string, source string, at time.Time) error
}
