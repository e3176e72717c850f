package sdk

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// AuthMethod is how the agent proves who it is to agentguard's token endpoint. The
// names are those of the Alibaba Cloud IDaaS agent SDK's authnMethod.
type AuthMethod string

const (
	// ClientSecretBasic sends the client secret with HTTP Basic authentication.
	ClientSecretBasic AuthMethod = "CLIENT_SECRET_BASIC"
	// ClientSecretPost sends the client secret in the form body.
	ClientSecretPost AuthMethod = "CLIENT_SECRET_POST"
	// PrivateKeyJWT signs a short-lived client assertion (RFC 7523) per request with
	// a private key whose public half is registered for the agent.
	PrivateKeyJWT AuthMethod = "PRIVATE_KEY_JWT"
	// FederatedToken presents a token the platform gives the workload (a Kubernetes
	// projected service-account token, a SPIFFE JWT-SVID, a CI OIDC token), read
	// from a file before every request, with the jwt-bearer grant (RFC 7523): no
	// stored secret at all. "OIDC" (the IDaaS name) is accepted as a synonym.
	FederatedToken AuthMethod = "FEDERATED_TOKEN"
)

// Environment variables the SDK reads (ConfigFromEnv, and the secrets LoadConfig
// resolves).
const (
	EnvConfigFile    = "AGENTGUARD_SDK_CONFIG"     // path of a JSON config file
	EnvIssuer        = "AGENTGUARD_ISSUER"         // issuer URL
	EnvClientID      = "AGENTGUARD_CLIENT_ID"      // the agent id
	EnvTokenEndpoint = "AGENTGUARD_TOKEN_ENDPOINT" // optional; discovered otherwise
	EnvScope         = "AGENTGUARD_SCOPE"          // default target, "audience|scope ..."
	EnvAuthMethod    = "AGENTGUARD_AUTH_METHOD"    // one of the AuthMethod names
	EnvClientSecret  = "AGENTGUARD_CLIENT_SECRET"  // the client secret
	EnvPrivateKey    = "AGENTGUARD_PRIVATE_KEY"    // PEM text, or the path of a PEM file
	EnvKeyID         = "AGENTGUARD_KEY_ID"         // kid of the registered public key
	EnvTokenFile     = "AGENTGUARD_TOKEN_FILE"     // workload token file (FEDERATED_TOKEN)
	EnvAllowHTTP     = "AGENTGUARD_ALLOW_INSECURE_HTTP"
)

