package cli

import (
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type grantJSON struct {
	ID               string    `json:"id"`
	AgentID          string    `json:"agent_id"`
	ResourceServerID string    `json:"resource_server_id"`
	Audience         string    `json:"audience"`
	Scopes           []string  `json:"scopes"`
	CreatedAt        time.Time `json:"created_at"`
}

var grantView = view[grantJSON]{
	header: []string{"ID", "AUDIENCE", "SCOPES", "RESOURCE_SERVER", "CREATED"},
	row: func(g grantJSON) []string {
		return []string{g.ID, g.Audience, strings.Join(g.Scopes, ","), g.ResourceServerID, timeCell(&g.CreatedAt)}
	},
}

func newGrantCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grant",
		Short: "Manage what an agent may ask tokens for: scopes on a resource server's audience",
		Long: `Manage an agent's grants. A grant lets an agent ask for some scopes of one resource
server; every agent starts with agentguard:credentials on agentguard itself.
One grant per agent and audience: to change its scopes, use grant set.`,
	}
	cmd.AddCommand(newGrantAddCmd(g), newGrantSetCmd(g), newGrantListCmd(g), newGrantRemoveCmd(g))
	return cmd
}

func newGrantAddCmd(g *globals) *cobra.Command {
	var req struct {
		Audience string   `json:"audience"`
		Scopes   []string `json:"scopes"`
	}
	cmd := &cobra.Command{
		Use:     "add AGENT_ID --audience URI --scope SCOPE...",
		Short:   "Grant an agent scopes on a resource server",
		Example: `  agentguard grant add agt_... --audience https://files.example.com --scope read:file`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents", args[0], "grants"), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, grantView)
		},
	}
	cmd.Flags().StringVar(&req.Audience, "audience", "", "the resource server's audience (required)")
	cmd.Flags().StringArrayVar(&req.Scopes, "scope", nil, "a scope the resource server defines (repeatable; at least one)")
	return cmd
}

func newGrantSetCmd(g *globals) *cobra.Command {
	var req struct {
		Scopes []string `json:"scopes"`
	}
	cmd := &cobra.Command{
		Use:     "set AGENT_ID GRANT_ID --scope SCOPE...",
		Short:   "Replace the scopes of a grant",
		Example: `  agentguard grant set agt_... grt_... --scope agentguard:credentials --scope agentguard:admin`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("agents", args[0], "grants", args[1]), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, grantView)
		},
	}
	cmd.Flags().StringArrayVar(&req.Scopes, "scope", nil, "a scope the resource server defines (repeatable; at least one; replaces the current list)")
	return cmd
}

func newGrantListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list AGENT_ID",
		Short: "List an agent's grants",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0], "grants"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, grantView)
		},
	}
}

func newGrantRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove AGENT_ID GRANT_ID",
		Aliases: []string{"delete"},
		Short:   "Remove a grant; tokens already issued stay valid until they expire",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("agents", args[0], "grants", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Removed grant %s of agent %s.", args[1], args[0])
			return nil
		},
	}
}
