package imap_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/oauthtest"
	"github.com/strata-mail/strata/internal/scram"
)

// authenticateOnce sends an AUTHENTICATE command with its initial response and returns
// the tagged response; an RFC 7628 3.2.2 error challenge is answered with dummy.
func (rc *rawConn) authenticateOnce(command, dummy string) string {
	rc.t.Helper()
	rc.n++
	tag := "g" + string(rune('a'+rc.n%26))
	rc.write(tag + " " + command + "\r\n")
	l := rc.readLine()
	if strings.HasPrefix(l, "+ ") {
		rc.write(dummy + "\r\n")
		l = rc.readLine()
	}
	rest, ok := strings.CutPrefix(l, tag+" ")
	if !ok {
		rc.t.Fatalf("%.40s...: %q", command, l)
	}
	return rest
}

// TestEveryMechanismIsGuarded: the brute-force guard of the metadata leader sees the
// failures of every SASL mechanism, not only passwords: from its own client address (a
// PROXY v2 header from the trusted 127.0.0.1; SCRAM-SHA-256-PLUS after STARTTLS), each
// mechanism fails until the (account, address) pair is locked, and then even the right
// credential of that mechanism is refused unchecked (NO [UNAVAILABLE]); every failure
// logged the fail2ban line with the client's address and the filter's expression finds it;
// the guard counted each failure.
func TestEveryMechanismIsGuarded(t *testing.T) {
	iss := oauthtest.Start(t)
	srv, logs := startGuardedWith(t, func(cfg *embedded.Config) { cfg.OAuthRootCAs = iss.CAs })
	trustIssuer(t, srv, iss)
	app := addAppPassword(t, srv, "phone")
	good := iss.Sign(t, oauthtest.ES256, iss.Claims(embedded.DemoAccount, oauthAudience))
	bad := iss.Sign(t, oauthtest.ES256, iss.Claims(embedded.DemoAccount, "another-audience"))
	scramWith := func(password string) func(*rawConn) string {
		return func(rc *rawConn) string {
			tagged, _ := rc.scramAuth("SCRAM-SHA-256", &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: password}, true)
			return tagged
		}
	}
	// SCRAM-SHA-256-PLUS runs after STARTTLS, bound to that TLS session (RFC 9266).
	scramPlusWith := func(password string) func(*rawConn) string {
		return func(rc *rawConn) string {
			c := &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: password,
				GS2Header: "p=tls-exporter,,", ChannelBinding: exporter(t, rc.conn.(*tls.Conn))}
			tagged, _ := rc.scramAuth("SCRAM-SHA-256-PLUS", c, true)
			return tagged
		}
	}
	mechanisms := []struct {
		name, client, reason string
		starttls             bool
		wrong, right         func(*rawConn) string
	}{
		{"SCRAM-SHA-256", "198.51.100.1", "invalid proof", false, scramWith("wrong"), scramWith(embedded.DemoPassword)},
		{"SCRAM-SHA-256-PLUS", "198.51.100.6", "invalid proof", true, scramPlusWith("wrong"), scramPlusWith(embedded.DemoPassword)},
		{"OAUTHBEARER", "198.51.100.2", "invalid token", false,
			func(rc *rawConn) string {
				return rc.authenticateOnce("AUTHENTICATE OAUTHBEARER "+oauthBearer(embedded.DemoAccount, bad), "AQ==")
			},
			func(rc *rawConn) string {
				return rc.authenticateOnce("AUTHENTICATE OAUTHBEARER "+oauthBearer(embedded.DemoAccount, good), "AQ==")
			}},
		{"XOAUTH2", "198.51.100.3", "invalid token", false,
			func(rc *rawConn) string {
				return rc.authenticateOnce("AUTHENTICATE XOAUTH2 "+xoauth2(embedded.DemoAccount, bad), "")
			},
			func(rc *rawConn) string {
				return rc.authenticateOnce("AUTHENTICATE XOAUTH2 "+xoauth2(embedded.DemoAccount, good), "")
			}},
		{"app password", "198.51.100.4", "invalid credentials", false,
			func(rc *rawConn) string { return rc.login(embedded.DemoAccount, "aaaa-bbbb-cccc-dddd-eeee-ffff") },
			func(rc *rawConn) string { return rc.login(embedded.DemoAccount, app) }},
		{"PLAIN", "198.51.100.5", "invalid credentials", false,
			func(rc *rawConn) string {
				return rc.authenticateOnce("AUTHENTICATE PLAIN "+base64Plain(embedded.DemoAccount, "wrong"), "")
			},
			func(rc *rawConn) string {
				return rc.authenticateOnce("AUTHENTICATE PLAIN "+base64Plain(embedded.DemoAccount, embedded.DemoPassword), "")
			}},
	}
	ready := func(rc *rawConn, starttls bool) *rawConn {
		if starttls {
			rc.ok("STARTTLS")
			rc.handshake(srv)
		}
		return rc
	}
	// The right credential of each works before the attack (and trusts nothing for the
	// attackers' addresses, which are new).
	for _, m := range mechanisms {
		if got := m.right(ready(imapFrom(t, srv, "127.0.0.9"), m.starttls)); !strings.HasPrefix(got, "OK") {
			t.Fatalf("%s with the right credential: %q", m.name, got)
		}
	}
	for _, m := range mechanisms {
		rc := ready(imapProxied(t, srv, m.client, 2), m.starttls)
		for i := range guardTestConfig.PairLockoutFailures {
			if got := m.wrong(rc); !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("%s wrong credential %d: %q", m.name, i+1, got)
			}
		}
		if got := m.right(rc); !strings.HasPrefix(got, "NO [UNAVAILABLE]") {
			t.Errorf("%s right credential from the locked pair: %q, want NO [UNAVAILABLE]", m.name, got)
		}
		// From the real user's trusted address it still logs in.
		if got := m.right(ready(imapFrom(t, srv, "127.0.0.9"), m.starttls)); !strings.HasPrefix(got, "OK") {
			t.Errorf("%s from the trusted address during the lockout: %q", m.name, got)
		}
	}

	// ManageSieve runs the same exchanges: a refused token and a wrong SCRAM proof, each
	// from its own address, log the line with protocol=managesieve and count in the guard.
	sieveAuth := func(src, mechanism, first string, answer func(challenge string) string) string {
		conn := dialFrom(t, srv.ManageSieveAddr(), src, nil)
		r := bufio.NewReader(conn)
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		read := func() string {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("ManageSieve %s: %v", mechanism, err)
			}
			return strings.TrimRight(l, "\r\n")
		}
		for !strings.HasPrefix(read(), "OK") { // RFC 5804 1.7: capabilities, then OK
		}
		fmt.Fprintf(conn, "AUTHENTICATE %q %q\r\n", mechanism, first)
		for {
			l := read()
			if !strings.HasPrefix(l, `"`) {
				return l
			}
			fmt.Fprintf(conn, "%q\r\n", answer(strings.Trim(l, `"`)))
		}
	}
	if got := sieveAuth("127.0.0.21", "OAUTHBEARER", oauthBearer(embedded.DemoAccount, bad), func(string) string { return "AQ==" }); !strings.HasPrefix(got, "NO") {
		t.Errorf("ManageSieve OAUTHBEARER with a bad token: %q", got)
	}
	wrongScram := &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: "wrong"}
	got := sieveAuth("127.0.0.22", "SCRAM-SHA-256", base64.StdEncoding.EncodeToString(wrongScram.First()), func(challenge string) string {
		serverFirst, err := base64.StdEncoding.DecodeString(challenge)
		if err != nil {
			t.Fatal(err)
		}
		final, err := wrongScram.Final(serverFirst)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(final)
	})
	if !strings.HasPrefix(got, "NO") {
		t.Errorf("ManageSieve SCRAM-SHA-256 with a wrong password: %q", got)
	}

	host := fail2banHost(t)
	lines := logs.failureLines()
	for client, want := range map[string]string{"127.0.0.21": `protocol=managesieve account=demo@example.com reason="invalid token"`, "127.0.0.22": `protocol=managesieve account=demo@example.com reason="invalid proof"`} {
		if !slices.ContainsFunc(lines, func(l string) bool { return host(l) == client && strings.Contains(l, want) }) {
			t.Errorf("no failure line for %s with %s:\n%s", client, want, strings.Join(lines, "\n"))
		}
	}
	for _, m := range mechanisms {
		failed, locked := 0, 0
		for _, l := range lines {
			if host(l) != m.client {
				continue
			}
			switch {
			case strings.Contains(l, fmt.Sprintf("reason=%q", m.reason)):
				failed++
			case strings.Contains(l, `reason="locked (pair)"`):
				locked++
			default:
				t.Errorf("%s: unexpected failure line %s", m.name, l)
			}
		}
		if failed != guardTestConfig.PairLockoutFailures || locked != 1 {
			t.Errorf("%s: %d failure and %d lockout lines for %s, want %d and 1:\n%s", m.name, failed, locked, m.client, guardTestConfig.PairLockoutFailures, strings.Join(lines, "\n"))
		}
	}
	metric, _ := embeddedtest.Scrape(t, srv.MetricsAddr())
	n := float64(len(mechanisms))
	for series, want := range map[string]float64{
		`strata_auth_guard_failures_total{scope="pair"}`:                 n*float64(guardTestConfig.PairLockoutFailures) + 2, // + the two ManageSieve failures
		`strata_auth_guard_lockouts_total{scope="pair"}`:                 n,
		`strata_auth_guard_refusals_total{reason="locked",scope="pair"}`: n,
	} {
		if got := metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
