package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/testwait"
)

// TestPasswordChangeLocksOutEveryFrontend runs three metadata nodes and two `strata
// frontend` processes, each with its verified-credentials cache (the default) holding u's
// password after two logins. A password change through the admin CLI refuses the old
// password at once, on both frontends, with no wait; the new one logs in. Disabling and
// deleting the account refuse the cached new password the same way.
func TestPasswordChangeLocksOutEveryFrontend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd, _ := startVoters(t, ctx)
	addClusterAccount(t, etcd)
	blobDir := t.TempDir()
	type frontend struct {
		*frontendProcess
		metrics string
	}
	var frontends []frontend
	for _, name := range []string{"A", "B"} {
		metrics := freeAddr(t)
		frontends = append(frontends, frontend{startFrontend(t, name, etcd, "--blob-dir", blobDir, "--metrics-listen", metrics), metrics})
	}
	const user = "u@acme.test"
	for _, fe := range frontends {
		// The frontends learn the metadata nodes from etcd just after they start.
		testwait.Until(t, 30*time.Second, func() error { return loginOn(fe.imapAddr, user, "pw") })
		if err := loginOn(fe.imapAddr, user, "pw"); err != nil {
			t.Fatalf("frontend %s: %v", fe.name, err)
		}
		if hits := authCacheMetric(t, fe.metrics, "hits"); hits < 1 {
			t.Fatalf("frontend %s: %v auth cache hits after two logins, want the second one", fe.name, hits)
		}
	}

	// refusedEverywhere logs in with password on each frontend once, right away: each must
	// refuse it as invalid credentials.
	refusedEverywhere := func(password, after string) {
		t.Helper()
		for _, fe := range frontends {
			if err := loginOn(fe.imapAddr, user, password); !authenticationFailed(err) {
				t.Fatalf("frontend %s, right after %s: LOGIN with %q = %v, want NO [AUTHENTICATIONFAILED]", fe.name, after, password, err)
			}
		}
	}
	loginEverywhere := func(password string) {
		t.Helper()
		for _, fe := range frontends {
			for range 2 { // the second from the cache
				if err := loginOn(fe.imapAddr, user, password); err != nil {
					t.Fatalf("frontend %s: LOGIN with %q: %v", fe.name, password, err)
				}
			}
		}
	}

	clusterAdmin(t, etcd, "user", "passwd", user, "--password", "pw2")
	refusedEverywhere("pw", "the password change")
	loginEverywhere("pw2")
	for _, fe := range frontends {
		if n := authCacheMetric(t, fe.metrics, "invalidations"); n < 1 {
			t.Errorf("frontend %s: %v auth cache invalidations after a password change, want 1 or more", fe.name, n)
		}
	}

	clusterAdmin(t, etcd, "user", "disable", user)
	refusedEverywhere("pw2", "disable")
	clusterAdmin(t, etcd, "user", "enable", user)
	loginEverywhere("pw2")

	clusterAdmin(t, etcd, "user", "del", user)
	refusedEverywhere("pw2", "delete")
}

// loginOn connects to a frontend, logs in and out.
func loginOn(addr, user, password string) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return err
	}
	return c.Logout().Wait()
}

func authenticationFailed(err error) bool {
	var imapErr *imap.Error
	return errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeNo && imapErr.Code == imap.ResponseCodeAuthenticationFailed
}

// authCacheMetric reads strata_auth_cache_<name>_total from a frontend's /metrics.
func authCacheMetric(t *testing.T, metricsAddr, name string) float64 {
	t.Helper()
	value, _ := embeddedtest.Scrape(t, metricsAddr)
	return value(fmt.Sprintf("strata_auth_cache_%s_total", name))
}
