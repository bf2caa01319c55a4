package managesieve_test

import (
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/sieve"
)

var sieveCapability = `"SIEVE" "` + strings.Join(sieve.Extensions(), " ") + `"`

// TestGreetingAndCapability: RFC 5804 1.7 and 2.4. The greeting is the capability list
// and OK; on loopback (trusted) PLAIN is offered without TLS beside SCRAM-SHA-256; OWNER
// appears once logged in and STARTTLS no longer.
func TestGreetingAndCapability(t *testing.T) {
	srv := startServer(t, nil)
	c, greeting := dial(t, srv.ManageSieveAddr())
	wantCaps := []string{
		`"IMPLEMENTATION" "Strata"`,
		`"SASL" "SCRAM-SHA-256 PLAIN OAUTHBEARER XOAUTH2"`,
		sieveCapability,
		`"STARTTLS"`,
		`"MAXREDIRECTS" "4"`,
		`"UNAUTHENTICATE"`,
		`"VERSION" "1.0"`,
	}
	if got, want := strings.Join(greeting, "\n"), strings.Join(append(wantCaps, `OK "Strata ManageSieve ready"`), "\n"); got != want {
		t.Fatalf("greeting:\ngot  %s\nwant %s", got, want)
	}
	c.expect("CAPABILITY", append(wantCaps, `OK "Capability completed"`)...)
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("", "DEMO@example.com", embedded.DemoPassword)+`"`, `OK "Logged in"`)
	c.expect("capability",
		`"IMPLEMENTATION" "Strata"`,
		`"SASL" "SCRAM-SHA-256 PLAIN OAUTHBEARER XOAUTH2"`,
		sieveCapability,
		`"MAXREDIRECTS" "4"`,
		`"OWNER" "demo@example.com"`,
		`"UNAUTHENTICATE"`,
		`"VERSION" "1.0"`,
		`OK "Capability completed"`)
	if strings.Contains(sieveCapability, "enotify") {
		t.Fatal("the interpreter has enotify: the NOTIFY capability must be announced and tested")
	}
}

// TestAuthenticatePlain: RFC 5804 2.1 with SASL PLAIN, as an initial response and through
// the server's empty challenge, cancelled, refused, and as another user.
func TestAuthenticatePlain(t *testing.T) {
	srv := startServer(t, nil)
	addr := srv.ManageSieveAddr()
	good := plain("", embedded.DemoAccount, embedded.DemoPassword)

	c, _ := dial(t, addr)
	c.expect("LISTSCRIPTS", `NO "LISTSCRIPTS needs authentication first"`)
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("", embedded.DemoAccount, "wrong")+`"`, `NO "Authentication failed"`)
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("", "nobody@example.com", "x")+`"`, `NO "Authentication failed"`)
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("other@example.com", embedded.DemoAccount, embedded.DemoPassword)+`"`, `NO "Acting as another user is not allowed"`)
	c.expect(`AUTHENTICATE "PLAIN" "not base64!"`, `NO "Invalid base64 in the authentication response"`)
	c.expect(`AUTHENTICATE "PLAIN" "YWJj"`, `NO "Malformed PLAIN response"`) // "abc"
	c.expect(`AUTHENTICATE "DIGEST-MD5"`, `NO "Unsupported authentication mechanism"`)
	c.expect(`AUTHENTICATE`, `NO "AUTHENTICATE takes a string, a string (optional)"`)

	// The challenge form: an empty string, then the client's string, quoted or literal.
	c.challenge(`AUTHENTICATE "PLAIN"`, `""`)
	c.expect(`"*"`, `NO "Authentication cancelled"`)
	c.challenge(`AUTHENTICATE "plain"`, `""`)
	c.expect(literal(good), `OK "Logged in"`)
	c.expect(`AUTHENTICATE "PLAIN" "`+good+`"`, `NO "AUTHENTICATE is not allowed after authentication"`)
	c.ok("LISTSCRIPTS")

	// RFC 5804 2.14.1: UNAUTHENTICATE forgets the account.
	c.expect("UNAUTHENTICATE", `OK "Not authenticated"`)
	c.expect("LISTSCRIPTS", `NO "LISTSCRIPTS needs authentication first"`)
	c.challenge(`AUTHENTICATE "PLAIN"`, `""`)
	c.expect(`"`+good+`"`, `OK "Logged in"`)
	c.expect("LOGOUT", `OK "Logout completed"`)
	c.closed()
}

