package idp_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
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
	// With TLS (startSlapdTLS): the ldaps:// address, and the PEM of the CA that
	// signed the server's certificate (for 127.0.0.1 only).
	LDAPSURL string
	CACert   string
	cmd      *exec.Cmd
}

const baseDN = "dc=example,dc=com"

// startSlapd starts slapd, or skips the test saying why it cannot (install it with
// apt-get install -y slapd ldap-utils; .ci/run does).
func startSlapd(t *testing.T) *slapd { return startSlapdWith(t, false) }

// startSlapdTLS is startSlapd also listening on ldaps://, with StartTLS on the
// ldap:// port, under a certificate from a CA made for the test.
func startSlapdTLS(t *testing.T) *slapd { return startSlapdWith(t, true) }

func startSlapdWith(t *testing.T, withTLS bool) *slapd {
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
	s := &slapd{URL: "ldap://" + freeAddr(t), RootDN: "cn=admin," + baseDN, RootPass: "slapd-root-password-not-real"}
	listen := s.URL + "/"
	tlsConf := ""
	if withTLS {
		s.LDAPSURL = "ldaps://" + freeAddr(t)
		listen += " " + s.LDAPSURL + "/"
		var certPEM, keyPEM string
		s.CACert, certPEM, keyPEM = testCA(t, "slapd test CA", net.IPv4(127, 0, 0, 1))
		for name, pem := range map[string]string{"ca.pem": s.CACert, "server.pem": certPEM, "server.key": keyPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(pem), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		tlsConf = fmt.Sprintf("TLSCACertificateFile %[1]s/ca.pem\nTLSCertificateFile %[1]s/server.pem\nTLSCertificateKeyFile %[1]s/server.key\n", dir)
	}
	conf := tlsConf + fmt.Sprintf(`include %[1]s/core.schema
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
	s.cmd = exec.Command(bin, "-f", confPath, "-h", listen, "-d", "0")
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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testCA makes a CA and a server certificate it signs for ip, as PEM: the CA's
// certificate, the server's certificate and the server's key.
func testCA(t *testing.T, name string, ip net.IP) (caPEM, certPEM, keyPEM string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{ip},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	return enc("CERTIFICATE", caDER), enc("CERTIFICATE", der), enc("PRIVATE KEY", keyDER)
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
