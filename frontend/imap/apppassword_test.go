package imap_test

import (
	"encoding/base64"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestAppPasswordLogin: an app password scoped to IMAP logs in with LOGIN and AUTHENTICATE
// PLAIN; the second login is a hit of the verified-credentials cache, confirmed by the
// metadata service; once revoked, the next login is refused although the cache holds it,
// and the account password still works.
func TestAppPasswordLogin(t *testing.T) {
	srv := startServer(t)
	md := srv.Metadata()
	added, err := md.AddAppPassword(t.Context(), &metadatapb.AddAppPasswordRequest{
		RequestId: "app-1", Email: embedded.DemoAccount, Name: "laptop mbsync", Scopes: []string{"imap"}})
	if err != nil {
		t.Fatal(err)
	}
	pw := added.GetPassword()
	cache := srv.AuthCache()
	before := cache.Stats()

	loginRawWith(t, srv, pw).ok("SELECT INBOX")
	rc := dialRaw(t, srv)
	rc.ok("AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+embedded.DemoAccount+"\x00"+pw)))
	if s := cache.Stats(); s.Hits != before.Hits+1 || s.Misses != before.Misses+1 {
		t.Fatalf("cache stats %+v after two logins (before %+v)", s, before)
	}

	if _, err := md.RevokeAppPassword(t.Context(), &metadatapb.RevokeAppPasswordRequest{
		RequestId: "app-2", Email: embedded.DemoAccount, IdOrName: "laptop mbsync"}); err != nil {
		t.Fatal(err)
	}
	dialRaw(t, srv).expect("LOGIN "+embedded.DemoAccount+" "+pw, "NO [AUTHENTICATIONFAILED]")
	if s := cache.Stats(); s.Invalidations != before.Invalidations+1 {
		t.Fatalf("the revoked app password was not refused through the cache: %+v", s)
	}
	loginRaw(t, srv)
}

// TestAppPasswordScope: an app password scoped to ManageSieve does not log in to IMAP.
func TestAppPasswordScope(t *testing.T) {
	srv := startServer(t)
	added, err := srv.Metadata().AddAppPassword(t.Context(), &metadatapb.AddAppPasswordRequest{
		RequestId: "app-1", Email: embedded.DemoAccount, Name: "sieve editor", Scopes: []string{auth.ServiceManageSieve}})
	if err != nil {
		t.Fatal(err)
	}
	dialRaw(t, srv).expect("LOGIN "+embedded.DemoAccount+" "+added.GetPassword(), "NO [AUTHENTICATIONFAILED]")
}

// loginRawWith is dialRaw followed by LOGIN as the demo account with password.
func loginRawWith(t *testing.T, srv *embedded.Server, password string) *rawConn {
	t.Helper()
	rc := dialRaw(t, srv)
	rc.ok("LOGIN " + embedded.DemoAccount + " " + password)
	return rc
}
