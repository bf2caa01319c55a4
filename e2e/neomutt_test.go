package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/oauthtest"
)

// TestNeomuttOAuth: a real mail client logs in with an OAuth bearer token: NeoMutt (Debian's
// neomutt, its own OAUTHBEARER and XOAUTH2 code, the token from imap_oauth_refresh_command)
// against `strata serve`, whose demo tenant trusts a token issuer the test serves (discovery
// document and JWKS over HTTPS, internal/oauthtest). NeoMutt runs in batch on a
// pseudo-terminal (script(1)): it logs in, opens INBOX and quits; its screen shows the
// message the test put there, and its debug log the mechanism it used. A token for
// another audience is refused: NeoMutt cannot open the mailbox, and the server logs the
// fail2ban line.
func TestNeomuttOAuth(t *testing.T) {
	neomutt := requireTool(t, "neomutt", "neomutt")
	script := requireTool(t, "script", "bsdutils")
	iss := oauthtest.Start(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "issuer-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	srv := startServe(t, data, "--oauth-ca-file", caFile)
	srv.mustAdmin(t, "tenant", "oauth", "set", "example", "--issuer", iss.URL, "--audience", "neomutt")
	c := srv.login(t)
	const subject = "Hello from the OAuth test"
	msg := []byte("From: a@example.com\r\nTo: demo@example.com\r\nSubject: " + subject + "\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <oauth-neomutt@example.com>\r\n\r\nbody\r\n")
	if _, err := appendMessage(c, "INBOX", msg, nil); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	_, port, err := net.SplitHostPort(srv.imapsAddr)
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(data, "tls", "cert.pem")

	run := func(name, mechanism, audience string) (screen, debug string, err error) {
		token := filepath.Join(dir, name+".token")
		if err := os.WriteFile(token, []byte(iss.Sign(t, oauthtest.ES256, iss.Claims("demo@example.com", audience))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// IMAPS: NeoMutt sends a bearer token only over TLS; it trusts the server's
		// certificate (made by `strata serve` for localhost) as a CA of its own.
		rc := filepath.Join(dir, name+".muttrc")
		config := fmt.Sprintf(`set imap_user = "demo@example.com"
set imap_authenticators = "%s"
set imap_oauth_refresh_command = "cat %s"
set ssl_ca_certificates_file = "%s"
set certificate_file = "%s"
set ssl_force_tls = yes
set folder = "imaps://localhost:%s/"
set spoolfile = "+INBOX"
set header_cache = ""
set message_cachedir = ""
set mbox_type = Maildir
set record = ""
set postponed = ""
set timeout = 5
set imap_keepalive = 30
set index_format = "%%4C %%s"
push "<quit>"
`, mechanism, token, cert, filepath.Join(dir, "certificates"), port)
		if err := os.WriteFile(rc, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		debugLog := filepath.Join(dir, name+".log")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		command := fmt.Sprintf("stty cols 120 rows 30; exec %s -n -F %s -d 2 -l %s", neomutt, rc, debugLog)
		cmd := exec.CommandContext(ctx, script, "-qec", command, "/dev/null")
		cmd.Env = append(os.Environ(), "TERM=xterm", "HOME="+dir, "LANG=C.UTF-8")
		out, err := cmd.CombinedOutput()
		logText, _ := os.ReadFile(debugLog + "0") // neomutt numbers its debug logs
		if len(logText) == 0 {
			logText, _ = os.ReadFile(debugLog)
		}
		return string(out), string(logText), err
	}

	for _, mechanism := range []string{"oauthbearer", "xoauth2"} {
		screen, debug, err := run(mechanism, mechanism, "neomutt")
		if err != nil || !strings.Contains(screen, subject) {
			t.Fatalf("neomutt with %s: %v\nscreen:\n%s\ndebug log:\n%s", mechanism, err, screen, tail(debug, 60))
		}
		if !strings.Contains(debug, "Authenticating ("+strings.ToUpper(mechanism)+")") {
			t.Errorf("neomutt's log shows no %s login:\n%s", strings.ToUpper(mechanism), tail(debug, 60))
		}
	}

	screen, debug, _ := run("wrong", "oauthbearer", "another-audience")
	if strings.Contains(screen, subject) {
		t.Fatalf("neomutt logged in with a token for another audience:\n%s", screen)
	}
	if !strings.Contains(debug, "Unable to open mailbox") {
		t.Errorf("neomutt's log does not show the refused login:\n%s", tail(debug, 30))
	}
	if !strings.Contains(srv.logs(), `reason="invalid token"`) {
		t.Errorf("no fail2ban line for the refused token in the server's log:\n%s", tail(srv.logs(), 30))
	}
}
