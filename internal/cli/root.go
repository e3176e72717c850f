// Package cli is the agentguard command: `serve` runs the server, and the other
// verbs are a client of the management API (one file per noun).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		var ee exitError
		if errors.As(err, &ee) {
			return int(ee)
		}
		return 1
	}
	return 0
}

type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "agentguard",
		Short:         "Identity and access management for AI agents",
		Long:          "agentguard gives every AI agent an identity, short-lived scoped tokens instead of long-lived secrets,\nand audited access to the credentials it needs.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd())
	root.AddCommand(newKMSCmd())
	g := addGlobalFlags(root)
	root.AddCommand(newAgentCmd(g), newServiceCmd(g), newGrantCmd(g), newTokenCmd(g), newKeysCmd(g), newClientCmd(g), newRegistrationCmd(g))
	root.AddCommand(newAuditCmd(g))
	root.AddCommand(newUserCmd(g), newGroupCmd(g), newInboundCmd(g), newIDPCmd(g), newSCIMCmd(g))
	root.AddCommand(newCredentialCmd(g), newOutboundCmd(g), newTopologyCmd(g))
	return root
}

// Main is what cmd/agentguard runs.
func Main() { os.Exit(Execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }
