// Package dovecottest starts Debian's Dovecot for tests that compare Strata with it or
// copy mail from it (the differential SORT/THREAD/SEARCH test in bench, the migration
// tests in frontend/migrate): one harness, so every such test configures it alike.
//
// A Server is meant to be started once per test binary (from TestMain, or behind a
// sync.Once) and stopped when the binary ends: a Dovecot start costs about a second.
// It listens on loopback only, keeps its mail in sdbox under its directory, and knows
// the users it was given, all with uid/gid 65534 (Dovecot refuses to run mail as root).
package dovecottest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/imap"
)

// User is a Dovecot account: its login name and password.
type User struct {
	Name, Password string
}

// Options say how to configure the Server.
type Options struct {
	// Instance names the Dovecot instance (several may run on one machine).
	Instance string
	Users    []User
	// Separator is the hierarchy delimiter of the inbox namespace; empty keeps Dovecot's
	// default namespace.
	Separator string
	// SpecialUse makes Drafts, Sent, Trash, Junk and Archive carry their RFC 6154
	// attributes (needs Separator).
	SpecialUse bool
	// TLS serves STARTTLS on the IMAP port and implicit TLS on an IMAPS port, with a
	// self-signed certificate for 127.0.0.1; without it, plain IMAP only.
	TLS bool
}

// Server is a running Dovecot.
type Server struct {
	Dir       string // its configuration, logs and mail
	Conf      string // dovecot.conf
	IMAPAddr  string
	IMAPSAddr string // empty without Options.TLS
	CertFile  string // empty without Options.TLS
}

// Start writes a configuration under dir (which must exist and be readable by uid
// 65534) and starts Dovecot with it, returning once it accepts connections.
func Start(dir string, o Options) (*Server, error) {
	if _, err := exec.LookPath("dovecot"); err != nil {
		return nil, fmt.Errorf("dovecot is not installed (Debian packages dovecot-core, dovecot-imapd): %w", err)
	}
	if _, err := os.Stat("/usr/lib/dovecot/imap"); err != nil {
		// dovecot-core without dovecot-imapd starts, then fails every IMAP login.
		return nil, fmt.Errorf("dovecot's IMAP server is not installed (Debian package dovecot-imapd): %w", err)
	}
	s := &Server{Dir: dir, Conf: filepath.Join(dir, "dovecot.conf")}
	if err := os.Chmod(dir, 0o755); err != nil { // Dovecot's auth and mail users read it
		return nil, err
	}
	home := filepath.Join(dir, "home")
	for _, sub := range []string{"run", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		return nil, err
	}
	var passwd strings.Builder
	for _, u := range o.Users {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s:65534:65534::%s::\n", u.Name, u.Password, filepath.Join(home, u.Name))
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	imapPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.IMAPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(imapPort))
	imapsListener := "  inet_listener imaps {\n    port = 0\n  }\n"
	tlsConf := "ssl = no\n"
	if o.TLS {
		s.CertFile = filepath.Join(dir, "cert.pem")
		keyFile := filepath.Join(dir, "key.pem")
		if _, err := imap.EnsureSelfSigned(s.CertFile, keyFile, []string{"127.0.0.1"}); err != nil {
			return nil, err
		}
		imapsPort, err := freePort()
		if err != nil {
			return nil, err
		}
		s.IMAPSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(imapsPort))
		imapsListener = fmt.Sprintf("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", imapsPort)
		tlsConf = fmt.Sprintf("ssl = yes\nssl_cert = <%s\nssl_key = <%s\n", s.CertFile, keyFile)
	}
	var namespace string
	if o.Separator != "" {
		namespace = "namespace inbox {\n  inbox = yes\n  separator = " + o.Separator + "\n"
		if o.SpecialUse {
			for _, m := range []string{"Drafts", "Sent", "Trash", "Junk", "Archive"} {
				namespace += fmt.Sprintf("  mailbox %s {\n    special_use = \\%s\n  }\n", m, m)
			}
		}
		namespace += "}\n"
	}
	conf := fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/run
instance_name = %[2]s-%[3]d
%[4]sdisable_plaintext_auth = no
auth_mechanisms = plain login
log_path = %[1]s/dovecot.log
first_valid_uid = 1
mail_location = sdbox:~/sdbox
passdb {
  driver = passwd-file
  args = %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = %[1]s/passwd
}
%[5]sservice imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]d
  }
%[6]s}
`, dir, o.Instance, imapPort, tlsConf, namespace, imapsListener)
	if err := os.WriteFile(s.Conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// The master forks and its children keep no pipe of ours open: output goes to a file.
	startLog, err := os.Create(filepath.Join(dir, "start.log"))
	if err != nil {
		return nil, err
	}
	defer startLog.Close()
	start := exec.Command("dovecot", "-c", s.Conf)
	start.Stdout, start.Stderr = startLog, startLog
	if err := start.Run(); err != nil {
		out, _ := os.ReadFile(startLog.Name())
		return nil, fmt.Errorf("start dovecot: %v: %s", err, out)
	}
	last := s.IMAPAddr
	if s.IMAPSAddr != "" {
		last = s.IMAPSAddr
	}
	for range 100 {
		if c, err := net.Dial("tcp", last); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
	s.Stop()
	return nil, fmt.Errorf("dovecot did not start listening on %s:\n%s", last, log)
}

// Stop stops the Server's Dovecot (its files stay in Dir).
func (s *Server) Stop() {
	exec.Command("dovecot", "-c", s.Conf, "stop").Run()
}

// TLSConfig trusts the Server's certificate (Options.TLS).
func (s *Server) TLSConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(s.CertFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", s.CertFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, nil
}

// freePort is a loopback port free a moment ago. Dovecot is never restarted on it, so
// the ephemeral range will do (internal/testnet is for servers that restart).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
