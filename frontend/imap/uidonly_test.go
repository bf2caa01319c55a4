package imap_test

import (
	"regexp"
	"slices"
	"testing"
)

// TestUIDOnly: after ENABLE UIDONLY (RFC 9586) message numbers are refused with BAD
// [UIDREQUIRED], FETCH data comes as UIDFETCH keyed by UID, and expunges as VANISHED, in the
// session's own commands and in the updates of other sessions' changes.
func TestUIDOnly(t *testing.T) {
	srv, _ := startWithInbox(t, "a", "b", "c")
	rc := loginRaw(t, srv)
	if got := rc.ok("CAPABILITY"); !contains(got, " UIDONLY ") {
		t.Errorf("CAPABILITY lacks UIDONLY: %q", got)
	}
	if got := rc.ok("ENABLE UIDONLY"); !slices.Equal(got, []string{"* ENABLED UIDONLY"}) {
		t.Errorf("ENABLE UIDONLY: %q", got)
	}
	rc.ok("SELECT INBOX")
	for _, cmd := range []string{"FETCH 1 FLAGS", `STORE 1 +FLAGS (\Seen)`, "SEARCH ALL", "COPY 1 INBOX", "MOVE 1 INBOX", "UID SEARCH 1:2", "UID SEARCH NOT 2", "REPLACE 1 INBOX {1+}\r\nx"} {
		rc.expect(cmd, "BAD [UIDREQUIRED]")
	}
	if got, want := rc.ok("UID FETCH 2:3 FLAGS"), []string{`* 2 UIDFETCH (FLAGS (\Recent))`, `* 3 UIDFETCH (FLAGS (\Recent))`}; !slices.Equal(got, want) {
		t.Errorf("UID FETCH: %q, want %q", got, want)
	}
	if got, want := rc.ok(`UID STORE 3 +FLAGS (\Flagged)`), []string{`* 3 UIDFETCH (FLAGS (\Flagged \Recent))`}; !slices.Equal(got, want) {
		t.Errorf("UID STORE: %q, want %q", got, want)
	}
	// MODSEQ turns CONDSTORE on, which tells HIGHESTMODSEQ once (RFC 7162 3.1.2.1).
	if got := rc.ok("UID FETCH 1 (UID MODSEQ)"); len(got) != 2 || !regexp.MustCompile(`^\* 1 UIDFETCH \(UID 1 MODSEQ \(\d+\)\)$`).MatchString(got[1]) {
		t.Errorf("UID FETCH (UID MODSEQ): %q", got)
	}
	rc.ok(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	if got := rc.ok("UID EXPUNGE 1"); !slices.Contains(got, "* VANISHED 1") || contains(got, " EXPUNGE") {
		t.Errorf("UID EXPUNGE: %q", got)
	}
	// Another session's changes.
	other := loginRaw(t, srv)
	other.ok("SELECT INBOX")
	other.ok(`STORE 1 +FLAGS.SILENT ($Other)`)
	if got := rc.noopUntil("$Other"); !contains(got, `* 2 UIDFETCH (FLAGS (`) {
		t.Errorf("another session's STORE: %q", got)
	}
	other.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")
	if got := rc.noopUntil("VANISHED"); !slices.Contains(got, "* VANISHED 3") {
		t.Errorf("another session's EXPUNGE: %q", got)
	}
}
