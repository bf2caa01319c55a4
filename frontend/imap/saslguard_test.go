package imap_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
)

// TestSASLLoginBookkeeping: every mechanism of frontend/sasl goes through auth.Logins. A
// wrong SCRAM proof sent through the trusted proxy logs the fail2ban line with the client's
// address and reason "invalid proof" and counts as a failure; AUTHENTICATE PLAIN meets the
// metadata leader's brute-force guard with the client's address, up to the pair's lockout
// (NO [UNAVAILABLE] for the right password); the lockout holds for every mechanism of the
// pair, SCRAM with the right password included.
func TestSASLLoginBookkeeping(t *testing.T) {
	srv, logs := startGuarded(t)

	rc := imapProxied(t, srv, "198.51.100.8", 2)
	wrong := demoClient()
	wrong.Password = "wrong"
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256", wrong, true); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("SCRAM with a wrong password: %q", tagged)
	}
	lines := logs.failureLines()
	if len(lines) != 1 || !strings.Contains(lines[0], "client_ip=198.51.100.8 protocol=imap account="+embedded.DemoAccount) || !strings.Contains(lines[0], `reason="invalid proof"`) {
		t.Fatalf("failure lines %q, want one for 198.51.100.8 with reason \"invalid proof\"", lines)
	}
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256", demoClient(), true); !strings.HasPrefix(tagged, "OK [CAPABILITY ") {
		t.Fatalf("SCRAM with the demo password: %q", tagged)
	}

	plain := func(password string) string {
		c := imapProxied(t, srv, "198.51.100.9", 1)
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + embedded.DemoAccount + "\x00" + password))
		_, tagged := c.cmd("AUTHENTICATE PLAIN " + ir)
		return tagged
	}
	for i := range guardTestConfig.PairLockoutFailures {
		if got := plain("guess"); !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("PLAIN guess %d: %q", i, got)
		}
	}
	if got := plain(embedded.DemoPassword); !strings.HasPrefix(got, "NO [UNAVAILABLE]") {
		t.Fatalf("PLAIN with the right password while the pair is locked: %q, want NO [UNAVAILABLE]", got)
	}
	plainLines := 0
	for _, l := range logs.failureLines() {
		if strings.Contains(l, "client_ip=198.51.100.9 protocol=imap") {
			plainLines++
		}
	}
	if plainLines != guardTestConfig.PairLockoutFailures+1 {
		t.Errorf("%d failure lines for 198.51.100.9, want %d (the guesses and the locked attempt)", plainLines, guardTestConfig.PairLockoutFailures+1)
	}
	locked := imapProxied(t, srv, "198.51.100.9", 2)
	if tagged, _ := locked.scramAuth("SCRAM-SHA-256", demoClient(), true); !strings.HasPrefix(tagged, "NO [UNAVAILABLE]") {
		t.Fatalf("SCRAM from the locked pair: %q, want NO [UNAVAILABLE]", tagged)
	}

	metric, _ := embeddedtest.Scrape(t, srv.MetricsAddr())
	for series, want := range map[string]float64{
		`strata_auth_logins_total{protocol="imap",result="failure"}`: float64(1 + guardTestConfig.PairLockoutFailures),
		`strata_auth_logins_total{protocol="imap",result="success"}`: 1,
		`strata_auth_logins_total{protocol="imap",result="locked"}`:  2,
	} {
		if got := metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
