package imap_test

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// modseqOf returns the number in "HIGHESTMODSEQ n" or "MODSEQ (n)" of the first line that
// has one.
func modseqOf(t *testing.T, lines []string) uint64 {
	t.Helper()
	re := regexp.MustCompile(`MODSEQ \(?(\d+)`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no MODSEQ in %q", lines)
	return 0
}

// TestCondStore: RFC 7162 3.1 over a socket: ENABLE, SELECT (CONDSTORE), HIGHESTMODSEQ,
// FETCH MODSEQ and CHANGEDSINCE, STORE UNCHANGEDSINCE with MODIFIED, SEARCH MODSEQ, STATUS
// HIGHESTMODSEQ, and MODSEQ in the updates of other sessions.
func TestCondStore(t *testing.T) {
	srv, _ := startWithInbox(t, "a", "b", "c", "d")
	rc := loginRaw(t, srv)
	if got := rc.ok("CAPABILITY"); !contains(got, " CONDSTORE ") || !contains(got, " QRESYNC ") {
		t.Errorf("CAPABILITY lacks CONDSTORE/QRESYNC: %q", got)
	}
	// Without CONDSTORE enabled, SELECT sends no HIGHESTMODSEQ and flag updates no MODSEQ.
	if got := rc.ok("SELECT INBOX"); contains(got, "HIGHESTMODSEQ") {
		t.Errorf("SELECT before CONDSTORE: %q", got)
	}
	if got, want := rc.ok(`STORE 1 +FLAGS (\Seen)`), []string{`* 1 FETCH (FLAGS (\Seen \Recent))`}; !slices.Equal(got, want) {
		t.Errorf("STORE before CONDSTORE: %q, want %q", got, want)
	}
	got := rc.ok("SELECT INBOX (CONDSTORE)")
	highest := modseqOf(t, linesWith(got, "HIGHESTMODSEQ"))
	if !contains(got, fmt.Sprintf("* OK [HIGHESTMODSEQ %d] ", highest)) {
		t.Errorf("SELECT (CONDSTORE): %q", got)
	}
	if got := rc.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)"); !contains(got, fmt.Sprintf("* STATUS INBOX (HIGHESTMODSEQ %d MESSAGES 4)", highest)) {
		t.Errorf("STATUS HIGHESTMODSEQ: %q", got)
	}
	all := rc.ok("FETCH 1:* (UID MODSEQ)")
	if len(all) != 4 || modseqOf(t, all[:1]) == 0 || !contains(all, fmt.Sprintf("MODSEQ (%d)", highest)) {
		t.Errorf("FETCH MODSEQ: %q", all)
	}
	// STORE reports UID and MODSEQ once CONDSTORE is on; the new MODSEQ is above all others.
	got = rc.ok(`STORE 2 +FLAGS (\Flagged)`)
	m2 := modseqOf(t, got)
	if want := fmt.Sprintf(`* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (%d))`, m2); !slices.Equal(got, []string{want}) || m2 <= highest {
		t.Errorf("STORE with CONDSTORE: %q, want %q above %d", got, want, highest)
	}
	if got, want := rc.ok(fmt.Sprintf("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", highest)), []string{fmt.Sprintf(`* 2 FETCH (FLAGS (\Flagged) MODSEQ (%d))`, m2)}; !slices.Equal(got, want) {
		t.Errorf("CHANGEDSINCE: %q, want %q", got, want)
	}
	if got := rc.ok(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", m2)); len(got) != 0 {
		t.Errorf("CHANGEDSINCE the latest: %q", got)
	}
	// UNCHANGEDSINCE: message 2 changed after `highest`, so it fails; 3 passes.
	got, tagged := rc.cmd(fmt.Sprintf(`STORE 2:3 (UNCHANGEDSINCE %d) +FLAGS (\Answered)`, highest))
	if tagged != "OK [MODIFIED 2] Conditional STORE failed for some messages" || len(got) != 1 || !contains(got, `* 3 FETCH (UID 3 FLAGS (\Answered) MODSEQ (`) {
		t.Errorf("STORE UNCHANGEDSINCE: %q %q", got, tagged)
	}
	m3 := modseqOf(t, got)
	if _, tagged := rc.cmd(fmt.Sprintf(`UID STORE 2:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\Answered)`, m2)); tagged != "OK [MODIFIED 3] Conditional STORE failed for some messages" {
		t.Errorf("UID STORE UNCHANGEDSINCE: %q", tagged)
	}
	// .SILENT still reports the new MODSEQ (RFC 7162 3.1.3).
	got = rc.ok(`STORE 4 +FLAGS.SILENT ($Done)`)
	if len(got) != 3 || !regexp.MustCompile(`^\* 4 FETCH \(UID 4 MODSEQ \(\d+\)\)$`).MatchString(got[2]) {
		t.Errorf(".SILENT STORE: %q", got)
	}
	// SEARCH MODSEQ returns the highest MODSEQ of what it found (RFC 7162 3.1.5, 3.1.6).
	if got, want := rc.ok(fmt.Sprintf("SEARCH MODSEQ %d", m3)), fmt.Sprintf("* SEARCH 2 3 4 (MODSEQ %d)", modseqOf(t, got[2:])); !slices.Equal(got, []string{want}) {
		t.Errorf("SEARCH MODSEQ: %q, want %q", got, want)
	}
	if got := rc.ok(`SEARCH MODSEQ "/flags/\\draft" all 999999`); !slices.Equal(got, []string{"* SEARCH"}) {
		t.Errorf("SEARCH MODSEQ, nothing found: %q", got)
	}
	if got := rc.ok(fmt.Sprintf("SEARCH RETURN (COUNT) MODSEQ %d", m3)); len(got) != 1 || !regexp.MustCompile(`COUNT 3 MODSEQ \d+$`).MatchString(got[0]) {
		t.Errorf("ESEARCH MODSEQ: %q", got)
	}
	// Another session's change arrives with UID and MODSEQ.
	other := loginRaw(t, srv)
	other.ok("SELECT INBOX")
	other.ok(`STORE 1 +FLAGS ($Other)`)
	if got := rc.noopUntil("$Other"); !contains(got, `* 1 FETCH (UID 1 FLAGS (\Seen $Other) MODSEQ (`) {
		t.Errorf("update with CONDSTORE: %q", got)
	}
	// FETCH of a body without PEEK sets \Seen and reports UID and MODSEQ with the flags.
	if got := rc.ok("FETCH 2 BODY[HEADER.FIELDS (SUBJECT)]"); !contains(got, `FLAGS (\Seen \Answered \Flagged) UID 2 MODSEQ (`) {
		t.Errorf("implicit \\Seen with CONDSTORE: %q", got)
	}
}

