// Package client holds the applications users sign in through (the client nodes of
// an agent's topology): single-page apps, server-side web apps and native apps, each
// an OAuth client with the redirect URIs it may receive codes at.
package client

import (
	"context"
	"net"
	"net/url"
	"strings"
	"time"
)

// Client types (RFC 6749 §2.1 client profiles).
const (
	// TypeSPA is a browser app: public, no secret, PKCE required.
	TypeSPA = "spa"
	// TypeWeb is a server-side web app: confidential, authenticates with a secret.
	TypeWeb = "web"
	// TypeNative is a desktop or mobile app: public, no secret, PKCE required.
	TypeNative = "native"
)

// IDPrefix starts every client id (agents' ids start with agt_).
const IDPrefix = "cli"

// SecretPrefix starts every client secret, as for agents, so leaked ones are easy to
// scan for.
const SecretPrefix = "agcs"

// Client is one registered application.
type Client struct {
	ID                     string
	Name                   string
	Type                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// Public reports whether the client cannot keep a secret (spa, native): it
// authenticates with its client_id alone and must use PKCE.
func (c Client) Public() bool { return c.Type != TypeWeb }

// IsClientID reports whether id names a client (rather than an agent).
func IsClientID(id string) bool { return strings.HasPrefix(id, IDPrefix+"_") }

// Secret is a confidential client's secret, stored only as its hash.
type Secret struct {
	ID        string
	ClientID  string
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// Expired reports whether the secret is past its expiry at now.
func (s Secret) Expired(now time.Time) bool { return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) }

// Store keeps clients and their secrets.
type Store interface {
	// CreateClient stores c and its initial secrets in one transaction.
	CreateClient(ctx context.Context, c Client, secrets ...Secret) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context, limit int, cursor string) ([]Client, string, error)
	UpdateClient(ctx context.Context, id string, update func(*Client) error) (Client, error)
	// DeleteClient removes the client with its secrets, pending sign-ins, codes and
	// refresh tokens.
	DeleteClient(ctx context.Context, id string) error

	CreateClientSecret(ctx context.Context, s Secret) error
	ListClientSecrets(ctx context.Context, clientID string) ([]Secret, error)
	DeleteClientSecret(ctx context.Context, clientID, id string) error
}

// RedirectURIAllowed reports whether uri is one of the client's redirect URIs. The
// match is exact (byte for byte: no normalisation, no prefix or wildcard), with the
// one exception RFC 8252 §7.3 asks of native apps: a loopback IP redirect URI
// registered without a port matches the same URI with any port, because the app
// listens on whatever port the system gives it.
func (c Client) RedirectURIAllowed(uri string) bool {
	return matchURI(c.RedirectURIs, uri, c.Type == TypeNative)
}

// PostLogoutRedirectURIAllowed is RedirectURIAllowed for the logout redirect list.
func (c Client) PostLogoutRedirectURIAllowed(uri string) bool {
	return matchURI(c.PostLogoutRedirectURIs, uri, c.Type == TypeNative)
}

func matchURI(registered []string, uri string, native bool) bool {
	for _, r := range registered {
		if r == uri {
			return true
		}
	}
	if !native {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.Port() == "" || !loopbackIP(u.Hostname()) {
		return false
	}
	// Drop the port and compare exactly again: http://127.0.0.1:5173/cb → http://127.0.0.1/cb.
	// Only the port may differ, so the rest is taken from uri as written.
	prefix := "http://" + u.Host
	if !strings.HasPrefix(uri, prefix) {
		return false // userinfo, or a scheme in another case
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	s := "http://" + host + uri[len(prefix):]
	for _, r := range registered {
		if r == s {
			return true
		}
	}
	return false
}

// OriginAllowed reports whether a browser page of origin (scheme://host[:port], as
// the Origin header sends it) belongs to the client: it is the origin of one of its
// redirect URIs, where the client's pages run. A native app's loopback redirect URI
// allows its host on any port, as for redirects. CORS on the token and revocation
// endpoints is granted by this, like Auth0's "allowed web origins" but derived from
// what the client already registered.
func (c Client) OriginAllowed(origin string) bool {
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" || o.Path != "" || o.RawQuery != "" || o.User != nil || (o.Scheme != "https" && o.Scheme != "http") {
		return false
	}
	for _, r := range c.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil || !strings.EqualFold(u.Scheme, o.Scheme) {
			continue
		}
		if strings.EqualFold(u.Host, o.Host) {
			return true
		}
		if c.Type == TypeNative && u.Scheme == "http" && u.Port() == "" && loopbackIP(u.Hostname()) && strings.EqualFold(u.Hostname(), o.Hostname()) {
			return true
		}
	}
	return false
}

// loopbackIP reports whether host is a loopback IP literal (not the name localhost,
// which RFC 8252 §8.3 advises against).
func loopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
