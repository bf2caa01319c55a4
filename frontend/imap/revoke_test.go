package imap_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/internal/oauthtest"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// noopOrBye sends NOOP and returns nil once the server answers it with BYE (RFC 9051
// 7.1.5) and closes the connection; an error while the NOOP still succeeds.
func (rc *rawConn) noopOrBye(want string) error {
	rc.t.Helper()
	rc.n++
	tag := "r" + string(rune('a'+rc.n%26))
	rc.write(tag + " NOOP\r\n")
	for {
		l := rc.readLine()
		if text, ok := strings.CutPrefix(l, "* BYE "); ok {
			if !strings.Contains(text, want) {
				rc.t.Fatalf("BYE %q, want %q", text, want)
			}
			var buf [1]byte
			if _, err := rc.r.Read(buf[:]); err == nil {
				rc.t.Fatalf("the connection stayed open after BYE")
			}
			return nil
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				rc.t.Fatalf("NOOP: %q", rest)
			}
			return errors.New("the session goes on")
		}
	}
}

// TestRevokedCredentialEndsSessions: a session logged in with an app password ends at its
// next command once the app password is revoked, and one logged in with the password
// (LOGIN or SCRAM) once the password changes (RFC 9051 7.1.5 BYE); the sessions of the
// credentials that still log in go on: the password's after an app password's revocation,
// an OAuth token's after the password change.
func TestRevokedCredentialEndsSessions(t *testing.T) {
	iss := oauthtest.Start(t)
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.OAuthRootCAs = iss.CAs })
	trustIssuer(t, srv, iss)
	app := addAppPassword(t, srv, "laptop")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	md := srv.Metadata()
	loggedIn := func(what, tagged string) {
		t.Helper()
		if !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("%s: %q", what, tagged)
		}
	}
	byApp, byPassword, byScram, byToken := dialRaw(t, srv), dialRaw(t, srv), dialRaw(t, srv), dialRaw(t, srv)
	loggedIn("LOGIN with the app password", byApp.login(embedded.DemoAccount, app))
	loggedIn("LOGIN with the password", byPassword.login(embedded.DemoAccount, embedded.DemoPassword))
	tagged, _ := byScram.scramAuth("SCRAM-SHA-256", demoClient(), true)
	loggedIn("SCRAM", tagged)
	token := iss.Sign(t, oauthtest.ES256, iss.Claims(embedded.DemoAccount, oauthAudience))
	_, tagged = byToken.cmd("AUTHENTICATE OAUTHBEARER " + oauthBearer("", token))
	loggedIn("OAUTHBEARER", tagged)
	for _, rc := range []*rawConn{byApp, byPassword, byScram, byToken} {
		rc.ok("SELECT INBOX")
	}

	if _, err := md.RevokeAppPassword(ctx, &metadatapb.RevokeAppPasswordRequest{RequestId: embedded.NewRequestID(), Email: embedded.DemoAccount, IdOrName: "laptop"}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 20*time.Second, func() error { return byApp.noopOrBye("revoked") })
	// The password's session outlived a re-check after the revocation.
	time.Sleep(auth.RecheckInterval)
	byPassword.ok("NOOP")

	if _, err := md.SetPassword(ctx, &metadatapb.SetPasswordRequest{RequestId: embedded.NewRequestID(), Email: embedded.DemoAccount, Password: "a new password"}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 20*time.Second, func() error { return byPassword.noopOrBye("changed") })
	testwait.Until(t, 20*time.Second, func() error { return byScram.noopOrBye("changed") })
	time.Sleep(auth.RecheckInterval) // a re-check after the change, for the token's session
	byToken.ok("NOOP")
	if got := dialRaw(t, srv).login(embedded.DemoAccount, "a new password"); !strings.HasPrefix(got, "OK") {
		t.Fatalf("LOGIN with the new password: %q", got)
	}
}
