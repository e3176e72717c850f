package cli

import (
	"time"

	"github.com/spf13/cobra"
)

type federationJSON struct {
	ID        string    `json:"id"`
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"subject"`
	JWKSURI   string    `json:"jwks_uri"`
	Audience  string    `json:"audience"`
	CreatedAt time.Time `json:"created_at"`
}

var federationView = view[federationJSON]{
	header: []string{"ID", "ISSUER", "SUBJECT", "AUDIENCE", "JWKS_URI", "CREATED"},
	row: func(f federationJSON) []string {
		return []string{f.ID, f.Issuer, f.Subject, f.Audience, f.JWKSURI, timeCell(&f.CreatedAt)}
	},
}

func newAgentFederationCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "federation",
		Short: "Manage workload identity federation: external tokens an agent may present instead of a secret",
		Long: `Map a workload token (Kubernetes service account token, SPIFFE JWT-SVID, CI OIDC token)
to an agent by its issuer and subject. The agent then gets tokens with the
urn:ietf:params:oauth:grant-type:jwt-bearer grant, and no secret is stored anywhere.`,
	}
	cmd.AddCommand(newAgentFederationAddCmd(g), newAgentFederationListCmd(g), newAgentFederationDeleteCmd(g))
	return cmd
}

func newAgentFederationAddCmd(g *globals) *cobra.Command {
	var req struct {
		Issuer   string `json:"issuer"`
		Subject  string `json:"subject"`
		JWKSURI  string `json:"jwks_uri,omitempty"`
		Audience string `json:"audience,omitempty"`
	}
	cmd := &cobra.Command{
		Use:   "add AGENT_ID --issuer URL --subject SUB",
		Short: "Trust an external issuer's tokens about one subject as this agent",
		Example: `  agentguard agent federation add agt_... \
    --issuer https://token.actions.githubusercontent.com \
    --subject repo:acme/deploy:ref:refs/heads/main --audience https://agentguard.example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents", args[0], "federation"), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, federationView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Issuer, "issuer", "", "the external issuer (https URL, its iss claim) (required)")
	f.StringVar(&req.Subject, "subject", "", "the sub claim of the workload's tokens (required)")
	f.StringVar(&req.JWKSURI, "jwks-uri", "", "the issuer's JWKS URL (default: discovered from the issuer)")
	f.StringVar(&req.Audience, "audience", "", "the aud the external token must carry (default: this server's issuer URL)")
	return cmd
}

func newAgentFederationListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list AGENT_ID",
		Short: "List the external identities mapped to an agent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0], "federation"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, federationView)
		},
	}
}

func newAgentFederationDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete AGENT_ID FEDERATION_ID",
		Short: "Stop trusting an external identity as this agent",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("agents", args[0], "federation", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted federation %s of agent %s.", args[1], args[0])
			return nil
		},
	}
}
