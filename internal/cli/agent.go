package cli

import (
	"time"

	"github.com/spf13/cobra"
)

// agentJSON is the fields of an agent the table shows.
type agentJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Owner          string    `json:"owner"`
	Type           string    `json:"type"`
	AccessIdentity string    `json:"access_identity"`
	Audience       string    `json:"audience"`
	Status         string    `json:"status"`
	Orphaned       bool      `json:"orphaned"`
	CreatedAt      time.Time `json:"created_at"`
}

var agentView = view[agentJSON]{
	header: []string{"ID", "NAME", "OWNER", "TYPE", "ACCESS", "STATUS", "AUDIENCE", "CREATED"},
	row: func(a agentJSON) []string {
		status := a.Status
		if a.Orphaned {
			status += ", orphaned"
		}
		return []string{a.ID, a.Name, a.Owner, a.Type, a.AccessIdentity, status, a.Audience, timeCell(&a.CreatedAt)}
	},
}

func newAgentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Manage agents: the identities agents use as OAuth clients",
		Long: `Manage agents. An agent's id is its OAuth client_id; it proves who it is with a
client secret (agent secret), a registered public key (agent key, private_key_jwt), or a
token from a trusted workload issuer (agent federation).`,
	}
	cmd.AddCommand(newAgentCreateCmd(g), newAgentListCmd(g), newAgentGetCmd(g),
		newAgentStatusCmd(g, "disable", "disabled"), newAgentStatusCmd(g, "enable", "active"),
		newAgentDeleteCmd(g), newAgentSecretCmd(g), newAgentKeyCmd(g), newAgentFederationCmd(g))
	return cmd
}

func newAgentCreateCmd(g *globals) *cobra.Command {
	var req struct {
		Name           string `json:"name"`
		Description    string `json:"description,omitempty"`
		Owner          string `json:"owner,omitempty"`
		Type           string `json:"type,omitempty"`
		AccessIdentity string `json:"access_identity,omitempty"`
		Audience       string `json:"audience,omitempty"`
	}
	cmd := &cobra.Command{
		Use:     "create --name NAME",
		Short:   "Register an agent",
		Example: `  agentguard agent create --name invoice-bot --owner finance --type autonomous`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents"), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, agentView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "name of the agent (required)")
	f.StringVar(&req.Description, "description", "", "what the agent does")
	f.StringVar(&req.Owner, "owner", "", "the team or person responsible for it")
	f.StringVar(&req.Type, "type", "", "autonomous or interactive (server default autonomous)")
	f.StringVar(&req.AccessIdentity, "access-identity", "", "machine (acts as itself) or human (acts for a user) (server default machine)")
	f.StringVar(&req.Audience, "audience", "", "audience of users' tokens for this agent (server default urn:agentguard:agent:<id>)")
	return cmd
}

func newAgentListCmd(g *globals) *cobra.Command {
	var owner, status, typ, q, cursor string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			query := listQuery(map[string]string{"owner": owner, "status": status, "type": typ, "q": q, "cursor": cursor}, limit)
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents"), query, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, agentView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&owner, "owner", "", "only agents with this owner")
	f.StringVar(&status, "status", "", "only active, disabled or orphaned agents (orphaned: the owner was deleted or deprovisioned)")
	f.StringVar(&typ, "type", "", "only autonomous or interactive agents")
	f.StringVar(&q, "q", "", "only agents whose name or description contains this text")
	f.IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	f.StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newAgentGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get AGENT_ID",
		Short: "Show one agent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0]), nil, nil)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, agentView)
		},
	}
}

// newAgentStatusCmd is `agent disable` and `agent enable`. A disabled agent cannot
// authenticate, and its tokens stop introspecting as active.
func newAgentStatusCmd(g *globals, verb, status string) *cobra.Command {
	short := map[string]string{
		"disable": "Disable an agent: it can no longer get tokens, and its tokens introspect as inactive",
		"enable":  "Enable a disabled agent",
	}[verb]
	return &cobra.Command{
		Use:   verb + " AGENT_ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("agents", args[0]), nil, map[string]string{"status": status})
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, agentView)
		},
	}
}

func newAgentDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete AGENT_ID",
		Short: "Delete an agent with its secrets, keys, federations and grants",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("agents", args[0]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted agent %s.", args[0])
			return nil
		},
	}
}
