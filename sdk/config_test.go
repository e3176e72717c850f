package sdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ecPEM(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Files in the IDaaS shape load, secrets come from the environment.
func TestLoadConfigFile(t *testing.T) {
	keyPEM := ecPEM(t)
	keyFile := writeFile(t, "agent.key", keyPEM)
	tokenFile := writeFile(t, "token", "workload")
	cases := []struct {
		name  string
		file  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"client secret post, IDaaS file with its extra keys", `{
			"idaasInstanceId": "idaas_x", "clientId": "agt_1", "issuer": "https://ag.example.com",
			"tokenEndpoint": "https://ag.example.com/oauth2/token", "scope": "api.example.com|read:file",
			"openApiEndpoint": "eiam.cn-hangzhou.aliyuncs.com", "developerApiEndpoint": "x",
			"authnConfiguration": {"identityType": "CLIENT", "authnMethod": "CLIENT_SECRET_POST", "clientSecretEnvVarName": "MY_SECRET"},
			"httpConfiguration": {"connectTimeout": 5000, "readTimeout": 10000}}`,
			map[string]string{"MY_SECRET": "agcs_s"},
			func(t *testing.T, c Config) {
				if c.ClientID != "agt_1" || c.ClientSecret != "agcs_s" || c.AuthMethod != ClientSecretPost || c.RequestTimeout.Seconds() != 10 || c.Scope != "api.example.com|read:file" {
					t.Fatalf("%+v", c)
				}
			}},
		{"client secret basic, default env var, older authenticationSubject key", `{
			"clientId": "agt_1", "issuer": "http://127.0.0.1:8080",
			"authnConfiguration": {"authenticationSubject": "CLIENT", "authnMethod": "CLIENT_SECRET_BASIC"}}`,
			map[string]string{"AGENTGUARD_CLIENT_SECRET": "agcs_d"},
			func(t *testing.T, c Config) {
				if c.ClientSecret != "agcs_d" || c.AuthMethod != ClientSecretBasic {
					t.Fatalf("%+v", c)
				}
			}},
		{"private key from a path", `{"clientId": "agt_1", "issuer": "https://ag.example.com",
			"authnConfiguration": {"authnMethod": "PRIVATE_KEY_JWT", "privateKeyEnvVarName": "KEY", "keyId": "k1"}}`,
			map[string]string{"KEY": keyFile},
			func(t *testing.T, c Config) {
				if c.PrivateKey == nil || c.KeyID != "k1" {
					t.Fatalf("%+v", c)
				}
			}},
		{"private key as PEM text", `{"clientId": "agt_1", "issuer": "https://ag.example.com",
			"authnConfiguration": {"authnMethod": "PRIVATE_KEY_JWT"}}`,
			map[string]string{"AGENTGUARD_PRIVATE_KEY": keyPEM},
			func(t *testing.T, c Config) {
				if c.PrivateKey == nil {
					t.Fatalf("%+v", c)
				}
			}},
		{"federated token, IDaaS OIDC name", `{"issuer": "https://ag.example.com",
			"authnConfiguration": {"authnMethod": "OIDC", "tokenFilePath": "` + tokenFile + `"}}`,
			nil,
			func(t *testing.T, c Config) {
				if c.AuthMethod != FederatedToken || c.TokenFile != tokenFile {
					t.Fatalf("%+v", c)
				}
			}},
		{"federated token on Kubernetes defaults to the service-account token", `{"issuer": "https://ag.example.com",
			"authnConfiguration": {"authnMethod": "FEDERATED_TOKEN", "clientDeployEnvironment": "KUBERNETES"}}`,
			nil,
			func(t *testing.T, c Config) {
				if c.TokenFile != KubernetesTokenFile {
					t.Fatalf("%+v", c)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(writeFile(t, "c.json", tc.file), envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// Every misconfiguration fails at construction with a message naming the field, and
// never quotes a secret.
func TestMisconfigurationNamesTheField(t *testing.T) {
	keyPEM := ecPEM(t)
	unreadable := filepath.Join(t.TempDir(), "missing.key")
	notAKey := writeFile(t, "x.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER := x509.MarshalPKCS1PrivateKey(rsaSmall)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: rsaDER}))
	cases := []struct {
		name  string
		file  string
		env   map[string]string
		field string
		want  string
	}{
		{"missing issuer", `{"clientId": "a", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}}`,
			map[string]string{"AGENTGUARD_CLIENT_SECRET": "agcs_s3cr3t-value"}, "issuer", "is required"},
		{"issuer not a URL", `{"issuer": "agentguard", "clientId": "a", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}}`,
			map[string]string{"AGENTGUARD_CLIENT_SECRET": "agcs_s3cr3t-value"}, "issuer", "not an absolute"},
		{"plain http to a remote host", `{"issuer": "http://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}}`,
			map[string]string{"AGENTGUARD_CLIENT_SECRET": "agcs_s3cr3t-value"}, "issuer", "clear text"},
		{"missing client id", `{"issuer": "https://ag.example.com", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}}`,
			map[string]string{"AGENTGUARD_CLIENT_SECRET": "agcs_s3cr3t-value"}, "clientId", "is required"},
		{"unknown authn method", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "MAGIC"}}`,
			nil, "authnConfiguration.authnMethod", `unknown method "MAGIC"`},
		{"unsupported IDaaS method", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "PKCS7"}}`,
			nil, "authnConfiguration.authnMethod", "not supported"},
		{"no authnConfiguration", `{"issuer": "https://ag.example.com", "clientId": "a"}`,
			nil, "authnConfiguration", "is required"},
		{"human identity", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"identityType": "HUMAN", "authnMethod": "CLIENT_SECRET_BASIC"}}`,
			nil, "authnConfiguration.identityType", "not supported"},
		{"secret env var empty", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC", "clientSecretEnvVarName": "NOPE"}}`,
			nil, "authnConfiguration.clientSecretEnvVarName", "NOPE is empty"},
		{"unreadable key file", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "PRIVATE_KEY_JWT"}}`,
			map[string]string{"AGENTGUARD_PRIVATE_KEY": unreadable}, "authnConfiguration.privateKeyEnvVarName", "cannot be read"},
		{"key file that is not a key", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "PRIVATE_KEY_JWT"}}`,
			map[string]string{"AGENTGUARD_PRIVATE_KEY": notAKey}, "authnConfiguration.privateKeyEnvVarName", "not a private key"},
		{"RSA key too short", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "PRIVATE_KEY_JWT"}}`,
			map[string]string{"AGENTGUARD_PRIVATE_KEY": smallPEM}, "authnConfiguration.privateKeyEnvVarName", "too short"},
		{"garbage PEM text", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "PRIVATE_KEY_JWT"}}`,
			map[string]string{"AGENTGUARD_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"}, "authnConfiguration.privateKeyEnvVarName", "not a valid private key"},
		{"unreadable token file", `{"issuer": "https://ag.example.com", "authnConfiguration": {"authnMethod": "FEDERATED_TOKEN", "tokenFilePath": "` + unreadable + `"}}`,
			nil, "authnConfiguration.tokenFilePath", "cannot read"},
		{"typo in a key", `{"issuer": "https://ag.example.com", "client_id": "a", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}}`,
			nil, "file", `unknown field "client_id"`},
		{"bad scope", `{"issuer": "https://ag.example.com", "clientId": "a", "scope": "read:file", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}}`,
			map[string]string{"AGENTGUARD_CLIENT_SECRET": "agcs_s3cr3t-value"}, "scope", "audience|scope"},
		{"negative timeout", `{"issuer": "https://ag.example.com", "clientId": "a", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}, "httpConfiguration": {"readTimeout": -1}}`,
			map[string]string{"AGENTGUARD_CLIENT_SECRET": "agcs_s3cr3t-value"}, "httpConfiguration.readTimeout", "positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(writeFile(t, "c.json", tc.file), envOf(tc.env))
			if err == nil {
				_, err = New(cfg)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Field != tc.field || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want field %s and %q", err, tc.field, tc.want)
			}
			for _, secret := range []string{"agcs_s3cr3t-value", keyPEM, "bm90IGEga2V5"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

// A missing config file is an error naming it.
func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.json"))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "file" || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("err = %v", err)
	}
}

// In-code configuration is checked too.
func TestNewChecksCodeConfig(t *testing.T) {
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{ClientID: "a", ClientSecret: "s", AuthMethod: ClientSecretBasic}, "issuer"},
		{Config{Issuer: "https://a.example.com", ClientID: "a", AuthMethod: ClientSecretBasic}, "authnConfiguration.clientSecretEnvVarName"},
		{Config{Issuer: "https://a.example.com", ClientID: "a", AuthMethod: PrivateKeyJWT}, "authnConfiguration.privateKeyEnvVarName"},
		{Config{Issuer: "https://a.example.com", ClientID: "a", ClientSecret: "s"}, "authnConfiguration.authnMethod"},
		{Config{Issuer: "https://a.example.com", ClientID: "a", ClientSecret: "s", AuthMethod: "BOGUS"}, "authnConfiguration.authnMethod"},
		{Config{Issuer: "https://a.example.com", AuthMethod: FederatedToken}, "authnConfiguration.tokenFilePath"},
		{Config{Issuer: "https://a.example.com", ClientID: "a", ClientSecret: "s", AuthMethod: ClientSecretBasic, TokenEndpoint: "ftp://x"}, "tokenEndpoint"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: err = %v, want field %s", tc.cfg, err, tc.field)
		}
	}
	// http is fine on loopback, and anywhere when explicitly allowed.
	for _, cfg := range []Config{
		{Issuer: "http://127.0.0.1:8080", ClientID: "a", ClientSecret: "s", AuthMethod: ClientSecretBasic},
		{Issuer: "http://localhost:8080", ClientID: "a", ClientSecret: "s", AuthMethod: ClientSecretBasic},
		{Issuer: "http://agentguard.internal:8080", ClientID: "a", ClientSecret: "s", AuthMethod: ClientSecretBasic, AllowInsecureHTTP: true},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("%s: %v", cfg.Issuer, err)
		}
	}
}

