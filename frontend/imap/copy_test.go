package imap_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestCopyMove(t *testing.T) { bothModes(t, testCopyMove) }

func testCopyMove(t *testing.T, rev2 bool) {
	srv, _ := startWithInbox(t, "a", "b", "c")
	rc := loginRawMode(t, srv, rev2)
	rc.ok("CREATE Dest")
	rc.ok("SELECT INBOX")
	_, tagged := rc.cmd("COPY 1:2 Dest")
	if !strings.HasPrefix(tagged, "OK [COPYUID ") || !strings.Contains(tagged, " 1:2 1:2]") {
		t.Errorf("COPY: %q", tagged)
	}
	rc.expect("COPY 1 Missing", "NO [TRYCREATE]")
	untagged, tagged := rc.cmd("UID MOVE 2:3 Dest")
	if !strings.HasPrefix(tagged, "OK") || len(untagged) != 3 || !strings.HasPrefix(untagged[0], "* OK [COPYUID ") ||
		!strings.HasSuffix(untagged[0], " 2:3 3:4] Moved") || untagged[1] != "* 3 EXPUNGE" || untagged[2] != "* 2 EXPUNGE" {
		t.Errorf("UID MOVE: %q %q", untagged, tagged)
	}
	got := rc.ok("STATUS Dest (MESSAGES)")
	if !slices.Equal(got, []string{"* STATUS Dest (MESSAGES 4)"}) {
		t.Errorf("STATUS Dest = %q", got)
	}
	rc.ok("SELECT Dest")
	rc.okSearch(rev2, "UID SEARCH ALL", "1 2 3 4")
	got = rc.ok("FETCH 4 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
	if len(got) != 1 || !strings.Contains(got[0], "Subject: c") {
		t.Errorf("moved message = %q", got)
	}
}

// TestCopySameMailbox: COPY into the selected mailbox adds new UIDs, reported by COPYUID
// (RFC 4315 3) and EXISTS.
func TestCopySameMailbox(t *testing.T) { bothModes(t, testCopySameMailbox) }

func testCopySameMailbox(t *testing.T, rev2 bool) {
	srv, _ := startWithInbox(t, "a", "b")
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	untagged, tagged := rc.cmd("COPY 1:2 INBOX")
	if !strings.HasPrefix(tagged, "OK [COPYUID ") || !strings.Contains(tagged, " 1:2 3:4]") {
		t.Errorf("COPY to the same mailbox: %q", tagged)
	}
	if !contains(untagged, "* 4 EXISTS") {
		rc.ok("NOOP")
	}
	rc.okSearch(rev2, "UID SEARCH ALL", "1 2 3 4")
	rc.expect("MOVE 1 inbox", "OK")
}

// TestMoveExpungedElsewhere: messages another session expunged in between are skipped by
// MOVE and COPY; COPYUID names only what moved (RFC 6851 4.4, RFC 9051 6.4.8).
func TestMoveExpungedElsewhere(t *testing.T) { bothModes(t, testMoveExpungedElsewhere) }

func testMoveExpungedElsewhere(t *testing.T, rev2 bool) {
	srv, _ := startWithInbox(t, "a", "b", "c")
	rc := loginRawMode(t, srv, rev2)
	rc.ok("CREATE Dest")
	rc.ok("SELECT INBOX")
	other := loginRawMode(t, srv, rev2)
	other.ok("SELECT INBOX")
	other.ok(`UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	other.ok("UID EXPUNGE 2")
	// rc has not synced: its view still holds UID 2 as message 2. MOVE is not one of
	// the commands that may not send EXPUNGE, so the other session's expunge shows too.
	untagged, tagged := rc.cmd("MOVE 1:3 Dest")
	if !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("MOVE: %q %q", untagged, tagged)
	}
	if !contains(untagged, "COPYUID") || !contains(untagged, " 1,3 1:2]") {
		t.Errorf("MOVE COPYUID: %q", untagged)
	}
	rc.ok("NOOP")
	if got := rc.ok("STATUS INBOX (MESSAGES)"); !slices.Equal(got, []string{"* STATUS INBOX (MESSAGES 0)"}) {
		t.Errorf("INBOX after MOVE: %q", got)
	}
	if got := rc.ok("STATUS Dest (MESSAGES)"); !slices.Equal(got, []string{"* STATUS Dest (MESSAGES 2)"}) {
		t.Errorf("Dest after MOVE: %q", got)
	}
}

// TestCopyNamesAndCodes: the session names the target in modified UTF-7 in IMAP4rev1 (RFC
// 3501 5.1.3) and in UTF-8 in IMAP4rev2 (RFC 9051 5.1); \Noselect and missing targets answer
// [TRYCREATE] (RFC 9051 6.4.7); MOVE in EXAMINE is refused; CLOSE after EXAMINE expunges
// nothing (RFC 9051 6.4.1).
func TestCopyNamesAndCodes(t *testing.T) { bothModes(t, testCopyNamesAndCodes) }

func testCopyNamesAndCodes(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := loginUTF8(t, srv)
	appendMessage(t, c, "INBOX", testMessage("a", "a"))
	rc := loginRawMode(t, srv, rev2)
	name := "&AMk-t&AOk-"
	if rev2 {
		name = `"Été"`
	}
	rc.ok("CREATE " + name)
	rc.ok("CREATE P/C")
	rc.ok("DELETE P")
	rc.ok("SELECT INBOX")
	if _, tagged := rc.cmd("COPY 1 " + name); !strings.HasPrefix(tagged, "OK [COPYUID ") {
		t.Errorf("COPY to %s: %q", name, tagged)
	}
	rc.expect("COPY 1 P", "NO [TRYCREATE]")
	rc.expect("COPY 1 Nope", "NO [TRYCREATE]")
	if rev2 {
		// "&" is an ordinary character of a UTF-8 name (RFC 9051 5.1): no such mailbox.
		rc.expect("COPY 1 &AGE-", "NO [TRYCREATE]")
	} else {
		// "a" encoded in modified UTF-7 is no valid name (RFC 3501 5.1.3).
		rc.expect("COPY 1 &AGE-", "NO [CANNOT]")
	}
	rc.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	rc.ok("EXAMINE INBOX")
	rc.expect("MOVE 1 "+name, "NO [READ-ONLY]")
	rc.ok("CLOSE")
	if got := rc.ok("STATUS INBOX (MESSAGES DELETED)"); !slices.Equal(got, []string{"* STATUS INBOX (MESSAGES 1 DELETED 1)"}) {
		t.Errorf("after CLOSE of EXAMINE: %q", got)
	}
	// UNSELECT never expunges (RFC 3691).
	rc.ok("SELECT INBOX")
	rc.ok("UNSELECT")
	if got := rc.ok("STATUS INBOX (MESSAGES)"); !slices.Equal(got, []string{"* STATUS INBOX (MESSAGES 1)"}) {
		t.Errorf("after UNSELECT: %q", got)
	}
	if data, err := c.Status("Été", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *data.NumMessages != 1 {
		t.Errorf("imapclient sees the copy in Été: %+v %v", data, err)
	}
}
