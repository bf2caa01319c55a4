package imap_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/strata-mail/strata/embedded"
)

func TestCapabilityAndLogin(t *testing.T) {
	srv := startServer(t)
	rc := dialRaw(t, srv)
	caps := rc.ok("CAPABILITY")
	for _, want := range []string{"IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "AUTH=PLAIN", "IDLE", "UIDPLUS", "MOVE"} {
		if !contains(caps, " "+want) {
			t.Errorf("CAPABILITY %q lacks %s", caps, want)
		}
	}
	rc.expect("SELECT INBOX", "BAD")
	rc.expect("LOGIN demo@example.com wrong", "NO [AUTHENTICATIONFAILED]")
	rc.expect("LOGIN nobody@example.com demo", "NO [AUTHENTICATIONFAILED]")
	_, tagged := rc.cmd("LOGIN DEMO@example.com demo")
	if !strings.HasPrefix(tagged, "OK [CAPABILITY ") {
		t.Fatalf("LOGIN: %q", tagged)
	}
	rc.expect("LOGIN demo@example.com demo", "BAD") // not in the authenticated state
	untagged := rc.ok("LOGOUT")
	if !contains(untagged, "BYE") {
		t.Errorf("LOGOUT without BYE: %q", untagged)
	}
}

// TestPlaintextAuthNeedsTLS checks RFC 9051 6.2.3 and 11.1: without TLS, and where the
// configuration does not trust the connection, passwords are refused before they are checked.
func TestPlaintextAuthNeedsTLS(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.AllowPlaintextAuth = false
		cfg.RequireTLSOnLoopback = true
	})
	rc := dialRaw(t, srv)
	caps := rc.ok("CAPABILITY")
	if !contains(caps, " LOGINDISABLED") || contains(caps, "AUTH=PLAIN") {
		t.Errorf("CAPABILITY without TLS: %q", caps)
	}
	rc.expect("LOGIN demo@example.com demo", "NO [PRIVACYREQUIRED]")
	rc.expect("AUTHENTICATE PLAIN AGRlbW9AZXhhbXBsZS5jb20AZGVtbw==", "NO [PRIVACYREQUIRED]")
	rc.expect("SELECT INBOX", "BAD")

	// The embedded default trusts loopback: the same commands succeed there.
	trusted := dialRaw(t, startServerWith(t, func(cfg *embedded.Config) { cfg.AllowPlaintextAuth = false }))
	if caps := trusted.ok("CAPABILITY"); contains(caps, "LOGINDISABLED") {
		t.Errorf("CAPABILITY on trusted loopback: %q", caps)
	}
	trusted.ok("LOGIN demo@example.com demo")
}

func TestAuthenticatePlain(t *testing.T) {
	srv := startServer(t)

	// SASL-IR (RFC 4959): the credentials on the command line. base64("\x00demo@example.com\x00demo")
	rc := dialRaw(t, srv)
	rc.ok("AUTHENTICATE PLAIN AGRlbW9AZXhhbXBsZS5jb20AZGVtbw==")
	rc.ok("SELECT INBOX")

	// Without an initial response: an empty continuation, then the response line.
	rc = dialRaw(t, srv)
	rc.writeExpect("a1 AUTHENTICATE PLAIN\r\n", "+")
	rc.write("AGRlbW9AZXhhbXBsZS5jb20Ad3Jvbmc=\r\n") // wrong password
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %q", tagged)
	}
	rc.write("a2 AUTHENTICATE PLAIN\r\n")
	rc.readLine()
	rc.write("*\r\n") // cancel (RFC 9051 6.2.2)
	if _, tagged := rc.until("a2"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("cancel: %q", tagged)
	}
	rc.expect("AUTHENTICATE CRAM-MD5", "NO")

	// imapclient's own AUTHENTICATE PLAIN.
	c := dial(t, srv, nil)
	if err := c.Authenticate(sasl.NewPlainClient("", embedded.DemoAccount, embedded.DemoPassword)); err != nil {
		t.Fatalf("imapclient AUTHENTICATE: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestEnableIMAP4rev2(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	if got := rc.ok("ENABLE IMAP4rev2 XUNKNOWN"); len(got) != 1 || got[0] != "* ENABLED IMAP4rev2" {
		t.Errorf("ENABLE = %q", got)
	}
	got := rc.ok("SELECT INBOX")
	if contains(got, "RECENT") {
		t.Errorf("IMAP4rev2 SELECT sent RECENT: %q", got)
	}
	// IMAP4rev2 answers SEARCH with ESEARCH (RFC 9051 6.4.4).
	if got := rc.ok("SEARCH ALL"); len(got) != 1 || got[0] != `* ESEARCH (TAG "x4")` {
		t.Errorf("SEARCH = %q", got)
	}
	if got := rc.ok("NAMESPACE"); len(got) != 1 || got[0] != `* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared/" "/"))` {
		t.Errorf("NAMESPACE = %q", got)
	}
}
