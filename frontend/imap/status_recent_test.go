package imap_test

import (
	"slices"
	"testing"
)

// TestStatusRecent: STATUS RECENT (RFC 3501 6.3.10) counts the messages that no session has
// claimed as \Recent (those a SELECT would now claim), without claiming them, plus, for the
// mailbox selected read-write, the session's own; IMAP4rev2 sessions have no \Recent (RFC
// 9051 appendix E).
func TestStatusRecent(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	status := func(rc *rawConn, want string) {
		t.Helper()
		if got := rc.ok("STATUS INBOX (MESSAGES RECENT)"); !slices.Equal(got, []string{want}) {
			t.Errorf("STATUS = %q, want %q", got, want)
		}
	}
	// Delivered to a mailbox that nobody has selected.
	appendMessage(t, c, "INBOX", testMessage("one", "1"))
	appendMessage(t, c, "INBOX", testMessage("two", "2"))

	other := loginRaw(t, srv)
	status(other, "* STATUS INBOX (MESSAGES 2 RECENT 2)")
	status(other, "* STATUS INBOX (MESSAGES 2 RECENT 2)")
	rev2 := loginRaw(t, srv)
	rev2.ok("ENABLE IMAP4rev2")
	status(rev2, "* STATUS INBOX (MESSAGES 2 RECENT 0)")
	examiner := loginRaw(t, srv)
	if got := examiner.ok("EXAMINE INBOX"); !slices.Contains(got, "* 2 RECENT") {
		t.Errorf("EXAMINE after STATUS: %q", got)
	}
	status(examiner, "* STATUS INBOX (MESSAGES 2 RECENT 2)")

	// STATUS and EXAMINE claimed nothing: the first SELECT still gets both.
	selector := loginRaw(t, srv)
	if got := selector.ok("SELECT INBOX"); !slices.Contains(got, "* 2 RECENT") {
		t.Errorf("SELECT after STATUS: %q", got)
	}
	status(selector, "* STATUS INBOX (MESSAGES 2 RECENT 2)")
	status(other, "* STATUS INBOX (MESSAGES 2 RECENT 0)")
	if got := other.ok(`LIST "" INBOX RETURN (STATUS (RECENT))`); !slices.Contains(got, "* STATUS INBOX (RECENT 0)") {
		t.Errorf("LIST-STATUS: %q", got)
	}

	// New mail counts until a selected session claims it, and then for that session only.
	appendMessage(t, c, "INBOX", testMessage("three", "3"))
	status(other, "* STATUS INBOX (MESSAGES 3 RECENT 1)")
	noopUntil(t, selector, "* 3 RECENT")
	status(selector, "* STATUS INBOX (MESSAGES 3 RECENT 3)")
	status(other, "* STATUS INBOX (MESSAGES 3 RECENT 0)")
	examiner.ok("NOOP")
	status(examiner, "* STATUS INBOX (MESSAGES 3 RECENT 0)")
}
