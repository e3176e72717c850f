package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/agentguard/agentguard/internal/config"
)

func load(t *testing.T, args, environ []string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return config.Load(fs, environ)
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Each source overrides the one below it: default < file < env < flag; the YAML
// and TOML files behave alike, and the file may be named by flag or env.
func TestLoadPrecedence(t *testing.T) {
	yaml := writeFile(t, "agentguard.yaml", "addr: 127.0.0.1:7001\nlog-level: warn\nkey-rotation: 48h\nsigning-alg: RS256\n")
	toml := writeFile(t, "agentguard.toml", "addr = \"127.0.0.1:7001\"\nlog-level = \"warn\"\nkey-rotation = \"48h\"\nsigning-alg = \"RS256\"\n")
	type want struct {
		addr, level, alg string
		rotation         time.Duration
	}
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    want
	}{
		{"defaults", nil, nil, want{"127.0.0.1:8080", "info", "ES256", 30 * 24 * time.Hour}},
		{"YAML file over defaults", []string{"--config", yaml}, nil, want{"127.0.0.1:7001", "warn", "RS256", 48 * time.Hour}},
		{"TOML file over defaults", []string{"--config", toml}, nil, want{"127.0.0.1:7001", "warn", "RS256", 48 * time.Hour}},
		{"file named by AGENTGUARD_CONFIG", nil, []string{"AGENTGUARD_CONFIG=" + yaml}, want{"127.0.0.1:7001", "warn", "RS256", 48 * time.Hour}},
		{"env over file", []string{"--config", toml}, []string{"AGENTGUARD_ADDR=127.0.0.1:7002", "AGENTGUARD_LOG_LEVEL=error", "AGENTGUARD_KEY_ROTATION=72h"},
			want{"127.0.0.1:7002", "error", "RS256", 72 * time.Hour}},
		{"env over default", nil, []string{"AGENTGUARD_SIGNING_ALG=EdDSA"}, want{"127.0.0.1:8080", "info", "EdDSA", 30 * 24 * time.Hour}},
		{"flag over env and file", []string{"--config", yaml, "--addr", "127.0.0.1:7003", "--key-rotation", "0"}, []string{"AGENTGUARD_ADDR=127.0.0.1:7002", "AGENTGUARD_KEY_ROTATION=72h"},
			want{"127.0.0.1:7003", "warn", "RS256", 0}},
		{"a flag given at its default value still wins", []string{"--addr", "127.0.0.1:8080"}, []string{"AGENTGUARD_ADDR=127.0.0.1:7002"}, want{"127.0.0.1:8080", "info", "ES256", 30 * 24 * time.Hour}},
		{"unrelated env ignored", nil, []string{"ADDR=127.0.0.1:9", "AGENTGUARDADDR=x"}, want{"127.0.0.1:8080", "info", "ES256", 30 * 24 * time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.args, tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			got := want{c.Addr, c.LogLevel, c.SigningAlg, c.KeyRotation}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if c.Issuer != "http://"+c.Addr {
				t.Fatalf("issuer %q, want the default http://%s", c.Issuer, c.Addr)
			}
		})
	}
}

