package bench

import (
	"fmt"
	"strings"
	"testing"
)

// TestDovecotMultiSearch: Debian's Dovecot (2.3) neither announces MULTISEARCH (RFC 7377 2)
// nor knows the ESEARCH command, so it has no answer to compare Strata's ESEARCH with;
// frontend/imap/multisearch_test.go compares ESEARCH with the per-mailbox UID SEARCH of
// Strata itself instead. Should a Dovecot of the test machines gain it, this test fails and
// a differential test of ESEARCH is due.
func TestDovecotMultiSearch(t *testing.T) {
	c := dialIMAP(t, startDovecot(t), dovecotUser, dovecotPassword)
	caps := strings.TrimPrefix(c.answer("CAPABILITY", "* CAPABILITY "), "* CAPABILITY ")
	if strings.Contains(caps+" ", " MULTISEARCH ") {
		t.Fatalf("Dovecot announces MULTISEARCH (%s): add a differential test of ESEARCH", caps)
	}
	c.tag++
	tag := fmt.Sprintf("d%d", c.tag)
	if _, err := c.nc.Write([]byte(tag + " ESEARCH IN (personal) ALL\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		l := c.line()
		if rest, done := strings.CutPrefix(l, tag+" "); done {
			if !strings.HasPrefix(rest, "BAD") {
				t.Fatalf("Dovecot answered ESEARCH with %q, not BAD: add a differential test of ESEARCH", l)
			}
			t.Logf("Dovecot: CAPABILITY %s; ESEARCH: %s", caps, rest)
			return
		}
	}
}
