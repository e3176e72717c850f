// Package registration is OAuth 2.0 Dynamic Client Registration (RFC 7591) for the
// clients of MCP servers and other apps that register themselves: POST
// /oauth2/register records a registration, and, depending on the server's setting,
// creates the client at once (open) or keeps it pending until an administrator
// approves it (approval, the default). A pending registration is not a client: it
// cannot sign anyone in or get any token. Approval creates the client in the client
// registry (internal/client) with the id and secret handed out at registration.
//
// Registering a client gives it no access: users reach an agent (or an MCP server
// registered as one) through a client only if that agent's inbound rules name the
// client.
package registration

import (
	"context"
	"time"
)

// Modes of the client-registration setting.
const (
	ModeOff      = "off"      // no registration endpoint
	ModeApproval = "approval" // registrations wait for an administrator
	ModeOpen     = "open"     // registrations create clients at once
)

// Status of a registration.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusRejected = "rejected"
)

// Registration is one client's request to be registered.
type Registration struct {
	// ID is the client_id handed out at registration, which the client gets once
	// approved.
	ID     string
	Status string
	// ClientName, ClientType (client.TypeSPA/TypeWeb/TypeNative) and RedirectURIs
	// become the client's.
	ClientName   string
	ClientType   string
	AuthMethod   string // token_endpoint_auth_method: none, client_secret_basic, client_secret_post
	RedirectURIs []string
	Metadata     Metadata
	// SecretHash is the SHA-256 of the client secret handed out at registration
	// (confidential clients); cleared when the registration is rejected.
	SecretHash string
	SourceIP   string
	CreatedAt  time.Time
	DecidedAt  time.Time // zero while pending
	DecidedBy  string
	Reason     string // why it was rejected
}

// Metadata is the rest of what the client said about itself (RFC 7591 §2), kept for
// the administrator who decides.
type Metadata struct {
	GrantTypes      []string `json:"grant_types,omitempty"`
	ResponseTypes   []string `json:"response_types,omitempty"`
	ApplicationType string   `json:"application_type,omitempty"`
	Scope           string   `json:"scope,omitempty"`
	ClientURI       string   `json:"client_uri,omitempty"`
	LogoURI         string   `json:"logo_uri,omitempty"`
	TOSURI          string   `json:"tos_uri,omitempty"`
	PolicyURI       string   `json:"policy_uri,omitempty"`
	Contacts        []string `json:"contacts,omitempty"`
	SoftwareID      string   `json:"software_id,omitempty"`
	SoftwareVersion string   `json:"software_version,omitempty"`
}

// Store keeps registrations.
type Store interface {
	CreateRegistration(ctx context.Context, r Registration) error
	GetRegistration(ctx context.Context, id string) (Registration, error)
	// ListRegistrations lists by id (oldest first); status "" lists all.
	ListRegistrations(ctx context.Context, status string, limit int, cursor string) ([]Registration, string, error)
	// UpdateRegistration changes one registration in a transaction.
	UpdateRegistration(ctx context.Context, id string, update func(*Registration) error) (Registration, error)
	CountRegistrations(ctx context.Context, status string) (int, error)
	// DeleteRegistrationsBefore deletes registrations of status created before t.
	DeleteRegistrationsBefore(ctx context.Context, status string, t time.Time) (int64, error)
	DeleteRegistration(ctx context.Context, id string) error
}

// PendingLifetime is how long a registration waits for a decision before it is
// deleted (and its client id is never issued).
const PendingLifetime = 30 * 24 * time.Hour
