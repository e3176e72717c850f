package cli

import (
	"errors"
	"time"

	"github.com/spf13/cobra"
)

type nodeJSON struct {
	ID             string    `json:"id"`
	AgentID        string    `json:"agent_id"`
	NodeType       string    `json:"node_type"`
	CredentialType string    `json:"credential_type"`
	Credential     string    `json:"credential"`
	CredentialName string    `json:"credential_name"`
	UpstreamURL    string    `json:"upstream_url"`
	Header         string    `json:"header"`
	GatewayPath    string    `json:"gateway_path"`
	CreatedAt      time.Time `json:"created_at"`
}

var nodeView = view[nodeJSON]{
	header: []string{"CREDENTIAL", "TYPE", "NODE_TYPE", "UPSTREAM_URL", "HEADER", "GATEWAY_PATH", "CREATED"},
	row: func(n nodeJSON) []string {
		return []string{n.Credential, n.CredentialType, n.NodeType, n.UpstreamURL, n.Header, n.GatewayPath, timeCell(&n.CreatedAt)}
	},
}

func newOutboundCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbound",
		Short: "Manage an agent's outbound rule: which credentials (LLM and external service nodes) it may use",
		Long: `Manage an agent's outbound rule, its data authorization. A new agent's rule is empty;
each node adds one credential (an API key or an OAuth provider) as an LLM or external
service. Removing a node takes the credential away at once, on every replica; the
credential itself stays. With --upstream-url the agent can also call the service through
agentguard's gateway (/gateway/<credential>/...) without ever holding the credential.`,
	}
	cmd.AddCommand(newOutboundAddCmd(g), newOutboundUpdateCmd(g), newOutboundListCmd(g), newOutboundRemoveCmd(g))
	return cmd
}

func newOutboundAddCmd(g *globals) *cobra.Command {
	var apiKey, provider, nodeType, upstream, header string
	cmd := &cobra.Command{
		Use:   "add AGENT_ID (--api-key ID | --oauth-provider ID) [--node-type llm|external_service] [--upstream-url URL [--header TEMPLATE]]",
		Short: "Let an agent use a credential",
		Example: `  agentguard outbound add agt_... --api-key openai --node-type llm \
    --upstream-url https://api.openai.com/v1 --header 'Authorization: Bearer {{key}}'
  agentguard outbound add agt_... --oauth-provider crm`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]string{"node_type": nodeType, "upstream_url": upstream, "header": header}
			switch {
			case (apiKey == "") == (provider == ""):
				return errors.New("give exactly one of --api-key or --oauth-provider")
			case apiKey != "":
				body["credential_type"], body["credential"] = "api_key", apiKey
			default:
				body["credential_type"], body["credential"] = "oauth_provider", provider
			}
			if body["node_type"] == "" {
				body["node_type"] = "external_service"
				if apiKey != "" {
					body["node_type"] = "llm"
				}
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents", args[0], "outbound"), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, nodeView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&apiKey, "api-key", "", "identifier of the API key")
	f.StringVar(&provider, "oauth-provider", "", "identifier of the OAuth provider")
	f.StringVar(&nodeType, "node-type", "", "llm or external_service (default: llm for an API key, external_service for an OAuth provider)")
	f.StringVar(&upstream, "upstream-url", "", "base URL the gateway forwards to (https)")
	f.StringVar(&header, "header", "", "how the gateway injects the credential, e.g. 'X-API-Key: {{key}}' (default 'Authorization: Bearer {{key}}' or '{{token}}')")
	return cmd
}

func newOutboundUpdateCmd(g *globals) *cobra.Command {
	var nodeType, upstream, header string
	cmd := &cobra.Command{
		Use:     "update AGENT_ID CREDENTIAL [--node-type T] [--upstream-url URL] [--header TEMPLATE]",
		Short:   "Change a node's type, gateway upstream or header template",
		Example: `  agentguard outbound update agt_... openai --header 'X-API-Key: {{key}}'`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]string{}
			for _, f := range []struct{ flag, key, val string }{
				{"node-type", "node_type", nodeType}, {"upstream-url", "upstream_url", upstream}, {"header", "header", header},
			} {
				if cmd.Flags().Changed(f.flag) {
					body[f.key] = f.val
				}
			}
			if len(body) == 0 {
				return errNoChange
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("agents", args[0], "outbound", args[1]), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, nodeView)
		},
	}
	cmd.Flags().StringVar(&nodeType, "node-type", "", "llm or external_service")
	cmd.Flags().StringVar(&upstream, "upstream-url", "", "base URL the gateway forwards to (empty: no gateway)")
	cmd.Flags().StringVar(&header, "header", "", "header template with {{key}} or {{token}}")
	return cmd
}

func newOutboundListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list AGENT_ID",
		Short: "List the nodes of an agent's outbound rule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0], "outbound"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, nodeView)
		},
	}
}

func newOutboundRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove AGENT_ID CREDENTIAL",
		Aliases: []string{"delete"},
		Short:   "Take a credential out of an agent's rule (at once, on every replica); the credential stays",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("agents", args[0], "outbound", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Removed %s from the outbound rule of agent %s.", args[1], args[0])
			return nil
		},
	}
}
