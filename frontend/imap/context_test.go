package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// as sends line with tag and returns the untagged responses and the tagged one (without
// its tag).
func (rc *rawConn) as(tag, line string) (untagged []string, tagged string) {
	rc.t.Helper()
	rc.write(tag + " " + line + "\r\n")
	return rc.until(tag)
}

// okAs is as that fails the test unless the command completes with OK.
func (rc *rawConn) okAs(tag, line string) []string {
	rc.t.Helper()
	untagged, tagged := rc.as(tag, line)
	if !strings.HasPrefix(tagged, "OK") {
		rc.t.Fatalf("%s %s: %s (untagged %q)", tag, line, tagged, untagged)
	}
	return untagged
}

// wantLines fails t unless got is want, line for line.
func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// wantOrder fails t unless each of want is among lines, in that order.
func wantOrder(t *testing.T, lines []string, want ...string) {
	t.Helper()
	at := -1
	for _, w := range want {
		k := slices.Index(lines, w)
		if k < 0 || k < at {
			t.Errorf("want %q after %q in %q", w, want, lines)
			return
		}
		at = k
	}
}

// otherSession logs in another client with INBOX selected, for changes the session under
// test sees through the change feed.
func otherSession(t *testing.T, c *imapclient.Client) *imapclient.Client {
	t.Helper()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func storeUID(t *testing.T, c *imapclient.Client, uid imap.UID, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatalf("store: %v", err)
	}
}

// TestContextSearch: SEARCH and UID SEARCH with RETURN (UPDATE) (RFC 5267 4.3) report, as
// ADDTO and REMOVEFROM with context position 0, the messages that start or stop matching:
// by a flag change of the session itself (after its FETCH) or of another session, by
// APPEND in another session (after EXISTS, 4.3.3), by EXPUNGE of either (before EXPUNGE,
// 4.3.4). CONTEXT is a hint that changes nothing (4.2).
func TestContextSearch(t *testing.T) {
	srv, c := startWithInbox(t, "m1", "m2", "m3", "m4")
	rc := loginRaw(t, srv)
	caps := strings.Join(rc.ok("CAPABILITY"), " ") + " "
	for _, cp := range []string{" CONTEXT=SEARCH ", " CONTEXT=SORT ", " ESORT "} {
		if !strings.Contains(caps, cp) {
			t.Errorf("CAPABILITY lacks%s: %s", cp, caps)
		}
	}
	rc.ok("SELECT INBOX")
	// RFC 5267 4.2's example.
	wantLines(t, "A01", rc.okAs("A01", "SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk"), `* ESEARCH (TAG "A01") COUNT 4`)
	// RFC 5267 4.3: UPDATE adds no data of its own; RETURN (UPDATE) is not RETURN ().
	wantLines(t, "B01", rc.okAs("B01", "UID SEARCH RETURN (UPDATE) UNSEEN"), `* ESEARCH (TAG "B01") UID`)
	wantLines(t, "B02", rc.okAs("B02", "SEARCH RETURN (UPDATE COUNT) UNSEEN"), `* ESEARCH (TAG "B02") COUNT 4`)

	wantLines(t, "own STORE", rc.okAs("C1", `STORE 2:3 +FLAGS (\Seen)`),
		`* 2 FETCH (FLAGS (\Seen \Recent))`, `* 3 FETCH (FLAGS (\Seen \Recent))`, // this IMAP4rev1 session claimed them
		`* ESEARCH (TAG "B01") UID REMOVEFROM (0 2:3)`, `* ESEARCH (TAG "B02") REMOVEFROM (0 2:3)`)
	wantLines(t, "own silent STORE", rc.okAs("C2", `STORE 2 -FLAGS.SILENT (\Seen)`),
		`* ESEARCH (TAG "B01") UID ADDTO (0 2)`, `* ESEARCH (TAG "B02") ADDTO (0 2)`)
	wantLines(t, "a flag no key names", rc.okAs("C3", `STORE 1 +FLAGS.SILENT (\Flagged)`))

	other := otherSession(t, c)
	appendMessage(t, other, "INBOX", testMessage("m5", "m5"))
	got := rc.noopUntil(`ADDTO`)
	wantOrder(t, got, `* 5 EXISTS`, `* ESEARCH (TAG "B01") UID ADDTO (0 5)`, `* ESEARCH (TAG "B02") ADDTO (0 5)`)

	rc.okAs("C4", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	wantLines(t, "own EXPUNGE", rc.okAs("C5", "EXPUNGE"),
		`* ESEARCH (TAG "B01") UID REMOVEFROM (0 1)`, `* ESEARCH (TAG "B02") REMOVEFROM (0 1)`, `* 1 EXPUNGE`)

	storeUID(t, other, 4, imap.StoreFlagsAdd, imap.FlagSeen)
	got = rc.noopUntil(`REMOVEFROM`)
	wantOrder(t, got, `* 3 FETCH (FLAGS (\Seen \Recent))`, `* ESEARCH (TAG "B01") UID REMOVEFROM (0 4)`, `* ESEARCH (TAG "B02") REMOVEFROM (0 3)`)

	storeUID(t, other, 5, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := other.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	got = rc.noopUntil(`EXPUNGE`)
	wantOrder(t, got, `* ESEARCH (TAG "B01") UID REMOVEFROM (0 5)`, `* ESEARCH (TAG "B02") REMOVEFROM (0 4)`, `* 4 EXPUNGE`)

	// RFC 5267 4.4: PARTIAL returns a range of the result, in mailbox order; never with ALL.
	wantLines(t, "PARTIAL", rc.okAs("P1", "UID SEARCH RETURN (PARTIAL 2:5) ALL"), `* ESEARCH (TAG "P1") UID PARTIAL (2:5 3:4)`)
	if _, tagged := rc.as("P2", "SEARCH RETURN (PARTIAL 1:2 ALL) ALL"); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("PARTIAL with ALL: %s", tagged) // RFC 9394 3.1
	}
}

// TestContextSort: SORT and UID SORT with RETURN (UPDATE) (RFC 5267 4.3) report changes with
// the context positions of the sort order, REVERSE included.
func TestContextSort(t *testing.T) {
	srv, c := startWithInbox(t, "d", "b", "f") // UIDs 1, 2, 3
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	wantLines(t, "S01", rc.okAs("S01", "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN"), `* ESEARCH (TAG "S01") UID ALL 2,1,3`)
	wantLines(t, "S02", rc.okAs("S02", "SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 UNSEEN"), `* ESEARCH (TAG "S02")`)

	other := otherSession(t, c)
	appendMessage(t, other, "INBOX", testMessage("c", "c")) // UID 4: b c d f, and f d c b
	got := rc.noopUntil("ADDTO")
	wantOrder(t, got, `* 4 EXISTS`, `* ESEARCH (TAG "S01") UID ADDTO (2 4)`, `* ESEARCH (TAG "S02") ADDTO (3 4)`)

	wantLines(t, "unmatch", rc.okAs("C1", `UID STORE 1 +FLAGS.SILENT (\Seen)`),
		`* ESEARCH (TAG "S01") UID REMOVEFROM (3 1)`, `* ESEARCH (TAG "S02") REMOVEFROM (2 1)`)
	wantLines(t, "match again", rc.okAs("C2", `UID STORE 1 -FLAGS.SILENT (\Seen)`),
		`* ESEARCH (TAG "S01") UID ADDTO (3 1)`, `* ESEARCH (TAG "S02") ADDTO (2 1)`)

	rc.okAs("C3", `UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	wantLines(t, "EXPUNGE", rc.okAs("C4", "EXPUNGE"),
		`* ESEARCH (TAG "S01") UID REMOVEFROM (4 3)`, `* ESEARCH (TAG "S02") REMOVEFROM (1 3)`, `* 3 EXPUNGE`)

	appendMessage(t, other, "INBOX", testMessage("a", "a")) // UID 5, message 4: a b c d, and d c b a
	got = rc.noopUntil("ADDTO")
	wantOrder(t, got, `* 4 EXISTS`, `* ESEARCH (TAG "S01") UID ADDTO (1 5)`, `* ESEARCH (TAG "S02") ADDTO (4 4)`)
	wantLines(t, "the order kept", rc.okAs("S03", "UID SORT RETURN (ALL) (SUBJECT) UTF-8 UNSEEN"), `* ESEARCH (TAG "S03") UID ALL 5,2,4,1`)
}

// TestContextRecordKeys: keys the stored record answers (SUBJECT, BODY) are read for new
// messages only; a flag change of an old message is decided from the content kept at the
// command; OR keys mixing both are evaluated too; message numbers are taken once, at the
// command (RFC 5267 4.3).
func TestContextRecordKeys(t *testing.T) {
	srv, c := startWithInbox(t, "apple one", "pear", "apple two") // UIDs 1, 2, 3
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	wantLines(t, "K1", rc.okAs("K1", "UID SEARCH RETURN (UPDATE ALL) SUBJECT apple UNSEEN"), `* ESEARCH (TAG "K1") UID ALL 1,3`)
	wantLines(t, "K2", rc.okAs("K2", "UID SEARCH RETURN (UPDATE) OR SEEN SUBJECT pear"), `* ESEARCH (TAG "K2") UID`)
	wantLines(t, "K3", rc.okAs("K3", "UID SEARCH RETURN (UPDATE) BODY kiwi"), `* ESEARCH (TAG "K3") UID`)
	wantLines(t, "Q1", rc.okAs("Q1", "SEARCH RETURN (UPDATE ALL) 2:3"), `* ESEARCH (TAG "Q1") ALL 2:3`)
	wantLines(t, "K5", rc.okAs("K5", "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 SUBJECT pear"), `* ESEARCH (TAG "K5") UID`)
	wantLines(t, "K4", rc.okAs("K4", "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 SUBJECT apple UNSEEN"), `* ESEARCH (TAG "K4") UID ALL 1,3`)

	wantLines(t, "old message", rc.okAs("C1", `UID STORE 1 +FLAGS.SILENT (\Seen)`),
		`* ESEARCH (TAG "K1") UID REMOVEFROM (0 1)`, `* ESEARCH (TAG "K2") UID ADDTO (0 1)`, `* ESEARCH (TAG "K4") UID REMOVEFROM (1 1)`)
	wantLines(t, "a message the subject excludes", rc.okAs("C2", `UID STORE 2 +FLAGS.SILENT (\Seen)`))
	wantLines(t, "a member that stays one", rc.okAs("C3", `UID STORE 3 +FLAGS.SILENT (\Flagged)`))

	other := otherSession(t, c)
	appendMessage(t, other, "INBOX", testMessage("apple three", "a kiwi inside")) // UID 4
	got := rc.noopUntil("ADDTO")
	wantOrder(t, got, `* 4 EXISTS`, `* ESEARCH (TAG "K1") UID ADDTO (0 4)`, `* ESEARCH (TAG "K3") UID ADDTO (0 4)`, `* ESEARCH (TAG "K4") UID ADDTO (1 4)`)
	if contains(got, `TAG "Q1"`) || contains(got, `TAG "K2"`) {
		t.Errorf("a context whose keys exclude the new message reported it: %q", got)
	}
	appendMessage(t, other, "INBOX", testMessage("pear two", "none")) // UID 5
	got = rc.noopUntil("ADDTO")
	wantOrder(t, got, `* 5 EXISTS`, `* ESEARCH (TAG "K2") UID ADDTO (0 5)`, `* ESEARCH (TAG "K5") UID ADDTO (2 5)`)
	if contains(got, `TAG "K1"`) {
		t.Errorf("K1 reported a message its SUBJECT key excludes: %q", got)
	}
}

// TestContextCancelUpdate: CANCELUPDATE (RFC 5267 4.3.5) ends the contexts it names, all or
// none; a tag in use by a context cannot start another (4.3, BAD); past the limit a
// command is answered and its UPDATE refused NO [NOUPDATE] (4.3.1); and a context ends
// with the selection of its mailbox (4.3).
func TestContextCancelUpdate(t *testing.T) {
	srv, _ := startWithInbox(t, "m1", "m2")
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.okAs("B01", "SEARCH RETURN (UPDATE) UNSEEN")
	if _, tagged := rc.as("B01", "SEARCH RETURN (UPDATE) FLAGGED"); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("UPDATE with a tag in use: %s", tagged)
	}
	rc.okAs("B01", "SEARCH RETURN (COUNT) FLAGGED") // no UPDATE: the tag may repeat
	for _, bad := range []string{"SEARCH RETURN (UPDATE UPDATE) ALL", "SEARCH RETURN (PARTIAL 1:2 ALL) ALL", "CANCELUPDATE B01", "CANCELUPDATE", "SEARCH RETURN (FOO) ALL"} {
		if _, tagged := rc.as("D1", bad); !strings.HasPrefix(tagged, "BAD") {
			t.Errorf("%s: %s", bad, tagged)
		}
	}
	if _, tagged := rc.as("D2", `CANCELUPDATE "B01" "nope"`); !strings.HasPrefix(tagged, "NO") {
		t.Errorf("CANCELUPDATE of an unknown tag: %s", tagged)
	}
	wantLines(t, "a failed CANCELUPDATE ends nothing", rc.okAs("D3", `STORE 1 +FLAGS.SILENT (\Seen)`), `* ESEARCH (TAG "B01") REMOVEFROM (0 1)`)
	rc.okAs("D4", `CANCELUPDATE "B01"`)
	wantLines(t, "after CANCELUPDATE", rc.okAs("D5", `STORE 1 -FLAGS.SILENT (\Seen)`))
	if _, tagged := rc.as("D6", `CANCELUPDATE "B01"`); !strings.HasPrefix(tagged, "NO") {
		t.Errorf("CANCELUPDATE twice: %s", tagged)
	}

	// The limit (Limits.MaxSearchContexts, 10 by default).
	for i := 1; i <= 10; i++ {
		rc.okAs(fmt.Sprintf("L%d", i), "UID SEARCH RETURN (UPDATE) UNSEEN")
	}
	wantLines(t, "past the limit", rc.okAs("L11", "UID SEARCH RETURN (UPDATE COUNT) ALL"),
		`* ESEARCH (TAG "L11") UID COUNT 2`, `* NO [NOUPDATE "L11"] Too many updating contexts; at most 10 (CANCELUPDATE ends one)`)
	wantLines(t, "SORT past the limit", rc.okAs("L12", "SORT RETURN (UPDATE ALL) (ARRIVAL) UTF-8 ALL"),
		`* ESEARCH (TAG "L12") ALL 1:2`, `* NO [NOUPDATE "L12"] Too many updating contexts; at most 10 (CANCELUPDATE ends one)`)
	rc.okAs("D7", `CANCELUPDATE "L1" "L2"`)
	wantLines(t, "YOUNGER", rc.okAs("Y1", "SEARCH RETURN (UPDATE) YOUNGER 3600"),
		`* ESEARCH (TAG "Y1")`, `* NO [NOUPDATE "Y1"] OLDER, YOUNGER and FUZZY results are not kept up to date`)
	got := rc.okAs("D8", `STORE 2 +FLAGS.SILENT (\Seen)`)
	if len(got) != 8 || contains(got, `"L1"`) || contains(got, `"L11"`) || contains(got, `"Y1"`) {
		t.Errorf("the contexts L3 to L10 should report, and they alone: %q", got)
	}

	// RFC 5267 4.3: the contexts end when the mailbox is no longer selected.
	rc.ok("SELECT INBOX")
	wantLines(t, "after SELECT", rc.okAs("E1", `STORE 2 -FLAGS.SILENT (\Seen)`))
	if _, tagged := rc.as("E2", `CANCELUPDATE "L3"`); !strings.HasPrefix(tagged, "NO") {
		t.Errorf("CANCELUPDATE of a context of the mailbox selected before: %s", tagged)
	}
	rc.okAs("E3", "SEARCH RETURN (UPDATE) UNSEEN")
	rc.ok("UNSELECT")
	if _, tagged := rc.as("E4", `CANCELUPDATE "E3"`); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("CANCELUPDATE in the authenticated state: %s", tagged)
	}
}

// TestContextIdle: the updates of a context go out during IDLE, after the EXISTS (RFC 5267
// 4.3.2: at any time).
func TestContextIdle(t *testing.T) {
	srv, c := startWithInbox(t, "m1")
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.okAs("B01", "UID SEARCH RETURN (UPDATE) UNSEEN")
	rc.startIdle("I1")
	appendMessage(t, c, "INBOX", testMessage("m2", "m2"))
	got := rc.waitFor("ADDTO")
	wantOrder(t, got, `* 2 EXISTS`, `* ESEARCH (TAG "B01") UID ADDTO (0 2)`)
	rc.write("DONE\r\n")
	rc.until("I1")
}

// TestContextVanished: with QRESYNC, REMOVEFROM goes out before VANISHED (RFC 5267 4.3.4,
// RFC 7162 3.2.10), with message numbers valid before it in a SEARCH context.
func TestContextVanished(t *testing.T) {
	srv, _ := startWithInbox(t, "m1", "m2", "m3")
	rc := loginRaw(t, srv)
	rc.ok("ENABLE QRESYNC")
	rc.ok("SELECT INBOX")
	rc.okAs("V1", "UID SEARCH RETURN (UPDATE) ALL")
	rc.okAs("V2", "SEARCH RETURN (UPDATE) ALL")
	rc.okAs("C1", `STORE 2:3 +FLAGS.SILENT (\Deleted)`)
	got, tagged := rc.as("C2", "EXPUNGE")
	if !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("EXPUNGE: %s", tagged)
	}
	wantLines(t, "EXPUNGE", got, `* ESEARCH (TAG "V1") UID REMOVEFROM (0 2:3)`, `* ESEARCH (TAG "V2") REMOVEFROM (0 2:3)`, `* VANISHED 2:3`)
}
