package ldapauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The directory every test of the package uses: one real OpenLDAP slapd (Debian's
// /usr/sbin/slapd), started once by TestMain with a generated slapd.conf in a temporary
// directory, listening on loopback ports below 32768 for ldap:// (StartTLS) and ldaps://
// with a certificate of a CA made here, and seeded with ldapadd.
var slapd struct {
	cmd      *exec.Cmd
	ldapURL  string // ldap://127.0.0.1:port (StartTLS)
	ldapsURL string // ldaps://127.0.0.1:port
	caFile   string // the CA of slapd's certificate
	otherCA  string // a CA slapd's certificate is not from
	pwFile   string // the service account's password
	dir      string
}

const (
	ldapBase       = "dc=example,dc=org"
	ldapServiceDN  = "cn=strata,ou=services,dc=example,dc=org"
	ldapServicePw  = "service-secret"
	alicePassword  = "alice-pw"
	bobPassword    = "bob-pw"
	adminPassword  = "admin-pw"
	twinPassword   = "twin-pw"
	carolPassword  = "carol-pw"
	aliceQuota     = 1048576
	slapdStartWait = 20 * time.Second
)

// strataSchema adds the attributes a mail directory typically has for quota and aliases.
const strataSchema = `attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'mailQuota'
	EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'mailAlias'
	EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'strataMailUser' SUP top AUXILIARY
	MAY ( mailQuota $ mailAlias ) )
`

const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {dir}/strata.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-secret
directory {dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by self read by dn.exact="cn=strata,ou=services,dc=example,dc=org" read by * none
`

func seedLDIF() string {
	user := func(dn, uid, mail, password string, extra ...string) string {
		lines := []string{
			"dn: " + dn, "objectClass: inetOrgPerson", "objectClass: strataMailUser",
			"uid: " + uid, "cn: " + uid, "sn: " + uid, "mail: " + mail, "userPassword: " + password,
		}
		return strings.Join(append(lines, extra...), "\n") + "\n\n"
	}
	return `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=services,dc=example,dc=org
objectClass: organizationalUnit
ou: services

dn: cn=strata,ou=services,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: strata
userPassword: ` + ldapServicePw + "\n\n" +
		user("uid=alice,ou=people,dc=example,dc=org", "alice", "Alice@Example.org", alicePassword,
			fmt.Sprintf("mailQuota: %d", aliceQuota), "mailAlias: alice.smith@example.org", "mailAlias: a@example.org") +
		user("uid=bob,ou=people,dc=example,dc=org", "bob", "bob@example.org", bobPassword, "mailAlias: bobby@example.org") +
		user("uid=admin,ou=people,dc=example,dc=org", "admin", "admin@example.org", adminPassword) +
		user("uid=carol,ou=people,dc=example,dc=org", "carol", "carol@elsewhere.net", carolPassword) +
		user("cn=twin one,ou=people,dc=example,dc=org", "twin", "twin1@example.org", twinPassword) +
		user("cn=twin two,ou=people,dc=example,dc=org", "twin", "twin2@example.org", twinPassword)
}

func TestMain(m *testing.M) {
	os.Exit(runWithSlapd(m))
}

func runWithSlapd(m *testing.M) int {
	if _, err := os.Stat("/usr/sbin/slapd"); err != nil {
		fmt.Fprintln(os.Stderr, "ldapauth tests need OpenLDAP's slapd and ldap-utils (apt-get install slapd ldap-utils)")
		return 1
	}
	dir, err := os.MkdirTemp("", "strata-slapd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := startSlapd(dir); err != nil {
		fmt.Fprintln(os.Stderr, "start slapd:", err)
		return 1
	}
	defer func() {
		slapd.cmd.Process.Signal(syscall.SIGCONT)
		slapd.cmd.Process.Kill()
		slapd.cmd.Wait()
	}()
	return m.Run()
}

func startSlapd(dir string) error {
	slapd.dir = dir
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		return err
	}
	if err := writeCerts(dir); err != nil {
		return err
	}
	slapd.pwFile = filepath.Join(dir, "service.pw")
	files := map[string]string{
		"strata.schema": strataSchema,
		"slapd.conf":    strings.ReplaceAll(slapdConf, "{dir}", dir),
		"seed.ldif":     seedLDIF(),
		"service.pw":    ldapServicePw + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	ldapPort, err := freePort()
	if err != nil {
		return err
	}
	ldapsPort, err := freePort()
	if err != nil {
		return err
	}
	slapd.ldapURL = fmt.Sprintf("ldap://127.0.0.1:%d", ldapPort)
	slapd.ldapsURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort)
	log, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		return err
	}
	// -d 0: stay in the foreground (the test owns the process) without debug output.
	slapd.cmd = exec.Command("/usr/sbin/slapd", "-f", filepath.Join(dir, "slapd.conf"),
		"-h", slapd.ldapURL+"/ "+slapd.ldapsURL+"/", "-d", "0")
	slapd.cmd.Stdout, slapd.cmd.Stderr = log, log
	if err := slapd.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(slapdStartWait)
	for {
		out, err := exec.Command("ldapadd", "-x", "-H", slapd.ldapURL, "-D", "cn=admin,"+ldapBase, "-w", "admin-secret",
			"-f", filepath.Join(dir, "seed.ldif")).CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			slapd.cmd.Process.Kill()
			logText, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			return fmt.Errorf("ldapadd: %v: %s\nslapd log:\n%s", err, out, logText)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort finds a free loopback TCP port below 32768 (the ephemeral range is others').
func freePort() (int, error) {
	for range 200 {
		n, err := rand.Int(rand.Reader, big.NewInt(12000))
		if err != nil {
			return 0, err
		}
		port := 20000 + int(n.Int64())
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port in 20000-32000")
}

// writeCerts makes a test CA, slapd's certificate from it for 127.0.0.1 and localhost,
// and a second CA that signed nothing slapd has.
func writeCerts(dir string) error {
	caKey, caCert, caPEM, err := newCA("Strata test LDAP CA")
	if err != nil {
		return err
	}
	_, _, otherPEM, err := newCA("Some other CA")
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	slapd.caFile = filepath.Join(dir, "ca.pem")
	slapd.otherCA = filepath.Join(dir, "other-ca.pem")
	for name, data := range map[string][]byte{
		"ca.pem":       caPEM,
		"other-ca.pem": otherPEM,
		"server.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func newCA(name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return key, cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// pauseSlapd stops slapd (SIGSTOP) until the test ends: it accepts connections in the
// kernel's backlog and answers nothing, a directory that hangs.
func pauseSlapd(t *testing.T) {
	t.Helper()
	if err := slapd.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slapd.cmd.Process.Signal(syscall.SIGCONT) })
	// The signal is delivered asynchronously: wait until every thread is stopped ("T").
	deadline := time.Now().Add(10 * time.Second)
	for !allStopped(t) {
		if time.Now().After(deadline) {
			t.Fatal("slapd did not stop")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allStopped(t *testing.T) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", slapd.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("slapd threads: %v", err)
	}
	for _, task := range tasks {
		raw, err := os.ReadFile(task)
		if err != nil {
			return false
		}
		stat := string(raw)
		if state := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:]); len(state) == 0 || state[0] != "T" {
			return false
		}
	}
	return true
}