// KubernetesTokenFile is the default service-account token path in a pod, used by
// FEDERATED_TOKEN with clientDeployEnvironment KUBERNETES when no file is named.
const KubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Config configures a Client. Build it in code, with LoadConfig (a JSON file in the
// IDaaS SDK's shape) or with ConfigFromEnv. Secrets are fields here so code can pass
// them from a secret manager; the file never holds them (it names environment
// variables instead).
type Config struct {
	// Issuer is agentguard's issuer URL (required), e.g. https://agentguard.example.com.
	// The credential API is under the same URL.
	Issuer string
	// ClientID is the agent's id (required except with FederatedToken, where the
	// workload token names the agent).
	ClientID string
	// TokenEndpoint is optional: by default it is discovered from the issuer's
	// metadata (RFC 8414) on first use.
	TokenEndpoint string
	// Scope is the default target of AccessToken(ctx, ""), in the compatible form
	// "audience|scope audience|scope" (one audience). Empty: agentguard itself with
	// agentguard:credentials.
	Scope string

	AuthMethod AuthMethod
	// ClientSecret is the secret for ClientSecretBasic and ClientSecretPost.
	ClientSecret string
	// PrivateKey signs client assertions for PrivateKeyJWT: an *ecdsa.PrivateKey
	// (P-256, P-384), *rsa.PrivateKey (≥ 2048 bits) or ed25519.PrivateKey.
	PrivateKey crypto.Signer
	// KeyID is the kid under which the public key is registered. Empty: the RFC 7638
	// thumbprint of the key, which is agentguard's default kid for a key registered
	// without one.
	KeyID string
	// TokenFile holds the workload token for FederatedToken. It is read before every
	// token request, so a rotated token (kubelet rewrites it) is picked up.
	TokenFile string

	// AllowInsecureHTTP permits an http:// issuer that is not a loopback address.
	// Off by default: secrets and tokens would cross the network in clear text.
	AllowInsecureHTTP bool

	// ConnectTimeout and RequestTimeout bound each HTTP attempt (defaults 5 s and
	// 30 s). The overall time, retries included, is bounded by the caller's context.
	ConnectTimeout time.Duration
	RequestTimeout time.Duration
}

// ConfigError is a configuration mistake, found when the Client is built. Field is
// the setting's name as written in the JSON file (e.g. "authnConfiguration.authnMethod").
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string {
	return "agentguard sdk: config " + e.Field + ": " + e.Problem
}

func configErr(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// fileConfig is the JSON shape, compatible with the Alibaba Cloud IDaaS agent SDK's
// client-config.json. IDaaS-only keys (idaasInstanceId, openApiEndpoint,
// developerApiEndpoint, jwkEndpoint) are accepted and ignored.
type fileConfig struct {
	ClientID      string `json:"clientId"`
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"tokenEndpoint"`
	Scope         string `json:"scope"`
	Authn         *struct {
		IdentityType            string `json:"identityType"`
		AuthenticationSubject   string `json:"authenticationSubject"` // older IDaaS name of identityType
		AuthnMethod             string `json:"authnMethod"`
		ClientSecretEnvVarName  string `json:"clientSecretEnvVarName"`
		PrivateKeyEnvVarName    string `json:"privateKeyEnvVarName"`
		KeyID                   string `json:"keyId"`
		TokenFilePath           string `json:"tokenFilePath"`
		ClientDeployEnvironment string `json:"clientDeployEnvironment"`
	} `json:"authnConfiguration"`
	HTTP *struct {
		ConnectTimeout int `json:"connectTimeout"` // milliseconds
		ReadTimeout    int `json:"readTimeout"`    // milliseconds
	} `json:"httpConfiguration"`
	AllowInsecureHTTP bool `json:"allowInsecureHttp"`

	// Accepted for compatibility with IDaaS files; agentguard does not use them.
	IDaaSInstanceID      string `json:"idaasInstanceId"`
	OpenAPIEndpoint      string `json:"openApiEndpoint"`
	DeveloperAPIEndpoint string `json:"developerApiEndpoint"`
	JWKEndpoint          string `json:"jwkEndpoint"`
}

// maxConfigFile bounds the config file read.
const maxConfigFile = 1 << 20

// LoadConfig reads a JSON config file in the IDaaS SDK's shape:
//
//	{
//	  "clientId": "agt_…",
//	  "issuer": "https://agentguard.example.com",
//	  "tokenEndpoint": "https://agentguard.example.com/oauth2/token",
//	  "scope": "https://files.example.com|read:file",
//	  "authnConfiguration": {
//	    "identityType": "CLIENT",
//	    "authnMethod": "CLIENT_SECRET_BASIC",
//	    "clientSecretEnvVarName": "AGENTGUARD_CLIENT_SECRET"
//	  },
//	  "httpConfiguration": {"connectTimeout": 5000, "readTimeout": 10000}
//	}
//
// Secrets are never read from the file: the client secret comes from the environment
// variable clientSecretEnvVarName names (default AGENTGUARD_CLIENT_SECRET), the
// private key from privateKeyEnvVarName (default AGENTGUARD_PRIVATE_KEY; PEM text or
// the path of a PEM file). Unknown keys are errors, so a typo does not silently
// fall back to a default.
func LoadConfig(path string) (Config, error) {
	return loadConfig(path, os.Getenv)
}

func loadConfig(path string, getenv func(string) string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, &ConfigError{Field: "file", Problem: fmt.Sprintf("cannot read %s: %v", path, unwrapPathErr(err))}
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxConfigFile+1)); err != nil {
		return Config{}, &ConfigError{Field: "file", Problem: fmt.Sprintf("cannot read %s: %v", path, unwrapPathErr(err))}
	}
	if b.Len() > maxConfigFile {
		return Config{}, &ConfigError{Field: "file", Problem: fmt.Sprintf("%s is over 1 MiB", path)}
	}
	return parseConfig(path, b.Bytes(), getenv)
}

func parseConfig(path string, data []byte, getenv func(string) string) (Config, error) {
	var fc fileConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return Config{}, &ConfigError{Field: "file", Problem: fmt.Sprintf("%s is not a valid config: %v", path, err)}
	}
	if dec.More() {
		return Config{}, &ConfigError{Field: "file", Problem: fmt.Sprintf("%s has data after the JSON object", path)}
	}
	c := Config{
		Issuer: fc.Issuer, ClientID: fc.ClientID, TokenEndpoint: fc.TokenEndpoint, Scope: fc.Scope,
		AllowInsecureHTTP: fc.AllowInsecureHTTP,
	}
	if fc.HTTP != nil {
		if fc.HTTP.ConnectTimeout < 0 {
			return Config{}, configErr("httpConfiguration.connectTimeout", "must be positive milliseconds (got %d)", fc.HTTP.ConnectTimeout)
		}
		if fc.HTTP.ReadTimeout < 0 {
			return Config{}, configErr("httpConfiguration.readTimeout", "must be positive milliseconds (got %d)", fc.HTTP.ReadTimeout)
		}
		c.ConnectTimeout = time.Duration(fc.HTTP.ConnectTimeout) * time.Millisecond
		c.RequestTimeout = time.Duration(fc.HTTP.ReadTimeout) * time.Millisecond
	}
	if fc.Authn == nil {
		return Config{}, configErr("authnConfiguration", "is required: an object with authnMethod (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT or FEDERATED_TOKEN)")
	}
	a := fc.Authn
	identity := a.IdentityType
	field := "authnConfiguration.identityType"
	if identity == "" {
		identity, field = a.AuthenticationSubject, "authnConfiguration.authenticationSubject"
	}
	if identity != "" && !strings.EqualFold(identity, "CLIENT") {
		return Config{}, configErr(field, "%q is not supported: the SDK authenticates an agent (CLIENT); users sign in through a client with the authorization code flow", identity)
	}
	m, err := parseMethod("authnConfiguration.authnMethod", a.AuthnMethod)
	if err != nil {
		return Config{}, err
	}
	c.AuthMethod = m
	c.KeyID = a.KeyID
	switch m {
	case ClientSecretBasic, ClientSecretPost:
		name := orDefault(a.ClientSecretEnvVarName, EnvClientSecret)
		c.ClientSecret = getenv(name)
		if c.ClientSecret == "" {
			return Config{}, configErr("authnConfiguration.clientSecretEnvVarName", "environment variable %s is empty: set it to the agent's client secret", name)
		}
	case PrivateKeyJWT:
		name := orDefault(a.PrivateKeyEnvVarName, EnvPrivateKey)
		key, err := privateKeyFromEnv("authnConfiguration.privateKeyEnvVarName", name, getenv(name))
		if err != nil {
			return Config{}, err
		}
		c.PrivateKey = key
	case FederatedToken:
		c.TokenFile = a.TokenFilePath
		if c.TokenFile == "" {
			switch strings.ToUpper(a.ClientDeployEnvironment) {
			case "KUBERNETES", "":
				c.TokenFile = KubernetesTokenFile
			case "ALIBABA_CLOUD_ACK":
				c.TokenFile = getenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE")
				if c.TokenFile == "" {
					return Config{}, configErr("authnConfiguration.tokenFilePath", "is empty and ALIBABA_CLOUD_OIDC_TOKEN_FILE is not set: name the workload token file")
				}
			default:
				return Config{}, configErr("authnConfiguration.clientDeployEnvironment", "%q has no default token file: set tokenFilePath", a.ClientDeployEnvironment)
			}
		}
	}
	return c, nil
}

// ConfigFromEnv builds a Config from the environment: the JSON file named by
// AGENTGUARD_SDK_CONFIG if set, then AGENTGUARD_ISSUER, AGENTGUARD_CLIENT_ID,
// AGENTGUARD_TOKEN_ENDPOINT, AGENTGUARD_SCOPE, AGENTGUARD_AUTH_METHOD,
// AGENTGUARD_CLIENT_SECRET, AGENTGUARD_PRIVATE_KEY (PEM text or a path),
// AGENTGUARD_KEY_ID, AGENTGUARD_TOKEN_FILE and AGENTGUARD_ALLOW_INSECURE_HTTP,
// each overriding the file. Without AGENTGUARD_AUTH_METHOD the method follows from
// what is set: a private key, else a token file, else CLIENT_SECRET_BASIC.
func ConfigFromEnv() (Config, error) { return configFromEnv(os.Getenv) }

func configFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	if path := getenv(EnvConfigFile); path != "" {
		var err error
		if c, err = loadConfig(path, getenv); err != nil {
			return c, err
		}
	}
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&c.Issuer, EnvIssuer)
	set(&c.ClientID, EnvClientID)
	set(&c.TokenEndpoint, EnvTokenEndpoint)
	set(&c.Scope, EnvScope)
	set(&c.KeyID, EnvKeyID)
	set(&c.TokenFile, EnvTokenFile)
	if v := getenv(EnvAllowHTTP); v != "" {
		switch strings.ToLower(v) {
		case "1", "true", "yes":
			c.AllowInsecureHTTP = true
		case "0", "false", "no":
			c.AllowInsecureHTTP = false
		default:
			return c, configErr(EnvAllowHTTP, "%q is not a boolean (true or false)", v)
		}
	}
	if v := getenv(EnvAuthMethod); v != "" {
		m, err := parseMethod(EnvAuthMethod, v)
		if err != nil {
			return c, err
		}
		c.AuthMethod = m
	}
	if v := getenv(EnvPrivateKey); v != "" && (c.AuthMethod == "" || c.AuthMethod == PrivateKeyJWT) {
		key, err := privateKeyFromEnv(EnvPrivateKey, EnvPrivateKey, v)
		if err != nil {
			return c, err
		}
		c.PrivateKey = key
	}
	if c.AuthMethod == "" || c.AuthMethod == ClientSecretBasic || c.AuthMethod == ClientSecretPost {
		set(&c.ClientSecret, EnvClientSecret)
	}
	if c.AuthMethod == "" {
		switch {
		case c.PrivateKey != nil:
			c.AuthMethod = PrivateKeyJWT
		case c.TokenFile != "":
			c.AuthMethod = FederatedToken
		default:
			c.AuthMethod = ClientSecretBasic
		}
	}
	return c, nil
}

func parseMethod(field, v string) (AuthMethod, error) {
	switch m := AuthMethod(strings.ToUpper(strings.TrimSpace(v))); m {
	case ClientSecretBasic, ClientSecretPost, PrivateKeyJWT, FederatedToken:
		return m, nil
	case "OIDC":
		return FederatedToken, nil
	case "":
		return "", configErr(field, "is required: one of CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT, FEDERATED_TOKEN")
	case "CLIENT_SECRET_JWT", "PKCS7", "PCA", "PLUGIN", "NONE":
		return "", configErr(field, "%s is not supported by agentguard: use CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT or FEDERATED_TOKEN", m)
	default:
		return "", configErr(field, "unknown method %q: use CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT or FEDERATED_TOKEN", truncate(v, 64))
	}
}

// privateKeyFromEnv reads a private key from an environment variable's value: PEM
// text if it starts with "-----BEGIN", otherwise the path of a PEM file. Errors
// never quote the value (it may be the key itself).
func privateKeyFromEnv(field, name, v string) (crypto.Signer, error) {
	if v == "" {
		return nil, configErr(field, "environment variable %s is empty: set it to the agent's private key (PEM text, or the path of a PEM file)", name)
	}
	data := []byte(v)
	source := "the PEM text in " + name
	if !strings.HasPrefix(strings.TrimSpace(v), "-----BEGIN") {
		b, err := readSmallFile(v, 1<<20)
		if err != nil {
			return nil, configErr(field, "%s names the key file %s, which cannot be read: %v", name, v, err)
		}
		data, source = b, "the key file "+v
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, configErr(field, "%s: %v", source, err)
	}
	return key, nil
}

// ParsePrivateKey parses a PEM private key: PKCS #8 ("PRIVATE KEY"), SEC 1
// ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY"). Errors never include key bytes.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (want -----BEGIN PRIVATE KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the key is encrypted; give the SDK an unencrypted key (keep it in a secret store instead)")
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("the PEM block is not a valid private key of its type")
	}
	if _, err := signingAlg(key); err != nil {
		return nil, err
	}
	return key.(crypto.Signer), nil
}

// validate checks c and says which setting is wrong.
func (c *Config) validate() error {
	if c.Issuer == "" {
		return configErr("issuer", "is required: agentguard's URL, e.g. https://agentguard.example.com (or set %s)", EnvIssuer)
	}
	if err := checkURL(c.Issuer, c.AllowInsecureHTTP); err != nil {
		return configErr("issuer", "%v", err)
	}
	if c.TokenEndpoint != "" {
		if err := checkURL(c.TokenEndpoint, c.AllowInsecureHTTP); err != nil {
			return configErr("tokenEndpoint", "%v", err)
		}
	}
	if c.Scope != "" {
		if _, _, err := splitCompatScope(c.Scope); err != nil {
			return configErr("scope", "%v", err)
		}
	}
	switch c.AuthMethod {
	case ClientSecretBasic, ClientSecretPost:
		if c.ClientID == "" {
			return configErr("clientId", "is required: the agent's id (agt_…) (or set %s)", EnvClientID)
		}
		if c.ClientSecret == "" {
			return configErr("authnConfiguration.clientSecretEnvVarName", "no client secret: set %s", EnvClientSecret)
		}
	case PrivateKeyJWT:
		if c.ClientID == "" {
			return configErr("clientId", "is required: the agent's id (agt_…) (or set %s)", EnvClientID)
		}
		if c.PrivateKey == nil {
			return configErr("authnConfiguration.privateKeyEnvVarName", "no private key: set %s to PEM text or the path of a PEM file", EnvPrivateKey)
		}
		if _, err := signingAlg(c.PrivateKey); err != nil {
			return configErr("authnConfiguration.privateKeyEnvVarName", "%v", err)
		}
	case FederatedToken:
		if c.TokenFile == "" {
			return configErr("authnConfiguration.tokenFilePath", "is required for FEDERATED_TOKEN: the workload token file (or set %s)", EnvTokenFile)
		}
		b, err := readSmallFile(c.TokenFile, maxTokenFile)
		if err != nil {
			return configErr("authnConfiguration.tokenFilePath", "cannot read %s: %v", c.TokenFile, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return configErr("authnConfiguration.tokenFilePath", "%s is empty", c.TokenFile)
		}
	case "":
		return configErr("authnConfiguration.authnMethod", "is required: one of CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, PRIVATE_KEY_JWT, FEDERATED_TOKEN")
	default:
		_, err := parseMethod("authnConfiguration.authnMethod", string(c.AuthMethod))
		return err
	}
	if c.ConnectTimeout < 0 || c.RequestTimeout < 0 {
		return configErr("httpConfiguration", "timeouts must be positive")
	}
	return nil
}

// maxTokenFile bounds a workload token file.
const maxTokenFile = 64 << 10

// checkURL accepts an absolute https URL, or http on a loopback address (or any
// host when insecure is allowed), without query or fragment.
func checkURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute http(s) URL", truncate(raw, 200))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not have a query, fragment or user info", truncate(raw, 200))
	}
	if u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q uses http on a host that is not loopback: secrets and tokens would cross the network in clear text; use https (or allow it explicitly with allowInsecureHttp / %s=true)", truncate(raw, 200), EnvAllowHTTP)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// splitCompatScope parses "aud|scope aud|scope" (one audience) into the audience and
// scopes.
func splitCompatScope(s string) (string, []string, error) {
	var aud string
	var scopes []string
	for _, f := range strings.Fields(s) {
		a, sc, ok := strings.Cut(f, "|")
		if !ok || a == "" || sc == "" {
			return "", nil, fmt.Errorf("%q is not audience|scope", truncate(f, 200))
		}
		if aud != "" && a != aud {
			return "", nil, fmt.Errorf("names two audiences (%q and %q); a token is for one audience", truncate(aud, 100), truncate(a, 100))
		}
		aud = a
		scopes = append(scopes, sc)
	}
	return aud, scopes, nil
}

func signingAlg(key any) (string, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return "ES256", nil
		case "P-384":
			return "ES384", nil
		}
		return "", fmt.Errorf("EC curve %s is not supported (use P-256 or P-384)", k.Curve.Params().Name)
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits is too short (at least 2048)", k.N.BitLen())
		}
		return "RS256", nil
	case ed25519.PrivateKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("key type %T is not supported (use EC P-256/P-384, RSA or Ed25519)", key)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// unwrapPathErr drops the path from an *os.PathError (the caller names it).
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, unwrapPathErr(err)
	}
	if int64(b.Len()) > max {
		return nil, fmt.Errorf("over %d bytes", max)
	}
	return b.Bytes(), nil
}