// ConfigFromEnv: variables override the file; the method follows from what is set.
func TestConfigFromEnv(t *testing.T) {
	keyPEM := ecPEM(t)
	tokenFile := writeFile(t, "token", "w")
	file := writeFile(t, "c.json", `{"clientId": "agt_file", "issuer": "https://file.example.com", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_POST"}}`)
	cases := []struct {
		name string
		env  map[string]string
		want func(Config) bool
	}{
		{"secret → basic", map[string]string{EnvIssuer: "https://a.example.com", EnvClientID: "agt_1", EnvClientSecret: "s"},
			func(c Config) bool { return c.AuthMethod == ClientSecretBasic && c.ClientSecret == "s" }},
		{"key → private_key_jwt", map[string]string{EnvIssuer: "https://a.example.com", EnvClientID: "agt_1", EnvPrivateKey: keyPEM, EnvKeyID: "k"},
			func(c Config) bool { return c.AuthMethod == PrivateKeyJWT && c.PrivateKey != nil && c.KeyID == "k" }},
		{"token file → federated", map[string]string{EnvIssuer: "https://a.example.com", EnvTokenFile: tokenFile},
			func(c Config) bool { return c.AuthMethod == FederatedToken }},
		{"file, then env overrides", map[string]string{EnvConfigFile: file, EnvClientSecret: "s", EnvIssuer: "https://env.example.com"},
			func(c Config) bool {
				return c.Issuer == "https://env.example.com" && c.ClientID == "agt_file" && c.AuthMethod == ClientSecretPost
			}},
		{"explicit method", map[string]string{EnvIssuer: "https://a.example.com", EnvClientID: "a", EnvClientSecret: "s", EnvAuthMethod: "client_secret_post"},
			func(c Config) bool { return c.AuthMethod == ClientSecretPost }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configFromEnv(envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("%+v", c)
			}
			if _, err := New(c); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := configFromEnv(envOf(map[string]string{EnvAllowHTTP: "maybe"})); err == nil || !strings.Contains(err.Error(), EnvAllowHTTP) {
		t.Fatalf("err = %v", err)
	}
	if _, err := configFromEnv(envOf(map[string]string{EnvAuthMethod: "NOPE"})); err == nil || !strings.Contains(err.Error(), EnvAuthMethod) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzParseConfig: any file content is either a config or a *ConfigError; never a
// panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"clientId": "a", "issuer": "https://a.example.com", "authnConfiguration": {"authnMethod": "CLIENT_SECRET_BASIC"}}`))
	f.Add([]byte(`{"issuer": "https://a.example.com", "authnConfiguration": {"authnMethod": "OIDC", "clientDeployEnvironment": "ALIBABA_CLOUD_ACK"}}`))
	f.Add([]byte(`{"authnConfiguration": null, "httpConfiguration": {"connectTimeout": -5}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig("fuzz.json", data, envOf(map[string]string{"AGENTGUARD_CLIENT_SECRET": "s"}))
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err %v is not a *ConfigError", err)
			}
			return
		}
		New(c)
	})
}
