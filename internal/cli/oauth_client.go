package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// clientJSON is the fields of a client (an app users sign in through) the table shows.
type clientJSON struct {
	ID                     string    `json:"id"`
	Name                   string    `json:"name"`
	Type                   string    `json:"type"`
	Public                 bool      `json:"public"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	ClientSecret           string    `json:"client_secret"`
	CreatedAt              time.Time `json:"created_at"`
}

var clientView = view[clientJSON]{
	header: []string{"ID", "NAME", "TYPE", "PUBLIC", "REDIRECT_URIS", "POST_LOGOUT_REDIRECT_URIS", "CREATED"},
	row: func(c clientJSON) []string {
		return []string{c.ID, c.Name, c.Type, strconv.FormatBool(c.Public), strings.Join(c.RedirectURIs, ","),
			strings.Join(c.PostLogoutRedirectURIs, ","), timeCell(&c.CreatedAt)}
	},
}

func newClientCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage clients: the apps users sign in through (authorization code + PKCE)",
		Long: `Manage clients. A client is an application users sign in through: a single-page app
(spa) or a native app (native), which are public and must use PKCE, or a server-side web
app (web), which is confidential and authenticates with a client secret. Redirect URIs are
matched exactly. Which users may reach which agent through a client is decided by the
agent's inbound rules.`,
	}
	cmd.AddCommand(newClientCreateCmd(g), newClientListCmd(g), newClientGetCmd(g), newClientUpdateCmd(g),
		newClientDeleteCmd(g), newClientSecretCmd(g))
	return cmd
}

func newClientCreateCmd(g *globals) *cobra.Command {
	var name, typ string
	var redirects, logouts []string
	cmd := &cobra.Command{
		Use:   "create --name NAME --type spa|web|native --redirect-uri URI...",
		Short: "Register a client; a web client's secret is shown once",
		Example: `  agentguard client create --name portal --type spa --redirect-uri https://portal.example.com/callback \
    --post-logout-redirect-uri https://portal.example.com/
  agentguard client create --name intranet --type web --redirect-uri https://intranet.example.com/oauth/callback
  agentguard client create --name desktop --type native --redirect-uri http://127.0.0.1/callback`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"name": name, "type": typ, "redirect_uris": nonNil(redirects), "post_logout_redirect_uris": nonNil(logouts)}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("clients"), nil, body)
			if err != nil {
				return err
			}
			var created clientJSON
			if err := json.Unmarshal(raw, &created); err != nil {
				return fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
			}
			if created.ClientSecret != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "Store the client secret now: it will not be shown again.")
			}
			if err := printOne(cmd, g, raw, clientView); err != nil || g.output == "json" {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nclient_id:     %s\n", created.ID)
			if created.ClientSecret != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\n", created.ClientSecret)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "name shown on the login page (required)")
	f.StringVar(&typ, "type", "", "spa (browser app, public), web (server-side app with a secret) or native (desktop/mobile app, public) (required)")
	f.StringArrayVar(&redirects, "redirect-uri", nil, "a redirect URI, matched exactly (repeatable; at least one)")
	f.StringArrayVar(&logouts, "post-logout-redirect-uri", nil, "where logout may send the browser back (repeatable)")
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func newClientListCmd(g *globals) *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("clients"), q, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, clientView)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newClientGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get CLIENT_ID",
		Short: "Show one client",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("clients", args[0]), nil, nil)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, clientView)
		},
	}
}

func newClientUpdateCmd(g *globals) *cobra.Command {
	var name string
	var redirects, logouts []string
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID [--name NAME] [--redirect-uri URI...] [--post-logout-redirect-uri URI...]",
		Short: "Rename a client or replace its redirect URI lists (its type cannot change)",
		Example: `  agentguard client update cli_... --redirect-uri https://portal.example.com/callback \
    --redirect-uri https://portal-staging.example.com/callback`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if cmd.Flags().Changed("name") {
				body["name"] = name
			}
			if cmd.Flags().Changed("redirect-uri") {
				body["redirect_uris"] = redirects
			}
			if cmd.Flags().Changed("post-logout-redirect-uri") {
				body["post_logout_redirect_uris"] = nonNil(logouts)
			}
			if len(body) == 0 {
				return fmt.Errorf("nothing to change: pass --name, --redirect-uri or --post-logout-redirect-uri")
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("clients", args[0]), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, clientView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringArrayVar(&redirects, "redirect-uri", nil, "the redirect URIs, replacing the current list (repeatable)")
	f.StringArrayVar(&logouts, "post-logout-redirect-uri", nil, "the post-logout redirect URIs, replacing the current list (repeatable)")
	return cmd
}

func newClientDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client: its pending sign-ins, codes and refresh tokens go with it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("clients", args[0]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted client %s.", args[0])
			return nil
		},
	}
}

func newClientSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage a web client's secrets (rotation: add a new one, deploy it, delete the old one)",
	}
	create := &cobra.Command{
		Use:   "create CLIENT_ID",
		Short: "Create a client secret; it is shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any
			if d, _ := cmd.Flags().GetDuration("expires-in"); cmd.Flags().Changed("expires-in") {
				s, err := seconds("expires-in", d)
				if err != nil {
					return err
				}
				body = map[string]int64{"expires_in": s}
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("clients", args[0], "secrets"), nil, body)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Store the client secret now: it will not be shown again.")
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var s secretJSON
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
			}
			if err := printTable(cmd.OutOrStdout(), secretView.header, [][]string{secretView.row(s)}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nclient_id:     %s\nclient_secret: %s\n", args[0], s.ClientSecret)
			return nil
		},
	}
	create.Flags().Duration("expires-in", 0, "the secret expires after this long, e.g. 720h (default: never)")
	list := &cobra.Command{
		Use:   "list CLIENT_ID",
		Short: "List a client's secrets (metadata only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("clients", args[0], "secrets"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, secretView)
		},
	}
	del := &cobra.Command{
		Use:   "delete CLIENT_ID SECRET_ID",
		Short: "Delete a client secret",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("clients", args[0], "secrets", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted secret %s of client %s.", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
