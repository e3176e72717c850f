// Package session keeps what a user's sign-in leaves behind: the browser session,
// the pending sign-in of an authorization request, and what clients get from it
// (authorization codes and refresh token families). Every secret a browser or a
// client holds is stored only as its SHA-256 hash.
package session

import (
	"context"
	"errors"
	"time"
)

// ErrReused is returned when a one-time value (an authorization code, a refresh
// token) is presented again. The store has already revoked what was issued from it.
var ErrReused = errors.New("already used")

// ErrRevoked is returned when a refresh token's family has been revoked.
var ErrRevoked = errors.New("revoked")

// Session is a browser's sign-in session. The cookie holds a 256-bit secret; the
// store holds its hash (IDHash). SID is the public id ID tokens carry.
type Session struct {
	IDHash    string
	SID       string
	UserID    string
	AuthTime  time.Time
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time // absolute end
}

// LoginRequest is an authorization request waiting for the user to sign in, bound
// to the browser that started it and to its form's CSRF token.
type LoginRequest struct {
	ID          string
	ClientID    string
	Request     []byte // the validated request, JSON
	CSRFHash    string
	BrowserHash string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Store keeps sessions and pending sign-ins.
type Store interface {
	CreateLoginRequest(ctx context.Context, l LoginRequest) error
	GetLoginRequest(ctx context.Context, id string) (LoginRequest, error)
	// DeleteLoginRequest removes it; ErrNotFound if it was already gone (used).
	DeleteLoginRequest(ctx context.Context, id string) error

	// CreateSession stores s and, in the same transaction, deletes the session whose
	// hash is replaces (if any): a sign-in always gets a new session id.
	CreateSession(ctx context.Context, s Session, replaces string) error
	GetSession(ctx context.Context, idHash string) (Session, error)
	GetSessionBySID(ctx context.Context, sid string) (Session, error)
	// TouchSession records activity at now.
	TouchSession(ctx context.Context, sid string, now time.Time) error
	// DeleteSession ends the session sid; ErrNotFound if there was none.
	DeleteSession(ctx context.Context, sid string) error
}

// Code is an authorization code as stored: only its hash, bound to the client, the
// redirect URI, the PKCE challenge, the user and session, and what was asked for.
type Code struct {
	Hash          string
	ClientID      string
	UserID        string
	SID           string
	RedirectURI   string
	CodeChallenge string // S256; empty only for confidential clients that sent none
	Scope         string
	Audience      string // the agent's audience; empty: the issuer
	Nonce         string
	AuthTime      time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        time.Time // zero: not redeemed yet
	// What was issued from the code, revoked if it is presented again.
	AccessJTI       string
	AccessExpiresAt time.Time
	FamilyID        string
}

// RefreshFamily is every refresh token rotated from one authorization code. It ends
// with its session (SID), unless it was granted offline_access (SID empty).
type RefreshFamily struct {
	ID            string
	ClientID      string
	UserID        string
	SID           string
	Scope         string
	Audience      string
	AuthTime      time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time // absolute: rotation does not extend it
	RevokedAt     time.Time
	RevokedReason string
}

// RefreshToken is one refresh token (its hash) and the access token issued with it.
type RefreshToken struct {
	Hash            string
	FamilyID        string
	CreatedAt       time.Time
	ExpiresAt       time.Time
	UsedAt          time.Time // zero: not rotated yet
	AccessJTI       string
	AccessExpiresAt time.Time
}

// CodeStore keeps authorization codes.
type CodeStore interface {
	CreateCode(ctx context.Context, c Code) error
	GetCode(ctx context.Context, hash string) (Code, error)
	// RedeemCode marks the code used at now and records the access token issued from
	// it; with a family it also stores the family and its first refresh token, all in
	// one transaction. If the code was already used, it instead revokes the access
	// token and refresh token family issued from it (RFC 6749 §4.1.2) and returns
	// ErrReused.
	RedeemCode(ctx context.Context, hash string, now time.Time, accessJTI string, accessExpiresAt time.Time, family *RefreshFamily, first *RefreshToken) error
}

// RefreshStore keeps refresh token families.
type RefreshStore interface {
	// GetRefreshToken returns the token with that hash and its family.
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, RefreshFamily, error)
	// RotateRefreshToken marks oldHash used at now and stores next in the same family,
	// atomically. If oldHash was already used, it revokes the family and every access
	// token issued from it, and returns ErrReused; if the family is revoked, ErrRevoked.
	RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, next RefreshToken) error
	// RevokeRefreshFamily revokes a family and the access tokens issued from it.
	RevokeRefreshFamily(ctx context.Context, familyID, reason string, now time.Time) error
	// RevokeSessionRefreshFamilies revokes the families bound to the session sid.
	RevokeSessionRefreshFamilies(ctx context.Context, sid, reason string, now time.Time) (int, error)
}
