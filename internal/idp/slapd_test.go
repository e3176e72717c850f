package idp_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// slapd is a real OpenLDAP server (Debian's slapd) on a free loopback port with
// its own configuration and database in a temporary directory.
type slapd struct {
	URL      string
	RootDN   string
	RootPass string
	cmd      *exec.Cmd
}

const baseDN = "dc=example,dc=com"

// startSlapd starts slapd, or skips the test saying why it cannot (install it with
// apt-get install -y slapd ldap-utils; .ci/run does).
func startSlapd(t *testing.T) *slapd {
	t.Helper()
	bin, err := exec.LookPath("slapd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/slapd"); serr != nil {
			t.Skip("slapd is not installed (apt-get install -y slapd ldap-utils): the LDAP tests need a real directory server")
		}
		bin = "/usr/sbin/slapd"
	}
	schema := "/etc/ldap/schema"
	if _, err := os.Stat(filepath.Join(schema, "inetorgperson.schema")); err != nil {
		t.Skipf("slapd's schema files are missing from %s", schema)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &slapd{URL: "ldap://" + addr, RootDN: "cn=admin," + baseDN, RootPass: "slapd-root-password-not-real"}
	conf := fmt.Sprintf(`include %[1]s/core.schema
include %[1]s/cosine.schema
include %[1]s/inetorgperson.schema
include %[1]s/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[2]s/slapd.pid
database mdb
maxsize 16777216
suffix "%[3]s"
rootdn "%[4]s"
rootpw %[5]s
directory %[2]s/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
`, schema, dir, baseDN, s.RootDN, s.RootPass)
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.cmd = exec.Command(bin, "-f", confPath, "-h", s.URL+"/", "-d", "0")
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	if err := s.cmd.Start(); err != nil {
		t.Skipf("slapd did not start: %v", err)
	}
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := ldap.DialURL(s.URL)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Skipf("slapd did not answer on %s within 15s: %v\n%s", s.URL, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Stop ends slapd (the test's own process, by its pid).
func (s *slapd) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// load adds the directory tree as the root DN.
func (s *slapd) load(t *testing.T, entries ...*ldap.AddRequest) {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.RootDN, s.RootPass); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := c.Add(e); err != nil {
			t.Fatalf("add %s: %v", e.DN, err)
		}
	}
}

func entry(dn string, attrs map[string][]string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		r.Attribute(k, v)
	}
	return r
}

// corpTree is a small company directory: a service account, three people, two
// groups.
func corpTree() []*ldap.AddRequest {
	person := func(uid, cn, mail, dept, pass string) *ldap.AddRequest {
		return entry("uid="+uid+",ou=people,"+baseDN, map[string][]string{
			"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {cn}, "sn": {cn}, "mail": {mail},
			"departmentNumber": {dept}, "userPassword": {pass}})
	}
	return []*ldap.AddRequest{
		entry(baseDN, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}),
		entry("ou=people,"+baseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}),
		entry("ou=groups,"+baseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}}),
		entry("ou=services,"+baseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"services"}}),
		entry("cn=agentguard,ou=services,"+baseDN, map[string][]string{"objectClass": {"person"}, "cn": {"agentguard"}, "sn": {"service"},
			"userPassword": {"service-account-password"}}),
		person("hana", "Hana Hara", "hana@example.com", "HR", "hana-ldap-password-1"),
		person("sam", "Sam Sato", "sam@example.com", "Sales", "sam-ldap-password-2"),
		person("ivy", "Ivy Ito", "ivy@example.com", "IT", "ivy-ldap-password-3"),
		entry("cn=hr,ou=groups,"+baseDN, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"hr"},
			"member": {"uid=hana,ou=people," + baseDN}}),
		entry("cn=staff,ou=groups,"+baseDN, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"staff"},
			"member": {"uid=hana,ou=people," + baseDN, "uid=sam,ou=people," + baseDN}}),
	}
}

// captureLogs sends the default logger, at debug level, to a buffer until the test
// ends (tests in this package do not run in parallel).
func captureLogs(t *testing.T) *logBuffer {
	t.Helper()
	b := &logBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return b
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
