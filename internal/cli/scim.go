package cli

import (
	"time"

	"github.com/spf13/cobra"
)

type scimTokenJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Token     string     `json:"token"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

var scimTokenView = view[scimTokenJSON]{
	header: []string{"ID", "NAME", "CREATED", "EXPIRES", "TOKEN"},
	row: func(t scimTokenJSON) []string {
		return []string{t.ID, t.Name, timeCell(&t.CreatedAt), timeCell(t.ExpiresAt), t.Token}
	},
}

func newSCIMCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scim",
		Short: "Manage SCIM provisioning: the tokens enterprise IdPs use at /scim/v2",
		Long: `An enterprise IdP (Entra ID, Okta) provisions users and groups at <server>/scim/v2 with a
SCIM token. A SCIM token works only there; admin and agent tokens are refused there.`,
	}
	tok := &cobra.Command{Use: "token", Short: "Create, list and delete SCIM tokens"}
	tok.AddCommand(newSCIMTokenCreateCmd(g), newSCIMTokenListCmd(g), newSCIMTokenDeleteCmd(g))
	cmd.AddCommand(tok)
	return cmd
}

func newSCIMTokenCreateCmd(g *globals) *cobra.Command {
	var name string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:     "create --name NAME",
		Short:   "Create a SCIM token (printed once)",
		Example: `  agentguard scim token create --name entra-id --expires 8760h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			req := map[string]any{"name": name}
			if expires != 0 {
				s, err := seconds("expires", expires)
				if err != nil {
					return err
				}
				req["expires_in"] = s
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("scim", "tokens"), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, scimTokenView)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "which IdP uses it (required)")
	cmd.Flags().DurationVar(&expires, "expires", 0, "expire after this long (1h to 43800h; default never)")
	return cmd
}

func newSCIMTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List SCIM tokens (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("scim", "tokens"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, scimTokenView)
		},
	}
}

func newSCIMTokenDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TOKEN_ID",
		Short: "Delete a SCIM token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("scim", "tokens", args[0]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted SCIM token %s.", args[0])
			return nil
		},
	}
}
