package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

type secretJSON struct {
	ID           string     `json:"id"`
	ClientSecret string     `json:"client_secret"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	Expired      bool       `json:"expired"`
}

var secretView = view[secretJSON]{
	header: []string{"ID", "CREATED", "EXPIRES", "EXPIRED"},
	row: func(s secretJSON) []string {
		expires := timeCell(s.ExpiresAt)
		if expires == "" {
			expires = "never"
		}
		return []string{s.ID, timeCell(&s.CreatedAt), expires, fmt.Sprint(s.Expired)}
	},
}

func newAgentSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage an agent's client secrets (client_secret_basic / client_secret_post)",
	}
	cmd.AddCommand(newAgentSecretCreateCmd(g), newAgentSecretListCmd(g), newAgentSecretDeleteCmd(g))
	return cmd
}

func newAgentSecretCreateCmd(g *globals) *cobra.Command {
	var expiresIn time.Duration
	cmd := &cobra.Command{
		Use:   "create AGENT_ID",
		Short: "Create a client secret; it is shown once",
		Long: `Create a client secret for an agent. The secret is printed once: the server keeps
only its hash. An agent may hold up to 5 secrets, so a new one can be rolled out
before the old one is deleted.`,
		Example: `  agentguard agent secret create agt_... --expires-in 720h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body map[string]int64
			if cmd.Flags().Changed("expires-in") {
				s, err := seconds("expires-in", expiresIn)
				if err != nil {
					return err
				}
				body = map[string]int64{"expires_in": s}
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			var reqBody any
			if body != nil {
				reqBody = body
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents", args[0], "secrets"), nil, reqBody)
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
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "the secret expires after this long, e.g. 720h (default: never)")
	return cmd
}

func newAgentSecretListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list AGENT_ID",
		Short: "List an agent's client secrets (metadata only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0], "secrets"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, secretView)
		},
	}
}

func newAgentSecretDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete AGENT_ID SECRET_ID",
		Short: "Delete a client secret; the agent can no longer authenticate with it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("agents", args[0], "secrets", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted secret %s of agent %s.", args[1], args[0])
			return nil
		},
	}
}
