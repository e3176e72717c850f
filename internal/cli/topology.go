package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

type graphJSON struct {
	Nodes []struct {
		ID             string   `json:"id"`
		Type           string   `json:"type"`
		Label          string   `json:"label"`
		Status         string   `json:"status"`
		Credential     string   `json:"credential"`
		CredentialType string   `json:"credential_type"`
		UpstreamURL    string   `json:"upstream_url"`
		Audience       string   `json:"audience"`
		Scopes         []string `json:"scopes"`
		Error          string   `json:"error"`
	} `json:"nodes"`
	Edges []struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Kind   string `json:"kind"`
		Status string `json:"status"`
	} `json:"edges"`
}

func newTopologyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "topology AGENT_ID",
		Short: "Show an agent's graph: clients → agent → LLM, external and enterprise services",
		Long: `Show what an agent is connected to: the clients users reach it through (its inbound
rules), and what it reaches: LLM and external service nodes of its outbound rule (with
their credential and the gateway upstream) and the enterprise services it is granted
scopes on. STATUS is ok, failing (the OAuth provider's last token request failed) or
disabled (the agent is disabled). -o json prints the graph's nodes and edges.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0], "topology"), nil, nil)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var gr graphJSON
			if err := json.Unmarshal(raw, &gr); err != nil {
				return fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
			}
			return renderTopology(cmd, gr)
		},
	}
}

// renderTopology prints the graph as three blocks: the agent, who comes in, and
// what it reaches, each edge with its status.
func renderTopology(cmd *cobra.Command, gr graphJSON) error {
	out := cmd.OutOrStdout()
	byID := map[string]int{}
	self := ""
	for i, n := range gr.Nodes {
		byID[n.ID] = i
		if n.Type == "agent" {
			self = n.ID
			fmt.Fprintf(out, "agent %s (%s), %s\n", n.Label, strings.TrimPrefix(n.ID, "agent:"), n.Status)
		}
	}
	var in, outRows [][]string
	for _, e := range gr.Edges {
		switch {
		case e.To == self:
			n := gr.Nodes[byID[e.From]]
			in = append(in, []string{n.Type, n.Label, "──" + e.Kind + "──▶ agent", e.Status})
		case e.From == self:
			n := gr.Nodes[byID[e.To]]
			var cred, detail string
			switch n.Type {
			case "enterprise_service":
				detail = n.Audience + " [" + strings.Join(n.Scopes, " ") + "]"
			default:
				cred = n.Credential + " (" + n.CredentialType + ")"
				if n.UpstreamURL != "" {
					detail = "gateway → " + n.UpstreamURL
				}
				if n.Error != "" {
					detail = strings.TrimSpace("last error: " + n.Error + "; " + detail)
					detail = strings.TrimSuffix(detail, ";")
				}
			}
			outRows = append(outRows, []string{"agent ──" + e.Kind + "──▶", n.Type, n.Label, cred, e.Status, detail})
		}
	}
	fmt.Fprintln(out)
	if len(in) == 0 {
		fmt.Fprintln(out, "comes in: no client (no inbound rule)")
	} else {
		fmt.Fprintln(out, "comes in:")
		if err := printTable(out, []string{"TYPE", "CLIENT", "EDGE", "STATUS"}, in); err != nil {
			return err
		}
	}
	fmt.Fprintln(out)
	if len(outRows) == 0 {
		fmt.Fprintln(out, "reaches: nothing (no outbound node, no grant)")
		return nil
	}
	fmt.Fprintln(out, "reaches:")
	return printTable(out, []string{"EDGE", "TYPE", "NAME", "CREDENTIAL", "STATUS", "DETAIL"}, outRows)
}
