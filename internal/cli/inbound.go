package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type inboundJSON struct {
	ID          string    `json:"id"`
	ClientID    string    `json:"client_id"`
	Description string    `json:"description"`
	Users       []string  `json:"users"`
	Groups      []string  `json:"groups"`
	Policy      string    `json:"policy"`
	CreatedAt   time.Time `json:"created_at"`
}

var inboundView = view[inboundJSON]{
	header: []string{"ID", "CLIENT", "USERS", "GROUPS", "POLICY", "DESCRIPTION", "CREATED"},
	row: func(r inboundJSON) []string {
		policy := ""
		if r.Policy != "" {
			policy = strconv.Itoa(strings.Count(r.Policy, "\n")+1) + " lines"
		}
		return []string{r.ID, r.ClientID, strings.Join(r.Users, ","), strings.Join(r.Groups, ","), policy, r.Description, timeCell(&r.CreatedAt)}
	},
}

func newInboundCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inbound",
		Short: "Manage who may call an agent, through which client (inbound rules)",
		Long: `Manage an agent's inbound rules. A user may call the agent through a client if any rule
for that client admits them: the rule lists them (--user), names one of their groups
(--group), or its Cedar policy permits them (--policy-file). An agent with no rule for a
client cannot be called through it.

The Cedar principal is User::"<id>" with username, email, display_name, groups and
every attribute (principal.department); the action is Action::"invoke", the resource
Agent::"<id>", the context {client_id}. Example policy:

  permit(principal, action, resource) when { principal.department == "HR" };`,
	}
	cmd.AddCommand(newInboundAddCmd(g), newInboundListCmd(g), newInboundRemoveCmd(g), newInboundCheckCmd(g))
	return cmd
}

func newInboundAddCmd(g *globals) *cobra.Command {
	var req struct {
		ClientID    string   `json:"client_id"`
		Description string   `json:"description,omitempty"`
		Users       []string `json:"users,omitempty"`
		Groups      []string `json:"groups,omitempty"`
		Policy      string   `json:"policy,omitempty"`
	}
	var policyFile string
	cmd := &cobra.Command{
		Use:   "add AGENT_ID --client CLIENT_ID (--user U | --group G | --policy-file F)...",
		Short: "Add an inbound rule",
		Example: `  agentguard inbound add agt_... --client cli_... --group hr
  agentguard inbound add agt_... --client cli_... --user alice --user bob
  agentguard inbound add agt_... --client cli_... --policy-file hr-only.cedar`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if policyFile != "" {
				var b []byte
				var err error
				if policyFile == "-" {
					b, err = readLimited(cmd.InOrStdin(), 64<<10)
				} else {
					b, err = readFileLimited(policyFile, 64<<10)
				}
				if err != nil {
					return fmt.Errorf("read --policy-file: %w", err)
				}
				req.Policy = string(b)
			}
			if len(req.Users) == 0 && len(req.Groups) == 0 && req.Policy == "" {
				return errors.New("say who may call: --user, --group or --policy-file (at least one)")
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents", args[0], "inbound"), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, inboundView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ClientID, "client", "", "the client (app) users come through (required)")
	f.StringVar(&req.Description, "description", "", "why the rule exists")
	f.StringArrayVar(&req.Users, "user", nil, "a user id or username (repeatable)")
	f.StringArrayVar(&req.Groups, "group", nil, "a group name (repeatable)")
	f.StringVar(&policyFile, "policy-file", "", "a Cedar policy file (- for standard input)")
	return cmd
}

func newInboundListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list AGENT_ID",
		Short: "List an agent's inbound rules",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0], "inbound"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, inboundView)
		},
	}
}

func newInboundRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove AGENT_ID RULE_ID",
		Aliases: []string{"delete"},
		Short:   "Remove an inbound rule; it stops admitting at once on every replica",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("agents", args[0], "inbound", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Removed inbound rule %s of agent %s.", args[1], args[0])
			return nil
		},
	}
}

type evaluationJSON struct {
	Decision string `json:"decision"`
	RuleID   string `json:"rule_id"`
	UserID   string `json:"user_id"`
	Reason   string `json:"reason"`
}

var evaluationView = view[evaluationJSON]{
	header: []string{"DECISION", "RULE", "USER", "REASON"},
	row:    func(e evaluationJSON) []string { return []string{e.Decision, e.RuleID, e.UserID, e.Reason} },
}

func newInboundCheckCmd(g *globals) *cobra.Command {
	var clientID string
	cmd := &cobra.Command{
		Use:     "check AGENT_ID USER --client CLIENT_ID",
		Short:   "Say whether a user may call the agent through a client now, and why",
		Example: `  agentguard inbound check agt_... alice --client cli_...`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents", args[0], "inbound", "evaluate"), nil,
				map[string]string{"client_id": clientID, "user": args[1]})
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, evaluationView)
		},
	}
	cmd.Flags().StringVar(&clientID, "client", "", "the client (app) the user comes through (required)")
	return cmd
}
