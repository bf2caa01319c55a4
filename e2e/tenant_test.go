package e2e

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/internal/testwait"
)

// TestTenantDomainQuotaAdmin drives `strata tenant|domain|quota|user` (issue 7)
// against a running server and checks each change over IMAP: domain ownership,
// refusals while accounts exist, quota limits answered with NO [OVERQUOTA], an
// open session ended with BYE when its account is disabled, and account deletion
// whose bodies the blob collector then removes without touching another account's.
func TestTenantDomainQuotaAdmin(t *testing.T) {
	srv := startServe(t, t.TempDir(), "--blob-gc-interval", "-1s")
	admin := srv.admin
	mustAdmin := func(args ...string) string {
		t.Helper()
		return srv.mustAdmin(t, args...)
	}
	refused := func(args ...string) {
		t.Helper()
		if out, err := admin(args...); err == nil {
			t.Fatalf("strata %s succeeded:\n%s", strings.Join(args, " "), out)
		}
	}
	dial := func(user, pass string) (*imapclient.Client, error) {
		c, err := imapclient.DialInsecure(srv.imapAddr, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if err := c.Login(user, pass).Wait(); err != nil {
			c.Close()
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		return c, nil
	}

	// Domains belong to one tenant.
	mustAdmin("tenant", "add", "acme", "--domains", "acme.test")
	mustAdmin("domain", "add", "acme.org", "--tenant", "acme")
	refused("domain", "add", "acme.org", "--tenant", "example")
	refused("domain", "add", "other.test", "--tenant", "nope")
	if out := mustAdmin("tenant", "list"); !regexp.MustCompile(`acme\s+acme.test,acme.org`).MatchString(out) {
		t.Errorf("tenant list:\n%s", out)
	}
	mustAdmin("user", "add", "bob@acme.org", "--password", "pw")
	refused("domain", "del", "acme.org", "--tenant", "acme")
	refused("tenant", "del", "acme")

	// Quotas: one message for bob, and a tenant STORAGE limit.
	mustAdmin("quota", "set", "bob@acme.org", "--messages", "1")
	mustAdmin("quota", "set", "--tenant", "acme", "--storage", "100000")
	bob, err := dial("bob@acme.org", "pw")
	if err != nil {
		t.Fatalf("bob login: %v", err)
	}
	if _, err := appendMessage(bob, "INBOX", testMessage(1), nil); err != nil {
		t.Fatalf("first APPEND: %v", err)
	}
	_, err = appendMessage(bob, "INBOX", testMessage(2), nil)
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeOverQuota {
		t.Fatalf("APPEND over quota: %v, want NO [OVERQUOTA]", err)
	}
	out := mustAdmin("quota", "get", "bob@acme.org")
	if !regexp.MustCompile(`account bob@acme.org\s+MESSAGE\s+1\s+1`).MatchString(out) ||
		!regexp.MustCompile(`tenant acme\s+STORAGE\s+\d+\s+100000`).MatchString(out) {
		t.Errorf("quota get bob@acme.org:\n%s", out)
	}
	// A limit not given stays; none removes one.
	mustAdmin("quota", "set", "bob@acme.org", "--storage", "50000")
	mustAdmin("quota", "set", "--tenant", "acme", "--storage", "none")
	out = mustAdmin("quota", "get", "bob@acme.org")
	if !regexp.MustCompile(`account bob@acme.org\s+MESSAGE\s+1\s+1`).MatchString(out) ||
		!regexp.MustCompile(`account bob@acme.org\s+STORAGE\s+\d+\s+50000`).MatchString(out) ||
		!regexp.MustCompile(`tenant acme\s+STORAGE\s+\d+\s+none`).MatchString(out) {
		t.Errorf("quota get after changes:\n%s", out)
	}
	refused("quota", "set", "nobody@acme.org", "--messages", "1")
	refused("quota", "get", "bob@acme.org", "--tenant", "acme")

	// Disabling bob ends his open session with BYE and refuses new logins.
	if _, err := bob.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	mustAdmin("user", "disable", "bob@acme.org")
	testwait.Until(t, 10*time.Second, func() error {
		if bob.Noop().Wait() == nil {
			return errors.New("bob's session still works after his account was disabled")
		}
		return nil
	})
	if _, err := dial("bob@acme.org", "pw"); err == nil {
		t.Fatal("a disabled account can log in")
	}
	if out := mustAdmin("user", "list", "--tenant", "acme"); !regexp.MustCompile(`bob@acme.org\s+acme\s+true`).MatchString(out) {
		t.Errorf("user list shows bob enabled:\n%s", out)
	}
	mustAdmin("user", "enable", "bob@acme.org")
	if _, err := dial("bob@acme.org", "pw"); err != nil {
		t.Fatalf("bob cannot log in after enable: %v", err)
	}

	// Deleting bob releases his one body; the demo account's stays.
	demo := srv.login(t)
	demoUID, err := appendMessage(demo, "INBOX", testMessage(3), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustAdmin("user", "del", "bob@acme.org")
	if out := mustAdmin("blob", "gc", "--grace", "1ns"); !strings.Contains(out, "deleted 1 ") {
		t.Errorf("blob gc after user del: %q, want one body deleted", out)
	}
	checkFetch(t, demo, demoUID, testMessage(3))

	mustAdmin("domain", "del", "acme.org", "--tenant", "acme")
	mustAdmin("user", "add", "carol@acme.test", "--password", "pw")
	refused("user", "add", "dave@acme.org", "--password", "pw")
	out = mustAdmin("tenant", "del", "acme", "--force")
	if !strings.Contains(out, "deleted carol@acme.test") {
		t.Errorf("tenant del --force:\n%s", out)
	}
	if out := mustAdmin("tenant", "list"); strings.Contains(out, "acme") {
		t.Errorf("tenant list after del:\n%s", out)
	}
	// The freed domain can go to another tenant.
	mustAdmin("domain", "add", "acme.test", "--tenant", "example")
}
