package migrate_test

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

// dovecot is the Debian Dovecot every test of this binary copies from (one per binary,
// TestMain): users test1 to test9 with password "secret", sdbox mail, "." as the hierarchy
// delimiter, the RFC 6154 special-use folders, IMAP with STARTTLS and IMAPS.
type dovecot struct {
	dir                 string
	imapAddr, imapsAddr string
	certFile            string
	conf                string
}

const dovecotPassword = "secret"

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startDovecot(dir string) (*dovecot, error) {
	if _, err := exec.LookPath("dovecot"); err != nil {
		return nil, fmt.Errorf("dovecot is not installed (Debian: apt-get install dovecot-imapd): %w", err)
	}
	d := &dovecot{dir: dir, certFile: filepath.Join(dir, "cert.pem"), conf: filepath.Join(dir, "dovecot.conf")}
	keyFile := filepath.Join(dir, "key.pem")
	if _, err := imap.EnsureSelfSigned(d.certFile, keyFile, []string{"127.0.0.1"}); err != nil {
		return nil, err
	}
	imapPort, err := freePort()
	if err != nil {
		return nil, err
	}
	imapsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	d.imapAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(imapPort))
	d.imapsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(imapsPort))
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
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&passwd, "test%d:{PLAIN}%s:65534:65534::%s/test%d::\n", i, dovecotPassword, home, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/run
instance_name = strata-migrate-test-%[2]d
ssl = yes
ssl_cert = <%[3]s
ssl_key = <%[4]s
disable_plaintext_auth = no
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
namespace inbox {
  inbox = yes
  separator = .
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Sent {
    special_use = \Sent
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Archive {
    special_use = \Archive
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[5]d
    ssl = yes
  }
}
`, dir, imapPort, d.certFile, keyFile, imapsPort)
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// The master forks and keeps no pipe of ours open: output goes to a file.
	startLog, err := os.Create(filepath.Join(dir, "start.log"))
	if err != nil {
		return nil, err
	}
	defer startLog.Close()
	start := exec.Command("dovecot", "-c", d.conf)
	start.Stdout, start.Stderr = startLog, startLog
	if err := start.Run(); err != nil {
		out, _ := os.ReadFile(startLog.Name())
		return nil, fmt.Errorf("start dovecot: %v: %s", err, out)
	}
	for range 100 {
		if conn, err := net.Dial("tcp", d.imapsAddr); err == nil {
			conn.Close()
			return d, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
	d.stop()
	return nil, fmt.Errorf("dovecot did not start listening on %s:\n%s", d.imapsAddr, log)
}

func (d *dovecot) stop() {
	exec.Command("doveadm", "-c", d.conf, "stop").Run()
}

// tlsConfig trusts the test Dovecot's certificate.
func (d *dovecot) tlsConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(d.certFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", d.certFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, nil
}
