package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestMbsyncScram: a real client doing SCRAM-SHA-256 through Cyrus SASL (mbsync from Debian's
// isync, with the SCRAM plugin of libsasl2-modules) against `strata serve` over IMAPS: it
// pushes a Maildir and the server holds the message; the same client with a wrong password
// is refused with AUTHENTICATIONFAILED. Then mbsync logs in with an app password (AUTHENTICATE
// PLAIN) made by `strata user app-password add`, and is refused once it is revoked.
func TestMbsyncScram(t *testing.T) {
	mbsync := requireTool(t, "mbsync", "isync")
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/sasl2/libscram.so"); err != nil {
		t.Fatalf("Cyrus SASL's SCRAM plugin is required (Debian package libsasl2-modules; .ci/run installs it): %v", err)
	}
	data := t.TempDir()
	srv := startServe(t, data)
	_, port, err := net.SplitHostPort(srv.imapsAddr)
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(data, "tls", "cert.pem")
	dir := t.TempDir()
	maildir := filepath.Join(dir, "maildir")
	writeMaildirMessage(t, maildir, "INBOX", "1700000000.1.scram", "S", false, maildirTestMessage(1, false))

	config := func(name, mechs, password string) string {
		path := filepath.Join(dir, name)
		rc := fmt.Sprintf("IMAPAccount strata\nHost localhost\nPort %s\nUser demo@example.com\nPass %s\nSSLType IMAPS\nCertificateFile %s\nAuthMechs %s\n\n"+
			"IMAPStore remote\nAccount strata\n\nMaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"+
			"Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nSyncState %s/state-%s/\n",
			port, password, cert, mechs, maildir, maildir, dir, name)
		if err := os.WriteFile(path, []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(config string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, mbsync, "-Dn", "-c", config, "--push", "sync").CombinedOutput()
		return string(out), err
	}

	out, err := run(config("scram", "SCRAM-SHA-256", "demo"))
	if err != nil {
		t.Fatalf("mbsync with SCRAM-SHA-256: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`>>> \d+ AUTHENTICATE SCRAM-SHA-256 `).MatchString(out) {
		t.Fatalf("mbsync did not authenticate with SCRAM-SHA-256:\n%s", out)
	}
	c := srv.login(t)
	defer c.Close()
	if sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil || sel.NumMessages != 1 {
		t.Fatalf("INBOX after the SCRAM push: %+v, %v", sel, err)
	}

	out, err = run(config("wrong", "SCRAM-SHA-256", "wrong"))
	if err == nil || !strings.Contains(out, "AUTHENTICATIONFAILED") {
		t.Fatalf("mbsync with a wrong password: %v\n%s", err, out)
	}

	added := srv.mustAdmin(t, "user", "app-password", "add", "demo@example.com", "mbsync", "--scope", "imap")
	pw := regexp.MustCompile(`(?m)^([a-z2-7]{4}-){5}[a-z2-7]{4}$`).FindString(added)
	if pw == "" {
		t.Fatalf("no password in %q", added)
	}
	if out, err := run(config("app", "PLAIN", pw)); err != nil {
		t.Fatalf("mbsync with an app password: %v\n%s", err, out)
	}
	srv.mustAdmin(t, "user", "app-password", "revoke", "demo@example.com", "mbsync")
	if out, err := run(config("revoked", "PLAIN", pw)); err == nil || !strings.Contains(out, "AUTHENTICATIONFAILED") {
		t.Fatalf("mbsync with a revoked app password: %v\n%s", err, out)
	}
}