// Dashed names map to env vars with underscores, for every kind of value.
func TestLoadEnvNames(t *testing.T) {
	c, err := load(t, nil, []string{
		"AGENTGUARD_DATA_DIR=/tmp/ag", "AGENTGUARD_DATABASE_URL=postgres://db/x", "AGENTGUARD_ISSUER=https://id.example.com/",
		"AGENTGUARD_SHUTDOWN_TIMEOUT=5s", "AGENTGUARD_GC_INTERVAL=2m", "AGENTGUARD_LOG_FORMAT=json",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/tmp/ag" || c.DatabaseURL != "postgres://db/x" || c.Issuer != "https://id.example.com" ||
		c.ShutdownTimeout != 5*time.Second || c.GCInterval != 2*time.Minute || c.LogFormat != "json" {
		t.Fatalf("config %+v", c)
	}
}

// The admin token only ever comes from the environment: not a flag, not a file key.
func TestAdminTokenFromEnvOnly(t *testing.T) {
	c, err := load(t, nil, []string{"AGENTGUARD_ADMIN_TOKEN=env-token-0123456789"})
	if err != nil || c.AdminToken != "env-token-0123456789" {
		t.Fatalf("AdminToken %q, err %v", c.AdminToken, err)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(fs)
	if fs.Lookup("admin-token") != nil {
		t.Fatal("there is an --admin-token flag; the token would land in shell history")
	}
	for _, f := range []struct{ name, text string }{
		{"a.yaml", "admin-token: file-token-0123456789\n"},
		{"a.toml", "admin-token = \"file-token-0123456789\"\n"},
	} {
		_, err := load(t, []string{"--config", writeFile(t, f.name, f.text)}, nil)
		if err == nil || !strings.Contains(err.Error(), `"admin-token"`) {
			t.Fatalf("%s: err %v, want the admin-token key refused", f.name, err)
		}
		if strings.Contains(err.Error(), "file-token-0123456789") {
			t.Fatalf("%s: the error echoes the token: %v", f.name, err)
		}
	}
	if c, _ := load(t, nil, nil); c.AdminToken != "" {
		t.Fatalf("AdminToken %q with no env, want empty", c.AdminToken)
	}
}

// The credential settings come from flags, env and files like the others.
func TestLoadCredentialSettings(t *testing.T) {
	file := writeFile(t, "c.yaml", "allow-insecure-token-endpoints: true\ngateway-max-body: 2048\n")
	c, err := load(t, []string{"--config", file, "--gateway-timeout", "90s"}, []string{"AGENTGUARD_UPSTREAM_TIMEOUT=3s", "AGENTGUARD_ALLOW_INSECURE_UPSTREAMS=true"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.AllowInsecureTokenEndpoints || !c.AllowInsecureUpstreams || c.GatewayMaxBody != 2048 || c.GatewayTimeout != 90*time.Second ||
		c.UpstreamTimeout != 3*time.Second || c.UpstreamTokenLifetime != 5*time.Minute {
		t.Fatalf("settings %+v", c)
	}
	d, _ := load(t, nil, nil)
	if d.AllowInsecureTokenEndpoints || d.AllowInsecureUpstreams || d.GatewayMaxBody != 32<<20 || d.GatewayTimeout != 5*time.Minute || d.UpstreamTimeout != 10*time.Second {
		t.Fatalf("defaults %+v", d)
	}
}

// Bad settings fail at start with an error naming the flag and what would be right.
func TestLoadRejectsInvalidSettings(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		file    [2]string // name, text
		want    []string  // substrings of the error
	}{
		{"unknown YAML key", nil, nil, [2]string{"c.yaml", "adress: 127.0.0.1:1\n"}, []string{`"adress"`, "flag names"}},
		{"unknown nested YAML key", nil, nil, [2]string{"c.yaml", "server:\n  addr: 127.0.0.1:1\n"}, []string{`"server.addr"`}},
		{"unknown TOML key", nil, nil, [2]string{"c.toml", "log_level = \"info\"\n"}, []string{`"log_level"`}},
		{"config file of another type", nil, nil, [2]string{"c.json", "{}"}, []string{".yaml", ".toml"}},
		{"config file missing", []string{"--config", "/nonexistent/agentguard.yaml"}, nil, [2]string{}, []string{"/nonexistent/agentguard.yaml"}},
		{"config file not YAML", nil, nil, [2]string{"c.yaml", "addr: [unclosed\n"}, []string{"c.yaml"}},
		{"addr without port", []string{"--addr", "localhost"}, nil, [2]string{}, []string{"--addr", "host:port"}},
		{"addr from env", nil, []string{"AGENTGUARD_ADDR=nonsense"}, [2]string{}, []string{"--addr", "host:port"}},
		{"issuer not http(s)", []string{"--issuer", "ftp://id.example.com"}, nil, [2]string{}, []string{"--issuer", "https://"}},
		{"issuer relative", []string{"--issuer", "id.example.com"}, nil, [2]string{}, []string{"--issuer"}},
		{"issuer with query", []string{"--issuer", "https://id.example.com/?a=b"}, nil, [2]string{}, []string{"--issuer", "without query"}},
		{"issuer with fragment", []string{"--issuer", "https://id.example.com/#x"}, nil, [2]string{}, []string{"--issuer"}},
		{"log format", []string{"--log-format", "xml"}, nil, [2]string{}, []string{"--log-format", "text or json"}},
		{"log level", []string{"--log-level", "verbose"}, nil, [2]string{}, []string{"--log-level", "debug"}},
		{"signing alg HS256", []string{"--signing-alg", "HS256"}, nil, [2]string{}, []string{"--signing-alg", "ES256, RS256 or EdDSA"}},
		{"signing alg lower case", nil, []string{"AGENTGUARD_SIGNING_ALG=es256"}, [2]string{}, []string{"--signing-alg"}},
		{"audit commit delay too long", []string{"--audit-commit-delay", "1s"}, nil, [2]string{}, []string{"--audit-commit-delay", "100ms"}},
		{"key rotation too short", []string{"--key-rotation", "10m"}, nil, [2]string{}, []string{"--key-rotation", "1h"}},
		{"key rotation negative", []string{"--key-rotation", "-48h"}, nil, [2]string{}, []string{"--key-rotation", "1h"}},
		{"key rotation not a duration", nil, []string{"AGENTGUARD_KEY_ROTATION=monthly"}, [2]string{}, []string{"key-rotation"}},
		{"kms unknown", []string{"--kms", "vault"}, nil, [2]string{}, []string{"--kms", "local"}},
		{"shutdown timeout zero", []string{"--shutdown-timeout", "0s"}, nil, [2]string{}, []string{"--shutdown-timeout"}},
		{"gc interval zero", []string{"--gc-interval", "0s"}, nil, [2]string{}, []string{"--gc-interval"}},
		{"data dir empty", []string{"--data-dir", ""}, nil, [2]string{}, []string{"--data-dir"}},
		{"upstream timeout too short", []string{"--upstream-timeout", "10ms"}, nil, [2]string{}, []string{"--upstream-timeout", "1s to 2m"}},
		{"upstream token lifetime too long", nil, []string{"AGENTGUARD_UPSTREAM_TOKEN_LIFETIME=48h"}, [2]string{}, []string{"--upstream-token-lifetime", "24h"}},
		{"gateway timeout zero", []string{"--gateway-timeout", "0s"}, nil, [2]string{}, []string{"--gateway-timeout"}},
		{"gateway max body too small", []string{"--gateway-max-body", "10"}, nil, [2]string{}, []string{"--gateway-max-body", "1024"}},
		{"insecure flag not a bool", nil, []string{"AGENTGUARD_ALLOW_INSECURE_UPSTREAMS=maybe"}, [2]string{}, []string{"allow-insecure-upstreams"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file[0] != "" {
				args = append([]string{"--config", writeFile(t, tc.file[0], tc.file[1])}, args...)
			}
			_, err := load(t, args, tc.environ)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
