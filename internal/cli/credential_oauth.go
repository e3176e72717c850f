package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// envOAuthClientSecret holds an OAuth provider's client secret when no
// --client-secret-file is given.
const envOAuthClientSecret = "AGENTGUARD_OAUTH_CLIENT_SECRET"

type providerJSON struct {
	ID            string            `json:"id"`
	Identifier    string            `json:"identifier"`
	Name          string            `json:"name"`
	Description   string            `json:"description"`
	ClientID      string            `json:"client_id"`
	TokenEndpoint string            `json:"token_endpoint"`
	DefaultScopes []string          `json:"default_scopes"`
	AuthMethod    string            `json:"auth_method"`
	TokenParams   map[string]string `json:"token_params"`
	Preset        string            `json:"preset"`
	Generation    int64             `json:"generation"`
	Status        string            `json:"status"`
	LastError     string            `json:"last_error"`
	UsedBy        []string          `json:"used_by"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

var providerView = view[providerJSON]{
	header: []string{"IDENTIFIER", "NAME", "CLIENT_ID", "TOKEN_ENDPOINT", "SCOPES", "AUTH", "GEN", "STATUS"},
	row: func(p providerJSON) []string {
		status := p.Status
		if p.LastError != "" {
			status += " (" + p.LastError + ")"
		}
		return []string{p.Identifier, p.Name, p.ClientID, p.TokenEndpoint, strings.Join(p.DefaultScopes, ","), p.AuthMethod,
			strconv.FormatInt(p.Generation, 10), status}
	},
}

func newOAuthProviderCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "oauth",
		Aliases: []string{"oauth-provider"},
		Short:   "Manage OAuth credential providers (agentguard gets their tokens for agents)",
		Long: `Manage OAuth credential providers: a third-party authorization server whose client
credentials agentguard holds (the secret sealed, never shown). Agents ask agentguard for a
token; agentguard runs the client credentials grant, caches the token and refreshes it.

The client secret is read from --client-secret-file (- for standard input) or
` + envOAuthClientSecret + `, never from an argument.`,
	}
	cmd.AddCommand(newOAuthCreateCmd(g), newOAuthGetCmd(g), newOAuthListCmd(g), newOAuthUpdateCmd(g), newOAuthDeleteCmd(g), newOAuthPresetsCmd(g))
	return cmd
}

// providerFlags are the flags create and update share.
type providerFlags struct {
	name, description, clientID, secretFile, endpoint, authMethod, preset string
	scopes, tokenParams, presetParams                                     []string
}

func (pf *providerFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&pf.name, "name", "", "display name (default: the identifier)")
	f.StringVar(&pf.description, "description", "", "what the provider is for")
	f.StringVar(&pf.clientID, "client-id", "", "the client id agentguard has at the provider")
	f.StringVar(&pf.secretFile, "client-secret-file", "", "file holding the client secret (- reads standard input); else $"+envOAuthClientSecret)
	f.StringVar(&pf.endpoint, "token-endpoint", "", "the provider's token endpoint (https), or use --preset")
	f.StringVar(&pf.authMethod, "auth-method", "", "client_secret_basic (default) or client_secret_post")
	f.StringArrayVar(&pf.scopes, "scope", nil, "a default scope (repeatable); agents may ask for a subset")
	f.StringArrayVar(&pf.tokenParams, "token-param", nil, "an extra token request parameter KEY=VALUE, e.g. audience=https://api.example.com (repeatable)")
	f.StringVar(&pf.preset, "preset", "", "fill the token endpoint from a known provider: entra_id, okta, auth0, keycloak (see 'oauth presets')")
	f.StringArrayVar(&pf.presetParams, "preset-param", nil, "a preset parameter KEY=VALUE, e.g. tenant=contoso.onmicrosoft.com (repeatable)")
}

// body builds the JSON body from the flags that were given; the secret is read
// only when create needs it or update was asked to change it.
func (pf *providerFlags) body(cmd *cobra.Command, g *globals, creating bool) (map[string]any, string, error) {
	b := map[string]any{}
	changed := cmd.Flags().Changed
	for _, f := range []struct {
		flag, key string
		val       *string
	}{
		{"name", "name", &pf.name}, {"description", "description", &pf.description}, {"client-id", "client_id", &pf.clientID},
		{"token-endpoint", "token_endpoint", &pf.endpoint}, {"auth-method", "auth_method", &pf.authMethod}, {"preset", "preset", &pf.preset},
	} {
		if changed(f.flag) {
			b[f.key] = *f.val
		}
	}
	if changed("scope") {
		b["default_scopes"] = pf.scopes
	}
	for _, f := range []struct {
		flag, key string
		val       []string
	}{{"token-param", "token_params", pf.tokenParams}, {"preset-param", "preset_params", pf.presetParams}} {
		if !changed(f.flag) {
			continue
		}
		m, err := keyValues(f.flag, f.val)
		if err != nil {
			return nil, "", err
		}
		b[f.key] = m
	}
	var secret string
	if creating || changed("client-secret-file") {
		var err error
		if secret, err = readSecret(cmd, g, pf.secretFile, "client-secret-file", envOAuthClientSecret); err != nil {
			return nil, "", err
		}
		b["client_secret"] = secret
	}
	return b, secret, nil
}

func newOAuthCreateCmd(g *globals) *cobra.Command {
	var pf providerFlags
	cmd := &cobra.Command{
		Use:   "create IDENTIFIER --client-id ID (--token-endpoint URL | --preset NAME --preset-param K=V...) [--scope S...]",
		Short: "Register an OAuth provider agents can get tokens of",
		Example: `  agentguard credential oauth create crm --client-id agentguard-crm --client-secret-file crm.secret \
    --token-endpoint https://idp.crm.example.com/oauth2/token --scope contacts.read --scope contacts.write \
    --token-param audience=https://crm.example.com
  AGENTGUARD_OAUTH_CLIENT_SECRET=… agentguard credential oauth create graph --client-id 3f2a… \
    --preset entra_id --preset-param tenant=contoso.onmicrosoft.com --scope https://graph.microsoft.com/.default`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, secret, err := pf.body(cmd, g, true)
			if err != nil {
				return err
			}
			body["identifier"] = args[0]
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("credentials", "oauth-providers"), nil, body)
			if err != nil {
				return redactErr(err, secret)
			}
			return printOne(cmd, g, raw, providerView)
		},
	}
	pf.register(cmd)
	return cmd
}

