package cli

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"
)

type agentKeyJSON struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
}

var agentKeyView = view[agentKeyJSON]{
	header: []string{"KID", "ALG", "CREATED"},
	row: func(k agentKeyJSON) []string {
		return []string{k.KID, k.Alg, timeCell(&k.CreatedAt)}
	},
}

func newAgentKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage an agent's public keys (private_key_jwt client authentication)",
	}
	cmd.AddCommand(newAgentKeyAddCmd(g), newAgentKeyListCmd(g), newAgentKeyDeleteCmd(g))
	return cmd
}

// maxKeyFileBytes bounds a key file (a large RSA certificate chain fits).
const maxKeyFileBytes = 64 << 10

func newAgentKeyAddCmd(g *globals) *cobra.Command {
	var jwkFile, pemFile, kid, alg string
	cmd := &cobra.Command{
		Use:   "add AGENT_ID (--jwk-file FILE | --pem-file FILE)",
		Short: "Register a public key the agent signs client assertions with",
		Long: `Register a public key for private_key_jwt (RFC 7523): the agent authenticates with a
JWT it signs with the matching private key. The key is a JWK or PEM (PUBLIC KEY or
CERTIFICATE). If the file holds a private key, only its public part is sent.
The kid defaults to the JWK's kid or else its RFC 7638 thumbprint; alg is inferred
from the key (ES256, ES384, RS256, EdDSA) unless given.`,
		Example: `  openssl ecparam -name prime256v1 -genkey -noout -out agent.key
  openssl ec -in agent.key -pubout -out agent.pub
  agentguard agent key add agt_... --pem-file agent.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			switch {
			case (jwkFile == "") == (pemFile == ""):
				return errors.New("give exactly one of --jwk-file or --pem-file")
			case jwkFile != "":
				b, err := readFileLimited(jwkFile, maxKeyFileBytes)
				if err != nil {
					return err
				}
				pub, derived, err := publicJWK(b)
				if err != nil {
					return fmt.Errorf("--jwk-file %s: %w", jwkFile, err)
				}
				if derived {
					fmt.Fprintln(cmd.ErrOrStderr(), "note: the JWK file holds a private key; only its public part is sent")
				}
				body["jwk"] = pub
			default:
				b, err := readFileLimited(pemFile, maxKeyFileBytes)
				if err != nil {
					return err
				}
				pub, derived, err := publicPEM(b)
				if err != nil {
					return fmt.Errorf("--pem-file %s: %w", pemFile, err)
				}
				if derived {
					fmt.Fprintln(cmd.ErrOrStderr(), "note: the PEM file holds a private key; only its public part is sent")
				}
				body["pem"] = pub
			}
			if kid != "" {
				body["kid"] = kid
			}
			if alg != "" {
				body["alg"] = alg
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("agents", args[0], "keys"), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, agentKeyView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&jwkFile, "jwk-file", "", "file holding the key as a JWK (JSON)")
	f.StringVar(&pemFile, "pem-file", "", "file holding the key as PEM (PUBLIC KEY or CERTIFICATE)")
	f.StringVar(&kid, "kid", "", "key id the agent puts in its assertions' header (default: the JWK kid or thumbprint)")
	f.StringVar(&alg, "alg", "", "signing algorithm (default: inferred from the key)")
	return cmd
}

// publicJWK returns the public JWK of b; derived is true when b held a private key.
func publicJWK(b []byte) (pub json.RawMessage, derived bool, err error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(b, &jwk); err != nil {
		return nil, false, fmt.Errorf("not a JWK: %w", err)
	}
	if jwk.IsPublic() {
		return json.RawMessage(b), false, nil
	}
	p := jwk.Public()
	if !p.Valid() {
		return nil, false, errors.New("the JWK has no public key (a symmetric key cannot be registered)")
	}
	out, err := json.Marshal(p)
	return out, true, err
}

// publicPEM returns PEM text of the public key or certificate in b; a private key is
// reduced to its PUBLIC KEY block.
func publicPEM(b []byte) (pub string, derived bool, err error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return "", false, errors.New("no PEM block found")
	}
	var key any
	switch block.Type {
	case "PUBLIC KEY", "CERTIFICATE":
		return string(b), false, nil
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return "", false, fmt.Errorf("a %s block is not a key; use PUBLIC KEY, CERTIFICATE or a private key", block.Type)
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot parse the %s block", block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return "", false, fmt.Errorf("the %s block is not a signing key", block.Type)
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return "", false, err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true, nil
}

func newAgentKeyListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list AGENT_ID",
		Short: "List an agent's registered public keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("agents", args[0], "keys"), nil, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, agentKeyView)
		},
	}
}

func newAgentKeyDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete AGENT_ID KID",
		Short: "Delete a registered public key",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("agents", args[0], "keys", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted key %s of agent %s.", args[1], args[0])
			return nil
		},
	}
}
