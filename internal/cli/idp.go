package cli

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

type idpJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Enabled     bool   `json:"enabled"`
	SecretSet   bool   `json:"secret_set"`
	RedirectURI string `json:"redirect_uri"`
	OIDC        *struct {
		Issuer string `json:"issuer"`
	} `json:"oidc"`
	LDAP *struct {
		URL string `json:"url"`
	} `json:"ldap"`
	CreatedAt time.Time `json:"created_at"`
}

var idpView = view[idpJSON]{
	header: []string{"ID", "NAME", "TYPE", "ENABLED", "WHERE", "SECRET", "REDIRECT_URI", "CREATED"},
	row: func(p idpJSON) []string {
		where := ""
		if p.OIDC != nil {
			where = p.OIDC.Issuer
		}
		if p.LDAP != nil {
			where = p.LDAP.URL
		}
		return []string{p.ID, p.Name, p.Type, strconv.FormatBool(p.Enabled), where, map[bool]string{true: "set"}[p.SecretSet], p.RedirectURI, timeCell(&p.CreatedAt)}
	},
}

func newIDPCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "idp",
		Short: "Manage upstream identity providers: OpenID Connect sign-in and LDAP passwords",
		Long: `Manage upstream identity providers. OpenID Connect providers appear as buttons on the
login page; LDAP directories check the username and password typed there. Users are
provisioned at their first sign-in.

Secrets are never read from a command-line argument: give the client secret or bind
password with --secret-file FILE ("-" reads standard input) or AGENTGUARD_IDP_SECRET.`,
	}
	cmd.AddCommand(newIDPAddCmd(g), newIDPListCmd(g), newIDPGetCmd(g),
		newIDPEnableCmd(g, "enable", true), newIDPEnableCmd(g, "disable", false), newIDPDeleteCmd(g))
	return cmd
}

func newIDPAddCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "add", Short: "Add an OpenID Connect or LDAP provider"}
	cmd.AddCommand(newIDPAddOIDCCmd(g), newIDPAddLDAPCmd(g))
	return cmd
}

func newIDPAddOIDCCmd(g *globals) *cobra.Command {
	var name, issuer, clientID, secretFile, cUser, cEmail, cName, cGroups string
	var scopes, attrs []string
	var userinfo bool
	cmd := &cobra.Command{
		Use:   "oidc --name NAME --issuer URL --client-id ID --secret-file FILE",
		Short: "Add an OpenID Connect provider (a button on the login page)",
		Example: `  agentguard idp add oidc --name "Corp SSO" --issuer https://login.microsoftonline.com/<tenant>/v2.0 \
      --client-id 1b2c… --secret-file secret.txt --claim-groups groups --claim-attr department=department`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			secret, err := readSecret(cmd, g, secretFile, "secret-file", "AGENTGUARD_IDP_SECRET")
			if err != nil {
				return err
			}
			attrMap, err := keyValues("claim-attr", attrs)
			if err != nil {
				return err
			}
			body := map[string]any{"name": name, "type": "oidc", "oidc": map[string]any{
				"issuer": issuer, "client_id": clientID, "client_secret": secret, "scopes": scopes, "userinfo": userinfo,
				"claims": map[string]any{"username": cUser, "email": cEmail, "display_name": cName, "groups": cGroups, "attributes": attrMap}}}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("identity-providers"), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, idpView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "shown on the login button (required)")
	f.StringVar(&issuer, "issuer", "", "the provider's issuer URL (required)")
	f.StringVar(&clientID, "client-id", "", "agentguard's client id at the provider (required)")
	f.StringVar(&secretFile, "secret-file", "", "file with the client secret (- for standard input); else AGENTGUARD_IDP_SECRET")
	f.StringArrayVar(&scopes, "scope", nil, "a scope to ask for (repeatable; default openid profile email)")
	f.BoolVar(&userinfo, "userinfo", false, "also read the userinfo endpoint's claims")
	f.StringVar(&cUser, "claim-username", "", "claim that becomes the username (default preferred_username)")
	f.StringVar(&cEmail, "claim-email", "", "claim that becomes the email (default email)")
	f.StringVar(&cName, "claim-display-name", "", "claim that becomes the display name (default name)")
	f.StringVar(&cGroups, "claim-groups", "", "claim listing the user's groups (default: groups are not synced)")
	f.StringArrayVar(&attrs, "claim-attr", nil, "attribute=claim, e.g. department=department (repeatable; dotted paths for nested claims)")
	return cmd
}

