// Package config loads agentguard's settings from, in rising precedence: built-in
// defaults, an optional YAML or TOML file (--config), AGENTGUARD_* environment
// variables, and command-line flags. Each flag --some-name is the env var
// AGENTGUARD_SOME_NAME and the file key some-name.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// Config is the server's configuration.
type Config struct {
	Addr            string        `koanf:"addr"`
	Issuer          string        `koanf:"issuer"`
	DataDir         string        `koanf:"data-dir"`
	DatabaseURL     string        `koanf:"database-url"`
	KMS             string        `koanf:"kms"`
	LogFormat       string        `koanf:"log-format"`
	LogLevel        string        `koanf:"log-level"`
	SigningAlg      string        `koanf:"signing-alg"`
	KeyRotation     time.Duration `koanf:"key-rotation"`
	ShutdownTimeout time.Duration `koanf:"shutdown-timeout"`
	GCInterval      time.Duration `koanf:"gc-interval"`
	AuditExport     string        `koanf:"audit-export"`
	AuditRetention  time.Duration `koanf:"audit-retention"`
	// AuditCommitDelay: see audit.Options.CommitDelay.
	AuditCommitDelay time.Duration `koanf:"audit-commit-delay"`
	SuspendOrphans   bool          `koanf:"suspend-orphans"`

	// Outbound credentials: the OAuth providers' token endpoints and the gateway.
	AllowInsecureTokenEndpoints bool          `koanf:"allow-insecure-token-endpoints"`
	AllowInsecureUpstreams      bool          `koanf:"allow-insecure-upstreams"`
	UpstreamTimeout             time.Duration `koanf:"upstream-timeout"`
	UpstreamTokenLifetime       time.Duration `koanf:"upstream-token-lifetime"`
	GatewayTimeout              time.Duration `koanf:"gateway-timeout"`
	GatewayMaxBody              int64         `koanf:"gateway-max-body"`
	// Sign-in: browser sessions, users' tokens, the login page's rate limits.
	SessionIdleTimeout   time.Duration `koanf:"session-idle-timeout"`
	SessionLifetime      time.Duration `koanf:"session-lifetime"`
	IDTokenLifetime      time.Duration `koanf:"id-token-lifetime"`
	RefreshTokenLifetime time.Duration `koanf:"refresh-token-lifetime"`
	RefreshTokenIdle     time.Duration `koanf:"refresh-token-idle"`
	LoginAttemptsPerIP   int           `koanf:"login-attempts-per-ip"`
	LoginFailuresPerUser int           `koanf:"login-failures-per-user"`
	// Dynamic client registration (RFC 7591) for MCP and other clients.
	ClientRegistration       string `koanf:"client-registration"`
	ClientRegistrationsPerIP int    `koanf:"client-registrations-per-ip"`

	// AdminToken comes only from AGENTGUARD_ADMIN_TOKEN, never a file or flag, so
	// it does not land in shell history or config repositories.
	AdminToken string `koanf:"-"`
}

