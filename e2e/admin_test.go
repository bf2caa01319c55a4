package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

// TestAdminCommands drives `strata tenant` and `strata user` against a running server
// and checks each change with a real IMAP login.
func TestAdminCommands(t *testing.T) {
	srv := startServe(t, t.TempDir())
	admin := srv.admin
	mustAdmin := func(args ...string) string {
		t.Helper()
		return srv.mustAdmin(t, args...)
	}
	canLogin := func(user, pass string) bool {
		c, err := imapclient.DialInsecure(srv.imapAddr, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		return c.Login(user, pass).Wait() == nil
	}

	if out, err := admin("user", "add", "alice@acme.test", "--password", "pw1"); err == nil {
		t.Fatalf("user add accepted a domain no tenant owns:\n%s", out)
	}
	mustAdmin("tenant", "add", "acme", "--domains", "acme.test")
	if out := mustAdmin("tenant", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "example") {
		t.Errorf("tenant list:\n%s", out)
	}
	mustAdmin("user", "add", "alice@acme.test", "--password", "pw1")
	if out, err := admin("user", "add", "alice@acme.test", "--password", "pw1"); err == nil {
		t.Errorf("user add of an existing account succeeded:\n%s", out)
	}
	if !canLogin("alice@acme.test", "pw1") {
		t.Fatal("alice cannot log in with the password she was created with")
	}
	out := mustAdmin("user", "list", "--tenant", "acme")
	if !strings.Contains(out, "alice@acme.test") || strings.Contains(out, "demo@example.com") {
		t.Errorf("user list --tenant acme:\n%s", out)
	}

	mustAdmin("user", "passwd", "alice@acme.test", "--password", "pw2")
	if canLogin("alice@acme.test", "pw1") {
		t.Error("the old password still works after passwd")
	}
	if !canLogin("alice@acme.test", "pw2") {
		t.Error("the new password does not work after passwd")
	}

	mustAdmin("user", "del", "alice@acme.test")
	if canLogin("alice@acme.test", "pw2") {
		t.Error("a deleted account can still log in")
	}
	if out := mustAdmin("user", "list"); strings.Contains(out, "alice@acme.test") {
		t.Errorf("user list still shows the deleted account:\n%s", out)
	}
	for _, sub := range [][]string{{"--help"}, {"serve", "--help"}, {"user", "add", "--help"}, {"tenant", "--help"}} {
		if out, err := exec.Command(strataBin, sub...).CombinedOutput(); err != nil || !strings.Contains(string(out), "Usage") {
			t.Errorf("strata %s: %v\n%s", strings.Join(sub, " "), err, out)
		}
	}
}
