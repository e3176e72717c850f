package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newCredentialCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Manage the third-party credentials agents use: API keys and OAuth providers",
		Long: `Manage third-party credentials. agentguard keeps them sealed under the KMS and hands
them only to agents whose outbound rule names them ('agentguard outbound add'), through
the Credential API or, without the agent ever seeing them, through the gateway.

Secret values are never read from a command-line argument (it would land in shell
history and the process list): give them in a file (--value-file, --client-secret-file;
"-" reads standard input) or in an environment variable.`,
	}
	cmd.AddCommand(newAPIKeyCmd(g), newOAuthProviderCmd(g))
	return cmd
}

// maxSecretInput bounds a secret read from a file or stdin.
const maxSecretInput = 64 << 10

// readSecret reads a secret from file ("-" is standard input), else from the
// environment variable env. One trailing line break of a file is dropped; an
// empty secret is an error that says where it may come from.
func readSecret(cmd *cobra.Command, g *globals, file, fileFlag, env string) (string, error) {
	if file != "" {
		var b []byte
		var err error
		if file == "-" {
			b, err = readLimited(cmd.InOrStdin(), maxSecretInput)
		} else {
			b, err = readFileLimited(file, maxSecretInput)
		}
		if err != nil {
			return "", fmt.Errorf("read --%s: %w", fileFlag, err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if s == "" {
			return "", fmt.Errorf("--%s %s is empty", fileFlag, file)
		}
		return s, nil
	}
	if s := g.getenv(env); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("no secret given: pass --%s FILE (or --%s - to read standard input), or set %s", fileFlag, fileFlag, env)
}

// keyValues turns repeated KEY=VALUE flags into a map.
func keyValues(flag string, in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q must be KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

var errNoChange = errors.New("nothing to change: pass at least one flag")
