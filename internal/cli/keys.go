package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

type signingKeyJSON struct {
	KID            string     `json:"kid"`
	Alg            string     `json:"alg"`
	Current        bool       `json:"current"`
	CreatedAt      time.Time  `json:"created_at"`
	RetiredAt      *time.Time `json:"retired_at"`
	PublishedUntil *time.Time `json:"published_until"`
}

var signingKeyView = view[signingKeyJSON]{
	header: []string{"KID", "ALG", "CURRENT", "CREATED", "RETIRED", "PUBLISHED_UNTIL"},
	row: func(k signingKeyJSON) []string {
		return []string{k.KID, k.Alg, fmt.Sprint(k.Current), timeCell(&k.CreatedAt), timeCell(k.RetiredAt), timeCell(k.PublishedUntil)}
	},
}

type rotatedJSON struct {
	KID string `json:"kid"`
}

var rotatedView = view[rotatedJSON]{header: []string{"KID"}, row: func(k rotatedJSON) []string { return []string{k.KID} }}

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the token signing keys",
		Long: `Manage the keys agentguard signs access tokens with. The current key signs; a
retired key stays in /oauth2/jwks until every token it signed has expired.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the signing keys (public parts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("keys"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, signingKeyView)
		},
	}, &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key current now; the old one stays published until its tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("keys", "rotate"), nil, nil)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, rotatedView)
		},
	})
	return cmd
}