// TestCondStoreEnablingCommands: each CONDSTORE enabling command of RFC 7162 3.1 turns
// MODSEQ on in later FETCH updates; ENABLE reports what it enabled.
func TestCondStoreEnablingCommands(t *testing.T) {
	srv, _ := startWithInbox(t, "a")
	for _, enabling := range []string{"ENABLE CONDSTORE", "STATUS INBOX (HIGHESTMODSEQ)", "FETCH 1 MODSEQ", "FETCH 1 FLAGS (CHANGEDSINCE 1)", "SEARCH MODSEQ 1", `STORE 1 (UNCHANGEDSINCE 1000) +FLAGS ()`} {
		rc := loginRaw(t, srv)
		rc.ok("SELECT INBOX")
		got := rc.ok(enabling)
		if enabling == "ENABLE CONDSTORE" && !contains(got, "* ENABLED CONDSTORE") {
			t.Errorf("ENABLE: %q", got)
		}
		if enabling != "ENABLE CONDSTORE" && enabling != "FETCH 1 MODSEQ" && !contains(got, "* OK [HIGHESTMODSEQ ") {
			t.Errorf("%s while selected does not tell HIGHESTMODSEQ: %q", enabling, got)
		}
		// The first of these sessions holds the message's \Recent (RFC 3501 2.3.2).
		if got := rc.ok(`STORE 1 FLAGS (\Draft)`); !contains(got, `* 1 FETCH (UID 1 FLAGS (\Draft`) || !contains(got, `) MODSEQ (`) {
			t.Errorf("after %s: %q", enabling, got)
		}
	}
	rc := loginRaw(t, srv)
	if got := rc.ok("ENABLE QRESYNC CONDSTORE"); !slices.Equal(got, []string{"* ENABLED QRESYNC"}) {
		t.Errorf("ENABLE QRESYNC CONDSTORE: %q (QRESYNC implies CONDSTORE)", got)
	}
}

