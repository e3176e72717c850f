package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

func kmsCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Execute(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// clientCredentialsToken gets an access token for the agent from s's token endpoint.
func clientCredentialsToken(t *testing.T, s *servertest.Server, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body.AccessToken == "" {
		t.Fatalf("token endpoint: HTTP %d %s: %s", resp.StatusCode, body.Error, body.Description)
	}
	return body.AccessToken
}

func keyringKeys(t *testing.T, dir string) (current string, keys map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, kms.LocalKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Current string            `json:"current"`
		Keys    map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Current, f.Keys
}

// `agentguard kms rotate` against a live server's data: the server keeps issuing
// and verifying during and after, a restarted server opens its signing key under
// the new KMS key, tokens from before still verify, and nothing printed is key
// material.
func TestKMSRotateEndToEnd(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			dbURL, dir := storetest.DatabaseURL(t, d)
			// One issuer for both servers, as for replicas behind one URL.
			opts := servertest.Options{Dialect: d, DatabaseURL: dbURL, DataDir: dir,
				Configure: func(c *config.Config) { c.Issuer = "https://agentguard.test" }}
			s1 := servertest.Start(t, opts)
			id, sec := s1.Agent(t, "rotating")
			before := clientCredentialsToken(t, s1, id, sec)
			oldKEK, _ := keyringKeys(t, dir)

			out, errOut, code := kmsCLI(t, "kms", "rotate", "--data-dir", dir, "--database-url", dbURL)
			if code != 0 {
				t.Fatalf("kms rotate: exit %d: %s", code, errOut)
			}
			newKEK, keys := keyringKeys(t, dir)
			if newKEK == oldKEK || len(keys) != 2 {
				t.Fatalf("keyring after rotate: current %s (was %s), %d keys; want a new current key and both kept", newKEK, oldKEK, len(keys))
			}
			if !strings.Contains(out, "new KMS key "+newKEK+" is current (was "+oldKEK+")") || !regexp.MustCompile(`re-wrapped [1-9][0-9]* sealed values under `+newKEK).MatchString(out) {
				t.Fatalf("kms rotate output does not report the new key and the re-wrapped rows:\n%s", out)
			}
			for _, k := range keys {
				if strings.Contains(out+errOut, k) {
					t.Fatal("kms rotate printed key material")
				}
			}

			// The running server keeps working, and seals new values under the new key.
			if _, err := s1.Issuer.Verify(context.Background(), before); err != nil {
				t.Fatalf("running server rejects its own token after kms rotate: %v", err)
			}
			clientCredentialsToken(t, s1, id, sec)
			if code := s1.Do(t, "POST", "/api/v1/keys/rotate", nil, nil); code/100 != 2 {
				t.Fatalf("signing key rotation after kms rotate: HTTP %d", code)
			}
			afterSigning := clientCredentialsToken(t, s1, id, sec)

			// A restarted server opens the signing key sealed under the new KMS key.
			// (SQLite serves one server at a time: there the first stops first.)
			if d == sqlstore.SQLite {
				s1.Stop()
			}
			s2 := servertest.Start(t, opts)
			for name, tok := range map[string]string{"token from before kms rotate": before, "token after signing rotation": afterSigning} {
				if _, err := s2.Issuer.Verify(context.Background(), tok); err != nil {
					t.Fatalf("restarted server: %s does not verify: %v", name, err)
				}
			}
			fresh := clientCredentialsToken(t, s2, id, sec)
			if d == sqlstore.Postgres { // two replicas at once
				if _, err := s1.Issuer.Verify(context.Background(), fresh); err != nil {
					t.Fatalf("first server rejects a token the restarted one issued: %v", err)
				}
			}

			// Status: every sealed value is under the new key.
			t.Setenv("AGENTGUARD_DATA_DIR", dir) // the env var works like the flag
			t.Setenv("AGENTGUARD_DATABASE_URL", dbURL)
			out, errOut, code = kmsCLI(t, "kms", "status")
			if code != 0 {
				t.Fatalf("kms status: exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "current KMS key: "+newKEK) ||
				!regexp.MustCompile(oldKEK+`\s+false\s+0\n`).MatchString(out) ||
				!regexp.MustCompile(newKEK+`\s+true\s+[1-9][0-9]*\n`).MatchString(out) ||
				strings.Contains(out, "not under the current key") {
				t.Fatalf("kms status after rotation:\n%s", out)
			}
		})
	}
}

// The commands refuse a directory that is not a server's: a fresh keyring there
// would wrap nothing and hide the mistake.
func TestKMSCommandsRefuseAnEmptyDataDir(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"kms", "rotate"}, {"kms", "status"}, {"kms", "rewrap"}} {
		_, errOut, code := kmsCLI(t, append(args, "--data-dir", dir)...)
		if code == 0 || !strings.Contains(errOut, "no KMS keyring at "+filepath.Join(dir, kms.LocalKeyFile)) {
			t.Fatalf("%v on an empty dir: exit %d, stderr %q; want an error naming the missing keyring", args, code, errOut)
		}
		if _, err := os.Stat(filepath.Join(dir, kms.LocalKeyFile)); err == nil {
			t.Fatalf("%v created a keyring in an empty dir", args)
		}
	}
}

// kms status shows values a server sealed under an older key, and kms rewrap
// moves them without adding a key.
func TestKMSStatusAndRewrap(t *testing.T) {
	dbURL, dir := storetest.DatabaseURL(t, sqlstore.SQLite)
	servertest.Start(t, servertest.Options{DatabaseURL: dbURL, DataDir: dir}) // creates the keyring and a sealed signing key
	oldKEK, _ := keyringKeys(t, dir)
	// Rotate the keyring only (as if a rotation stopped before re-wrapping).
	local, err := kms.OpenLocal(filepath.Join(dir, kms.LocalKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	newKEK, err := local.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := kmsCLI(t, "kms", "status", "--data-dir", dir)
	if code != 0 || !regexp.MustCompile(oldKEK+`\s+false\s+1\n`).MatchString(out) || !strings.Contains(out, "1 sealed values are not under the current key") {
		t.Fatalf("kms status with one stale value: exit %d\n%s", code, out)
	}
	out, errOut, code := kmsCLI(t, "kms", "rewrap", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "re-wrapped 1 sealed values under "+newKEK) || strings.Contains(out, "new KMS key") {
		t.Fatalf("kms rewrap: exit %d, stderr %q\n%s", code, errOut, out)
	}
	if cur, keys := keyringKeys(t, dir); cur != newKEK || len(keys) != 2 {
		t.Fatal("kms rewrap changed the keyring")
	}
	out, _, _ = kmsCLI(t, "kms", "status", "--data-dir", dir)
	if !regexp.MustCompile(newKEK + `\s+true\s+1\n`).MatchString(out) {
		t.Fatalf("kms status after rewrap:\n%s", out)
	}
}
