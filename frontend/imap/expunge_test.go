package imap_test

import (
	"slices"
	"strings"
	"testing"
)

func TestExpunge(t *testing.T) { bothModes(t, testExpunge) }

func testExpunge(t *testing.T, rev2 bool) {
	srv, _ := startWithInbox(t, "a", "b", "c", "d", "e")
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	rc.ok(`STORE 2,4 +FLAGS.SILENT (\Deleted)`)
	// Highest first, so every number is right when it is read (RFC 9051 7.5.1).
	if got, want := rc.ok("EXPUNGE"), []string{"* 4 EXPUNGE", "* 2 EXPUNGE"}; !slices.Equal(got, want) {
		t.Errorf("EXPUNGE: %q, want %q", got, want)
	}
	if got, want := rc.ok("FETCH 1:* UID"), []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 5)"}; !slices.Equal(got, want) {
		t.Errorf("after EXPUNGE: %q, want %q", got, want)
	}
	// UID EXPUNGE removes only the named \Deleted messages (RFC 4315 2.1).
	rc.ok(`STORE 1:3 +FLAGS.SILENT (\Deleted)`)
	if got, want := rc.ok("UID EXPUNGE 3:5"), []string{"* 3 EXPUNGE", "* 2 EXPUNGE"}; !slices.Equal(got, want) {
		t.Errorf("UID EXPUNGE: %q, want %q", got, want)
	}
	// CLOSE expunges silently and leaves the selected state.
	if got := rc.ok("CLOSE"); len(got) != 0 {
		t.Errorf("CLOSE answered %q", got)
	}
	rc.expect("FETCH 1 UID", "BAD")
	got := rc.ok("EXAMINE INBOX")
	if !contains(got, "* 0 EXISTS") {
		t.Errorf("EXAMINE after CLOSE: %q", got)
	}
	rc.expect("EXPUNGE", "NO")
	rc.ok("UNSELECT")
	if _, tagged := rc.cmd("NOOP"); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("NOOP after UNSELECT: %q", tagged)
	}
}