// Flags defines the serve flags with their defaults and help.
func Flags(fs *pflag.FlagSet) {
	fs.String("config", "", "optional YAML (.yaml/.yml) or TOML (.toml) config file; keys are the flag names")
	fs.String("addr", "127.0.0.1:8080", "address to listen on")
	fs.String("issuer", "", "public base URL of this server, used as the token issuer (default http://<addr>)")
	fs.String("data-dir", "./agentguard-data", "directory for the SQLite database, the local KMS keyring and the bootstrap admin token")
	fs.String("database-url", "", "postgres://… to store data in PostgreSQL instead of SQLite")
	fs.String("kms", "local", "key management for secrets at rest: local (a keyring file in the data dir)")
	fs.String("log-format", "text", "log format: text or json")
	fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.String("signing-alg", "ES256", "access token signing algorithm: ES256, RS256 or EdDSA")
	fs.Duration("key-rotation", 30*24*time.Hour, "rotate the token signing key this often (0 turns scheduled rotation off)")
	fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	fs.Duration("gc-interval", time.Minute, "how often expired revocations and replay entries are deleted")
	fs.String("audit-export", "", "also stream committed audit events to: stdout, file:/path (JSON lines), otlp or otlp:http://collector:4318 (OpenTelemetry logs); comma-separated")
	fs.Duration("audit-commit-delay", 0, "under heavy concurrent load, keep gathering audit events for up to this long (e.g. 1ms) once several wait, for larger, cheaper batches; 0 writes at once")
	fs.Duration("audit-retention", 0, "delete audit events older than this (e.g. 2160h), leaving a signed checkpoint; 0 keeps them forever")
	fs.Bool("suspend-orphans", false, "disable (status disabled) an agent when its owner is deleted or deactivated, besides flagging it orphaned")
	fs.Bool("allow-insecure-token-endpoints", false, "let OAuth providers' token endpoints be plain http:// on hosts other than localhost (the client secret then crosses the network unencrypted)")
	fs.Bool("allow-insecure-upstreams", false, "let the gateway forward to plain http:// upstream URLs on hosts other than localhost (the injected credential then crosses the network unencrypted)")
	fs.Duration("upstream-timeout", 10*time.Second, "how long a token request to an OAuth provider may take before the agent gets a 502")
	fs.Duration("upstream-token-lifetime", 5*time.Minute, "how long a provider's token is cached when the provider sends no expires_in")
	fs.Duration("gateway-timeout", 5*time.Minute, "how long one request through the egress gateway may take, including streaming the answer")
	fs.Int64("gateway-max-body", 32<<20, "largest request body, in bytes, the gateway forwards (413 above)")
	fs.Duration("session-idle-timeout", time.Hour, "end a user's browser sign-in session after this long without activity (sign-in, authorization, refresh)")
	fs.Duration("session-lifetime", 12*time.Hour, "end a user's browser sign-in session this long after sign-in, whatever the activity")
	fs.Duration("id-token-lifetime", time.Hour, "lifetime of OpenID Connect ID tokens")
	fs.Duration("refresh-token-lifetime", 30*24*time.Hour, "a refresh token family (every token rotated from one sign-in) ends this long after sign-in; without offline_access it also ends with the session")
	fs.Duration("refresh-token-idle", 7*24*time.Hour, "a refresh token not used within this long expires")
	fs.Int("login-attempts-per-ip", 20, "sign-in attempts allowed per source IP per minute on the login page (0: no limit); in memory, per replica")
	fs.Int("login-failures-per-user", 10, "failed sign-ins allowed per username per 15 minutes (0: no limit); in memory, per replica")
	fs.String("client-registration", "approval", "dynamic client registration (RFC 7591) at /oauth2/register, for MCP clients: approval (clients wait until an administrator approves them), open (clients are created at once), or off")
	fs.Int("client-registrations-per-ip", 10, "dynamic client registrations allowed per source IP per hour; in memory, per replica")
}

// Load reads the configuration for the flag set fs (already parsed).
func Load(fs *pflag.FlagSet, environ []string) (Config, error) {
	k := koanf.New(".")
	path, _ := fs.GetString("config")
	if path == "" {
		path = lookup(environ, "AGENTGUARD_CONFIG")
	}
	if path != "" {
		var parser koanf.Parser
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml":
			parser = yaml.Parser()
		case ".toml":
			parser = toml.Parser()
		default:
			return Config{}, fmt.Errorf("config file %s: use a .yaml, .yml or .toml file", path)
		}
		if err := k.Load(file.Provider(path), parser); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	// Only the server's own flags are settings; the CLI's global flags (--server,
	// --token, --output) on the same command are not.
	known := map[string]bool{}
	own := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	Flags(own)
	own.VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
	for _, key := range k.Keys() {
		if !known[key] {
			return Config{}, fmt.Errorf("config file %s: unknown key %q (keys are the flag names, e.g. data-dir)", path, key)
		}
	}
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix:      "AGENTGUARD_",
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(key, v string) (string, any) {
			name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(key, "AGENTGUARD_")), "_", "-")
			if !known[name] || name == "config" {
				return "", nil
			}
			return name, v
		},
	}), nil); err != nil {
		return Config{}, err
	}
	if err := k.Load(posflag.Provider(fs, ".", k), nil); err != nil {
		return Config{}, err
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c.AdminToken = lookup(environ, "AGENTGUARD_ADMIN_TOKEN")
	return c, c.validate()
}