// TestQResync: RFC 7162 3.2 over a socket: a client that was away resyncs with SELECT
// (QRESYNC ...) and UID FETCH (CHANGEDSINCE ... VANISHED); expunges are VANISHED.
func TestQResync(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendNumbered(t, c, 6, nil)
	rc := loginRaw(t, srv)
	// The QRESYNC parameter and VANISHED need ENABLE QRESYNC first (3.2.5, 3.2.6).
	rc.expect("SELECT INBOX (QRESYNC (1 1))", "BAD")
	rc.ok("SELECT INBOX")
	rc.expect("UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)", "BAD")
	rc.ok("ENABLE QRESYNC")
	got := rc.ok("SELECT INBOX")
	uidValidity := regexp.MustCompile(`UIDVALIDITY (\d+)`).FindStringSubmatch(fmt.Sprint(got))[1]
	known := modseqOf(t, linesWith(got, "HIGHESTMODSEQ"))
	if got[0] != "* OK [CLOSED] Previous mailbox closed" {
		t.Errorf("reselect does not start with CLOSED: %q", got)
	}
	rc.ok("LOGOUT")

	// While the client is away: 2 and 5 are expunged, 3 is flagged, a message arrives.
	away := loginRaw(t, srv)
	away.ok("SELECT INBOX")
	away.ok(`STORE 2,5 +FLAGS.SILENT (\Deleted)`)
	away.ok("EXPUNGE")
	away.ok(`UID STORE 3 +FLAGS.SILENT (\Flagged)`)
	appendMessage(t, c, "INBOX", testMessage("new", "x"))

	rc = loginRaw(t, srv)
	rc.ok("ENABLE QRESYNC")
	got = rc.ok(fmt.Sprintf("SELECT INBOX (QRESYNC (%s %d 1:6))", uidValidity, known))
	vanishedAt := slices.Index(got, "* VANISHED (EARLIER) 2,5")
	fetches := linesWith(got, " FETCH ")
	if vanishedAt < 0 || len(fetches) != 1 || !regexp.MustCompile(`^\* 2 FETCH \(UID 3 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$`).MatchString(fetches[0]) || slices.Index(got, fetches[0]) < vanishedAt {
		t.Errorf("SELECT (QRESYNC): %q", got)
	}
	if !contains(got, "* 5 EXISTS") || !contains(got, "HIGHESTMODSEQ") {
		t.Errorf("SELECT (QRESYNC) lacks EXISTS or HIGHESTMODSEQ: %q", got)
	}
	now := modseqOf(t, linesWith(got, "HIGHESTMODSEQ"))
	// Known UIDs narrow the answer; a UIDVALIDITY that differs gets no resync data.
	got = rc.ok(fmt.Sprintf("SELECT INBOX (QRESYNC (%s %d 1:4))", uidValidity, known))
	if !contains(got, "* VANISHED (EARLIER) 2") || contains(got, "2,5") {
		t.Errorf("SELECT (QRESYNC) with known UIDs 1:4: %q", got)
	}
	uv, _ := strconv.ParseUint(uidValidity, 10, 32)
	got = rc.ok(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:6 (1:3 1,3,4)))", uv^1, known))
	if contains(got, "VANISHED") || len(linesWith(got, " FETCH ")) != 0 {
		t.Errorf("SELECT (QRESYNC) with another UIDVALIDITY: %q", got)
	}
	if got := rc.ok(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", known)); len(got) != 3 || got[0] != "* VANISHED (EARLIER) 2,5" {
		t.Errorf("UID FETCH (CHANGEDSINCE VANISHED): %q", got)
	}
	if got := rc.ok(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", now)); len(got) != 0 {
		t.Errorf("UID FETCH (CHANGEDSINCE latest VANISHED): %q", got)
	}

	// Expunges are VANISHED in a QRESYNC session, its own and others' (3.2.10), and the
	// tagged OK of EXPUNGE carries HIGHESTMODSEQ (3.2.7).
	rc.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	got, tagged := rc.cmd("EXPUNGE")
	if !slices.Contains(got, "* VANISHED 1") || contains(got, "EXPUNGE") || !regexp.MustCompile(`^OK \[HIGHESTMODSEQ \d+\] EXPUNGE completed$`).MatchString(tagged) {
		t.Errorf("EXPUNGE with QRESYNC: %q %q", got, tagged)
	}
	away.ok(`UID STORE 4,6 +FLAGS.SILENT (\Deleted)`)
	away.ok("EXPUNGE")
	if updates := rc.noopUntil("VANISHED"); !slices.Contains(updates, "* VANISHED 4,6") || contains(updates, "EXPUNGE") {
		t.Errorf("another session's EXPUNGE with QRESYNC: %q", updates)
	}
	if got := away.ok("NOOP"); contains(got, "VANISHED") {
		t.Errorf("a session without QRESYNC got VANISHED: %q", got)
	}
}
