package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/testwait"
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

// TestFlagChangeAfterQueuedExpunge checks that a flag change queued behind an expunge is
// sent with the message's number after that expunge (RFC 9051 7.5.1). The consistency
// checker found the number taken before it: another message's flags changed in the
// session's view, or a panic when the message was the last.
func TestFlagChangeAfterQueuedExpunge(t *testing.T) {
	srv, _ := startWithInbox(t, "a", "b", "c")
	watcher := loginRaw(t, srv)
	watcher.ok("SELECT INBOX")
	writer := loginRaw(t, srv)
	writer.ok("SELECT INBOX")
	writer.ok(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	writer.ok("UID EXPUNGE 1")
	writer.ok(`UID STORE 3 +FLAGS.SILENT (\Flagged)`)
	// Time for the watcher's feed to queue all three changes, so that one NOOP takes them
	// together (the case that went wrong); the assertions hold however they are batched.
	time.Sleep(200 * time.Millisecond)
	var got []string
	testwait.Until(t, 10*time.Second, func() error {
		got = append(got, watcher.ok("NOOP")...)
		if !contains(got, "* 1 EXPUNGE") || !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, `\Flagged`) }) {
			return fmt.Errorf("the watcher got %q, not yet the expunge and the flag change", got)
		}
		return nil
	})
	for _, line := range got {
		if strings.Contains(line, `\Flagged`) && !strings.HasPrefix(line, "* 2 FETCH ") {
			t.Errorf("flag change of UID 3 sent as %q, want message 2 (after * 1 EXPUNGE); all: %q", line, got)
		}
	}
}