func newOAuthUpdateCmd(g *globals) *cobra.Command {
	var pf providerFlags
	cmd := &cobra.Command{
		Use:   "update IDENTIFIER [flags to change]",
		Short: "Change an OAuth provider; a new secret, endpoint, auth method or token parameter drops its cached tokens",
		Example: `  agentguard credential oauth update crm --client-secret-file new.secret
  agentguard credential oauth update crm --scope contacts.read`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, secret, err := pf.body(cmd, g, false)
			if err != nil {
				return err
			}
			if len(body) == 0 {
				return errNoChange
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("credentials", "oauth-providers", args[0]), nil, body)
			if err != nil {
				return redactErr(err, secret)
			}
			return printOne(cmd, g, raw, providerView)
		},
	}
	pf.register(cmd)
	return cmd
}

func newOAuthGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get IDENTIFIER",
		Short: "Show an OAuth provider (never its secret) and the agents using it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("credentials", "oauth-providers", args[0]), nil, nil)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if err := printOne(cmd, g, raw, providerView); err != nil {
				return err
			}
			var p providerJSON
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(p.TokenParams) > 0 {
				keys := make([]string, 0, len(p.TokenParams))
				for k := range p.TokenParams {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				fmt.Fprintln(out)
				rows := make([][]string, 0, len(keys))
				for _, k := range keys {
					rows = append(rows, []string{k, p.TokenParams[k]})
				}
				printTable(out, []string{"TOKEN_PARAM", "VALUE"}, rows)
			}
			used := "no agent"
			if len(p.UsedBy) > 0 {
				used = strings.Join(p.UsedBy, ", ")
			}
			fmt.Fprintf(out, "\nused by: %s\n", used)
			return nil
		},
	}
}

func newOAuthListCmd(g *globals) *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List OAuth providers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("credentials", "oauth-providers"), pageQuery(limit, cursor), nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, providerView)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newOAuthDeleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete IDENTIFIER [--force]",
		Short: "Delete an OAuth provider; refused while outbound nodes use it, unless --force (which removes them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteCredential(cmd, g, "oauth-providers", args[0], force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "also remove the outbound nodes that use it")
	return cmd
}

type presetJSON struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	AuthMethod  string `json:"auth_method"`
	Description string `json:"description"`
	Params      []struct {
		Name     string `json:"name"`
		Required bool   `json:"required"`
		Example  string `json:"example"`
	} `json:"params"`
}

var presetView = view[presetJSON]{
	header: []string{"PRESET", "PROVIDER", "PARAMETERS", "AUTH"},
	row: func(p presetJSON) []string {
		var ps []string
		for _, x := range p.Params {
			s := x.Name + "=" + x.Example
			if !x.Required {
				s = "[" + s + "]"
			}
			ps = append(ps, s)
		}
		return []string{p.Name, p.Title, strings.Join(ps, " "), p.AuthMethod}
	},
}

func newOAuthPresetsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "presets",
		Short: "List the providers --preset knows and the parameters each takes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("credentials", "oauth-presets"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, presetView)
		},
	}
}
