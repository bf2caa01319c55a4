package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// lit returns a non-synchronising literal (RFC 7888) holding s.
func lit(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

// TestReplace: REPLACE and UID REPLACE (RFC 8508): the new message is appended and the
// replaced one expunged in one step, reported as APPENDUID, then EXPUNGE (or VANISHED with
// QRESYNC); a failure leaves both mailboxes as they were.
func TestReplace(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	for _, s := range []string{"draft 1", "draft 2"} {
		appendMessage(t, c, "Drafts", testMessage(s, s))
	}
	rc := loginRaw(t, srv)
	if got := rc.ok("CAPABILITY"); !contains(got, " REPLACE ") {
		t.Errorf("CAPABILITY lacks REPLACE: %q", got)
	}
	rc.ok("SELECT Drafts")
	got := rc.ok("REPLACE 1 Drafts " + lit(testMessage("draft 1, edited", "more")))
	if !slices.Contains(got, "* 1 EXPUNGE") || !contains(got, "* OK [APPENDUID ") || !contains(got, " 3] Replacement message ready") {
		t.Errorf("REPLACE: %q", got)
	}
	if got := rc.ok("UID SEARCH ALL"); !slices.Equal(got, []string{"* SEARCH 2 3"}) {
		t.Errorf("after REPLACE: %q", got)
	}
	// Into another mailbox, by UID, with flags.
	got = rc.ok(`UID REPLACE 2 INBOX (\Seen) ` + lit(testMessage("sent", "x")))
	if !slices.Contains(got, "* 1 EXPUNGE") || !contains(got, "* OK [APPENDUID ") {
		t.Errorf("UID REPLACE into INBOX: %q", got)
	}
	if got := rc.ok("STATUS INBOX (MESSAGES UNSEEN)"); !slices.Equal(got, []string{"* STATUS INBOX (MESSAGES 1 UNSEEN 0)"}) {
		t.Errorf("INBOX after UID REPLACE: %q", got)
	}
	// Failures change nothing: a UID that is not there, a number past the last message, a
	// mailbox that does not exist.
	rc.expect("UID REPLACE 99 INBOX "+lit(testMessage("x", "x")), "NO [NONEXISTENT]")
	rc.expect("REPLACE 5 INBOX "+lit(testMessage("x", "x")), "BAD")
	rc.expect("REPLACE 1 Nowhere "+lit(testMessage("x", "x")), "NO [TRYCREATE]")
	if got := rc.ok("STATUS INBOX (MESSAGES)"); !slices.Equal(got, []string{"* STATUS INBOX (MESSAGES 1)"}) {
		t.Errorf("INBOX after failed REPLACEs: %q", got)
	}
	if got := rc.ok("UID SEARCH ALL"); !slices.Equal(got, []string{"* SEARCH 3"}) {
		t.Errorf("Drafts after failed REPLACEs: %q", got)
	}
	// Read-only: NO [READ-ONLY], nothing appended.
	rc.ok("EXAMINE Drafts")
	rc.expect("REPLACE 1 Drafts "+lit(testMessage("x", "x")), "NO [READ-ONLY]")
	// With QRESYNC the replaced message is VANISHED.
	q := loginRaw(t, srv)
	q.ok("ENABLE QRESYNC")
	q.ok("SELECT Drafts")
	got = q.ok("REPLACE 1 Drafts " + lit(testMessage("again", "x")))
	if !slices.Contains(got, "* VANISHED 3") || contains(got, "EXPUNGE") {
		t.Errorf("REPLACE with QRESYNC: %q", got)
	}
	// Not in the authenticated state; the literal is read and dropped.
	a := loginRaw(t, srv)
	a.expect("REPLACE 1 Drafts "+lit(testMessage("x", "x")), "BAD")
	if got := a.ok("STATUS Drafts (MESSAGES)"); !strings.Contains(strings.Join(got, ""), "MESSAGES 1") {
		t.Errorf("Drafts after REPLACE in the authenticated state: %q", got)
	}
}