func lookup(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func (c *Config) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q must be host:port, e.g. 127.0.0.1:8080", c.Addr)
	}
	if c.Issuer == "" {
		c.Issuer = "http://" + c.Addr
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--issuer %q must be an http(s) URL without query or fragment, e.g. https://agentguard.example.com", c.Issuer)
	}
	if c.KMS != "local" {
		return fmt.Errorf("--kms %q is not available; use local", c.KMS)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q must be text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.SigningAlg {
	case "ES256", "RS256", "EdDSA":
	default:
		return fmt.Errorf("--signing-alg %q must be ES256, RS256 or EdDSA", c.SigningAlg)
	}
	if c.KeyRotation < 0 || (c.KeyRotation != 0 && c.KeyRotation < time.Hour) {
		return fmt.Errorf("--key-rotation %s is too short: use at least 1h, or 0 to turn it off", c.KeyRotation)
	}
	if c.AuditCommitDelay < 0 || c.AuditCommitDelay > 100*time.Millisecond {
		return fmt.Errorf("--audit-commit-delay %s: use 0 (off) up to 100ms; 1ms is what helps under heavy load", c.AuditCommitDelay)
	}
	if c.AuditRetention < 0 || (c.AuditRetention > 0 && c.AuditRetention < time.Hour) {
		return fmt.Errorf("--audit-retention %s: use at least 1h, or 0 to keep events forever", c.AuditRetention)
	}
	if c.UpstreamTimeout < time.Second || c.UpstreamTimeout > 2*time.Minute {
		return fmt.Errorf("--upstream-timeout %s must be from 1s to 2m, e.g. 10s", c.UpstreamTimeout)
	}
	if c.UpstreamTokenLifetime < 10*time.Second || c.UpstreamTokenLifetime > 24*time.Hour {
		return fmt.Errorf("--upstream-token-lifetime %s must be from 10s to 24h, e.g. 5m", c.UpstreamTokenLifetime)
	}
	if c.GatewayTimeout < time.Second || c.GatewayTimeout > 24*time.Hour {
		return fmt.Errorf("--gateway-timeout %s must be from 1s to 24h, e.g. 5m", c.GatewayTimeout)
	}
	if c.GatewayMaxBody < 1024 || c.GatewayMaxBody > 1<<30 {
		return fmt.Errorf("--gateway-max-body %d must be from 1024 to 1073741824 bytes, e.g. 33554432 (32 MiB)", c.GatewayMaxBody)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout %s must be positive, e.g. 30s", c.ShutdownTimeout)
	}
	if c.GCInterval < time.Second {
		return fmt.Errorf("--gc-interval %s is too short: use at least 1s, e.g. 1m", c.GCInterval)
	}
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir must not be empty")
	}
	return c.validateSignin()
}

func (c *Config) validateSignin() error {
	switch {
	case c.SessionIdleTimeout < time.Minute:
		return fmt.Errorf("--session-idle-timeout %s is too short: use at least 1m, e.g. 1h", c.SessionIdleTimeout)
	case c.SessionLifetime < c.SessionIdleTimeout:
		return fmt.Errorf("--session-lifetime %s must be at least --session-idle-timeout (%s)", c.SessionLifetime, c.SessionIdleTimeout)
	case c.IDTokenLifetime < time.Minute || c.IDTokenLifetime > 24*time.Hour:
		return fmt.Errorf("--id-token-lifetime %s must be from 1m to 24h", c.IDTokenLifetime)
	case c.RefreshTokenIdle < time.Minute:
		return fmt.Errorf("--refresh-token-idle %s is too short: use at least 1m, e.g. 168h", c.RefreshTokenIdle)
	case c.RefreshTokenLifetime < c.RefreshTokenIdle:
		return fmt.Errorf("--refresh-token-lifetime %s must be at least --refresh-token-idle (%s)", c.RefreshTokenLifetime, c.RefreshTokenIdle)
	case c.LoginAttemptsPerIP < 0 || c.LoginAttemptsPerIP > 100000:
		return fmt.Errorf("--login-attempts-per-ip %d must be from 0 (no limit) to 100000", c.LoginAttemptsPerIP)
	case c.LoginFailuresPerUser < 0 || c.LoginFailuresPerUser > 100000:
		return fmt.Errorf("--login-failures-per-user %d must be from 0 (no limit) to 100000", c.LoginFailuresPerUser)
	case c.ClientRegistration != "approval" && c.ClientRegistration != "open" && c.ClientRegistration != "off":
		return fmt.Errorf("--client-registration %q must be approval, open or off", c.ClientRegistration)
	case c.ClientRegistrationsPerIP < 1 || c.ClientRegistrationsPerIP > 100000:
		return fmt.Errorf("--client-registrations-per-ip %d must be from 1 to 100000", c.ClientRegistrationsPerIP)
	}
	return nil
}

// Environ is os.Environ, named for callers that pass it to Load.
func Environ() []string { return os.Environ() }
