package imap_test

import (
	"encoding/base64"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestLoginThroughAuthCache: LOGIN and AUTHENTICATE PLAIN share the frontend's
// verified-credentials cache (one password hash for the account and password), a wrong
// password is refused and hashed every time, and after a password change the old password
// is refused at the next login while the new one works.
func TestLoginThroughAuthCache(t *testing.T) {
	srv := startServer(t)
	cache := srv.AuthCache()
	if cache == nil {
		t.Fatal("the embedded server runs without an auth cache by default")
	}
	plain := func(password string) string {
		return "AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+embedded.DemoAccount+"\x00"+password))
	}
	want := func(s auth.CacheStats) {
		t.Helper()
		if got := cache.Stats(); got != s {
			t.Fatalf("auth cache stats = %+v, want %+v", got, s)
		}
	}

	dialRaw(t, srv).ok("LOGIN " + embedded.DemoAccount + " " + embedded.DemoPassword)
	want(auth.CacheStats{Misses: 1, Entries: 1})
	dialRaw(t, srv).ok("LOGIN " + embedded.DemoAccount + " " + embedded.DemoPassword)
	rc := dialRaw(t, srv)
	rc.ok(plain(embedded.DemoPassword))
	rc.ok("SELECT INBOX")
	want(auth.CacheStats{Hits: 2, Misses: 1, Entries: 1})

	wrong := dialRaw(t, srv)
	wrong.expect("LOGIN "+embedded.DemoAccount+" wrong", "NO [AUTHENTICATIONFAILED]")
	wrong.expect(plain("wrong"), "NO [AUTHENTICATIONFAILED]")
	want(auth.CacheStats{Hits: 2, Misses: 3, Entries: 1})

	if _, err := srv.Metadata().SetPassword(t.Context(), &metadatapb.SetPasswordRequest{RequestId: "authcache-1", Email: embedded.DemoAccount, Password: "changed"}); err != nil {
		t.Fatal(err)
	}
	dialRaw(t, srv).expect("LOGIN "+embedded.DemoAccount+" "+embedded.DemoPassword, "NO [AUTHENTICATIONFAILED]")
	dialRaw(t, srv).expect(plain(embedded.DemoPassword), "NO [AUTHENTICATIONFAILED]")
	want(auth.CacheStats{Hits: 2, Misses: 5, Invalidations: 1, Entries: 0})
	dialRaw(t, srv).ok(plain("changed"))
	dialRaw(t, srv).ok("LOGIN " + embedded.DemoAccount + " changed")
	want(auth.CacheStats{Hits: 3, Misses: 6, Invalidations: 1, Entries: 1})
	// The session that logged in before the change ends at a command once its credential
	// is re-checked (at most every 2 s): TestRevokedCredentialEndsSessions.
}

// TestLoginWithoutAuthCache: a negative TTL turns the cache off; logins still work.
func TestLoginWithoutAuthCache(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.AuthCacheTTL = -1 })
	if srv.AuthCache() != nil {
		t.Fatal("AuthCacheTTL < 0 left a cache on")
	}
	dialRaw(t, srv).ok("LOGIN " + embedded.DemoAccount + " " + embedded.DemoPassword)
	dialRaw(t, srv).ok("LOGIN " + embedded.DemoAccount + " " + embedded.DemoPassword)
}
