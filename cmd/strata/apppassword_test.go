package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
)

// imapLogin logs in to srv's IMAP listener over a real socket.
func imapLogin(t *testing.T, srv *embedded.Server, user, password string) error {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.IMAPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Login(user, password).Wait()
}

// TestPasswordSources: `strata user add` and `passwd` take the password from
// --password-file or from standard input (not a terminal here), never needing it on the
// command line; an empty one is refused.
func TestPasswordSources(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustStrata(t, srv, "user", "add", "alice@acme.test", "--password-file", file)
	if err := imapLogin(t, srv, "alice@acme.test", "from a file"); err != nil {
		t.Fatalf("login with the password of --password-file: %v", err)
	}
	if out, err := strataIn(t, srv, "from stdin\r\nignored\n", "user", "passwd", "alice@acme.test"); err != nil {
		t.Fatalf("passwd from stdin: %v\n%s", err, out)
	}
	if err := imapLogin(t, srv, "alice@acme.test", "from stdin"); err != nil {
		t.Fatalf("login with the password from stdin: %v", err)
	}
	if out, err := strataIn(t, srv, "", "user", "add", "bob@acme.test"); err == nil || !strings.Contains(err.Error(), "empty password") {
		t.Fatalf("user add with nothing on stdin: %v\n%s", err, out)
	}
	if out, err := strata(t, srv, "user", "add", "bob@acme.test", "--password-file", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatalf("user add with a missing --password-file succeeded: %s", out)
	}
}

// TestBenchPasswordSources: `strata bench users` (like every bench command) takes the
// users' password from --password-file or, with --password -, from standard input (a
// prompt on a terminal); --password and --password-file together are refused.
func TestBenchPasswordSources(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("bench from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustStrata(t, srv, "bench", "users", "--users", "2", "--user-pattern", "f%d@acme.test", "--password-file", file)
	if out, err := strataIn(t, srv, "bench from stdin\n", "bench", "users", "--users", "1", "--user-pattern", "s%d@acme.test", "--password", "-"); err != nil {
		t.Fatalf("bench users --password -: %v\n%s", err, out)
	}
	for user, password := range map[string]string{"f1@acme.test": "bench from a file", "f2@acme.test": "bench from a file", "s1@acme.test": "bench from stdin"} {
		if err := imapLogin(t, srv, user, password); err != nil {
			t.Errorf("login %s: %v", user, err)
		}
	}
	if out, err := strata(t, srv, "bench", "users", "--user-pattern", "x%d@acme.test", "--password", "p", "--password-file", file); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("--password with --password-file: %v\n%s", err, out)
	}
}

// TestAppPasswordCommands: `strata user app-password add|list|revoke`; the password shown
// once logs in to IMAP, the list shows its last use, revoke ends it.
func TestAppPasswordCommands(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	if out, err := strataIn(t, srv, "main password\n", "user", "add", "alice@acme.test"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	out := mustStrata(t, srv, "user", "app-password", "add", "alice@acme.test", "phone mail", "--scope", "imap,managesieve")
	pw := regexp.MustCompile(`(?m)^([a-z2-7]{4}-){5}[a-z2-7]{4}$`).FindString(out)
	if pw == "" || !strings.Contains(out, `app password "phone mail"`) || !strings.Contains(out, "scopes imap,managesieve") {
		t.Fatalf("app-password add printed %q", out)
	}
	if out := mustStrata(t, srv, "user", "app-password", "list", "alice@acme.test"); !strings.Contains(out, "phone mail") || !strings.Contains(out, "never") {
		t.Fatalf("list before use: %q", out)
	}
	if err := imapLogin(t, srv, "alice@acme.test", pw); err != nil {
		t.Fatalf("login with the app password: %v", err)
	}
	if out := mustStrata(t, srv, "user", "app-password", "list", "alice@acme.test"); strings.Contains(out, "never") {
		t.Fatalf("list after use shows no last use: %q", out)
	}
	if _, err := strata(t, srv, "user", "app-password", "add", "alice@acme.test", "tablet", "--scope", "pop3"); err == nil {
		t.Fatal("an unknown scope was accepted")
	}
	mustStrata(t, srv, "user", "app-password", "revoke", "alice@acme.test", "phone mail")
	if err := imapLogin(t, srv, "alice@acme.test", pw); err == nil {
		t.Fatal("the revoked app password still logs in")
	}
	if err := imapLogin(t, srv, "alice@acme.test", "main password"); err != nil {
		t.Fatalf("the account password after the revocation: %v", err)
	}
}
