package managesieve_test

import (
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestAuthenticateThroughAuthCache: ManageSieve shares the process's verified-credentials
// cache with IMAP (a password IMAP verified is not hashed again), and a password change
// refuses the old password at the next AUTHENTICATE.
func TestAuthenticateThroughAuthCache(t *testing.T) {
	srv := startServer(t, nil)
	cache := srv.AuthCache()
	want := func(s auth.CacheStats) {
		t.Helper()
		if got := cache.Stats(); got != s {
			t.Fatalf("auth cache stats = %+v, want %+v", got, s)
		}
	}
	ic, err := imapclient.DialInsecure(srv.IMAPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatalf("IMAP LOGIN: %v", err)
	}
	want(auth.CacheStats{Misses: 1, Entries: 1})

	addr := srv.ManageSieveAddr()
	login(t, addr).ok("LISTSCRIPTS")
	want(auth.CacheStats{Hits: 1, Misses: 1, Entries: 1})
	c, _ := dial(t, addr)
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("", embedded.DemoAccount, "wrong")+`"`, `NO "Authentication failed"`)
	want(auth.CacheStats{Hits: 1, Misses: 2, Entries: 1})

	if _, err := srv.Metadata().SetPassword(t.Context(), &metadatapb.SetPasswordRequest{RequestId: "authcache-sieve-1", Email: embedded.DemoAccount, Password: "changed"}); err != nil {
		t.Fatal(err)
	}
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("", embedded.DemoAccount, embedded.DemoPassword)+`"`, `NO "Authentication failed"`)
	want(auth.CacheStats{Hits: 1, Misses: 3, Invalidations: 1})
	c.ok(`AUTHENTICATE "PLAIN" "` + plain("", embedded.DemoAccount, "changed") + `"`)
	c, _ = dial(t, addr)
	c.ok(`AUTHENTICATE "PLAIN" "` + plain("", embedded.DemoAccount, "changed") + `"`)
	want(auth.CacheStats{Hits: 2, Misses: 4, Invalidations: 1, Entries: 1})
}