// TestPlaintextNeedsTLS: without trusted loopback, PLAIN needs TLS (ENCRYPT-NEEDED, and SASL
// only SCRAM-SHA-256, which sends no password, RFC 5804 1.7); after STARTTLS the server
// re-issues its capabilities (RFC 5804 2.2) with PLAIN and SCRAM-SHA-256-PLUS, and the
// password is accepted. The certificate is IMAP's.
func TestPlaintextNeedsTLS(t *testing.T) {
	srv := startServer(t, func(c *embedded.Config) { c.RequireTLSOnLoopback = true })
	c, greeting := dial(t, srv.ManageSieveAddr())
	if greeting[1] != `"SASL" "SCRAM-SHA-256"` || greeting[3] != `"STARTTLS"` {
		t.Fatalf("greeting without TLS: %q", greeting)
	}
	good := `AUTHENTICATE "PLAIN" "` + plain("", embedded.DemoAccount, embedded.DemoPassword) + `"`
	c.expect(good, `NO (ENCRYPT-NEEDED) "PLAIN is allowed only over TLS"`)
	caps := c.startTLS(tlsClientConfig(t, srv))
	want := []string{
		`"IMPLEMENTATION" "Strata"`,
		`"SASL" "SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN OAUTHBEARER XOAUTH2"`,
		sieveCapability,
		`"MAXREDIRECTS" "4"`,
		`"UNAUTHENTICATE"`,
		`"VERSION" "1.0"`,
		`OK "TLS negotiation successful"`,
	}
	if strings.Join(caps, "\n") != strings.Join(want, "\n") {
		t.Fatalf("capabilities after STARTTLS:\ngot  %q\nwant %q", caps, want)
	}
	c.expect("STARTTLS", `NO "TLS is already active"`)
	c.expect(good, `OK "Logged in"`)
	c.ok("LISTSCRIPTS")
}

// TestStartTLSDropsPipelinedPlaintext: what a client (or an attacker) pipelines behind
// STARTTLS in plaintext is not run after the handshake.
func TestStartTLSDropsPipelinedPlaintext(t *testing.T) {
	srv := startServer(t, nil)
	c, _ := dial(t, srv.ManageSieveAddr())
	c.send("STARTTLS\r\nLOGOUT\r\n")
	if l := c.line(); l != `OK "Begin TLS negotiation now"` {
		t.Fatalf("STARTTLS: %q", l)
	}
	c.startTLSAfterOK(tlsClientConfig(t, srv))
	c.expect("NOOP", `OK "Done"`) // the pipelined LOGOUT did not run
}

// TestNoop: RFC 5804 2.13. The optional string comes back in a TAG response code.
func TestNoop(t *testing.T) {
	srv := startServer(t, nil)
	c, _ := dial(t, srv.ManageSieveAddr())
	c.expect("NOOP", `OK "Done"`)
	c.expect(`NOOP "STARTTLS-SYNC-42"`, `OK (TAG "STARTTLS-SYNC-42") "Done"`)
	c.expect("NOOP {3+}\r\na\"b", `OK (TAG "a\"b") "Done"`)
	c.expect("NOOP {4}\r\nx\r\ny", "OK (TAG {4}\r\nx\r\ny) \"Done\"")
	c.expect(`NOOP 12`, `NO "NOOP takes a string (optional)"`)
}
