package idp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/user"
)

// ldapProvider checks passwords against one LDAP directory.
type ldapProvider struct {
	svc *Service
	p   Provider
}

func (l *ldapProvider) ID() string { return l.p.ID }

func (c LDAPConfig) withDefaults() LDAPConfig {
	if c.UserFilter == "" {
		c.UserFilter = "(uid={username})"
	}
	if c.GroupFilter == "" {
		c.GroupFilter = "(member={dn})"
	}
	if c.GroupAttribute == "" {
		c.GroupAttribute = "cn"
	}
	if c.Attributes.Username == "" {
		c.Attributes.Username = "uid"
	}
	if c.Attributes.Email == "" {
		c.Attributes.Email = "mail"
	}
	if c.Attributes.DisplayName == "" {
		c.Attributes.DisplayName = "cn"
	}
	if c.Timeout <= 0 {
		c.Timeout = 10
	}
	return c
}

func (c LDAPConfig) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CACert)) {
			return nil, errors.New("ca_cert holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// dial connects, with TLS (ldaps:// or StartTLS) unless the server is on loopback.
func (c LDAPConfig) dial() (*ldap.Conn, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	tc, err := c.tlsConfig(u.Hostname())
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(c.Timeout) * time.Second
	conn, err := ldap.DialURL(c.URL, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, err
	}
	conn.SetTimeout(timeout)
	if c.StartTLS && u.Scheme == "ldap" {
		if err := conn.StartTLS(tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	return conn, nil
}

// errLDAP describes an LDAP failure without anything the server echoed back
// beyond its result code and message.
func errLDAP(step string, err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		msg := ldap.LDAPResultCodeMap[le.ResultCode]
		if le.ResultCode == ldap.ErrorNetwork && le.Err != nil {
			msg = le.Err.Error()
		}
		return fmt.Errorf("LDAP %s: %s", step, truncate(msg, 200))
	}
	return fmt.Errorf("LDAP %s: %s", step, truncate(err.Error(), 200))
}

// AuthenticatePassword binds as the service account, finds the user, binds as the
// user with password, reads their groups and provisions them.
func (l *ldapProvider) AuthenticatePassword(ctx context.Context, username, password string) (user.User, error) {
	u, err := l.authenticate(ctx, username, password)
	switch {
	case err == nil:
		l.svc.record(ctx, "ldap.login", audit.Allow, l.p, u.ID, fmt.Sprintf("%s accepted the password of %s", l.p.Name, u.Username))
	case errors.Is(err, user.ErrUnknownUser):
		// Not this directory's user: the next provider may know them.
	case errors.Is(err, ErrAccountConflict):
		l.svc.record(ctx, "ldap.login", audit.Deny, l.p, "", truncate(err.Error(), 300))
	case errors.Is(err, user.ErrBadCredentials):
		l.svc.record(ctx, "ldap.login", audit.Deny, l.p, "", fmt.Sprintf("%s refused the password for %q", l.p.Name, truncate(username, 100)))
	default:
		l.svc.record(ctx, "ldap.login", audit.Deny, l.p, "", truncate(err.Error(), 300))
	}
	return u, err
}

func (l *ldapProvider) authenticate(ctx context.Context, username, password string) (user.User, error) {
	c := l.p.LDAP.withDefaults()
	_, sealed, err := l.svc.Store.GetIdentityProvider(ctx, l.p.ID)
	if err != nil {
		return user.User{}, err
	}
	bindPassword, err := l.svc.secret(ctx, l.p.ID, sealed)
	if err != nil {
		return user.User{}, err
	}
	conn, err := c.dial()
	if err != nil {
		return user.User{}, errLDAP("connect to "+c.URL, err)
	}
	defer conn.Close()
	if stop := context.AfterFunc(ctx, func() { conn.Close() }); stop != nil {
		defer stop()
	}
	serviceBind := func() error {
		if c.BindDN == "" {
			return nil
		}
		if err := conn.Bind(c.BindDN, bindPassword); err != nil {
			return errLDAP("bind as the service account "+c.BindDN, err)
		}
		return nil
	}
	if err := serviceBind(); err != nil {
		return user.User{}, err
	}
	attrs := []string{c.Attributes.Username, c.Attributes.Email, c.Attributes.DisplayName}
	for _, a := range c.Attributes.Attributes {
		attrs = append(attrs, a)
	}
	filter := strings.ReplaceAll(c.UserFilter, "{username}", ldap.EscapeFilter(username))
	res, err := conn.Search(ldap.NewSearchRequest(c.UserBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, c.Timeout, false,
		filter, attrs, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return user.User{}, errLDAP("search for the user", err)
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		return user.User{}, user.ErrUnknownUser
	case len(res.Entries) > 1:
		return user.User{}, fmt.Errorf("LDAP search for the user: the filter %s matches more than one entry; make user_filter match one", filter)
	}
	entry := res.Entries[0]
	if err := conn.Bind(entry.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return user.User{}, user.ErrBadCredentials
		}
		return user.User{}, errLDAP("bind as the user", err)
	}
	prof := Profile{Subject: entry.DN, Attributes: map[string]string{}}
	prof.Username = entry.GetAttributeValue(c.Attributes.Username)
	if prof.Username == "" {
		prof.Username = username
	}
	prof.Email = entry.GetAttributeValue(c.Attributes.Email)
	prof.DisplayName = entry.GetAttributeValue(c.Attributes.DisplayName)
	var mapped []string
	for name, a := range c.Attributes.Attributes {
		mapped = append(mapped, name)
		if v := entry.GetAttributeValue(a); v != "" {
			prof.Attributes[name] = v
		}
	}
	slices.Sort(mapped)
	if c.GroupBaseDN != "" {
		// Read groups as the service account: users often may not search groups.
		if err := serviceBind(); err != nil {
			return user.User{}, err
		}
		gf := strings.NewReplacer("{dn}", ldap.EscapeFilter(entry.DN), "{username}", ldap.EscapeFilter(prof.Username)).Replace(c.GroupFilter)
		gres, err := conn.Search(ldap.NewSearchRequest(c.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, maxGroups, c.Timeout, false,
			gf, []string{c.GroupAttribute}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return user.User{}, errLDAP("search for the user's groups", err)
		}
		prof.SyncGroups = true
		if gres != nil {
			for _, g := range gres.Entries {
				if n := g.GetAttributeValue(c.GroupAttribute); n != "" {
					prof.Groups = append(prof.Groups, n)
				}
			}
		}
	}
	u, err := l.svc.provision(ctx, l.p, mapped, prof)
	if errors.Is(err, ErrAccountConflict) {
		return user.User{}, fmt.Errorf("%w: the username %q is another account's, not linked to %s (%w)", ErrAccountConflict, prof.Username, l.p.Name, user.ErrBadCredentials)
	}
	return u, err
}