func newIDPAddLDAPCmd(g *globals) *cobra.Command {
	var name, url, caFile, bindDN, secretFile, userBase, userFilter, groupBase, groupFilter, groupAttr, aUser, aEmail, aName string
	var attrs []string
	var startTLS bool
	var timeout int
	cmd := &cobra.Command{
		Use:   "ldap --name NAME --url URL --user-base-dn DN",
		Short: "Add an LDAP directory (checks the login page's passwords)",
		Example: `  agentguard idp add ldap --name "Corp LDAP" --url ldaps://ldap.corp.example \
      --bind-dn cn=agentguard,ou=services,dc=corp,dc=example --secret-file bind.txt \
      --user-base-dn ou=people,dc=corp,dc=example --group-base-dn ou=groups,dc=corp,dc=example \
      --attr department=departmentNumber`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			settings := map[string]any{"url": url, "start_tls": startTLS, "bind_dn": bindDN, "user_base_dn": userBase,
				"user_filter": userFilter, "group_base_dn": groupBase, "group_filter": groupFilter, "group_attribute": groupAttr, "timeout": timeout}
			if bindDN != "" {
				secret, err := readSecret(cmd, g, secretFile, "secret-file", "AGENTGUARD_IDP_SECRET")
				if err != nil {
					return err
				}
				settings["bind_password"] = secret
			}
			if caFile != "" {
				b, err := readFileLimited(caFile, 256<<10)
				if err != nil {
					return err
				}
				settings["ca_cert"] = string(b)
			}
			attrMap, err := keyValues("attr", attrs)
			if err != nil {
				return err
			}
			settings["attributes"] = map[string]any{"username": aUser, "email": aEmail, "display_name": aName, "attributes": attrMap}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("identity-providers"), nil, map[string]any{"name": name, "type": "ldap", "ldap": settings})
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, idpView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "a name for the directory (required)")
	f.StringVar(&url, "url", "", "ldaps://host[:636], or ldap://host with --start-tls (required)")
	f.BoolVar(&startTLS, "start-tls", false, "upgrade an ldap:// connection with StartTLS")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA to trust instead of the system's")
	f.StringVar(&bindDN, "bind-dn", "", "the service account that searches (empty: anonymous)")
	f.StringVar(&secretFile, "secret-file", "", "file with the bind password (- for standard input); else AGENTGUARD_IDP_SECRET")
	f.StringVar(&userBase, "user-base-dn", "", "where users are (required)")
	f.StringVar(&userFilter, "user-filter", "", "finds the user; {username} is the typed username (default (uid={username}))")
	f.StringVar(&groupBase, "group-base-dn", "", "where groups are (default: groups are not synced)")
	f.StringVar(&groupFilter, "group-filter", "", "finds the user's groups; {dn} is the user's DN (default (member={dn}))")
	f.StringVar(&groupAttr, "group-attribute", "", "the group's name attribute (default cn)")
	f.StringVar(&aUser, "attr-username", "", "LDAP attribute of the username (default uid)")
	f.StringVar(&aEmail, "attr-email", "", "LDAP attribute of the email (default mail)")
	f.StringVar(&aName, "attr-display-name", "", "LDAP attribute of the display name (default cn)")
	f.StringArrayVar(&attrs, "attr", nil, "attribute=ldapAttribute, e.g. department=departmentNumber (repeatable)")
	f.IntVar(&timeout, "timeout", 0, "seconds per LDAP operation (default 10)")
	return cmd
}

func newIDPListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List identity providers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("identity-providers"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, idpView)
		},
	}
}

func newIDPGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get IDP_ID",
		Short: "Show one identity provider (-o json for every setting)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("identity-providers", args[0]), nil, nil)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, idpView)
		},
	}
}

func newIDPEnableCmd(g *globals, verb string, enabled bool) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " IDP_ID",
		Short: map[bool]string{true: "Enable a provider", false: "Disable a provider: it leaves the login page and is no longer asked"}[enabled],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("identity-providers", args[0]), nil, map[string]any{"enabled": enabled})
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, idpView)
		},
	}
}

func newIDPDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete IDP_ID",
		Short: "Delete a provider; the users it provisioned stay",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("identity-providers", args[0]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted identity provider %s.", args[0])
			return nil
		},
	}
}
